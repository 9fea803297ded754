// The consent screen (GET /oauth/authorize): sign in with a key file or a browser wallet, choose cars,
// sign one Grant per car, and go back to the app with the code once the grants are in the log.
import {
  unlockKeyFile, discoverWallets, connectBrowserWallet, fetchEIP712, signTx, signIn, errorText, WalletError,
} from "./wallet.js";

const data = JSON.parse(document.getElementById("connect-data").textContent);
const $ = (id) => document.getElementById(id);
let signer = null;
let busy = false;

function say(text, kind = "") {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + kind;
}

function setBusy(b) {
  busy = b;
  for (const id of ["unlock", "keyfile", "password"]) if ($(id)) $(id).disabled = b;
  for (const el of document.querySelectorAll("#wallet-choice button")) el.disabled = b;
  updateAllow();
}

function chosen() {
  return [...document.querySelectorAll("#vehicles input:checked")].map((i) => Number(i.value));
}

function updateAllow() {
  $("allow").disabled = busy || !signer || chosen().length === 0;
}

async function post(body) {
  const r = await fetch(data.decision, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const out = await r.json();
  if (!r.ok) throw new WalletError(out.error && out.error.code || "unavailable", out.error && out.error.message || "");
  return out.redirect;
}

function goBack(redirect) {
  say("Done. Taking you back to " + data.appName + "…", "ok");
  window.location.assign(redirect);
}

// covers reports whether a grant's permissions include every permission asked for now (exact location
// implies approximate location).
function covers(perms) {
  return data.permissions.every((p) => perms.includes(p) || (p === "location:approximate" && perms.includes("location")));
}

// signedIn continues with a signer. If that fails (no cars, the node unreachable), the driver is back at
// the sign-in step and can try another key.
async function signedIn(s) {
  try {
    await continueAs(s);
  } catch (e) {
    signer = null;
    $("signin").hidden = false;
    $("choose").hidden = true;
    throw e;
  }
}

async function continueAs(s) {
  signer = s;
  $("signin").hidden = true;
  const short = s.address.slice(0, 6) + "…" + s.address.slice(-4);
  $("signed-in").textContent = (s.kind === "wallet" ? "Signed in with your wallet" : "Signed in with your key file") + " (account " + short + ").";
  $("signed-in").title = s.address;
  say("Looking up your cars…");
  const r = await fetch("/v1/accounts/" + s.address);
  if (!r.ok) throw new WalletError("unavailable", "");
  const acc = await r.json();
  const now = Math.floor(Date.now() / 1000);
  const before = (acc.grantsGiven || []).filter((g) => g.app.toLowerCase() === data.app.toLowerCase() && g.expiresAt > now && covers(g.permissions));
  if (before.length > 0) {
    say("You already allowed " + data.appName + " this. Confirming it's you…");
    const { message, signature } = await signIn(s);
    goBack(await post({ request: data.request, message, signature }));
    return;
  }
  if (!acc.vehicles || acc.vehicles.length === 0) throw new WalletError("no_vehicles", "");
  const list = $("vehicles");
  list.textContent = "";
  for (const id of acc.vehicles) {
    const v = await (await fetch("/v1/vehicles/" + id)).json();
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = String(id);
    box.id = "vehicle-" + id;
    box.addEventListener("change", updateAllow);
    const text = document.createElement("span");
    const car = document.createElement("span");
    car.className = "car";
    car.textContent = [v.make, v.model].filter(Boolean).join(" ") + (v.year ? " (" + v.year + ")" : "");
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = "Car no. " + id + " in Glovebox";
    const keep = document.createElement("span");
    keep.className = "meta retention";
    keep.id = "retention-" + id;
    keep.textContent = retentionWords(v.retentionDays);
    text.append(car, meta, keep);
    label.append(box, text);
    li.append(label);
    list.append(li);
  }
  $("choose").hidden = false;
  say(acc.vehicles.length === 1 ? "Tick your car, then press Allow." : "Tick the cars " + data.appName + " may see, then press Allow.");
  updateAllow();
}

// retentionWords says the car's retention policy (SetRetention) in plain words: how long Glovebox keeps
// what an app may see.
function retentionWords(days) {
  days = Number(days || 0);
  if (days === 0) return "Glovebox keeps this car's data until you erase it.";
  return "Glovebox keeps this car's data for " + days + (days === 1 ? " day" : " days") + ", then deletes it.";
}

async function run(step) {
  if (busy) return;
  setBusy(true);
  try {
    await step();
  } catch (e) {
    console.error(e);
    say(errorText(e), "error");
  } finally {
    setBusy(false);
  }
}

$("keyfile-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  run(async () => {
    const f = $("keyfile").files[0];
    if (!f) throw new WalletError("no_keyfile", "");
    const json = await f.text();
    const bar = $("progress");
    bar.hidden = false;
    say("Unlocking your key. This takes a few seconds…");
    const s = await unlockKeyFile(json, $("password").value, (p) => { bar.value = Math.round(p * 100); });
    bar.hidden = true;
    $("password").value = "";
    await signedIn(s);
  });
});

discoverWallets().then((wallets) => {
  if (wallets.length === 0) return;
  const first = $("use-wallet");
  wallets.forEach((w, i) => {
    const b = i === 0 ? first : first.cloneNode(false);
    if (i > 0) b.id = "use-wallet-" + i;
    b.textContent = w.name ? "Use " + w.name : "Use my wallet app";
    b.addEventListener("click", () => run(async () => {
      say("Open " + (w.name || "your wallet") + " to continue…");
      await signedIn(await connectBrowserWallet(w.provider));
    }));
    if (i > 0) first.parentNode.insertBefore(b, $("wallet-or"));
  });
  $("wallet-choice").hidden = false;
});

$("allow").addEventListener("click", () => run(async () => {
  const ids = chosen();
  if (!signer || ids.length === 0) return;
  const eip712 = await fetchEIP712();
  const grants = [];
  for (const id of ids) {
    say(signer.kind === "wallet" ? "Confirm in your wallet (" + (grants.length + 1) + " of " + ids.length + ")…" : "Signing…");
    grants.push(await signTx(signer, eip712, "Grant", {
      vehicleId: id, app: data.app, permissions: data.permissions, expiresAt: data.expiresAt,
      purpose: data.purpose, termsUri: data.termsUri,
    }));
  }
  say("Recording your permission…");
  goBack(await post({ request: data.request, grants }));
}));

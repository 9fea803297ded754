// The public log, checked in this browser: the node's key, the latest checkpoint and its signature,
// the entries decoded and paged, and any entry's inclusion proof verified against its checkpoint.
import { h, act, field, section, fmtTime, addr, copyButton, say } from "./ui.js";
import { api } from "./session.js";
import { parseCheckpoint, verifyNote, checkReceipt, toHex, fromBase64 } from "./tlog.js";
import { decodeEntry, sameAsShown } from "./entry.js";
import { domain } from "./session.js";

const PAGE = 20;

export async function logView(ctx, index) {
  const node = await api("/v1/node");
  const cpText = await (await fetch("/log/checkpoint")).text();
  if (ctx.stale()) return;
  const cp = parseCheckpoint(cpText);
  const sigState = h("span", { class: "badge", id: "checkpoint-verified" }, "checking…");
  const goto = h("input", { type: "number", min: 0, max: cp.size - 1, id: "goto-entry", inputmode: "numeric" });
  const gotoForm = h("form", { class: "row" }, field("Go to entry", goto), h("button", { type: "submit", class: "secondary" }, "Show"));
  gotoForm.addEventListener("submit", (ev) => { ev.preventDefault(); if (goto.value !== "") location.hash = "#/log/" + Number(goto.value); });
  const entries = h("div", { id: "entries" });
  ctx.draw(
    h("div", { class: "head" }, h("h1", {}, "Public log")),
    h("p", { class: "lead" }, "Every change of state (cars, devices, apps, grants) is a signed entry of this Merkle log. This page checks what it shows with the node's public key, in your browser."),
    section("Latest checkpoint",
      h("dl", { class: "facts" },
        h("dt", {}, "Origin"), h("dd", {}, h("code", {}, cp.origin)),
        h("dt", {}, "Entries"), h("dd", { id: "tree-size" }, String(cp.size)),
        h("dt", {}, "Root hash"), h("dd", {}, h("code", { class: "wrap" }, toHex(cp.root))),
        h("dt", {}, "Signature"), h("dd", {}, sigState),
        h("dt", {}, "Node's public key"), h("dd", {}, h("code", { class: "wrap", id: "log-key" }, node.logKey), " ", copyButton(node.logKey))),
      h("details", {}, h("summary", {}, "The checkpoint as served"), h("pre", { class: "code", tabindex: "0" }, cpText))),
    section(index === null ? "Entries, newest first" : "Entry " + index, index === null ? gotoForm : h("p", {}, h("a", { href: "#/log" }, "All entries")), entries),
  );
  const pin = pinned(node.logKey, cp);
  if (pin) document.querySelector("#view .card").before(pin);
  verifyNote(cpText, node.logKey).then((ok) => {
    sigState.textContent = ok ? "✓ signed by the node's key" : "✗ not signed by the node's key";
    sigState.className = "badge " + (ok ? "ok" : "bad");
  }, (e) => { sigState.textContent = "✗ " + e.message; sigState.className = "badge bad"; });

  if (index !== null) {
    const rc = await api("/v1/transactions/" + index);
    entries.append(entryCard(rc, node.logKey, true));
    return;
  }
  let top = cp.size - 1;
  const more = h("button", { type: "button", class: "secondary", id: "entries-more" }, "Older entries");
  const list = h("ol", { class: "entries", reversed: true });
  entries.append(list, more);
  const load = async () => {
    const idx = [];
    for (let i = top; i >= 0 && idx.length < PAGE; i--) idx.push(i);
    const rcs = await Promise.all(idx.map((i) => api("/v1/transactions/" + i)));
    for (const rc of rcs) list.append(h("li", { value: rc.index + 1 }, entryCard(rc, node.logKey, false)));
    top -= idx.length;
    more.hidden = top < 0;
  };
  more.addEventListener("click", () => act(more, "Loading older entries…", load));
  if (cp.size === 0) entries.append(h("p", { class: "empty" }, "The log is empty."));
  else await load();
}

// pinned remembers, in this browser, the log key seen first and the largest tree seen (trust on first
// use), and returns a warning when the node now shows another key or a smaller tree: either the node
// is another log, or it is rewriting history.
function pinned(key, cp) {
  const K = "glovebox.log." + cp.origin;
  let seen = null;
  try { seen = JSON.parse(localStorage.getItem(K) || "null"); } catch (e) { seen = null; }
  const remember = () => localStorage.setItem(K, JSON.stringify({ key, size: Math.max(cp.size, seen && seen.key === key ? seen.size : 0) }));
  if (!seen) { remember(); return null; }
  let problem = null;
  if (seen.key !== key) problem = "This node's log key is not the one this browser saw before (" + seen.key + "). If the operator did not announce a new log, do not trust it.";
  else if (cp.size < seen.size) problem = "The log has " + cp.size + " entries, but this browser saw " + seen.size + " before. A log never shrinks: this node is rewriting history.";
  if (!problem) { remember(); return null; }
  const trust = h("button", { type: "button", class: "secondary" }, "Trust what the node shows now");
  const box = h("div", { class: "warning", role: "alert", id: "log-warning" }, h("p", {}, h("strong", {}, "Warning. "), problem), trust);
  trust.addEventListener("click", () => { localStorage.removeItem(K); seen = null; remember(); box.remove(); say("This browser now trusts the key the node shows.", "ok"); });
  return box;
}

// summary says what an entry did, in a line.
function summary(rc) {
  const m = rc.message || {};
  switch (rc.type) {
    case "RegisterVehicle": return ["Car registered: " + m.make + " " + m.model + " (" + m.year + ")" + (rc.result && rc.result.vehicleId ? ", no. " + rc.result.vehicleId : "")];
    case "RegisterDevice": return ["Device registered (" + m.kind + "): ", addr(m.device)];
    case "PairDevice": return ["Device ", addr(m.device), " paired to car " + m.vehicleId];
    case "UnpairDevice": return ["Device ", addr(m.device), " unpaired from car " + m.vehicleId];
    case "TransferVehicle": return ["Car " + m.vehicleId + " transferred to ", addr(m.to)];
    case "BurnVehicle": return ["Car " + m.vehicleId + " retired"];
    case "RegisterApp": return ["App registered: “" + m.name + "” ", addr(m.app)];
    case "UpdateApp": return ["App updated: “" + m.name + "” ", addr(m.app)];
    case "Grant": return ["Car " + m.vehicleId + " granted ", addr(m.app), " " + (m.permissions || []).join(", ")];
    case "Revoke": return ["Car " + m.vehicleId + ": access of ", addr(m.app), " revoked"];
    case "Renounce": return ["App ", addr(m.app), " gave up its access to car " + m.vehicleId];
    case "SetRetention": return ["Car " + m.vehicleId + ": telemetry kept " + (Number(m.days) === 0 ? "until erased" : "for " + m.days + " days")];
    case "EraseData": return ["Car " + m.vehicleId + ": erasure of telemetry before " + new Date(Number(m.before) * 1000).toISOString().replace(".000Z", "Z") +
      " requested" + (rc.signers && rc.signers[0] ? " by " : ""), ...(rc.signers && rc.signers[0] ? [addr(rc.signers[0])] : [])];
    default: return [rc.type];
  }
}

function entryCard(rc, logKey, open) {
  const out = h("ul", { class: "checks", id: "proof-" + rc.index, "aria-live": "polite" });
  const check = h("button", { type: "button", class: "small", id: "check-" + rc.index }, "Check inclusion proof");
  const run = () => act(check, "Checking entry " + rc.index + " against the checkpoint…", async () => {
    const res = await checkReceipt(rc, logKey);
    // What the page shows (the node's decoding) must be what the entry's bytes say.
    let same = false;
    try { same = sameAsShown(decodeEntry(fromBase64(rc.entry), await domain()), rc); } catch (e) { same = false; }
    res.steps.push({ what: "the entry's bytes say what this page shows (type, time, message, signatures)", ok: same });
    res.ok = res.ok && same;
    out.textContent = "";
    for (const s of res.steps) out.append(h("li", { class: s.ok ? "ok" : "bad" }, (s.ok ? "✓ " : "✗ ") + s.what));
    out.classList.toggle("passed", res.ok);
    out.classList.toggle("failed", !res.ok);
    if (!res.ok) throw Object.assign(new Error("proof"), { code: "proof_failed" });
    return res;
  }, "Entry " + rc.index + " is in the log: its proof checks out against a checkpoint signed by the node's key.");
  check.addEventListener("click", run);
  const card = h("article", { class: "entry" },
    h("div", { class: "entry-head" }, h("a", { href: "#/log/" + rc.index }, "#" + rc.index), h("strong", {}, rc.type),
      h("time", { datetime: new Date(rc.acceptTime).toISOString() }, fmtTime(rc.acceptTime))),
    h("p", {}, summary(rc)),
    h("p", { class: "meta" }, "Signed by ", (rc.signers || []).flatMap((s, i) => i ? [", ", addr(s)] : [addr(s)])),
    h("details", { open }, h("summary", {}, "Message and proof"),
      h("pre", { class: "code", tabindex: "0" }, JSON.stringify({ type: rc.type, message: rc.message, signatures: rc.signatures }, null, 2)),
      h("p", { class: "meta" }, "Leaf hash " + rc.hash + " · proof of " + rc.inclusionProof.length + " hashes in a tree of " + rc.treeSize)),
    h("div", { class: "row" }, check), out);
  if (open) setTimeout(run, 0);
  return card;
}


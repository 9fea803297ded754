// Verify: anyone drops (or picks, or pastes) a credential file and this browser checks it offline with
// the log's key — nothing about the credential is sent anywhere. The node's key and signing format are
// read once when the page opens; a key got elsewhere can be pasted instead.
import { h, field, section, fmtTime, num } from "./ui.js";
import { api } from "./session.js";
import { fetchEIP712 } from "../wallet.js";
import { verifyCredential, peekIssuer } from "./credential.js";

const checkWords = {
  format: "The file is an SD-JWT credential",
  signature: "Signed by the log's key",
  claims: "The claims are well formed",
  expiry: "Not expired",
  disclosures: "Every disclosure is one the issuer signed",
  key_binding: "Key binding",
  checkpoint: "The evidence's checkpoint is signed by the log's key",
  pairing: "Each device was paired to the car in the public log",
  record: "Each record is signed by its paired device",
  claim: "The claim follows from the signed records",
};

const typeWords = { odometer: "Odometer reading", mileage: "Distance driven", movement: "The car moved", vin: "Vehicle identification number" };

export async function verifyView(ctx) {
  // Everything the checks need from the node, read now: after this the page works offline.
  const [node, eip712] = await Promise.all([api("/v1/node"), fetchEIP712()]);
  if (ctx.stale()) return;
  const keyIn = h("input", { id: "verify-key", value: node.logKey, spellcheck: false, autocomplete: "off", class: "wide" });
  const fileIn = h("input", { type: "file", id: "verify-file", accept: ".sdjwt,.txt,application/dc+sd-jwt,text/plain" });
  const text = h("textarea", { id: "verify-text", rows: 4, spellcheck: false, placeholder: "eyJhbGciOiJFZERTQSIs…~…~" });
  const result = h("div", { id: "verify-result", "aria-live": "polite" });
  const drop = h("div", { class: "dropzone", id: "verify-drop", tabindex: "0" },
    h("p", {}, "Drop a credential file here, or ", h("label", { for: "verify-file", class: "link" }, "choose one"), "."), fileIn);

  const check = async (credential) => {
    result.textContent = "";
    if (!credential.trim()) return;
    result.append(h("p", { class: "hint" }, "Checking…"));
    const r = await verifyCredential(credential, keyIn.value.trim(), eip712);
    result.textContent = "";
    result.append(report(r, credential, node));
  };
  const readFile = async (f) => { if (f) { const t = await f.text(); text.value = t.trim(); check(t); } };
  fileIn.addEventListener("change", () => readFile(fileIn.files[0]));
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); readFile(ev.dataTransfer.files[0]); });
  const form = h("form", { id: "verify-form" }, field("Or paste it", text), h("button", { type: "submit", class: "secondary", id: "verify-submit" }, "Check"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); check(text.value); });

  ctx.draw(
    h("div", { class: "head" }, h("h1", {}, "Verify a credential")),
    h("p", { class: "lead" }, "Check a car's credential (odometer, distance driven, movement, VIN) in this browser: the issuer's signature, "
      + "each disclosed claim, and the evidence — the device-signed records, the pairings in the public log and the signed checkpoint. "
      + "Nothing is sent to any server; once this page is open it works offline."),
    section("Credential", drop, form),
    result,
    section("Log key",
      field("The log's public key", keyIn, "Read from this node when the page opened. To trust nothing this node says, paste the key you got from the issuer or from glovebox verify.")),
  );
}

function report(r, credential, node) {
  const c = r.claims;
  const issuer = c ? c.issuer : peekIssuer(credential);
  const head = r.ok
    ? h("p", { class: "verdict ok", id: "verify-verdict" }, c.evidenceChecked ? "Valid: checked down to the device-signed records." : "Valid: signed by the log's key (no evidence disclosed: the claims rest on the issuer's signature).")
    : h("p", { class: "verdict error", id: "verify-verdict" }, "Not valid: " + (checkWords[r.failed.check] || r.failed.check).toLowerCase() + " — " + r.failed.why);
  const steps = h("ol", { class: "checks", id: "verify-steps" }, r.steps.map((s) =>
    h("li", { class: s.ok ? "ok" : "bad", "data-check": s.check }, h("span", { "aria-hidden": "true" }, s.ok ? "✓ " : "✗ "),
      h("strong", {}, checkWords[s.check] || s.check), h("span", { class: "sr-only" }, s.ok ? " (passed)" : " (failed)"), ": ", s.what)));
  const facts = [];
  if (c) {
    const add = (k, v) => { if (v !== undefined && v !== null) facts.push(h("dt", {}, k), h("dd", {}, v)); };
    add("Type", typeWords[c.type] || c.type);
    if (c.type === "odometer") { add("Odometer", num(c.odometer, 3) + " km"); add("Read at", fmtTime(c.measured_at)); add("Asked for", fmtTime(c.at)); }
    if (c.type === "mileage") { add("Distance", num(c.distance, 3) + " km"); add("From", fmtTime(c.from)); add("To", fmtTime(c.to)); }
    if (c.type === "movement") { add("From", fmtTime(c.from)); add("To", fmtTime(c.to)); if (c.cells) add("H3 cells", c.cells.join(", ")); }
    if (c.type === "vin") { add("VIN", c.vin === undefined ? "not disclosed" : c.vin); add("Reported at", fmtTime(c.measured_at)); }
    add("Car", c.vehicle === undefined ? "not disclosed" : "no. " + c.vehicle);
    add("Issuer", issuer + (issuer && node && issuer === location.origin ? " (this node)" : ""));
    add("Issued", fmtTime(c.issuedAt));
    add("Expires", c.expires ? fmtTime(c.expires) : "never");
  }
  return section("Result", head, facts.length ? h("dl", { class: "facts", id: "verify-claims" }, facts) : null, steps);
}

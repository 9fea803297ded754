// A car's Credentials tab, for its owner: ask for a credential (type and dates) and download the file;
// which credentials were issued to whom (from the access log); the attestations apps made about the car,
// each with Delete.
import "./credentials.css";
import { h, act, field, section, empty, fmtTime, addr } from "./ui.js";
import * as session from "./session.js";
import { api, gql } from "./session.js";
import { app } from "./data.js";
import { WalletError } from "../wallet.js";

const typeWords = {
  odometer: "Odometer reading at a time",
  mileage: "Distance driven between two dates",
  movement: "The car moved between two dates",
  vin: "Vehicle identification number (VIN)",
};

// localInput formats a time for a datetime-local input, in the browser's time zone.
function localInput(t) {
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// requestBody makes the body of POST /v1/vehicles/{id}/credentials from the form's values.
export function requestBody(type, at, from, to) {
  const iso = (v) => new Date(v).toISOString();
  if (type === "odometer") return at ? { type, at: iso(at) } : { type };
  if (type === "mileage" || type === "movement") {
    if (!from || !to) throw new WalletError("missing_time", "");
    return { type, from: iso(from), to: iso(to) };
  }
  return { type };
}

export async function credentialsTab(ctx, id, body) {
  const typeSel = h("select", { id: "cred-type" }, Object.entries(typeWords).map(([k, w]) => h("option", { value: k }, w)));
  const now = Date.now();
  const atIn = h("input", { type: "datetime-local", id: "cred-at", value: localInput(now) });
  const fromIn = h("input", { type: "datetime-local", id: "cred-from", value: localInput(now - 7 * 86400000) });
  const toIn = h("input", { type: "datetime-local", id: "cred-to", value: localInput(now) });
  const atField = field("At", atIn, "The last odometer reading at or before this time.");
  const period = h("div", { class: "controls" }, field("From", fromIn), field("To", toIn));
  const show = () => {
    const t = typeSel.value;
    atField.hidden = t !== "odometer";
    period.hidden = t !== "mileage" && t !== "movement";
  };
  typeSel.addEventListener("change", show);
  show();
  const getBtn = h("button", { type: "submit", id: "cred-get" }, "Get the credential");
  const form = h("form", { id: "cred-form" }, field("Credential", typeSel), atField, period, getBtn,
    h("p", { class: "hint" }, "The file is an SD-JWT verifiable credential signed by this node's log key, with the device-signed records it rests on. "
      + "Anyone can check it on the ", h("a", { href: "#/verify" }, "Verify"), " page or with glovebox credential verify. "
      + "The records show every signal the device sent with them, the car's position included: give the whole file only to whom may see that."));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(getBtn, "Asking the node for the credential…", async () => {
      const req = requestBody(typeSel.value, atIn.value, fromIn.value, toIn.value);
      const s = session.current();
      const r = await fetch("/v1/vehicles/" + id + "/credentials", { method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + s.token }, body: JSON.stringify(req) });
      const text = await r.text();
      if (!r.ok) {
        let e = {};
        try { e = JSON.parse(text).error || {}; } catch { /* not JSON */ }
        throw new WalletError(e.code || "unavailable", e.message || "");
      }
      const name = "car-" + id + "-" + req.type + ".sdjwt";
      const url = URL.createObjectURL(new Blob([text], { type: "application/dc+sd-jwt" }));
      const a = h("a", { href: url, download: name, id: "cred-download" }, "Download " + name + " again");
      const last = document.getElementById("cred-last");
      if (last) { last.textContent = ""; last.append(a); }
      a.click();
      // The access log is written a moment after the answer (in batches): look again until it shows.
      const before = issuedBox.querySelectorAll("tr.cred-row").length;
      for (let i = 0; i < 20 && (await loadIssued(id, issuedBox)) <= before; i++) await new Promise((r) => setTimeout(r, 250));
      return name;
    }, (name) => "Downloaded " + name + ".");
  });
  const issuedBox = h("div", { class: "table-wrap", id: "cred-issued" }, h("p", { class: "hint" }, "Loading…"));
  const attBox = h("div", { id: "attestations" }, h("p", { class: "hint" }, "Loading…"));
  body.append(
    section("Get a credential", form, h("p", { id: "cred-last" })),
    section("Credentials issued", h("p", { class: "hint" }, "Every credential about this car, to whom it was issued and when (from the access log)."), issuedBox),
    section("Attestations", h("p", { class: "hint" }, "Statements apps with access to this car signed about it (an insurer's policy, a garage's service). Delete removes one from this node."), attBox),
  );
  await Promise.all([loadIssued(id, issuedBox), loadAttestations(ctx, id, attBox)]);
}

// loadIssued lists the credentials issued about the car and returns how many.
async function loadIssued(id, box) {
  const page = await api("/v1/vehicles/" + id + "/access?limit=500", { auth: true });
  const me = session.current().address.toLowerCase();
  const rows = (page.entries || []).filter((e) => e.query.startsWith("credential:"));
  box.textContent = "";
  if (rows.length === 0) { box.append(empty("No credential was issued about this car yet.")); return 0; }
  const who = async (caller) => caller.toLowerCase() === me ? "You" : (await app(caller)).name || caller;
  const names = await Promise.all(rows.map((e) => who(e.caller)));
  box.append(h("table", { class: "data" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Credential"), h("th", { scope: "col" }, "Issued to"), h("th", { scope: "col" }, "About"))),
    h("tbody", {}, rows.map((e, i) => h("tr", { class: "cred-row" },
      h("td", {}, fmtTime(e.time)), h("td", {}, typeWords[e.query.slice(11)] || e.query.slice(11)),
      h("td", {}, names[i], " ", names[i] === "You" ? null : addr(e.caller)),
      h("td", {}, e.from ? fmtTime(e.from) + " – " + fmtTime(e.to) : e.to ? fmtTime(e.to) : "—"))))));
  return rows.length;
}

const attestationsQuery = `query($id: Int!) { attestations(tokenId: $id, filter: {limit: 100}) { id time attestation source dataVersion producer tags } }`;

async function loadAttestations(ctx, id, box) {
  const data = await gql(attestationsQuery, { id });
  const list = data.attestations || [];
  box.textContent = "";
  if (list.length === 0) { box.append(empty("No app has attested anything about this car.")); return; }
  const apps = await Promise.all(list.map((a) => app(a.source)));
  box.append(h("ul", { class: "attestations" }, list.map((a, i) => {
    const del = h("button", { type: "button", class: "danger small", id: "attestation-delete-" + a.id }, "Delete");
    del.addEventListener("click", () => act(del, "Deleting the attestation…", async () => {
      await api("/v1/vehicles/" + id + "/attestations/" + a.source + "/" + encodeURIComponent(a.id), { method: "DELETE", auth: true });
      await loadAttestations(ctx, id, box);
    }, "Deleted."));
    let shown = a.attestation;
    try { shown = JSON.stringify(JSON.parse(a.attestation), null, 2); } catch { /* shown as sent */ }
    return h("li", { class: "attestation", "data-id": a.id },
      h("p", {}, h("strong", {}, apps[i].name || "An app"), " ", addr(a.source), " · ", fmtTime(a.time),
        a.dataVersion ? " · " + a.dataVersion : null, (a.tags || []).length ? " · " + a.tags.join(", ") : null),
      h("pre", { class: "wrap" }, shown), del);
  })));
}

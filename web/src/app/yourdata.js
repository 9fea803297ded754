// A car's "Your data" tab: take everything with you (the owner's export, GET /v1/vehicles/{id}/export,
// streamed with its progress and saved as a file) and decide how long the node keeps the car's telemetry
// (the policy of GET /v1/vehicles/{id}/retention; SetRetention and EraseData signed in the browser).
import { h, act, field, section, empty, fmtTime, num } from "./ui.js";
import * as session from "./session.js";
import { api } from "./session.js";
import { WalletError } from "../wallet.js";

// maxRetentionDays is the longest window SetRetention accepts (ledger code retention_too_long above).
const maxRetentionDays = 3650;

export async function dataTab(ctx, id, body) {
  const exportBox = exportSection(id);
  const policy = h("div", { id: "retention" }, h("p", { class: "hint" }, "Loading…"));
  const erasures = h("div", { id: "erasures", class: "erasure-box" });
  const reload = async () => {
    const r = await api("/v1/vehicles/" + id + "/retention", { auth: true });
    if (ctx.stale()) return r;
    showPolicy(policy, r);
    showErasures(erasures, r);
    return r;
  };
  body.append(
    section("Export", exportBox),
    section("Data retention", policy, retentionForm(id, reload)),
    section("Erase data", eraseForm(id, reload), erasures),
  );
  await reload();
}

// ---- export

// exportSection is the Export form: an optional period, the button, and the bytes received so far.
function exportSection(id) {
  const fromIn = h("input", { type: "date", id: "export-from" });
  const toIn = h("input", { type: "date", id: "export-to" });
  const btn = h("button", { type: "submit", class: "primary", id: "export-submit" }, "Export");
  const bar = h("progress", { id: "export-progress", class: "bar", max: 100, hidden: true, "aria-label": "Export progress" });
  const got = h("p", { class: "hint", id: "export-bytes", "aria-live": "polite" }, " ");
  const form = h("form", { class: "stack", id: "export-form" },
    h("p", {}, "One zip file with everything this node holds about the car while it was yours: the records exactly as the device signed them, ",
      "every value as CSV and NDJSON, driving events and trips, who you let see the car and who read it, the signal catalogue, and the ",
      "proofs that ", h("code", {}, "glovebox verify-export"), " checks offline. Leave the dates empty for all of it."),
    h("div", { class: "controls" }, field("From (optional)", fromIn), field("Up to and including (optional)", toIn)),
    h("div", {}, btn), bar, got);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(btn, "Preparing the export…", async (step) => {
      const q = new URLSearchParams();
      if (fromIn.value) q.set("from", dayStart(fromIn.value, 0));
      if (toIn.value) q.set("to", dayStart(toIn.value, 1));
      const qs = q.toString();
      const { name, bytes } = await download("/v1/vehicles/" + id + "/export" + (qs ? "?" + qs : ""), (n, total) => {
        bar.hidden = false;
        if (total) { bar.max = total; bar.value = n; } else bar.removeAttribute("value"); // no length: a moving bar
        got.textContent = size(n) + (total ? " of " + size(total) : "") + " received";
        step("Exporting… " + got.textContent);
      });
      bar.max = 1;
      bar.value = 1;
      got.textContent = size(bytes) + " received, saved as " + name + ".";
      got.dataset.bytes = String(bytes);
      return name;
    }, (name) => "Exported: " + name + " is in your downloads.");
  });
  return form;
}

// dayStart is the start of a date input's day (the browser's time zone) plus days, in RFC 3339.
function dayStart(value, days) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + days).toISOString();
}

// size says a number of bytes in words: 812 bytes, 3.4 MB.
export function size(n) {
  if (n < 1000) return n + (n === 1 ? " byte" : " bytes");
  if (n < 1e6) return num(n / 1e3, 1) + " kB";
  if (n < 1e9) return num(n / 1e6, 1) + " MB";
  return num(n / 1e9, 2) + " GB";
}

// download reads an authenticated route as a stream, calling progress(bytes, total) as chunks arrive
// (total is 0 when the node does not know the length yet), then saves it as the file the node names.
// The chunks are held by the browser until the file is saved.
async function download(path, progress) {
  const s = session.current();
  let r;
  try {
    r = await fetch(path, { headers: s ? { Authorization: "Bearer " + s.token } : {} });
  } catch (e) {
    throw new WalletError("unavailable", String(e));
  }
  if (!r.ok) {
    const out = await r.json().catch(() => null);
    throw new WalletError(out && out.error && out.error.code || "unavailable", out && out.error && out.error.message || "");
  }
  const total = Number(r.headers.get("Content-Length") || 0);
  const m = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
  const name = m ? m[1] : "glovebox-export.zip";
  const reader = r.body.getReader();
  const chunks = [];
  let bytes = 0;
  progress(0, total);
  for (;;) {
    let part;
    try {
      part = await reader.read();
    } catch (e) {
      throw new WalletError("export_broken", String(e));
    }
    if (part.done) break;
    chunks.push(part.value);
    bytes += part.value.length;
    progress(bytes, total);
  }
  const url = URL.createObjectURL(new Blob(chunks, { type: "application/zip" }));
  const a = h("a", { href: url, download: name, hidden: true }, name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return { name, bytes };
}

// ---- retention

// policyWords says a retention window in plain words (the consent screen says the same).
export function policyWords(days) {
  days = Number(days || 0);
  if (days === 0) return "Kept until you erase it: no time limit.";
  return "Kept for " + days + (days === 1 ? " day" : " days") + ", then deleted.";
}

// deletedWords says what a deletion removed: "1,203 records (12,030 values, 4 driving events)".
function deletedWords(d) {
  d = d || {};
  const r = d.records || 0;
  return num(r, 0) + (r === 1 ? " record" : " records") + " (" + num(d.values || 0, 0) + " values, " + num(d.events || 0, 0) + " driving events)";
}

function showPolicy(box, r) {
  box.textContent = "";
  box.append(h("div", {},
    h("p", { class: "lead", id: "retention-policy" }, h("strong", {}, policyWords(r.days))),
    h("p", { class: "meta" }, r.setAt ? "Set " + fmtTime(r.setAt) + " (signed by the owner, in the public log)." : "You have not set a limit; this is the default."),
    r.retention ? h("p", { class: "meta", id: "retention-deleted" }, "Deleted by this limit so far: " + deletedWords(r.retention) +
      (r.retention.sweptAt ? "; last applied " + fmtTime(r.retention.sweptAt) + "." : ".")) : null,
    h("p", { class: "hint" }, "The node checks every 10 minutes and deletes the car's readings, records, driving events and trips that are older than " +
      "the limit. Who read the car's data (the access log) is kept.")));
}

function showErasures(box, r) {
  box.textContent = "";
  if (!r.erasures || r.erasures.length === 0) { box.append(empty("No erasure asked for.")); return; }
  box.append(h("ul", { class: "erasures", id: "erasure-list" }, r.erasures.slice().reverse().map((e) =>
    h("li", { "data-index": String(e.index) },
      h("strong", {}, "Everything recorded before " + fmtTime(e.before)), " ",
      h("span", { class: "badge " + (e.status === "completed" ? "ok" : "") }, e.status === "completed" ? "done" : "pending"),
      h("p", { class: "meta" }, "Asked " + fmtTime(e.requestedAt) + " (log entry " + e.index + ")" +
        (e.status === "completed" ? "; done " + fmtTime(e.completedAt) : "; the node deletes it within 10 minutes") +
        ". Deleted: " + deletedWords(e.deleted) + "."),
      e.ranges.length === 0 ? h("p", { class: "meta" }, "Nothing to delete: the car was not yours before that date.") : null))));
}

// retentionForm signs a SetRetention: days 0 (no limit) to 3650.
function retentionForm(id, reload) {
  const days = h("input", { type: "number", id: "retention-days", min: 0, max: maxRetentionDays, step: 1, required: true, inputmode: "numeric", value: "0" });
  const btn = h("button", { type: "submit", class: "secondary", id: "retention-submit" }, "Set the limit");
  const form = h("form", { class: "stack", id: "retention-form" },
    h("div", { class: "controls" }, field("Keep the data for (days)", days, "0 keeps it until you erase it; at most " + maxRetentionDays + " (ten years).")),
    h("div", {}, btn));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(btn, "Setting the limit…", async (step) => {
      const n = Number(days.value);
      if (!Number.isInteger(n) || n < 0) throw new WalletError("invalid_field", "");
      if (n > maxRetentionDays) throw new WalletError("retention_too_long", "");
      await session.submit("SetRetention", { vehicleId: id, days: n }, [], step);
      await reload();
      return n;
    }, (n) => "Saved: " + policyWords(n));
  });
  return form;
}

// eraseForm signs an EraseData of what was recorded, while the car was the owner's, before a time.
function eraseForm(id, reload) {
  const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const before = h("input", { type: "datetime-local", id: "erase-before", required: true, value: local(Date.now()) });
  const sure = h("input", { type: "checkbox", id: "erase-sure", required: true });
  const btn = h("button", { type: "submit", class: "danger", id: "erase-submit" }, "Erase");
  const form = h("form", { class: "stack", id: "erase-form" },
    h("p", {}, "Erase the car's readings, records, driving events and trips recorded while it was yours, before a time of your choosing. ",
      "Your export, made before, keeps them."),
    h("div", { class: "controls" }, field("Recorded before", before)),
    h("label", { class: "check" }, sure, " I understand that the node deletes this data for good."),
    h("div", {}, btn));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(btn, "Erasing…", async (step) => {
      const t = new Date(before.value).getTime();
      if (!(t > 0)) throw new WalletError("invalid_field", "");
      // Not after now: the node refuses a time to come (before_in_future).
      const secs = Math.floor(Math.min(t, Date.now() - 2000) / 1000);
      await session.submit("EraseData", { vehicleId: id, before: secs }, [], step);
      sure.checked = false;
      await reload();
    }, "Erasure recorded: the node deletes the data within 10 minutes.");
  });
  return form;
}

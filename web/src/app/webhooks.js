// The developer console's webhooks: for an app the signed-in developer owns (or the app itself), list its
// webhooks, register one (its signing secret shown once), edit, pause, delete, send a test event, and read
// the delivery log with a retry of one delivery. It speaks the REST API of docs/webhooks.md with the
// session's bearer token; an API error is shown with its stable code and the field at fault.
import { h, say, field, empty, copyButton, fmtTime } from "./ui.js";
import * as session from "./session.js";
import { signalCatalogue } from "./data.js";
import { WalletError } from "../wallet.js";

const eventNames = ["behavior.harshBraking", "behavior.harshAcceleration", "behavior.harshCornering", "behavior.extremeBraking",
  "safety.collision", "security.engineBlock", "security.engineUnblock"];
const kinds = [["signal", "A signal meets a condition"], ["event", "A driving event"], ["trip", "A trip starts or ends"],
  ["connectivity", "A car goes offline or comes back"], ["grant", "A grant on a car changes"]];

// APIError is an error answer of the webhooks API: its code, message and the field at fault.
class APIError extends WalletError {
  constructor(code, message, fieldName) {
    super(code, message);
    this.field = fieldName || "";
  }
}

// call sends one request to the app's webhooks API and returns the JSON answer (null for 204).
async function call(app, path, method = "GET", body) {
  const s = session.current();
  const headers = { Authorization: "Bearer " + (s ? s.token : "") };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch("/v1/apps/" + app + "/webhooks" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new APIError("unavailable", String(e));
  }
  if (r.status === 204) return null;
  const out = await r.json().catch(() => null);
  if (!r.ok) {
    const e = out && out.error || {};
    throw new APIError(e.code || "unavailable", e.message || "HTTP " + r.status, e.field);
  }
  return out;
}

// problem is the words of an API error, with its code (and field) as the API gave them.
function problem(e) {
  return (e.message || "Something went wrong") + " (" + (e.code || "error") + (e.field ? ", field " + e.field : "") + ")";
}

// run runs an action started by a button, as ui.js's act does, but an API error is shown with its code
// and field, on the status line and in the panel's own alert box.
async function run(button, box, progress, fn, done) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  say(progress, "busy");
  box.textContent = "";
  try {
    const out = await fn((text) => say(text, "busy"));
    say(typeof done === "function" ? done(out) : done, "ok");
    return out;
  } catch (e) {
    box.append(h("p", { class: "notice warning", role: "alert" }, problem(e)));
    say(problem(e), "error");
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// webhooksPanel is the Webhooks section of an app's card.
export function webhooksPanel(app) {
  const id = (s) => s + "-" + app;
  const list = h("div", { id: id("webhooks"), "aria-live": "polite" });
  const errors = h("div", { id: id("webhook-errors") });
  let timer = 0;
  const reload = async () => {
    clearTimeout(timer);
    const out = await call(app, "");
    list.textContent = "";
    list.append(h("button", { type: "button", class: "small", id: id("webhooks-refresh"), onclick: () => reload().catch(() => {}) }, "Refresh"));
    if (!out.webhooks || out.webhooks.length === 0) { list.append(empty("No webhooks yet.")); return; }
    // The node verifies a new endpoint within seconds: look again while one is pending.
    if (out.webhooks.some((w) => w.status === "pending_verification") && document.body.contains(list)) {
      timer = setTimeout(() => reload().catch(() => {}), 2000);
    }
    list.append(h("div", { class: "table-wrap" }, h("table", { class: "table stacked", id: id("webhook-table") },
      h("caption", { class: "sr-only" }, "The app's webhooks"),
      h("thead", {}, h("tr", {}, ["Status", "Trigger", "URL", ""].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, out.webhooks.map((w) => webhookRow(app, w, reload, errors))))));
  };
  const details = h("details", { id: id("webhooks-panel") }, h("summary", {}, "Webhooks"),
    h("p", {}, "The node POSTs signed CloudEvents (Standard Webhooks) to your endpoint when something happens: see docs/webhooks.md."),
    list, errors, createForm(app, reload));
  let loaded = false;
  details.addEventListener("toggle", () => {
    if (!details.open || loaded) return;
    loaded = true;
    list.append(h("p", { class: "hint" }, "Loading the webhooks…"));
    reload().catch((e) => { list.textContent = ""; list.append(h("p", { class: "notice warning", role: "alert" }, problem(e))); });
  });
  return details;
}

function triggerText(t) {
  switch (t.kind) {
    case "signal": return t.signal + " when " + t.condition + (t.cooldownSeconds ? ", at most every " + t.cooldownSeconds + " s" : "");
    case "event": return "driving event " + t.name;
    case "trip": return "trips started and ended";
    case "connectivity": return "offline after " + (t.silenceSeconds || 300) + " s of silence, and back online";
    case "grant": return "grant changes";
    default: return t.kind;
  }
}

function statusText(w) {
  return w.status.replace("_", " ") + (w.statusReason ? ": " + w.statusReason : "");
}

function webhookRow(app, w, reload, errors) {
  const id = (s) => s + "-" + w.id;
  const test = h("button", { type: "button", class: "small", id: id("wh-test") }, "Send a test event");
  test.addEventListener("click", () => run(test, errors, "Sending a test event…", () => call(app, "/" + w.id + "/test", "POST"),
    (d) => "Queued test event " + d.id + "."));
  const del = h("button", { type: "button", class: "small", id: id("wh-delete") }, "Delete");
  del.addEventListener("click", () => {
    // The first click asks, the second deletes (pending deliveries are dropped with the webhook).
    if (del.dataset.armed !== "1") {
      del.dataset.armed = "1";
      del.textContent = "Delete it and drop its pending deliveries";
      return;
    }
    run(del, errors, "Deleting the webhook…", async () => { await call(app, "/" + w.id, "DELETE"); await reload(); }, "Deleted the webhook.");
  });
  const pause = h("button", { type: "button", class: "small", id: id("wh-toggle") }, w.status === "active" || w.status === "pending_verification" ? "Pause" : "Enable");
  pause.addEventListener("click", () => {
    const status = pause.textContent === "Pause" ? "disabled" : "active";
    run(pause, errors, status === "active" ? "Enabling (a new verification)…" : "Pausing…", async () => {
      await call(app, "/" + w.id, "PATCH", { status });
      await reload();
    }, status === "active" ? "Enabled: the endpoint is verified again." : "Paused.");
  });
  const log = h("details", { id: id("wh-log") }, h("summary", {}, "Delivery log"));
  const logBody = h("div", {});
  log.append(logBody);
  const refresh = () => deliveryLog(app, w, logBody, errors);
  log.addEventListener("toggle", () => { if (log.open) refresh(); });
  const edit = h("details", { id: id("wh-edit") }, h("summary", {}, "Edit"), editForm(app, w, reload, errors));
  return [h("tr", { "data-webhook": w.id },
    h("td", { "data-label": "Status" }, h("span", { class: "badge" + (w.status === "active" ? " ok" : w.status === "pending_verification" ? "" : " bad"), id: id("wh-status") }, statusText(w))),
    h("td", { "data-label": "Trigger" }, h("code", {}, triggerText(w.trigger)),
      w.description ? h("div", { class: "hint" }, w.description) : null,
      h("div", { class: "hint" }, Array.isArray(w.vehicles) ? "cars " + w.vehicles.join(", ") : "every car granted")),
    h("td", { "data-label": "URL" }, h("code", { class: "url" }, w.url), h("div", { class: "hint" }, w.id)),
    h("td", {}, h("div", { class: "row" }, test, pause, del))),
  // The edit form and the delivery log take the table's whole width, under the webhook's row.
  h("tr", { "data-webhook-detail": w.id }, h("td", { colspan: 4 }, edit, log))];
}

async function deliveryLog(app, w, box, errors) {
  box.textContent = "";
  box.append(h("p", { class: "hint" }, "Loading the deliveries…"));
  let out;
  try {
    out = await call(app, "/" + w.id + "/deliveries?limit=50");
  } catch (e) {
    box.textContent = "";
    box.append(h("p", { class: "notice warning", role: "alert" }, problem(e)));
    return;
  }
  const again = h("button", { type: "button", class: "small", id: "wh-log-refresh-" + w.id, onclick: () => deliveryLog(app, w, box, errors) }, "Refresh");
  box.textContent = "";
  if (!out.deliveries || out.deliveries.length === 0) { box.append(empty("No deliveries yet."), again); return; }
  box.append(h("div", { class: "table-wrap" }, h("table", { class: "table stacked", id: "wh-deliveries-" + w.id },
    h("caption", { class: "sr-only" }, "Deliveries, newest first"),
    h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Response", "Created", ""].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, out.deliveries.map((d) => {
      const retry = d.status === "pending" ? null : h("button", { type: "button", class: "small", id: "wh-retry-" + d.id }, "Retry");
      if (retry) {
        retry.addEventListener("click", () => run(retry, errors, "Retrying the delivery…", async () => {
          await call(app, "/" + w.id + "/deliveries/" + d.id + "/retry", "POST");
          await deliveryLog(app, w, box, errors);
        }, "The delivery is pending again, with the same id."));
      }
      return h("tr", { "data-delivery": d.id, "data-status": d.status },
        h("td", { "data-label": "Event" }, h("code", {}, d.type), h("div", { class: "hint" }, d.id + (d.vehicleId ? " · car " + d.vehicleId : ""))),
        h("td", { "data-label": "Status" }, d.status, d.lastError ? h("div", { class: "hint" }, d.lastError) : null),
        h("td", { "data-label": "Attempts", class: "num" }, String(d.attempts)),
        h("td", { "data-label": "Response", class: "num" }, d.lastResponseCode ? String(d.lastResponseCode) : "—"),
        h("td", { "data-label": "Created" }, fmtTime(d.createdAt)),
        h("td", {}, retry));
    })))), again);
}

// triggerFields is the trigger part of the create and edit forms: a kind and the kind's fields.
function triggerFields(prefix, t) {
  const kind = h("select", { id: prefix + "-kind" }, kinds.map(([k, words]) => h("option", { value: k, selected: t.kind === k }, words)));
  const signal = h("input", { id: prefix + "-signal", list: "webhook-signals", value: t.signal || "", spellcheck: false, autocomplete: "off", placeholder: "speed" });
  const condition = h("input", { id: prefix + "-condition", value: t.condition || "", spellcheck: false, autocomplete: "off", placeholder: "value > 120.0 && previousValue <= 120.0" });
  const cooldown = h("input", { id: prefix + "-cooldown", type: "number", min: 0, max: 604800, value: String(t.cooldownSeconds || 0) });
  const event = h("select", { id: prefix + "-event" }, eventNames.map((n) => h("option", { value: n, selected: t.name === n }, n)));
  const silence = h("input", { id: prefix + "-silence", type: "number", min: 10, max: 604800, value: String(t.silenceSeconds || 300) });
  const groups = {
    signal: h("div", { class: "stack" }, field("Signal", signal, "A catalogue name (GET /v1/signals)."),
      field("Condition (CEL over value and previousValue)", condition, "For example value > 120.0 && previousValue <= 120.0: fires when the speed passes 120."),
      field("Cooldown in seconds", cooldown, "At most one firing per car in this time.")),
    event: field("Driving event", event),
    connectivity: field("Silence before a car is offline, in seconds", silence),
  };
  const show = () => { for (const [k, g] of Object.entries(groups)) g.hidden = kind.value !== k; };
  kind.addEventListener("change", show);
  show();
  const value = () => {
    switch (kind.value) {
      case "signal": return { kind: "signal", signal: signal.value.trim(), condition: condition.value.trim(), cooldownSeconds: Number(cooldown.value) || 0 };
      case "event": return { kind: "event", name: event.value };
      case "connectivity": return { kind: "connectivity", silenceSeconds: Number(silence.value) || 0 };
      default: return { kind: kind.value };
    }
  };
  return { node: h("div", { class: "stack" }, field("Trigger", kind), ...Object.values(groups)), value };
}

// vehiclesField is the vehicles part of the forms: every car granted, or a list of car ids.
function vehiclesField(prefix, vehicles) {
  const all = h("input", { type: "radio", name: prefix + "-vehicles", id: prefix + "-all", checked: !Array.isArray(vehicles) });
  const some = h("input", { type: "radio", name: prefix + "-vehicles", id: prefix + "-some", checked: Array.isArray(vehicles) });
  const ids = h("input", { id: prefix + "-ids", value: Array.isArray(vehicles) ? vehicles.join(", ") : "", placeholder: "1, 2", autocomplete: "off" });
  const node = h("fieldset", {}, h("legend", {}, "Cars"),
    h("label", { class: "check" }, all, " Every car that granted the app access"),
    h("label", { class: "check" }, some, " These cars:"), field("Car ids, separated by commas", ids));
  ids.addEventListener("input", () => { some.checked = true; });
  const value = () => all.checked ? "all-granted" : ids.value.split(/[\s,]+/).filter(Boolean).map(Number);
  return { node, value };
}

function createForm(app, reload) {
  const p = "wh-new-" + app;
  const url = h("input", { id: p + "-url", type: "url", required: true, autocomplete: "off", placeholder: "https://your.app/webhooks" });
  const description = h("input", { id: p + "-description", maxlength: 256, autocomplete: "off" });
  const vehicles = vehiclesField(p, "all-granted");
  const trigger = triggerFields(p, { kind: "signal" });
  const submit = h("button", { type: "submit", class: "primary", id: p + "-submit" }, "Register the webhook");
  const result = h("div", { id: p + "-result", "aria-live": "polite" });
  const signals = h("datalist", { id: "webhook-signals" });
  signalCatalogue().then((cat) => { for (const name of cat.keys()) signals.append(h("option", { value: name })); }).catch(() => {});
  const form = h("form", { class: "stack", id: p }, h("h3", {}, "Register a webhook"),
    field("Endpoint URL", url, "https:// only, unless the node's operator allows plain HTTP. It must answer the verification challenge."),
    field("Description", description), vehicles.node, trigger.node, signals, submit, result);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(submit, result, "Registering the webhook…", async () => {
      const w = await call(app, "", "POST", { url: url.value.trim(), description: description.value, vehicles: vehicles.value(), trigger: trigger.value() });
      result.append(h("div", { class: "notice ok" },
        h("p", {}, "Registered webhook ", h("code", { id: p + "-id" }, w.id), ". Its signing secret, shown only now:"),
        h("p", {}, h("code", { class: "secret", id: p + "-secret" }, w.secret), " ", copyButton(w.secret, "Copy the secret")),
        h("p", { class: "hint" }, "Verify each delivery's webhook-signature with it (any Standard Webhooks library does).")));
      url.value = "";
      description.value = "";
      await reload();
      return w;
    }, (w) => w ? "Registered: the node is verifying the endpoint." : "");
  });
  return form;
}

function editForm(app, w, reload, errors) {
  const p = "wh-edit-" + w.id;
  const url = h("input", { id: p + "-url", type: "url", required: true, value: w.url, autocomplete: "off" });
  const description = h("input", { id: p + "-description", maxlength: 256, value: w.description || "", autocomplete: "off" });
  const vehicles = vehiclesField(p, w.vehicles);
  const trigger = triggerFields(p, w.trigger);
  const save = h("button", { type: "submit", class: "primary", id: p + "-save" }, "Save the webhook");
  const form = h("form", { class: "stack", id: p }, field("Endpoint URL", url, "A new URL is verified again."), field("Description", description),
    vehicles.node, trigger.node, save);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(save, errors, "Saving the webhook…", async () => {
      await call(app, "/" + w.id, "PATCH", { url: url.value.trim(), description: description.value, vehicles: vehicles.value(), trigger: trigger.value() });
      await reload();
    }, "Saved the webhook.");
  });
  return form;
}

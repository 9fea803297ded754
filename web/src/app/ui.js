// Small DOM helpers shared by the views: an element builder, the status line, progress on buttons, and
// the formatting of times, addresses and values.
import { errorText } from "../wallet.js";

// h builds an element: h("button", {class: "primary", onclick: f}, "Save"). Attributes named on… are
// listeners; false, null and undefined attributes and children are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v; // through the CSSOM, which the page's CSP allows
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const $ = (id) => document.getElementById(id);

// say shows a message on the status line (read out by screen readers): kind is "", "busy", "ok" or
// "error".
export function say(text, kind = "") {
  const s = $("status");
  if (!s) return;
  s.dataset.at = String(Date.now());
  s.textContent = text;
  s.className = "status" + (kind ? " " + kind : "");
  s.hidden = !text;
  // Success fades after a while; progress and errors stay until the next message.
  clearTimeout(sayTimer);
  if (kind === "ok") sayTimer = setTimeout(() => { if (s.textContent === text) say(""); }, 8000);
}

let sayTimer = 0;

// clearStale clears the status line on navigation, unless it was just set (a success message that
// comes with the navigation it caused).
export function clearStale() {
  const s = $("status");
  if (s && Date.now() - Number(s.dataset.at || 0) > 1500) say("");
}

// act runs an action started by a button: the button is disabled and marked busy while it runs, the
// status line says what is happening, then the success message or the error in words. It returns the
// action's result, or undefined after an error.
export async function act(button, progress, fn, done) {
  if (button && button.disabled) return undefined;
  const buttons = button ? [button] : [];
  for (const b of buttons) { b.disabled = true; b.setAttribute("aria-busy", "true"); }
  say(progress, "busy");
  try {
    const out = await fn((text) => say(text, "busy"));
    if (done) say(typeof done === "function" ? done(out) : done, "ok");
    else say("");
    return out;
  } catch (e) {
    console.error(e);
    say(errorText(e), "error");
    return undefined;
  } finally {
    for (const b of buttons) { b.disabled = false; b.removeAttribute("aria-busy"); }
  }
}

// shortAddr shortens an address for display: 0x1234…abcd (the whole address is in the title).
export function shortAddr(a) {
  return a ? a.slice(0, 6) + "…" + a.slice(-4) : "";
}

export function addr(a) {
  return h("span", { class: "addr", title: a }, shortAddr(a));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

export function fmtTime(t) {
  if (t === null || t === undefined || t === "") return "—";
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) ? "—" : dateTime.format(d);
}

export function fmtDate(t) {
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) ? "—" : dateOnly.format(d);
}

// ago says how long ago t was, in words.
export function ago(t) {
  if (!t) return "never";
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 90) return s + " seconds ago";
  if (s < 5400) return Math.round(s / 60) + " minutes ago";
  if (s < 129600) return Math.round(s / 3600) + " hours ago";
  return Math.round(s / 86400) + " days ago";
}

// isLive reports whether data arrived within the last two minutes.
export function isLive(t) {
  return !!t && Date.now() - new Date(t).getTime() < 120000;
}

export function num(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits });
}

// copyButton copies text to the clipboard and says so.
export function copyButton(text, label = "Copy") {
  const b = h("button", { type: "button", class: "small" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
      say("Copied.", "ok");
    } catch (e) {
      say("Couldn't copy: select the text and copy it yourself.", "error");
    }
  });
  return b;
}

// field is a labelled form control.
export function field(label, control, hint) {
  const id = control.id || "f-" + Math.random().toString(36).slice(2);
  control.id = id;
  const hintEl = hint ? h("small", { id: id + "-hint", class: "hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", id + "-hint");
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

export function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

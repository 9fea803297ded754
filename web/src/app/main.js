// The owner's and developer's web app, served at / by the node: sign in, cars, a car's data and who can
// see it, apps for developers, and the public log checked in the browser. Navigation is in the URL
// fragment (#/vehicles/3/sharing), so every view has an address and the back button works.
import "leaflet/dist/leaflet.css";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { h, say, clearStale } from "./ui.js";
import * as session from "./session.js";
import { errorText } from "../wallet.js";
import { signInView } from "./signin.js";
import { vehiclesView } from "./vehicles.js";
import { vehicleView } from "./vehicle.js";
import { developerView } from "./developer.js";
import { logView } from "./explorer.js";
import { verifyView } from "./verify.js";

const view = document.getElementById("view");
let generation = 0; // a view started before the latest navigation must not draw

function renderWho() {
  const who = document.getElementById("who");
  who.textContent = "";
  const s = session.current();
  if (!s) return;
  who.append(
    h("span", { class: "addr", title: s.address }, "Signed in: " + s.address.slice(0, 6) + "…" + s.address.slice(-4)),
    h("button", { type: "button", class: "small", onclick: () => { session.signOut(); say("Signed out.", "ok"); location.hash = "#/"; } }, "Sign out"),
  );
}

const routes = [
  [/^\/$/, "vehicles", () => vehiclesView],
  [/^\/vehicles\/(\d+)(?:\/(sharing|devices|data|credentials))?$/, "vehicles", (m) => (ctx) => vehicleView(ctx, Number(m[1]), m[2] || "overview")],
  [/^\/developer$/, "developer", () => developerView],
  [/^\/verify$/, "verify", () => verifyView],
  [/^\/log(?:\/(\d+))?$/, "log", (m) => (ctx) => logView(ctx, m[1] === undefined ? null : Number(m[1]))],
];

async function route() {
  const gen = ++generation;
  const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
  let found = null;
  let nav = "";
  for (const [re, name, make] of routes) {
    const m = re.exec(path);
    if (m) { found = make(m); nav = name; break; }
  }
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  let drawn = false;
  const ctx = {
    stale: () => gen !== generation,
    // draw replaces the view's content unless a newer navigation happened.
    draw: (...nodes) => { if (gen === generation) { drawn = true; view.textContent = ""; view.append(...nodes.filter(Boolean)); } },
    reload: () => route(),
  };
  if (!found) {
    ctx.draw(...notFound("There is no page at " + location.hash + "."));
    return;
  }
  const needsSignIn = nav === "vehicles" || nav === "developer";
  if (needsSignIn && !session.current()) {
    ctx.draw(signInView(nav === "developer" ? "Sign in with the key that owns (or will own) your apps." : null, () => route()));
    return;
  }
  try {
    await found(ctx);
  } catch (e) {
    if (gen !== generation) return;
    if (notFoundCodes.has(e.code)) {
      // A car or entry that does not exist: a page that says so, never the previous page.
      ctx.draw(...notFound(errorText(e)));
      return;
    }
    console.error(e);
    say(errorText(e), "error");
    if (!drawn) ctx.draw(h("h1", { id: "error-page" }, "This page could not be shown"), h("p", {}, errorText(e)),
      h("p", {}, h("button", { type: "button", class: "secondary", onclick: () => route() }, "Try again"), " ", h("a", { href: "#/" }, "Back to your cars")));
  }
}

const notFoundCodes = new Set(["unknown_vehicle", "not_found", "unknown_app", "unknown_device"]);

// notFound is the page for an address that shows nothing: what is missing, and the ways on.
function notFound(why) {
  return [h("h1", { id: "not-found" }, "Not found"), h("p", { class: "lead" }, why),
    h("ul", {}, h("li", {}, h("a", { href: "#/" }, "Your cars")), h("li", {}, h("a", { href: "#/log" }, "The public log")))];
}

let lastPath = null;
window.addEventListener("hashchange", () => {
  const path = location.hash;
  if (path !== lastPath) {
    lastPath = path;
    clearStale();
    route().then(() => view.focus({ preventScroll: true }));
  }
});
session.onChange(renderWho);
renderWho();
lastPath = location.hash;
route();

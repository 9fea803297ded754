// My cars: each with its make, model and year, devices, last seen, key values and a live badge; and
// the form to register a car.
import { h, act, field, section, empty, ago, isLive, num } from "./ui.js";
import * as session from "./session.js";
import { lockedNotice } from "./signin.js";
import { account, vehicle, keyValues, carName } from "./data.js";

export async function vehiclesView(ctx) {
  const me = session.current();
  const list = h("ul", { class: "cars", id: "cars", "aria-busy": "true" });
  // Placeholders keep the layout still while the cars load.
  for (let i = 0; i < 2; i++) list.append(h("li", { class: "car-card placeholder", "aria-hidden": "true" }));
  ctx.draw(
    h("div", { class: "head" }, h("h1", {}, "My cars"), h("a", { class: "button secondary", href: "#register" }, "Register a car")),
    lockedNotice(ctx.reload),
    list,
    registerForm(ctx),
  );
  const acc = await account(me.address);
  if (ctx.stale()) return;
  list.textContent = "";
  list.removeAttribute("aria-busy");
  if (!acc.vehicles || acc.vehicles.length === 0) {
    list.replaceWith(empty("No cars yet. Register your car below, then pair its device."));
    return;
  }
  const cards = new Map();
  await Promise.all(acc.vehicles.map(async (id) => {
    const li = h("li", { class: "car-card" });
    list.append(li);
    const [v, kv] = await Promise.all([vehicle(id), keyValues(id).catch(() => ({}))]);
    cards.set(id, { li, v });
    fillCard(li, id, v, kv);
  }));
  // Keep the cars in id order whatever order they loaded in.
  [...cards.keys()].sort((a, b) => a - b).forEach((id) => list.append(cards.get(id).li));
  // While the page is shown, the key values and the live badges follow the data (same size: no shift).
  const timer = setInterval(() => {
    if (ctx.stale()) { clearInterval(timer); return; }
    for (const [id, c] of cards) keyValues(id).then((kv) => { if (!ctx.stale()) fillCard(c.li, id, c.v, kv); }, () => {});
  }, 15000);
}

function fillCard(li, id, v, kv) {
  const live = isLive(kv.lastSeen);
  const focused = document.activeElement && li.contains(document.activeElement);
  li.textContent = "";
  li.append(h("a", { href: "#/vehicles/" + id, class: "car-link", id: "car-" + id },
    h("div", { class: "car-title" },
      h("h2", {}, carName(v)),
      live ? h("span", { class: "badge live", title: "Data arrived in the last two minutes" }, "Live") : h("span", { class: "badge" }, "Offline")),
    h("p", { class: "meta" }, "Car no. " + id + " · " + (v.devices && v.devices.length ? v.devices.length + " device" + (v.devices.length > 1 ? "s" : "") + " paired" : "no device paired") +
      " · last seen " + ago(kv.lastSeen)),
    h("dl", { class: "kv" },
      h("div", {}, h("dt", {}, "Speed"), h("dd", {}, kv.speed === null || kv.speed === undefined ? "—" : num(kv.speed, 0) + " km/h")),
      h("div", {}, h("dt", {}, kv.energyName || "Fuel"), h("dd", {}, kv.energy === null || kv.energy === undefined ? "—" : num(kv.energy, 0) + " %")),
      h("div", {}, h("dt", {}, "Odometer"), h("dd", {}, kv.odometer === null || kv.odometer === undefined ? "—" : num(kv.odometer, 0) + " km")))));
  if (focused) li.querySelector("a").focus();
}

function registerForm(ctx) {
  const make = h("input", { id: "reg-make", required: true, maxlength: 64, autocomplete: "off" });
  const model = h("input", { id: "reg-model", required: true, maxlength: 64, autocomplete: "off" });
  const year = h("input", { id: "reg-year", type: "number", required: true, min: 1886, max: new Date().getFullYear() + 2, inputmode: "numeric" });
  const submit = h("button", { type: "submit", class: "primary", id: "reg-submit" }, "Register the car");
  const form = h("form", { class: "stack", id: "register" },
    h("div", { class: "row3" }, field("Make", make), field("Model", model), field("Year", year)),
    h("p", { class: "hint" }, "You sign a RegisterVehicle entry with your key; it goes into the public log. The VIN is never asked for."),
    submit);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(submit, "Preparing…", async (step) => {
      const me = session.current();
      const rc = await session.submit("RegisterVehicle", { owner: me.address, make: make.value.trim(), model: model.value.trim(), year: Number(year.value) }, [], step);
      return rc.result.vehicleId;
    }, (id) => "Registered: your car is no. " + id + ". Now pair its device.").then((id) => {
      if (id) location.hash = "#/vehicles/" + id + "/devices";
    });
  });
  return section("Register a car", form);
}


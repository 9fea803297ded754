// Reads shared by the views: the signal catalogue, cars, apps and the words for permissions.
import { api, gql } from "./session.js";

let catalogue = null;

// signalCatalogue maps each signal name to {name, type, unit, permission, …} (GET /v1/signals).
export async function signalCatalogue() {
  if (!catalogue) {
    const list = await api("/v1/signals");
    catalogue = new Map((list.signals || list).map((s) => [s.name, s]));
  }
  return catalogue;
}

const apps = new Map();

// app reads an app (name, owner, redirect URIs) once per page load.
export async function app(address) {
  const k = address.toLowerCase();
  if (!apps.has(k)) apps.set(k, api("/v1/apps/" + address).catch(() => ({ address, name: "Unknown app" })));
  return apps.get(k);
}

export function forgetApp(address) { apps.delete(address.toLowerCase()); }

export const vehicle = (id) => api("/v1/vehicles/" + id);
export const account = (a) => api("/v1/accounts/" + a);

export function carName(v) {
  return [v.make, v.model].filter(Boolean).join(" ") + (v.year ? " (" + v.year + ")" : "");
}

// Permissions in plain words (the consent screen's words).
export const permissionWords = {
  signals: ["Car readings", "speed, fuel or battery level, mileage and other readings, now and in the past; not where it is"],
  "location:approximate": ["Approximate location", "which neighbourhood (about 36 km²), never the exact spot"],
  location: ["Exact location", "exactly where the car is and has been"],
  raw: ["Original signed records", "everything the device recorded, exact locations included"],
  credentials: ["Certified facts", "such as the VIN or the mileage"],
  insights: ["Trip summaries", "distances and driving style, without routes"],
  stream: ["Live updates", "data as it arrives"],
  commands: ["Control the car", "lock, unlock …"],
};

export function permissionTitle(p) {
  return (permissionWords[p] || [p])[0];
}

const latestQuery = `query($id: Int!) { signalsLatest(tokenId: $id) { lastSeen
  speed { value } powertrainTransmissionTravelledDistance { value }
  powertrainFuelSystemRelativeLevel { value } powertrainTractionBatteryStateOfChargeCurrent { value } } }`;

// keyValues reads a car's last seen time, speed, fuel or charge and odometer.
export async function keyValues(id) {
  const { data } = await gql(latestQuery, { id }, true);
  const l = data && data.signalsLatest || {};
  const v = (f) => l[f] ? l[f].value : null;
  const soc = v("powertrainTractionBatteryStateOfChargeCurrent");
  return {
    lastSeen: l.lastSeen || null,
    speed: v("speed"),
    energy: soc !== null ? soc : v("powertrainFuelSystemRelativeLevel"),
    energyName: soc !== null ? "Charge" : "Fuel",
    odometer: v("powertrainTransmissionTravelledDistance"),
  };
}

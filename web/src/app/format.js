// Signals for people: a name that says what the signal is, its unit as a symbol, and its value in words
// where it is a list or an enum. Pure functions of the catalogue entry (GET /v1/signals), so that the
// latest values, the chart and the key values say the same.

// Units as the catalogue spells them → the symbols people read.
const unitSymbols = {
  percent: "%",
  celsius: "°C",
  degrees: "°",
  "degrees/s": "°/s",
  l: "L",
  "l/h": "L/h",
};

export function unitSymbol(unit) {
  if (!unit) return "";
  return unitSymbols[unit] || unit;
}

// withUnit writes a formatted number and its unit: "12 %", "21.5 °C", "50 km/h".
export function withUnit(text, unit) {
  const u = unitSymbol(unit);
  return u ? text + "\u00a0" + u : text;
}

// Signals whose VSS leaf alone would be misread (two rows saying "Speed"): their own names.
const names = {
  powertrainCombustionEngineSpeed: "Engine speed",
  powertrainCombustionEngineECT: "Engine coolant temperature",
  powertrainCombustionEngineEOT: "Engine oil temperature",
  powertrainCombustionEngineTPS: "Throttle position",
  powertrainCombustionEngineMAF: "Mass air flow",
  powertrainTransmissionTravelledDistance: "Odometer",
  powertrainRange: "Range",
  exteriorAirTemperature: "Outside temperature",
};

const acronyms = new Set(["OBD", "ECT", "EOT", "MAF", "TPS", "DTC", "VIN", "ABS"]);

// words splits a VSS path segment into words: TravelledDistance → Travelled distance, Row1 → Row 1.
export function words(seg) {
  if (acronyms.has(seg.toUpperCase())) return seg.toUpperCase();
  const w = seg.replace(/([a-z])([A-Z0-9])/g, "$1 $2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2").split(" ")
    .map((x, i) => acronyms.has(x.toUpperCase()) ? x.toUpperCase() : i === 0 ? x.charAt(0).toUpperCase() + x.slice(1).toLowerCase() : x.toLowerCase());
  return w.join(" ");
}

// signalParts names a signal: [its name, where it is in the car]. The name is the signal's own (names)
// or its VSS leaf in words; the place is the rest of the path without the leading Vehicle.
export function signalParts(name, s) {
  if (!s || !s.vssPath) return [names[name] || name, ""];
  const parts = s.vssPath.split(".").slice(1).map(words);
  const leaf = parts.pop();
  return [names[name] || leaf, parts.join(" › ")];
}

// signalLabel is the signal's name with its place: "Engine speed (Powertrain › Combustion engine)".
export function signalLabel(name, s) {
  const [n, where] = signalParts(name, s);
  return where ? n + " (" + where + ")" : n;
}

// enumWords writes an enum constant in words: ELECTRIC → Electric, PLUG_IN_HYBRID → Plug-in hybrid.
export function enumWords(v) {
  if (!/^[A-Z]+(_[A-Z]+)*$/.test(v)) return v; // not codes or identifiers with digits (P0300, a VIN)
  const w = v.toLowerCase().replace(/_/g, " ").replace(/\bplug in\b/, "plug-in");
  return w.charAt(0).toUpperCase() + w.slice(1);
}

// stringValue writes a string or string-list signal's value for people: a JSON list as its items in
// words, separated by commas ("none" when empty), an enum constant in words, other text as it is.
export function stringValue(v, type) {
  if (v === null || v === undefined) return "—";
  if (type === "string[]" || (v.startsWith("[") && v.endsWith("]"))) {
    let items;
    try { items = JSON.parse(v); } catch (e) { return v; }
    if (!Array.isArray(items)) return v;
    return items.length === 0 ? "none" : items.map((x) => enumWords(String(x))).join(", ");
  }
  return enumWords(v);
}

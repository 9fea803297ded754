// One car, in four tabs: overview (key values, map of recent trips, a chart of any signal, the latest
// values, daily distance), sharing (who can see the car, revoke, the access log), devices (pair,
// unpair, transfer) and your data (export, retention, erasure: yourdata.js).
import { verifyTypedData } from "ethers";
import { h, act, field, section, empty, fmtTime, fmtDate, ago, isLive, num, addr } from "./ui.js";
import * as session from "./session.js";
import { lockedNotice } from "./signin.js";
import { api, gql } from "./session.js";
import { vehicle, keyValues, carName, app, signalCatalogue, permissionWords, permissionTitle } from "./data.js";
import { drawMap, splitTrips } from "./map.js";
import { drawChart } from "./chart.js";
import { WalletError } from "../wallet.js";
import { signalLabel, signalParts, stringValue, unitSymbol } from "./format.js";
import { dataTab } from "./yourdata.js";
import { credentialsTab } from "./credentials.js";

const tabs = [["overview", "Overview", ""], ["sharing", "Sharing", "/sharing"], ["devices", "Devices", "/devices"], ["credentials", "Credentials", "/credentials"], ["data", "Your data", "/data"]];

export async function vehicleView(ctx, id, tab) {
  const v = await vehicle(id);
  if (ctx.stale()) return;
  const me = session.current();
  const mine = v.owner.toLowerCase() === me.address.toLowerCase();
  const head = h("div", { class: "head" },
    h("div", {}, h("p", { class: "crumb" }, h("a", { href: "#/" }, "My cars"), " / Car no. " + id),
      h("h1", {}, carName(v))),
    h("span", { class: "badge", id: "live-badge" }, "…"));
  const nav = h("nav", { class: "tabs", "aria-label": "Car" }, tabs.map(([key, label, suffix]) =>
    h("a", { href: "#/vehicles/" + id + suffix, "aria-current": key === tab ? "page" : null, id: "tab-" + key }, label)));
  const body = h("div", { class: "tab-body" });
  ctx.draw(head, lockedNotice(ctx.reload), nav, body);
  if (!mine) {
    body.append(empty("This car belongs to another account (" + v.owner + "). Only its owner sees its data here."));
    return;
  }
  const badge = () => keyValues(id).then((kv) => {
    const b = document.getElementById("live-badge");
    if (!b || ctx.stale()) return;
    b.textContent = isLive(kv.lastSeen) ? "Live" : "Last seen " + ago(kv.lastSeen);
    b.className = "badge" + (isLive(kv.lastSeen) ? " live" : "");
    const box = document.getElementById("key-values");
    if (box && box.dataset.ready) fillKeyValues(box, kv);
  }).catch(() => {});
  badge();
  // While the page is shown, the badge and the key values follow the data.
  const timer = setInterval(() => { if (ctx.stale()) clearInterval(timer); else badge(); }, 15000);
  if (tab === "overview") await overview(ctx, id, v, body);
  else if (tab === "sharing") await sharing(ctx, id, v, body);
  else if (tab === "data") await dataTab(ctx, id, body);
  else if (tab === "credentials") await credentialsTab(ctx, id, body);
  else await devices(ctx, id, v, body);
}

// ---- overview

const ranges = [["1h", 3600, "1m"], ["6h", 6 * 3600, "1m"], ["24h", 86400, "5m"], ["7d", 7 * 86400, "1h"], ["30d", 30 * 86400, "3h"]];
const rangeWords = { "1h": "Last hour", "6h": "Last 6 hours", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" };

function seconds(interval) {
  const n = parseInt(interval, 10);
  return interval.endsWith("h") ? n * 3600 : interval.endsWith("m") ? n * 60 : n; // "5s": 5
}

// span returns from and to for a range: from rounded down to the interval, so that the node answers
// from its roll-ups.
function span(rangeSec, interval) {
  const step = seconds(interval) * 1000;
  const to = Math.ceil((Date.now() + 1000) / step) * step;
  const from = Math.floor((Date.now() - rangeSec * 1000) / step) * step;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

// defaultRange is the shortest of the periods that holds every value since firstSeen (unix ms), or the
// last 24 hours when there is none yet.
export function defaultRange(firstSeen, now = Date.now()) {
  if (firstSeen === null) return "24h";
  const r = ranges.find(([, sec]) => now - firstSeen <= sec * 1000);
  return r ? r[0] : ranges[ranges.length - 1][0];
}

// fitSpan is span for a period, started no earlier than the data (firstSeen, unix ms), so that the
// points fill the chart rather than crowd at its end; a span of less than an hour gets finer intervals.
export function fitSpan(rangeSec, interval, firstSeen, now = Date.now()) {
  let start = now - rangeSec * 1000;
  if (firstSeen !== null && firstSeen > start) start = firstSeen;
  const length = now - start;
  if (length < 3600 * 1000) interval = length <= 600 * 1000 ? "5s" : length <= 1800 * 1000 ? "15s" : "30s";
  const step = seconds(interval) * 1000;
  const to = Math.ceil((now + 1000) / step) * step;
  const from = Math.floor(start / step) * step;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval };
}

// customSpan turns two datetime-local values into a query span: at most 31 days, with an interval from
// the list that gives at most 500 points, from rounded down to it.
function customSpan(fromText, toText) {
  const f = new Date(fromText).getTime();
  const t = new Date(toText).getTime();
  if (!(f < t) || t - f > 31 * 86400000) throw new WalletError("bad_range", "");
  const interval = ["1m", "5m", "15m", "1h", "3h", "6h", "24h"].find((i) => (t - f) / (seconds(i) * 1000) <= 500) || "24h";
  const step = seconds(interval) * 1000;
  return { from: new Date(Math.floor(f / step) * step).toISOString(), to: new Date(t).toISOString(), interval };
}

async function overview(ctx, id, v, body) {
  const kvBox = h("dl", { class: "kv big", id: "key-values" },
    ["Speed", "Fuel", "Odometer", "Last seen"].map((k) => h("div", {}, h("dt", {}, k), h("dd", {}, "…"))));
  const mapBox = h("div", { class: "map", id: "map", role: "img", "aria-label": "Map of the car's recent trips" });
  const trips = h("ol", { class: "trips", id: "trips" });
  const mapRange = h("select", { id: "map-range" }, ranges.slice(0, 4).map(([k]) => h("option", { value: k, selected: k === "24h" }, rangeWords[k])));
  const chartBox = h("div", { class: "chart", id: "chart" });
  const chartCount = h("p", { class: "hint", id: "chart-count", "aria-live": "polite" }, " ");
  const signalSel = h("select", { id: "chart-signal" });
  const rangeSel = h("select", { id: "chart-range" }, ranges.map(([k]) => h("option", { value: k }, rangeWords[k])),
    h("option", { value: "custom" }, "Choose dates…"));
  const fromIn = h("input", { type: "datetime-local", id: "chart-from" });
  const toIn = h("input", { type: "datetime-local", id: "chart-to" });
  const showBtn = h("button", { type: "submit", class: "secondary", id: "chart-show" }, "Show");
  const customForm = h("form", { class: "controls", id: "chart-custom", hidden: true }, field("From", fromIn), field("To", toIn), h("div", { class: "field" }, h("span", { "aria-hidden": "true" }, " "), showBtn));
  const numbers = h("div", { class: "table-wrap" });
  const latest = h("div", { class: "table-wrap", id: "latest" }, h("p", { class: "hint" }, "Loading…"));
  const distance = h("div", { id: "distance" }, h("p", { class: "hint" }, "Loading…"));
  body.append(
    kvBox,
    section("Recent trips", h("div", { class: "controls" }, field("Period", mapRange)), mapBox, trips),
    section("Chart", h("div", { class: "controls" }, field("Signal", signalSel), field("Period", rangeSel)), customForm, chartBox, chartCount,
      h("details", {}, h("summary", {}, "The numbers"), numbers)),
    section("Latest values", latest),
    section("Distance per day", distance),
  );
  const cat = await signalCatalogue();
  const kv = await keyValues(id);
  // The chart opens on the shortest period that holds all the data, and starts where the data starts.
  const summary = await gql(`query($id: Int!) { dataSummary(tokenId: $id) { firstSeen } }`, { id });
  // With no data, firstSeen is the Unix epoch (DIMO's type is non-null).
  const seen = summary.dataSummary && summary.dataSummary.firstSeen ? Date.parse(summary.dataSummary.firstSeen) : 0;
  const firstSeen = seen > 0 ? seen : null;
  rangeSel.value = defaultRange(firstSeen);
  if (ctx.stale()) return;
  fillKeyValues(kvBox, kv);
  kvBox.dataset.ready = "1";

  // Map.
  const loadMap = async () => {
    const [, sec] = ranges.find(([k]) => k === mapRange.value);
    const { from, to } = span(sec, "1m");
    const data = await gql(`query($id: Int!, $from: Time!, $to: Time!) { signals(tokenId: $id, interval: "1m", from: $from, to: $to) {
      timestamp loc: currentLocationCoordinates(agg: LAST) { latitude longitude } } }`, { id, from, to });
    const pts = (data.signals || []).filter((r) => r.loc).map((r) => ({ t: new Date(r.timestamp), lat: r.loc.latitude, lon: r.loc.longitude }));
    drawMap(mapBox, splitTrips(pts));
    await loadTrips(id, from, to, trips);
  };
  mapRange.addEventListener("change", () => act(null, "Loading the map…", loadMap));

  // Chart: the numeric signals that have data.
  const avail = await gql(`query($id: Int!) { availableSignals(tokenId: $id) }`, { id });
  const numeric = (avail.availableSignals || []).filter((n) => cat.has(n) && ["number", "boolean"].includes(cat.get(n).type)).sort((a, b) => label(a, cat.get(a)).localeCompare(label(b, cat.get(b))));
  for (const n of numeric) signalSel.append(h("option", { value: n, selected: n === "speed" }, label(n, cat.get(n))));
  if (numeric.length === 0) signalSel.append(h("option", { value: "" }, "No data yet"));
  const loadChart = async () => {
    const name = signalSel.value;
    if (!name) { chartCount.textContent = "No data yet."; return; }
    let from, to, interval;
    if (rangeSel.value === "custom") ({ from, to, interval } = customSpan(fromIn.value, toIn.value));
    else {
      let sec;
      [, sec, interval] = ranges.find(([k]) => k === rangeSel.value);
      ({ from, to, interval } = fitSpan(sec, interval, firstSeen));
    }
    const data = await gql(`query($id: Int!, $from: Time!, $to: Time!, $interval: String!) {
      signals(tokenId: $id, interval: $interval, from: $from, to: $to) { timestamp avg: ${name}(agg: AVG) max: ${name}(agg: MAX) } }`,
    { id, from, to, interval });
    const rows = (data.signals || []).filter((r) => r.avg !== null);
    const unit = unitSymbol(cat.get(name).unit);
    drawChart(chartBox, rows.map((r) => new Date(r.timestamp).getTime() / 1000), rows.map((r) => r.avg), rows.map((r) => r.max),
      label(name, cat.get(name)), unit, [Date.parse(from) / 1000, Date.parse(to) / 1000]);
    chartCount.textContent = rows.length + " data point" + (rows.length === 1 ? "" : "s") + ", each the average (line) and maximum (dots) over " + interval + ".";
    numbers.textContent = "";
    numbers.append(h("table", { class: "table" }, h("caption", { class: "sr-only" }, label(name, cat.get(name)) + " per " + interval),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "From"), h("th", { scope: "col", class: "num" }, "Average" + (unit ? " (" + unit + ")" : "")),
        h("th", { scope: "col", class: "num" }, "Maximum"))),
      h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, fmtTime(r.timestamp)), h("td", { class: "num" }, num(r.avg, 2)), h("td", { class: "num" }, num(r.max, 2)))))));
  };
  signalSel.addEventListener("change", () => act(null, "Loading the chart…", loadChart));
  rangeSel.addEventListener("change", () => {
    customForm.hidden = rangeSel.value !== "custom";
    if (rangeSel.value !== "custom") { act(null, "Loading the chart…", loadChart); return; }
    // Start from the last 24 hours, in local time as the inputs show it.
    const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    if (!fromIn.value) fromIn.value = local(Date.now() - 86400000);
    if (!toIn.value) toIn.value = local(Date.now() + 60000);
    fromIn.focus();
  });
  customForm.addEventListener("submit", (ev) => { ev.preventDefault(); act(showBtn, "Loading the chart…", loadChart); });

  await Promise.all([loadMap(), loadChart(), loadLatest(id, cat, latest), loadDistance(id, distance)]);
}

// fillKeyValues writes the key values into the box (four cells, the same size whatever the data).
function fillKeyValues(box, kv) {
  box.textContent = "";
  box.append(
    h("div", {}, h("dt", {}, "Speed"), h("dd", {}, kv.speed === null ? "—" : num(kv.speed, 0) + " km/h")),
    h("div", {}, h("dt", {}, kv.energyName), h("dd", {}, kv.energy === null ? "—" : num(kv.energy, 0) + " %")),
    h("div", {}, h("dt", {}, "Odometer"), h("dd", {}, kv.odometer === null ? "—" : num(kv.odometer, 0) + " km")),
    h("div", {}, h("dt", {}, "Last seen"), h("dd", {}, ago(kv.lastSeen))));
}

// label names a signal for the chart's list and legend: Speed, Engine speed (Powertrain › Combustion engine).
function label(name, s) {
  return signalLabel(name, s);
}

// labelCell shows a signal's own name in bold, its place in the car after it.
function labelCell(name, s) {
  const [n, where] = signalParts(name, s);
  return [h("strong", {}, n), where ? h("span", { class: "meta" }, " · " + where) : null];
}

async function loadLatest(id, cat, box) {
  const data = await gql(`query($id: Int!) { signalsSnapshot(tokenId: $id) { lastSeen signals { name timestamp valueNumber valueString valueLocation { latitude longitude } } } }`, { id });
  box.textContent = "";
  const sigs = (data.signalsSnapshot && data.signalsSnapshot.signals) || [];
  if (sigs.length === 0) { box.append(empty("No data yet. Pair a device and drive.")); return; }
  const rows = sigs.filter((s) => s.name !== "currentLocationApproximateCoordinates").map((s) => {
    const c = cat.get(s.name) || {};
    let value;
    if (s.valueLocation) value = num(s.valueLocation.latitude, 5) + ", " + num(s.valueLocation.longitude, 5);
    else if (s.valueNumber !== null && s.valueNumber !== undefined) value = c.type === "boolean" ? (s.valueNumber ? "yes" : "no") : num(s.valueNumber, 2);
    else value = stringValue(s.valueString, c.type);
    const unit = c.type === "boolean" || s.valueLocation ? "" : unitSymbol(c.unit);
    return h("tr", {}, h("th", { scope: "row", title: c.vssPath || s.name }, labelCell(s.name, c)),
      h("td", { class: "num" }, value, unit ? h("span", { class: "unit" }, "\u00a0" + unit) : null),
      h("td", { class: "wide-only" }, h("time", { datetime: s.timestamp }, fmtTime(s.timestamp))));
  });
  box.append(h("table", { class: "table" }, h("caption", { class: "sr-only" }, "Latest value of each signal"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Signal"), h("th", { scope: "col", class: "num" }, "Value"), h("th", { scope: "col", class: "wide-only" }, "Measured"))),
    h("tbody", {}, rows)));
}

// The driving-style events a trip lists, with their words.
const styleEvents = [["behavior.harshBraking", "harsh braking", "harsh brakings"], ["behavior.extremeBraking", "extreme braking", "extreme brakings"],
  ["behavior.harshAcceleration", "harsh acceleration", "harsh accelerations"], ["behavior.harshCornering", "harsh cornering", "harsh cornerings"]];

// aggValue picks one aggregation out of a segment's or a day's signals (null when absent).
function aggValue(signals, name, agg) {
  const s = (signals || []).find((x) => x.name === name && x.agg === agg);
  return s ? s.value : null;
}

// distanceOf is the odometer's advance over a segment or a day, in km (null without odometer readings).
function distanceOf(signals) {
  const a = aggValue(signals, "powertrainTransmissionTravelledDistance", "FIRST");
  const b = aggValue(signals, "powertrainTransmissionTravelledDistance", "LAST");
  return a === null || b === null ? null : Math.max(0, b - a);
}

// styleWords says a trip's driving-style events in words: "2 harsh brakings, 1 harsh acceleration".
function styleWords(counts) {
  const words = styleEvents.map(([name, one, many]) => {
    const c = (counts || []).find((x) => x.name === name);
    const n = c ? c.count : 0;
    return n === 0 ? null : n + " " + (n === 1 ? one : many);
  }).filter(Boolean);
  return words.length === 0 ? "smooth: no harsh events" : words.join(", ");
}

// loadTrips lists the trips of [from, to) as the node detects them (segments by ignition), newest first:
// start, duration, distance and driving-style events. Only summaries: no route.
async function loadTrips(id, from, to, list) {
  const data = await gql(`query($id: Int!, $from: Time!, $to: Time!, $events: [SegmentEventRequest!]) {
    segments(tokenId: $id, from: $from, to: $to, mechanism: ignitionDetection, eventRequests: $events, limit: 200) {
      id start { timestamp } end { timestamp } duration isOngoing signals { name agg value } eventCounts { name count } } }`,
  { id, from, to, events: styleEvents.map(([name]) => ({ name })) });
  const segs = (data.segments || []).slice().reverse();
  list.textContent = "";
  list.dataset.count = String(segs.length);
  if (segs.length === 0) { list.append(h("li", { class: "empty" }, "No trips in this period.")); return; }
  for (const s of segs.slice(0, 20)) {
    const km = distanceOf(s.signals);
    const mins = Math.max(1, Math.round(s.duration / 60));
    const harsh = (s.eventCounts || []).reduce((n, c) => n + c.count, 0);
    list.append(h("li", { class: "trip", "data-segment": s.id },
      h("strong", {}, h("time", { datetime: s.start.timestamp }, fmtTime(s.start.timestamp))),
      " · " + mins + " min" + (km === null ? "" : " · " + num(km, 1) + " km") + (s.isOngoing ? " · under way" : ""),
      h("span", { class: harsh > 0 ? "style harsh" : "style" }, " · " + styleWords(s.eventCounts))));
  }
}

// loadDistance shows the last 14 calendar days of the browser's time zone from dailyActivity: distance,
// trips and time driving per day.
async function loadDistance(id, box) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const first = new Date(today);
  first.setDate(first.getDate() - 13);
  const data = await gql(`query($id: Int!, $from: Time!, $to: Time!, $tz: String) {
    dailyActivity(tokenId: $id, from: $from, to: $to, mechanism: ignitionDetection, timezone: $tz) {
      segmentCount duration signals { name agg value } } }`,
  { id, from: first.toISOString(), to: new Date().toISOString(), tz: zone });
  // One record per calendar day from the day of from, in order.
  const days = (data.dailyActivity || []).map((d, i) => {
    const t = new Date(first);
    t.setDate(t.getDate() + i);
    return { t, km: distanceOf(d.signals) || 0, trips: d.segmentCount, mins: Math.round(d.duration / 60) };
  }).filter((d) => d.trips > 0 || d.km > 0);
  box.textContent = "";
  if (days.length === 0) { box.append(empty("No trips in the last 14 days.")); return; }
  const most = Math.max(1, ...days.map((d) => d.km));
  box.append(h("table", { class: "table bars" }, h("caption", { class: "sr-only" }, "Distance driven per day, last 14 days"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), h("th", { scope: "col", class: "num" }, "km"), h("th", { scope: "col", class: "num" }, "Trips"),
      h("th", { scope: "col", class: "num wide-only" }, "Driving"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Bar")))),
    h("tbody", {}, days.reverse().map((d) => h("tr", {}, h("th", { scope: "row" }, fmtDate(d.t)), h("td", { class: "num" }, num(d.km, 1)),
      h("td", { class: "num" }, String(d.trips)), h("td", { class: "num wide-only" }, d.mins + " min"),
      h("td", { "aria-hidden": "true" }, h("span", { class: "bar-fill", style: "width:" + Math.round((d.km / most) * 100) + "%" })))))));
}

// ---- sharing

async function sharing(ctx, id, v, body) {
  const grants = h("ul", { class: "grants", id: "grants" });
  const logBox = h("div", { id: "access-log" });
  body.append(
    section("Who can see this car", h("p", { class: "hint" }, "Each app below holds a grant you signed. Revoking it takes effect on the app's next request."), grants),
    section("Access log", h("p", { class: "hint" }, "Every read of this car's data by anyone but you, newest first."), logBox),
  );
  const now = Date.now() / 1000;
  const list = (v.grants || []).slice().sort((a, b) => b.grantedAt - a.grantedAt);
  if (list.length === 0) grants.append(h("li", { class: "empty" }, "No app can see this car."));
  for (const g of list) {
    const a = await app(g.app);
    const live = g.expiresAt > now;
    const revoke = h("button", { type: "button", class: "danger", id: "revoke-" + g.app, "aria-label": "Revoke " + a.name + "'s access" }, "Revoke");
    const li = h("li", { class: "grant" + (live ? "" : " expired"), "data-app": g.app },
      h("div", { class: "grant-head" }, h("h3", {}, a.name), addr(g.app), live ? null : h("span", { class: "badge" }, "Expired")),
      h("p", { class: "purpose" }, g.purpose ? "“" + g.purpose + "”" : "No purpose given."),
      h("ul", { class: "perms" }, g.permissions.map((p) => h("li", {}, h("strong", {}, permissionTitle(p)), permissionWords[p] ? ": " + permissionWords[p][1] : ""))),
      h("p", { class: "meta" }, (live ? "Until " : "Ended ") + fmtTime(g.expiresAt * 1000) + " · granted " + fmtTime(g.grantedAt) +
        (g.termsUri ? " · " : ""), g.termsUri ? h("a", { href: g.termsUri, rel: "noopener noreferrer", target: "_blank" }, "terms") : null),
      live ? revoke : null);
    revoke.addEventListener("click", () => act(revoke, "Revoking " + a.name + "'s access…", async (step) => {
      await session.submit("Revoke", { vehicleId: id, app: g.app }, [], step);
      li.remove();
      if (grants.children.length === 0) grants.append(h("li", { class: "empty" }, "No app can see this car."));
    }, "Revoked: " + a.name + " can no longer read this car."));
    grants.append(li);
  }
  await accessLog(ctx, id, logBox);
}

async function accessLog(ctx, id, box) {
  const who = h("select", { id: "log-app" }, h("option", { value: "" }, "Every app"));
  const outcome = h("select", { id: "log-outcome" }, h("option", { value: "" }, "Allowed and refused"), h("option", { value: "ok" }, "Allowed"), h("option", { value: "refused" }, "Refused"));
  const tbody = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary", id: "log-more", hidden: true }, "Show older");
  const entries = [];
  let next = "";
  const names = new Map();
  const render = () => {
    tbody.textContent = "";
    const shown = entries.filter((e) => (!who.value || e.caller === who.value) && (!outcome.value || (outcome.value === "ok") === (e.outcome === "ok")));
    if (shown.length === 0) tbody.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, entries.length ? "Nothing matches." : "No app has read this car's data.")));
    for (const e of shown) {
      tbody.append(h("tr", {},
        h("td", { "data-label": "When" }, h("time", { datetime: e.time }, fmtTime(e.time))),
        h("td", { "data-label": "Who" }, names.get(e.caller) || addr(e.caller)),
        h("td", { "data-label": "What" }, e.query + (e.permissions && e.permissions.length ? " (" + e.permissions.map(permissionTitle).join(", ") + ")" : "")),
        h("td", { class: "num", "data-label": "Values" }, String(e.values)),
        h("td", { "data-label": "Outcome" }, h("span", { class: "badge " + (e.outcome === "ok" ? "ok" : "bad") }, e.outcome === "ok" ? "allowed" : e.outcome))));
    }
  };
  const load = async () => {
    const page = await api("/v1/vehicles/" + id + "/access?limit=50" + (next ? "&before=" + encodeURIComponent(next) : ""), { auth: true });
    for (const e of page.entries || []) {
      entries.push(e);
      if (!names.has(e.caller)) {
        names.set(e.caller, null);
        const a = await app(e.caller);
        names.set(e.caller, a.name && a.name !== "Unknown app" ? a.name : null);
        who.append(h("option", { value: e.caller }, names.get(e.caller) || e.caller));
      }
    }
    next = (page.entries || []).length === 50 ? page.next || "" : "";
    more.hidden = !next;
    render();
  };
  who.addEventListener("change", render);
  outcome.addEventListener("change", render);
  more.addEventListener("click", () => act(more, "Loading older reads…", load));
  box.append(h("div", { class: "controls" }, field("App", who), field("Outcome", outcome)),
    h("div", { class: "table-wrap" }, h("table", { class: "table stacked", id: "access-table" },
      h("caption", { class: "sr-only" }, "Access log, newest first"),
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "Values", "Outcome"].map((c) => h("th", { scope: "col" }, c)))), tbody)), more);
  await load();
}

// ---- devices and transfer

async function devices(ctx, id, v, body) {
  const list = h("ul", { class: "devices", id: "devices" });
  if (!v.devices || v.devices.length === 0) list.append(h("li", { class: "empty" }, "No device is paired: this car sends no data."));
  for (const d of v.devices || []) {
    const unpair = h("button", { type: "button", class: "danger", id: "unpair-" + d.device }, "Unpair");
    unpair.addEventListener("click", () => act(unpair, "Unpairing…", async (step) => {
      await session.submit("UnpairDevice", { vehicleId: id, device: d.device }, [], step);
      ctx.reload();
    }, "Unpaired: the device no longer speaks for this car."));
    list.append(h("li", {}, h("div", {}, h("strong", {}, d.kind === "hardware" ? "Dongle (hardware)" : "Connection (software)"), " ", addr(d.device),
      h("p", { class: "meta" }, "Paired " + fmtTime(d.fromTime) + " (log entry " + d.fromIndex + ")")), unpair));
  }
  const paste = h("textarea", { id: "pairing", rows: 4, spellcheck: false, placeholder: '{"device":"0x…","vehicleId":"' + id + '","nonce":"…","deadline":"…","signature":"0x…"}' });
  const fileIn = h("input", { type: "file", id: "pairing-file", accept: ".json,application/json,text/plain" });
  fileIn.addEventListener("change", async () => { if (fileIn.files[0]) paste.value = (await fileIn.files[0].text()).trim(); });
  const pairBtn = h("button", { type: "submit", class: "primary", id: "pair-submit" }, "Pair the device");
  const pairForm = h("form", { class: "stack", id: "pair-form" },
    h("p", {}, "On the device (or with its key), run ", h("code", {}, "glovebox device pair-sign --vehicle " + id + " --key device.json"),
      " and paste the line it prints, or load it as a file. You then sign the same pairing with your key."),
    field("The device's pairing signature", paste), field("…or load it from a file", fileIn), pairBtn);
  pairForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(pairBtn, "Checking the device's signature…", async (step) => {
      let p;
      try { p = JSON.parse(paste.value); } catch (e) { throw new WalletError("bad_pairing", ""); }
      if (!p || !p.device || !p.signature || !p.nonce || !p.deadline || String(p.vehicleId) !== String(id)) throw new WalletError("bad_pairing", "");
      const msg = { vehicleId: String(id), device: p.device, nonce: String(p.nonce), deadline: String(p.deadline) };
      const d = await session.domain();
      let who;
      try { who = verifyTypedData(d.domain, { PairDevice: d.types.PairDevice }, msg, p.signature); } catch (e) { throw new WalletError("bad_pairing", String(e)); }
      if (who.toLowerCase() !== p.device.toLowerCase()) throw new WalletError("bad_pairing", "signed by " + who);
      await session.submitWith("PairDevice", msg, [p.signature], step);
      ctx.reload();
    }, "Paired: the device now speaks for this car.");
  });

  const to = h("input", { id: "transfer-to", required: true, pattern: "^0x[0-9a-fA-F]{40}$", autocomplete: "off", spellcheck: false, placeholder: "0x…" });
  const sure = h("input", { type: "checkbox", id: "transfer-sure", required: true });
  const n = (v.grants || []).filter((g) => g.expiresAt > Date.now() / 1000).length;
  const transferBtn = h("button", { type: "submit", class: "danger", id: "transfer-submit" }, "Transfer the car");
  const transferForm = h("form", { class: "stack", id: "transfer-form" },
    h("div", { class: "warning", role: "note" }, h("strong", {}, "All access ends. "),
      n > 0 ? "The " + n + " app" + (n > 1 ? "s" : "") + " that can see this car now lose access the moment the transfer is in the log. " : "No app can see this car now. ",
      "A software connection is unpaired; a dongle stays paired. You lose access to this car and its data; the new owner sees only data measured after the transfer. This cannot be undone by you."),
    field("New owner's address", to),
    h("label", { class: "check" }, sure, " I understand that every grant on this car ends and that I give the car away."),
    transferBtn);
  transferForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(transferBtn, "Transferring…", async (step) => {
      await session.submit("TransferVehicle", { vehicleId: id, to: to.value.trim() }, [], step);
      location.hash = "#/";
    }, "Transferred: the car now belongs to " + to.value.trim() + ".");
  });
  body.append(section("Paired devices", list), section("Pair a device", pairForm), section("Transfer to a new owner", transferForm));
}


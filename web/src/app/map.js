// The map of recent trips (Leaflet). Without a configured tile server the tracks are drawn on a plain
// background, so the page loads nothing from other hosts; with one (serve --map-tiles) they are drawn
// over its tiles.
import L from "leaflet";

const config = JSON.parse(document.getElementById("app-config").textContent || "{}");
const colours = ["#0b5cad", "#b3261e", "#1b7f3b", "#8a4b00", "#5b3fa6", "#006b75"];

// splitTrips cuts time-ordered points into trips where the car stood still or sent nothing for more
// than five minutes.
export function splitTrips(points) {
  const trips = [];
  let cur = [];
  for (const p of points) {
    const prev = cur[cur.length - 1];
    if (prev && p.t - prev.t > 5 * 60000) { if (cur.length > 1) trips.push(cur); cur = []; }
    cur.push(p);
  }
  if (cur.length > 1) trips.push(cur);
  return trips;
}

// tripLength is the length of a trip in km (great circle between points).
export function tripLength(trip) {
  let km = 0;
  for (let i = 1; i < trip.length; i++) km += haversine(trip[i - 1], trip[i]);
  return km;
}

function haversine(a, b) {
  const r = Math.PI / 180;
  const dLat = (b.lat - a.lat) * r;
  const dLon = (b.lon - a.lon) * r;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(dLon / 2) ** 2;
  return 12742 * Math.asin(Math.min(1, Math.sqrt(s)));
}

const maps = new WeakMap();

// fit shows every trip drawn, or the world when there is none.
function fit(m) {
  if (m.bounds) m.map.fitBounds(m.bounds, { padding: [20, 20], maxZoom: 15 });
  else m.map.setView([20, 0], 1);
}

// drawMap draws trips (arrays of {lat, lon}) into el, replacing what it drew before.
export function drawMap(el, trips) {
  let m = maps.get(el);
  if (!m) {
    const map = L.map(el, { zoomControl: true, attributionControl: !!config.mapTiles, keyboard: true, worldCopyJump: false });
    if (config.mapTiles) L.tileLayer(config.mapTiles, { maxZoom: 19, attribution: config.mapAttribution || "" }).addTo(map);
    else el.classList.add("no-tiles");
    m = { map, layer: L.layerGroup().addTo(map), bounds: null };
    maps.set(el, m);
    // When the map's box changes size (a rotated phone, a resized window), Leaflet is told, and the
    // trips are fitted to the new size again.
    new ResizeObserver(() => {
      map.invalidateSize();
      fit(m);
    }).observe(el);
  }
  m.layer.clearLayers();
  const all = [];
  trips.forEach((t, i) => {
    const latlngs = t.map((p) => [p.lat, p.lon]);
    all.push(...latlngs);
    const colour = colours[i % colours.length];
    L.polyline(latlngs, { color: colour, weight: 4, opacity: 0.9 }).addTo(m.layer);
    L.circleMarker(latlngs[0], { radius: 5, color: colour, fillColor: "#fff", fillOpacity: 1, weight: 2 }).addTo(m.layer);
    L.circleMarker(latlngs[latlngs.length - 1], { radius: 6, color: colour, fillColor: colour, fillOpacity: 1, weight: 2 }).addTo(m.layer);
  });
  m.bounds = all.length > 0 ? L.latLngBounds(all) : null;
  fit(m);
  el.setAttribute("aria-label", trips.length ? "Map of " + trips.length + " recent trip" + (trips.length > 1 ? "s" : "") + " (listed below)" : "Map: no trips in this period");
}

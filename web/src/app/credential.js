// Offline checks of a Glovebox credential (an SD-JWT VC, docs/credentials.md) in the browser, the same
// checks in the same order as the Go function credential.Verify: the issuer's EdDSA signature with the
// log key, the claims, the expiry, every disclosure's digest, and the evidence — the checkpoint's
// signature (tlog.js), each pairing entry's inclusion proof, type, vehicle and device signature (EIP-712,
// ethers), each record's personal_sign signature (ethers' recovery), subject and times, and that the
// claim follows from the records. Every function takes values: nothing is fetched here.
import { verifyMessage, verifyTypedData, keccak256, toUtf8Bytes } from "ethers";
import { parseVerifierKey, parseCheckpoint, verifyNote, leafHash, checkInclusion, fromBase64 } from "./tlog.js";
import { decodeEntry } from "./entry.js";

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

// The checks, in order; a failure names the first that failed.
export const checks = ["format", "signature", "claims", "expiry", "disclosures", "key_binding", "checkpoint", "pairing", "record", "claim"];

export const types = ["odometer", "mileage", "movement", "vin"];
const vct = (t) => "urn:glovebox:credential:" + t + ":1";
const SIGNAL_ODOMETER = "powertrainTransmissionTravelledDistance";
const SIGNAL_VIN = "vehicleIdentificationVIN";
const MAX_GAP_MS = 24 * 3600 * 1000;

class Failure extends Error {
  constructor(check, msg) { super(check + ": " + msg); this.check = check; this.why = msg; }
}
const fail = (check, msg) => { throw new Failure(check, msg); };

function fromBase64url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  const b = s.replace(/-/g, "+").replace(/_/g, "/");
  return fromBase64(b + "=".repeat((4 - (b.length % 4)) % 4));
}

function toBase64url(bytes) {
  let bin = "";
  for (const x of bytes) bin += String.fromCharCode(x);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function digestOf(encoded) {
  return toBase64url(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(encoded))));
}

const ms = (s, what) => {
  const t = Date.parse(s);
  if (typeof s !== "string" || Number.isNaN(t)) throw new Error(what + ": " + JSON.stringify(s) + " is not an RFC 3339 time");
  return t;
};
const iso = (t) => new Date(t).toISOString();

// split separates <JWT>~<disclosures>~[<KB-JWT>].
function split(text) {
  const parts = text.trim().split("~");
  if (parts.length < 2 || parts[0] === "") throw new Error("not an SD-JWT: want <issuer JWT>~<disclosures>~");
  const disclosures = parts.slice(1, -1);
  if (disclosures.some((d) => d === "")) throw new Error("not an SD-JWT: an empty disclosure between two ~");
  return { jwt: parts[0], disclosures, kb: parts[parts.length - 1] };
}

// peekIssuer returns the credential's iss WITHOUT checking anything, to say which node issued it.
export function peekIssuer(text) {
  try {
    const p = JSON.parse(utf8.decode(fromBase64url(split(text).jwt.split(".")[1])));
    return typeof p.iss === "string" ? p.iss : "";
  } catch { return ""; }
}

// verifyCredential checks text against the log's verifier key vkey ("name+hash+base64"); eip712 is the
// node's EIP-712 types (GET /v1/eip712: types and primaryTypes), to decode the pairing entries; now is the
// verifier's clock (ms). It returns {ok, claims, steps: [{check, ok, what}], failed: {check, why}}.
export async function verifyCredential(text, vkey, eip712, now = Date.now()) {
  const steps = [];
  const pass = (check, what) => steps.push({ check, ok: true, what });
  let claims = null;
  try {
    claims = await run(text, vkey, eip712, now, pass);
    return { ok: true, claims, steps };
  } catch (e) {
    const f = e instanceof Failure ? e : new Failure("format", e.message || String(e));
    steps.push({ check: f.check, ok: false, what: f.why });
    return { ok: false, claims, steps, failed: { check: f.check, why: f.why } };
  }
}

async function run(text, vkey, eip712, now, pass) {
  let key;
  try { key = parseVerifierKey(vkey); } catch (e) { fail("signature", "the log key: " + e.message); }
  let parts, header, payload, body;
  try {
    parts = split(text);
    const seg = parts.jwt.split(".");
    if (seg.length !== 3) throw new Error("the issuer JWT is not three dot-separated parts");
    header = JSON.parse(utf8.decode(fromBase64url(seg[0])));
    body = fromBase64url(seg[1]);
    payload = JSON.parse(utf8.decode(body));
    parts.sig = fromBase64url(seg[2]);
    parts.signingInput = seg[0] + "." + seg[1];
  } catch (e) { fail("format", e.message); }
  pass("format", "an SD-JWT with " + parts.disclosures.length + " disclosures");

  const kid = key.name + "+" + Array.from(key.keyHash, (x) => x.toString(16).padStart(2, "0")).join("");
  if (header.alg !== "EdDSA") fail("signature", "the JWT's alg is " + JSON.stringify(header.alg) + ", want EdDSA");
  if (header.typ !== "dc+sd-jwt") fail("signature", "the JWT's typ is " + JSON.stringify(header.typ) + ", want dc+sd-jwt");
  if (header.kid !== kid) fail("signature", "the credential is signed by key " + JSON.stringify(header.kid) + ", not by the log key " + kid);
  const pub = await crypto.subtle.importKey("raw", key.key, { name: "Ed25519" }, false, ["verify"]);
  if (parts.sig.length !== 64 || !(await crypto.subtle.verify({ name: "Ed25519" }, pub, parts.sig, enc.encode(parts.signingInput)))) {
    fail("signature", "the issuer signature does not verify with the log key " + kid);
  }
  pass("signature", "signed by the log key " + kid);

  const c = claimsOf(payload);
  pass("claims", "a " + c.type + " credential from " + c.issuer);
  if (c.expires !== null && !(now < c.expires)) fail("expiry", "the credential expired at " + iso(c.expires));
  pass("expiry", c.expires === null ? "no expiry: a fact about a closed period" : "valid until " + iso(c.expires));

  const digests = new Set(payload._sd);
  const disclosed = {};
  for (const d of parts.disclosures) {
    let arr;
    try { arr = JSON.parse(utf8.decode(fromBase64url(d))); } catch (e) { fail("disclosures", "a disclosure does not decode: " + e.message); }
    if (!Array.isArray(arr) || arr.length !== 3 || typeof arr[0] !== "string" || typeof arr[1] !== "string") {
      fail("disclosures", "a disclosure is not [salt, name, value]");
    }
    if (!digests.has(await digestOf(d))) fail("disclosures", "the disclosure of " + JSON.stringify(arr[1]) + " is not one the issuer signed (altered, or from another credential)");
    if (arr[1] in disclosed) fail("disclosures", JSON.stringify(arr[1]) + " is disclosed twice");
    disclosed[arr[1]] = arr[2];
  }
  const allowed = { vehicle_id: true, evidence: c.type !== "movement", cells: c.type === "movement", vin: c.type === "vin" };
  for (const name of Object.keys(disclosed)) {
    if (!allowed[name]) fail("disclosures", "a " + c.type + " credential discloses no " + JSON.stringify(name));
  }
  if ("vehicle_id" in disclosed) {
    if (!Number.isSafeInteger(disclosed.vehicle_id) || disclosed.vehicle_id < 0) fail("disclosures", "the disclosed vehicle_id is not a vehicle id");
    c.vehicle = disclosed.vehicle_id;
  }
  if ("vin" in disclosed) c.vin = String(disclosed.vin);
  if ("cells" in disclosed) c.cells = disclosed.cells;
  c.disclosed = Object.keys(disclosed);
  pass("disclosures", c.disclosed.length ? "disclosed: " + c.disclosed.join(", ") : "nothing disclosed but the claims");
  if (parts.kb !== "") {
    // A presentation with key binding: the holder's signature is for the verifier it was made for, which
    // compares its nonce and audience; glovebox credential verify checks it.
    c.keyBinding = true;
    pass("key_binding", "carries a key-binding JWT, not checked here (glovebox credential verify checks it)");
  }

  if (!("evidence" in disclosed) || c.type === "movement") {
    c.evidenceChecked = false;
    return c;
  }
  if (!("vehicle_id" in disclosed)) fail("disclosures", "the evidence is disclosed without vehicle_id, which it is checked against");
  await checkEvidence(disclosed.evidence, key, kid, c, eip712, pass);
  c.evidenceChecked = true;
  return c;
}

// claimsOf reads the issuer-signed claims of payload, as credential.Verify does.
function claimsOf(p) {
  const known = new Set(["iss", "iat", "exp", "vct", "cnf", "_sd", "_sd_alg", "at", "from", "to", "odometer_km", "measured_at", "distance_km", "moved", "h3_resolution"]);
  for (const k of Object.keys(p)) if (!known.has(k)) fail("claims", "the payload has an unknown claim " + JSON.stringify(k));
  if (!p.iss || !p.iat || !p.vct) fail("claims", "iss, iat and vct are required");
  if (p._sd_alg !== "sha-256") fail("claims", "_sd_alg is " + JSON.stringify(p._sd_alg) + ", want \"sha-256\"");
  if (!Array.isArray(p._sd)) fail("claims", "_sd is not a list of digests");
  const type = types.find((t) => vct(t) === p.vct);
  if (!type) fail("claims", "vct " + JSON.stringify(p.vct) + " is not a Glovebox credential type");
  const want = { odometer: ["at", "odometer_km", "measured_at"], mileage: ["from", "to", "distance_km"],
    movement: ["from", "to", "moved", "h3_resolution"], vin: ["measured_at"] }[type];
  for (const name of ["at", "from", "to", "odometer_km", "measured_at", "distance_km", "moved", "h3_resolution"]) {
    const has = p[name] !== undefined && p[name] !== null;
    if (has !== want.includes(name)) fail("claims", has ? "a " + type + " credential has no claim " + name : "a " + type + " credential needs the claim " + name);
  }
  const c = { type, issuer: p.iss, issuedAt: p.iat * 1000, expires: p.exp ? p.exp * 1000 : null, holder: p.cnf ? p.cnf.jwk : null };
  try {
    for (const name of ["at", "from", "to", "measured_at"]) if (p[name] !== undefined) c[name] = ms(p[name], name);
  } catch (e) { fail("claims", e.message); }
  if (p.odometer_km !== undefined) c.odometer = p.odometer_km;
  if (p.distance_km !== undefined) c.distance = p.distance_km;
  if (type === "movement" && (p.moved !== true || p.h3_resolution !== 8)) fail("claims", "a movement credential says moved: true at H3 resolution 8");
  return c;
}

// domainOf is the node's EIP-712 domain: its log's origin names it (ledger.NewDomain).
function domainOf(origin) {
  return { name: "Glovebox", version: "1", salt: keccak256(toUtf8Bytes(origin)) };
}

async function checkEvidence(ev, key, kid, c, eip712, pass) {
  if (!ev || typeof ev.checkpoint !== "string" || !Array.isArray(ev.pairings) || !Array.isArray(ev.records)) {
    fail("disclosures", "the evidence is not {checkpoint, pairings, records}");
  }
  let cp;
  try { cp = parseCheckpoint(ev.checkpoint); } catch (e) { fail("checkpoint", "the checkpoint does not parse: " + e.message); }
  if (cp.origin !== key.name || !(await verifyNote(ev.checkpoint, keyText(key)))) {
    fail("checkpoint", "the checkpoint is not signed by the log key " + kid);
  }
  pass("checkpoint", "the checkpoint of " + cp.size + " entries is signed by the log key");
  if (!eip712 || !eip712.types) fail("pairing", "the signing format of the log (GET /v1/eip712) was not loaded");
  const domain = domainOf(cp.origin);
  const pairings = new Map();
  for (let i = 0; i < ev.pairings.length; i++) {
    try {
      pairings.set(ev.pairings[i].start.index, await checkPairing(ev.pairings[i], c.vehicle, cp, domain, eip712));
    } catch (e) { fail("pairing", "pairing " + i + ": " + e.message); }
  }
  pass("pairing", ev.pairings.length + " pairing" + (ev.pairings.length === 1 ? "" : "s") + " in the log, each signed by its device");
  const odometer = [], vin = [];
  for (let i = 0; i < ev.records.length; i++) {
    try { await checkRecord(ev.records[i], c.vehicle, pairings, odometer, vin); } catch (e) { fail("record", "record " + i + ": " + e.message); }
  }
  pass("record", ev.records.length + " record" + (ev.records.length === 1 ? "" : "s") + " signed by the paired device, measured while it was paired");
  try { deriveAndCompare(c, odometer, vin); } catch (e) { fail("claim", e.message); }
  pass("claim", "the claim follows from the records");
}

function keyText(key) {
  return key.name + "+" + Array.from(key.keyHash, (x) => x.toString(16).padStart(2, "0")).join("") + "+" + btoa(String.fromCharCode(...key.raw));
}

async function included(e, cp) {
  if (!Number.isSafeInteger(e.index) || e.index < 0 || e.index >= cp.size) throw new Error("entry " + e.index + " is not in the checkpoint's tree of " + cp.size + " entries");
  const bytes = fromBase64(e.entry);
  const proof = (e.proof || []).map(fromBase64);
  if (!(await checkInclusion(e.index, cp.size, await leafHash(bytes), proof, cp.root))) {
    throw new Error("entry " + e.index + ": the inclusion proof does not verify against the checkpoint");
  }
  return bytes;
}

async function checkPairing(p, vehicle, cp, domain, eip712) {
  const start = decodeEntry(await included(p.start, cp), eip712);
  if (start.type !== "PairDevice") throw new Error("entry " + p.start.index + " is a " + start.type + ", not a PairDevice");
  if (start.message.vehicleId !== String(vehicle)) throw new Error("entry " + p.start.index + " pairs vehicle " + start.message.vehicleId + ", not " + vehicle);
  const device = start.message.device.toLowerCase();
  const signers = start.signatures.map((s) => { try { return verifyTypedData(domain, { PairDevice: eip712.types.PairDevice }, start.message, s).toLowerCase(); } catch { return ""; } });
  if (!signers.includes(device)) throw new Error("entry " + p.start.index + " is not signed by the device " + device + " it pairs");
  const out = { device, from: start.acceptTime, to: Infinity };
  if (p.end) {
    const end = decodeEntry(await included(p.end, cp), eip712);
    if (p.end.index <= p.start.index) throw new Error("the ending entry " + p.end.index + " comes before the pairing " + p.start.index);
    const same = end.message.vehicleId === String(vehicle);
    const ends = (end.type === "UnpairDevice" && same && String(end.message.device).toLowerCase() === device) ||
      ((end.type === "TransferVehicle" || end.type === "BurnVehicle") && same);
    if (!ends) throw new Error("entry " + p.end.index + " (" + end.type + ") does not end the pairing of " + device + " to vehicle " + vehicle);
    out.to = end.acceptTime;
  }
  return out;
}

async function checkRecord(r, vehicle, pairings, odometer, vin) {
  if (typeof r.event !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(r.signature || "")) throw new Error("a record is {event, signature, pairing}");
  let e;
  try { e = JSON.parse(r.event); } catch { throw new Error("the event is not JSON"); }
  if (e.specversion !== "1.0" || typeof e.id !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(e.source || "") || !e.data || !Array.isArray(e.data.signals)) {
    throw new Error("the event is not a telemetry record");
  }
  if (e.subject !== String(vehicle)) throw new Error("record " + e.id + " is about vehicle " + e.subject + ", not " + vehicle);
  let signer;
  try { signer = verifyMessage(toUtf8Bytes(r.event), r.signature).toLowerCase(); } catch { throw new Error("record " + e.id + ": the signature does not recover to a key"); }
  const source = e.source.toLowerCase();
  if (signer !== source) throw new Error("record " + e.id + " is signed by " + signer + ", not by its source " + source);
  const p = pairings.get(r.pairing);
  if (!p) throw new Error("record " + e.id + " names pairing entry " + r.pairing + ", which the evidence does not hold");
  if (p.device !== source) throw new Error("record " + e.id + " is from " + source + ", but pairing entry " + r.pairing + " pairs " + p.device);
  const inPairing = (t) => p.from <= t && t < p.to;
  if (!inPairing(ms(e.time, "time"))) throw new Error("record " + e.id + " was measured at " + e.time + ", when its device was not paired to vehicle " + vehicle);
  for (const s of e.data.signals) {
    const t = ms(s.timestamp, "timestamp");
    if (!inPairing(t)) throw new Error("record " + e.id + ": " + s.name + " was measured at " + s.timestamp + ", when its device was not paired to vehicle " + vehicle);
    if (s.name === SIGNAL_ODOMETER && typeof s.value === "number") odometer.push({ t, v: s.value });
    if (s.name === SIGNAL_VIN && typeof s.value === "string") vin.push({ t, v: s.value });
  }
}

// sorted orders readings by time, drops exact duplicates and refuses two values at one time.
function sorted(rs, name) {
  rs.sort((a, b) => a.t - b.t || a.v - b.v);
  const out = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && last.t === r.t) {
      if (last.v === r.v) continue;
      throw new Error("two different " + name + " readings at " + iso(r.t));
    }
    out.push(r);
  }
  return out;
}

function lastAtOrBefore(rs, t) {
  let i = -1;
  for (let k = 0; k < rs.length && rs[k].t <= t; k++) i = k;
  return i;
}

function deriveAndCompare(c, odometerReadings, vinReadings) {
  if (c.type === "odometer") {
    const odo = sorted(odometerReadings, "odometer");
    const i = lastAtOrBefore(odo, c.at);
    if (i < 0) throw new Error("no odometer reading at or before " + iso(c.at));
    if (odo[i].v !== c.odometer || odo[i].t !== c.measured_at) {
      throw new Error("the credential says " + c.odometer + " km at " + iso(c.measured_at) + "; the records say " + odo[i].v + " km at " + iso(odo[i].t));
    }
  } else if (c.type === "mileage") {
    const odo = sorted(odometerReadings, "odometer");
    const i = lastAtOrBefore(odo, c.from);
    if (i < 0) throw new Error("no odometer reading at or before from (" + iso(c.from) + ")");
    const j = lastAtOrBefore(odo, c.to);
    if (odo[j].t < c.from) throw new Error("no odometer reading between from and to");
    for (let k = i + 1; k <= j; k++) {
      const prev = odo[k - 1], cur = odo[k];
      if (cur.v < prev.v) throw new Error("the odometer went backwards: " + prev.v + " km at " + iso(prev.t) + ", then " + cur.v + " km at " + iso(cur.t));
      if (cur.t - prev.t > MAX_GAP_MS && cur.v !== prev.v) throw new Error("no reading between " + iso(prev.t) + " and " + iso(cur.t) + ", more than 24 hours apart while the car moved");
    }
    const d = Math.round((odo[j].v - odo[i].v) * 1000) / 1000;
    if (Math.abs(d - c.distance) > 1e-9) throw new Error("the credential says " + c.distance + " km; the records say " + d + " km");
  } else if (c.type === "vin") {
    let last = null;
    for (const r of vinReadings) if (r.t <= c.issuedAt && (last === null || r.t >= last.t)) last = r;
    if (last === null) throw new Error("the records hold no VIN");
    if ((c.vin !== undefined && c.vin !== last.v) || last.t !== c.measured_at) {
      throw new Error("the credential says VIN " + JSON.stringify(c.vin) + " reported at " + iso(c.measured_at) + "; the records say " + JSON.stringify(last.v) + " at " + iso(last.t));
    }
  }
}

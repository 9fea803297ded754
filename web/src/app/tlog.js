// Checks of the public log in the browser, without trusting the node: RFC 6962 / RFC 9162 Merkle
// inclusion proofs, C2SP tlog-checkpoint bodies and C2SP signed-note Ed25519 signatures (WebCrypto).
// Every function takes values and returns values: no fetching here.

const enc = new TextEncoder();

async function sha256(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const buf = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { buf.set(p, o); o += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
}

// leafHash is the RFC 6962 hash of a log entry: SHA-256(0x00 || entry).
export function leafHash(entry) {
  return sha256(Uint8Array.of(0), entry);
}

function nodeHash(left, right) {
  return sha256(Uint8Array.of(1), left, right);
}

export function equalBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// rootFromInclusionProof recomputes the tree root from a leaf hash at index in a tree of size, with the
// proof's hashes (RFC 9162 section 2.1.3.2). It returns null when the proof has the wrong shape.
// Indices are plain numbers (exact up to 2^53 entries).
export async function rootFromInclusionProof(index, size, leaf, proof) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size)) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0 || p.length !== 32) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

// checkInclusion reports whether proof shows the entry with leaf hash leaf at index in the tree of size
// whose root is root.
export async function checkInclusion(index, size, leaf, proof, root) {
  const r = await rootFromInclusionProof(index, size, leaf, proof);
  return r !== null && equalBytes(r, root);
}

// parseCheckpoint splits a signed checkpoint (C2SP tlog-checkpoint in a signed note) into its origin,
// tree size, root hash, the signed text and the signature lines. It throws on anything malformed.
export function parseCheckpoint(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("a checkpoint has a blank line before its signatures");
  const body = text.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length < 4) throw new Error("a checkpoint has an origin, a size and a root hash");
  const [origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw new Error("bad tree size");
  const root = fromBase64(rootText);
  if (root.length !== 32) throw new Error("bad root hash");
  const sigs = [];
  for (const line of text.slice(split + 2).split("\n")) {
    if (line === "") continue;
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error("bad signature line");
    const raw = fromBase64(m[2]);
    if (raw.length < 5) throw new Error("short signature");
    sigs.push({ name: m[1], keyHash: raw.slice(0, 4), sig: raw.slice(4) });
  }
  return { origin, size: Number(sizeText), root, body, sigs };
}

// parseVerifierKey parses a signed-note verifier key "name+hash+base64(0x01 || Ed25519 key)".
export function parseVerifierKey(vkey) {
  // The base64 key may itself contain "+": split at the first two only.
  const parts = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey);
  if (!parts) throw new Error("bad verifier key");
  parts.shift();
  const raw = fromBase64(parts[2]);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 verifier key");
  const keyHash = Uint8Array.from(parts[1].match(/../g), (x) => parseInt(x, 16));
  return { name: parts[0], keyHash, key: raw.slice(1), raw };
}

// verifyNote checks that the checkpoint text carries a valid Ed25519 signature by the verifier key vkey
// (C2SP signed-note): a signature line with the key's name and hash whose signature verifies over the
// note's text. It also checks that the key's hash is the one its name and bytes give.
export async function verifyNote(text, vkey) {
  const k = parseVerifierKey(vkey);
  const h = await sha256(enc.encode(k.name + "\n"), k.raw);
  if (!equalBytes(h.slice(0, 4), k.keyHash)) return false;
  const cp = parseCheckpoint(text);
  const key = await crypto.subtle.importKey("raw", k.key, { name: "Ed25519" }, false, ["verify"]);
  for (const s of cp.sigs) {
    if (s.name !== k.name || !equalBytes(s.keyHash, k.keyHash) || s.sig.length !== 64) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, key, s.sig, enc.encode(cp.body))) return true;
  }
  return false;
}

// checkReceipt checks a receipt of GET /v1/transactions/{index} (entry, hash, inclusionProof,
// checkpoint) against the log's verifier key: the entry hashes to the leaf, the proof leads from the
// leaf to the checkpoint's root, and the checkpoint is signed by the key. It returns {ok, steps}, one
// step per check with its outcome, for the page to show.
export async function checkReceipt(rc, vkey) {
  const steps = [];
  const step = (what, ok) => { steps.push({ what, ok }); return ok; };
  try {
    const cp = parseCheckpoint(rc.checkpoint);
    const signed = await verifyNote(rc.checkpoint, vkey);
    step("the checkpoint is signed by the log's key", signed);
    const entry = fromBase64(rc.entry);
    const leaf = await leafHash(entry);
    const leafOK = step("the entry's bytes hash to the leaf", "0x" + toHex(leaf) === String(rc.hash).toLowerCase());
    const included = step("the inclusion proof leads from the leaf to the checkpoint's root (tree of " + cp.size + ")",
      cp.size === rc.treeSize && await checkInclusion(rc.index, cp.size, leaf, rc.inclusionProof.map(fromBase64), cp.root));
    return { ok: signed && leafOK && included, steps, size: cp.size };
  } catch (e) {
    step("the receipt is well formed (" + e.message + ")", false);
    return { ok: false, steps };
  }
}

// Decoding of log entries in the browser (the binary entry format v1 of docs/ledger.md), so that the
// log explorer shows what the entry's bytes say, not only what the node says they say.
//
//   version 1 byte (= 1) | acceptTime 8 bytes (unix ms) | type 1 byte (the index in primaryTypes, from 1)
//   | members in EIP-712 declaration order | sigCount 1 byte | signatures, 65 bytes each
//
// Members: address 20 bytes; string 2-byte length and UTF-8; uint16 2 bytes; uint64 8 bytes; uint256 32 bytes;
// string[] 2-byte count, then each string. All big-endian.

const utf8 = new TextDecoder("utf-8", { fatal: true });

function hex(b) {
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// decodeEntry decodes entry bytes with the node's EIP-712 types and primary types (GET /v1/eip712) into
// {acceptTime, type, message, signatures}: uint64 and uint256 as decimal strings, addresses and signatures as
// lower-case hex. It throws on anything malformed or left over.
export function decodeEntry(bytes, eip712) {
  let o = 0;
  const need = (n) => { if (o + n > bytes.length) throw new Error("the entry is cut short"); const b = bytes.subarray(o, o + n); o += n; return b; };
  const u16 = () => { const b = need(2); return (b[0] << 8) | b[1]; };
  const str = () => utf8.decode(need(u16()));
  if (need(1)[0] !== 1) throw new Error("not a version 1 entry");
  let acceptTime = 0;
  for (const x of need(8)) acceptTime = acceptTime * 256 + x;
  const t = need(1)[0];
  const type = eip712.primaryTypes[t - 1];
  if (!type) throw new Error("unknown entry type " + t);
  const message = {};
  for (const f of eip712.types[type]) {
    switch (f.type) {
      case "address": message[f.name] = hex(need(20)); break;
      case "string": message[f.name] = str(); break;
      case "uint16": message[f.name] = u16(); break;
      case "uint64": { let n = 0n; for (const x of need(8)) n = (n << 8n) | BigInt(x); message[f.name] = n.toString(); break; }
      case "uint256": { let n = 0n; for (const x of need(32)) n = (n << 8n) | BigInt(x); message[f.name] = n.toString(); break; }
      case "string[]": { const n = u16(); const a = []; for (let i = 0; i < n; i++) a.push(str()); message[f.name] = a; break; }
      default: throw new Error("unknown member type " + f.type);
    }
  }
  const n = need(1)[0];
  if (n < 1 || n > 3) throw new Error("bad signature count");
  const signatures = [];
  for (let i = 0; i < n; i++) signatures.push(hex(need(65)));
  if (o !== bytes.length) throw new Error("bytes left over after the entry");
  return { acceptTime, type, message, signatures };
}

// sameAsShown reports whether a decoded entry says what the node's receipt shows: type, accept time,
// every member and every signature (addresses and hex compared without regard to case).
export function sameAsShown(decoded, rc) {
  const norm = (v) => Array.isArray(v) ? JSON.stringify(v.map(String)) : String(v).toLowerCase();
  if (decoded.type !== rc.type || decoded.acceptTime !== rc.acceptTime) return false;
  const shown = rc.message || {};
  const keys = Object.keys(decoded.message);
  if (Object.keys(shown).length !== keys.length) return false;
  for (const k of keys) if (!(k in shown) || norm(decoded.message[k]) !== norm(shown[k])) return false;
  const sigs = rc.signatures || [];
  return sigs.length === decoded.signatures.length && sigs.every((s, i) => s.toLowerCase() === decoded.signatures[i]);
}

// Verifies a Glovebox credential as an independent client would: with the stock SD-JWT VC library of the
// OpenWallet Foundation (@sd-jwt/sd-jwt-vc) and Node's own crypto, knowing only what docs/credentials.md
// says. credential/interop_test.go runs it; `npm ci` in this directory installs the library.
//
// Input (stdin, JSON): {"credential": "<SD-JWT>", "now": <unix seconds>, "holderKey": <private JWK or null>,
// "nonce": "…", "aud": "…"}.
// Output (stdout, JSON): what the library made of it, and of a presentation and a tampered copy:
//   metadataKid   the kid of the key taken from the issuer's /.well-known/jwt-vc-issuer
//   header        the issuer JWT's header
//   claims        every claim with every disclosure applied
//   keys          the claim names the holder may disclose (presentableKeys)
//   presented     the claims of a presentation that discloses only vehicle_id (made by the library)
//   presentedRaw  that presentation
//   kb            the verified key-binding JWT's payload, when holderKey was given
//   tampered      the library's error for the credential with one disclosure altered, or "dropped"
//   expired       the library's error when verifying a year later
import { createPublicKey, createPrivateKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { digest, generateSalt } from '@sd-jwt/crypto-nodejs';

const input = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.on('data', (d) => (s += d));
  process.stdin.on('end', () => resolve(s));
}));

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const [headerB64, payloadB64] = input.credential.split('~')[0].split('.');
const header = JSON.parse(Buffer.from(headerB64, 'base64url'));
const iss = JSON.parse(Buffer.from(payloadB64, 'base64url')).iss;

// SD-JWT VC, JWT VC Issuer Metadata: the well-known path goes between the host and the path of iss.
const u = new URL(iss);
const metadataURL = `${u.origin}/.well-known/jwt-vc-issuer${u.pathname === '/' ? '' : u.pathname}`;
const metadata = await (await fetch(metadataURL)).json();
if (metadata.issuer !== iss) throw new Error(`metadata issuer ${metadata.issuer} is not iss ${iss}`);
const jwk = metadata.jwks.keys.find((k) => k.kid === header.kid);
if (!jwk) throw new Error(`no key ${header.kid} at ${metadataURL}`);
const issuerKey = createPublicKey({ key: jwk, format: 'jwk' });

// Ed25519 (JWS alg EdDSA) with Node's crypto: the library leaves signature algorithms to the caller.
const verifier = async (data, sig) => nodeVerify(null, Buffer.from(data), issuerKey, Buffer.from(sig, 'base64url'));

// Key binding: the holder signs with its own key (ES256 here), the verifier checks it against cnf.jwk.
const holder = input.holderKey ? createPrivateKey({ key: input.holderKey, format: 'jwk' }) : null;
const es256 = { dsaEncoding: 'ieee-p1363' };
const kbSigner = async (data) => b64url(nodeSign('sha256', Buffer.from(data), { key: holder, ...es256 }));
const kbVerifier = async (data, sig, payload) => {
  const key = createPublicKey({ key: payload.cnf.jwk, format: 'jwk' });
  return nodeVerify('sha256', Buffer.from(data), { key, ...es256 }, Buffer.from(sig, 'base64url'));
};

const sdjwt = new SDJwtVcInstance({
  hasher: digest,
  hashAlg: 'sha-256',
  saltGenerator: generateSalt,
  verifier,
  kbSigner: holder ? kbSigner : undefined,
  kbSignAlg: 'ES256',
  kbVerifier,
});

const out = { metadataKid: jwk.kid };
const now = input.now;
const full = await sdjwt.verify(input.credential, { currentDate: now });
out.header = full.header;
out.claims = await sdjwt.getClaims(input.credential);
out.keys = (await sdjwt.presentableKeys(input.credential)).sort();

const presentation = await sdjwt.present(input.credential, { vehicle_id: true },
  holder ? { kb: { payload: { iat: now, aud: input.aud, nonce: input.nonce } } } : undefined);
out.presentedRaw = presentation;
const pv = await sdjwt.verify(presentation, holder
  ? { currentDate: now, keyBindingNonce: input.nonce, requiredClaimKeys: ['vehicle_id'] }
  : { currentDate: now, requiredClaimKeys: ['vehicle_id'] });
out.presented = pv.payload;
if (pv.kb) out.kb = pv.kb.payload;

// One disclosure altered by a character: the library must refuse it.
const parts = input.credential.split('~');
const d = Buffer.from(parts[1], 'base64url').toString().replace(/"vehicle_id",(\d)/, (_, n) => `"vehicle_id",${(+n + 1) % 10}`);
parts[1] = Buffer.from(d).toString('base64url');
// (This library drops a disclosure whose digest the issuer did not sign instead of refusing the whole
// SD-JWT, as RFC 9901 §7.1 step 5 asks: either way the altered value must not come out.)
try {
  const t = await sdjwt.verify(parts.join('~'), { currentDate: now });
  out.tampered = 'vehicle_id' in t.payload ? `accepted vehicle_id ${t.payload.vehicle_id}` : 'dropped';
} catch (e) {
  out.tampered = String(e.message || e);
}
try {
  await sdjwt.verify(input.credential, { currentDate: now + 366 * 24 * 3600 });
  out.expired = 'accepted';
} catch (e) {
  out.expired = String(e.message || e);
}
process.stdout.write(JSON.stringify(out));

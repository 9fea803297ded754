// The signed-in account: its signer (a decrypted key file or a browser wallet, kept in memory only) and
// its bearer token for /graphql and the access log (kept in this tab's sessionStorage, so a reload stays
// signed in for reading; signing after a reload asks for the key again).
import {
  unlockKeyFile, connectBrowserWallet, signIn, fetchEIP712, signTx, randomNonce, submitTransactions, WalletError,
} from "../wallet.js";

const KEY = "glovebox.session";
let signer = null;
let session = load();
let eip712 = null;
const listeners = new Set();

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (s && s.token && s.address && s.expires > Date.now() + 30000) return s;
  } catch (e) { /* nothing kept */ }
  return null;
}

export function onChange(f) { listeners.add(f); }
function changed() { for (const f of listeners) f(); }

// current is {address, kind} of the signed-in account, or null.
export function current() { return session; }
export function canSign() { return !!signer && !!session && signer.address === session.address; }

// signInWith signs the node's sign-in message with s and keeps the token.
async function signInWith(s) {
  const { message, signature } = await signIn(s);
  const body = new URLSearchParams({ grant_type: "urn:glovebox:params:oauth:grant-type:siwe", message, signature });
  const r = await fetch("/oauth/token", { method: "POST", body });
  const out = await r.json();
  if (!r.ok) throw new WalletError(out.error || "invalid_grant", out.error_description || "");
  signer = s;
  session = { address: s.address, kind: s.kind, token: out.access_token, expires: Date.now() + out.expires_in * 1000 };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  changed();
  return session;
}

export async function signInWithKeyFile(file, password, onProgress) {
  if (!file) throw new WalletError("no_keyfile", "");
  const json = await file.text();
  const s = await unlockKeyFile(json, password, onProgress);
  return signInWith(s);
}

export async function signInWithWallet(provider) {
  return signInWith(await connectBrowserWallet(provider));
}

export function signOut() {
  signer = null;
  session = null;
  sessionStorage.removeItem(KEY);
  changed();
}

// api reads a JSON route of the node; errors become WalletErrors with the API's code.
export async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.auth && session) headers.Authorization = "Bearer " + session.token;
  let r;
  try {
    r = await fetch(path, { ...opts, headers });
  } catch (e) {
    throw new WalletError("unavailable", String(e));
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    if (r.status === 401 && opts.auth) expired();
    throw new WalletError(body && body.error && body.error.code || "unavailable", body && body.error && body.error.message || "");
  }
  return body;
}

function expired() {
  session = null;
  sessionStorage.removeItem(KEY);
  changed();
}

// GraphQLError carries the first error's extensions.code, in upper case as GraphQL answers it.
export class GraphQLError extends WalletError {}

// gql runs a query with the session's token and returns data; any error fails it unless partial is
// set, when {data, errors} is returned.
export async function gql(query, variables = {}, partial = false) {
  const headers = { "Content-Type": "application/json" };
  if (session) headers.Authorization = "Bearer " + session.token;
  let r;
  try {
    r = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch (e) {
    throw new WalletError("unavailable", String(e));
  }
  const body = await r.json().catch(() => ({}));
  const errors = body.errors || [];
  if (errors.some((e) => e.extensions && e.extensions.code === "UNAUTHENTICATED")) expired();
  if (partial && body.data) return { data: body.data, errors };
  if (errors.length > 0) {
    const e = errors[0];
    throw new GraphQLError(e.extensions && e.extensions.code || "INTERNAL", e.message);
  }
  if (!r.ok) throw new WalletError("unavailable", "HTTP " + r.status);
  return body.data;
}

// requireSigner returns the signer, or fails with words that say how to get one back.
export function requireSigner() {
  if (!canSign()) throw new WalletError("need_signer", "");
  return signer;
}

export async function domain() {
  if (!eip712) eip712 = await fetchEIP712();
  return eip712;
}

// submit signs one transaction of type with the signed-in account (and any extra signers, over the
// same message) and submits it; it resolves with the receipt once the entry is durable in the log.
export async function submit(type, message, extra = [], onStep) {
  const s = requireSigner();
  const d = await domain();
  if (onStep) onStep(s.kind === "wallet" ? "Confirm in your wallet…" : "Signing…");
  const tx = await signTx(s, d, type, message);
  for (const x of extra) tx.signatures.push(await x.signTypedData(d.domain, d.types, type, tx.message));
  if (onStep) onStep("Writing it to the public log…");
  const [rc] = await submitTransactions([tx]);
  return rc;
}

// submitWith submits a transaction whose message (nonce and deadline included) another party already
// signed, adding the signed-in account's signature.
export async function submitWith(type, message, signatures, onStep) {
  const s = requireSigner();
  const d = await domain();
  if (onStep) onStep(s.kind === "wallet" ? "Confirm in your wallet…" : "Signing…");
  const own = await s.signTypedData(d.domain, d.types, type, message);
  if (onStep) onStep("Writing it to the public log…");
  const [rc] = await submitTransactions([{ type, message, signatures: [...signatures, own] }]);
  return rc;
}

export { randomNonce };

// Wallet code shared by the node's pages: a signer from a Web3 keystore file (decrypted here, never
// sent anywhere) or from a browser wallet (any EIP-1193 provider), EIP-712 signing of ledger
// transactions with the domain and types the node serves at /v1/eip712, submission, and error codes in
// words. A signer is {address, kind, signTypedData(domain, types, primaryType, message), signMessage(text)}.
import { Wallet, getAddress, hexlify, toUtf8Bytes } from "ethers";

// unlockKeyFile decrypts a Web3 Secret Storage v3 key file (as `glovebox key new` writes) with its
// password. onProgress gets a number from 0 to 1 while scrypt runs.
export async function unlockKeyFile(json, password, onProgress) {
  let w;
  try {
    w = await Wallet.fromEncryptedJson(json, password, (p) => onProgress && onProgress(p));
  } catch (e) {
    const msg = String(e && e.message || e);
    if (/password|invalid/i.test(msg)) throw new WalletError("wrong_password", msg);
    throw new WalletError("bad_keyfile", msg);
  }
  return {
    address: getAddress(w.address),
    kind: "keyfile",
    signTypedData: (domain, types, primaryType, message) => w.signTypedData(domain, { [primaryType]: types[primaryType] }, message),
    signMessage: (text) => w.signMessage(text),
  };
}

// discoverWallets finds the browser wallets: those that announce themselves (EIP-6963, so that several
// installed wallets can be told apart) within waitMs, else the injected window.ethereum, if any. Each is
// {name, provider}; name is "" for window.ethereum.
export function discoverWallets(waitMs = 400) {
  return new Promise((resolve) => {
    const found = [];
    const seen = new Set();
    const onAnnounce = (ev) => {
      const d = ev.detail;
      if (!d || !d.info || !d.provider || typeof d.provider.request !== "function" || seen.has(d.info.uuid)) return;
      seen.add(d.info.uuid);
      found.push({ name: String(d.info.name || "").slice(0, 40), provider: d.provider });
    };
    window.addEventListener("eip6963:announceProvider", onAnnounce);
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    setTimeout(() => {
      window.removeEventListener("eip6963:announceProvider", onAnnounce);
      if (found.length === 0 && hasBrowserWallet()) found.push({ name: "", provider: window.ethereum });
      resolve(found);
    }, waitMs);
  });
}

// hasBrowserWallet reports whether the page has an injected EIP-1193 provider.
export function hasBrowserWallet() {
  return typeof window !== "undefined" && !!window.ethereum && typeof window.ethereum.request === "function";
}

// connectBrowserWallet asks the injected EIP-1193 provider for an account and returns a signer that
// signs with eth_signTypedData_v4 and personal_sign.
export async function connectBrowserWallet(provider = window.ethereum) {
  let accounts;
  try {
    accounts = await provider.request({ method: "eth_requestAccounts" });
  } catch (e) {
    throw walletRefusal(e);
  }
  if (!accounts || accounts.length === 0) throw new WalletError("no_account", "the wallet gave no account");
  const address = getAddress(accounts[0]);
  return {
    address,
    kind: "wallet",
    async signTypedData(domain, types, primaryType, message) {
      const typed = {
        types: { EIP712Domain: types.EIP712Domain, [primaryType]: types[primaryType] },
        domain, primaryType, message,
      };
      try {
        return await provider.request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(typed)] });
      } catch (e) {
        throw walletRefusal(e);
      }
    },
    async signMessage(text) {
      try {
        return await provider.request({ method: "personal_sign", params: [hexlify(toUtf8Bytes(text)), address] });
      } catch (e) {
        throw walletRefusal(e);
      }
    },
  };
}

function walletRefusal(e) {
  if (e && e.code === 4001) return new WalletError("user_rejected", "you said no in your wallet");
  return new WalletError("wallet_error", String(e && e.message || e));
}

// WalletError carries a stable code (see errorText).
export class WalletError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// fetchEIP712 reads the node's EIP-712 domain and types.
export async function fetchEIP712(base = "") {
  const r = await fetch(base + "/v1/eip712");
  if (!r.ok) throw new WalletError("unavailable", "couldn't read the signing format");
  return r.json();
}

// randomNonce returns a fresh uint256 transaction nonce as a decimal string.
export function randomNonce() {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n.toString();
}

// signTx signs one ledger transaction of type with signer and returns it in the POST /v1/transactions
// format. message must hold every field of the type but nonce and deadline, which are added (a random
// nonce, a deadline ttlSeconds from now).
export async function signTx(signer, eip712, type, message, ttlSeconds = 3600) {
  const full = { ...message, nonce: randomNonce(), deadline: Math.floor(Date.now() / 1000) + ttlSeconds };
  const signature = await signer.signTypedData(eip712.domain, eip712.types, type, full);
  return { type, message: full, signatures: [signature] };
}

// submitTransactions posts signed transactions to the node and returns the receipts; it resolves only
// when they are durable in the log.
export async function submitTransactions(txs, base = "") {
  const r = await fetch(base + "/v1/transactions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(txs),
  });
  const body = await r.json();
  if (!r.ok) throw new WalletError(body.error && body.error.code || "unavailable", body.error && body.error.message || "");
  for (const item of body) if (item.error) throw new WalletError(item.error.code, item.error.message);
  return body;
}

// signIn signs the node's EIP-4361 challenge for signer and returns {message, signature}.
export async function signIn(signer, base = "") {
  const r = await fetch(base + "/v1/auth/challenge?address=" + signer.address);
  const body = await r.json();
  if (!r.ok) throw new WalletError(body.error && body.error.code || "unavailable", "");
  const signature = await signer.signMessage(body.message);
  return { message: body.message, signature };
}

// Words for error codes, for people who have never heard of keys.
const words = {
  wrong_password: "That passphrase does not open this key file. Check it and try again.",
  bad_keyfile: "This file is not a Glovebox key file. Choose the .json file made when you set up Glovebox.",
  no_keyfile: "Choose your key file first.",
  no_account: "Your wallet did not share an account. Open your wallet and try again.",
  user_rejected: "You cancelled in your wallet. Nothing was shared.",
  wallet_error: "Your wallet reported a problem. Try again, or use your key file.",
  unavailable: "Glovebox can't be reached right now. Try again in a moment.",
  request_expired: "This page is too old. Go back to the app and start again.",
  not_owner: "The account you signed in with does not own this car. Sign in with the key of the car's owner.",
  not_granted: "You have not allowed this app yet.",
  grant_mismatch: "Something changed while you were deciding. Reload the page and try again.",
  bad_signature: "The signature could not be checked. Try again.",
  nonce_used: "That signature was already used. Try again.",
  deadline_passed: "Your device's clock seems wrong. Check its date and time, then try again.",
  deadline_too_far: "Your device's clock seems wrong. Check its date and time, then try again.",
  expired: "Your device's clock seems wrong. Check its date and time, then try again.",
  no_vehicles: "This account has no cars registered in Glovebox. Sign in with the key you registered your car with.",
  invalid_grant: "Signing in did not work. Try again.",
  // The web app's own and the rest of the API's codes (docs/errors.md).
  need_signer: "To sign this change, sign in again with your key file or wallet (your key is kept only while the page is open).",
  malformed: "The node could not read that request. Reload the page and try again.",
  missing_signature: "A signature is missing: both parties must sign this.",
  wrong_signer: "This was signed by an account that may not make this change.",
  invalid_field: "One of the values is not accepted. Check the form: names are 1 to 64 characters, years realistic, web addresses complete (https://…).",
  unknown_vehicle: "There is no such car in Glovebox.",
  unknown_device: "This device is not registered in Glovebox. Its maker or the device itself must register it first.",
  unknown_app: "There is no such app in Glovebox.",
  unknown_permission: "One of the permissions is not known.",
  vehicle_burned: "This car was retired and cannot be changed.",
  already_registered: "This is already registered.",
  already_paired: "This device is already paired to a car. Unpair it there first.",
  kind_taken: "This car already has a device of that kind. Unpair it first.",
  not_paired: "This device is not paired to this car.",
  no_grant: "This app has no access to this car (any more).",
  unauthenticated: "Your sign-in has expired. Sign in again.",
  invalid_request: "The request was not accepted. Reload the page and try again.",
  rate_limited: "Too many requests at once. Wait a moment and try again.",
  forbidden: "Only the car's owner can see this.",
  not_found: "That was not found.",
  too_large: "That is too large.",
  internal: "The node had a problem. Nothing was changed. Try again.",
  bad_range: "Choose a start before the end, at most 31 days apart.",
  short_password: "Choose a passphrase of at least 8 characters.",
  proof_failed: "This entry did NOT check out against the signed checkpoint. The node may be misbehaving: run glovebox verify.",
  retention_too_long: "Keep the data for at most 3650 days (ten years), or 0 to keep it until you erase it.",
  before_in_future: "Choose a time that has passed: only what was already recorded can be erased.",
  never_owned: "This account never owned this car, so it cannot erase the car's data.",
  bad_date: "One of the dates is not accepted. Choose them again.",
  inverted_range: "Choose a start before the end.",
  bad_snapshot: "The export changed while it was downloading. Start it again.",
  export_broken: "The download broke off. Press Export to start it again.",
  bad_pairing: "That is not a device's pairing signature. Paste the JSON line printed by `glovebox device pair-sign`.",
  UNAUTHENTICATED: "Your sign-in has expired. Sign in again.",
  FORBIDDEN: "You may not read this.",
  NOT_FOUND: "There is no such car.",
  BAD_REQUEST: "That range or value is not accepted.",
  RATE_LIMITED: "Too many requests at once. Wait a moment and try again.",
  TOO_COMPLEX: "That question is too big for one request.",
  INTERNAL: "The node had a problem. Try again.",
};

// errorText returns the words for an error (a WalletError or any error with a code).
export function errorText(e) {
  const code = e && e.code;
  return words[code] || "Something went wrong" + (code ? " (" + code + ")" : "") + ". Try again.";
}

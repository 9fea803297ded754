// Sign in to a Glovebox node with ethers v6 and read a vehicle's latest signals over GraphQL.
//
//   npm install
//   GLOVEBOX_KEY=0x… node signin.mjs [vehicleId]
//   GLOVEBOX_KEYSTORE=owner.json GLOVEBOX_PASSPHRASE=… node signin.mjs [vehicleId]
//
// GLOVEBOX_NODE is the node's base URL (default http://127.0.0.1:8080). The flow is the one in
// docs/graphql.md: GET /v1/auth/challenge, personal_sign of the message as it is, POST /oauth/token,
// then POST /graphql with "Authorization: Bearer <token>".
import { readFile } from "node:fs/promises";
import { Wallet } from "ethers";

const node = (process.env.GLOVEBOX_NODE ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const vehicle = Number(process.argv[2] ?? 1);

const query = `query Latest($id: Int!) {
  signalsLatest(tokenId: $id) {
    lastSeen
    speed { timestamp value }
    powertrainTransmissionTravelledDistance { timestamp value }
    currentLocationApproximateCoordinates { timestamp value { latitude longitude } }
  }
}`;

async function loadWallet() {
  if (process.env.GLOVEBOX_KEY) {
    const hex = process.env.GLOVEBOX_KEY.trim();
    return new Wallet(hex.startsWith("0x") ? hex : "0x" + hex);
  }
  if (process.env.GLOVEBOX_KEYSTORE) {
    const json = await readFile(process.env.GLOVEBOX_KEYSTORE, "utf8");
    return Wallet.fromEncryptedJson(json, process.env.GLOVEBOX_PASSPHRASE ?? "");
  }
  throw new Error("set GLOVEBOX_KEY (hex private key) or GLOVEBOX_KEYSTORE and GLOVEBOX_PASSPHRASE");
}

// json reads an answer, throwing on an HTTP error with the node's error body.
async function json(resp) {
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${resp.url}: HTTP ${resp.status}: ${text.trim()}`);
  return JSON.parse(text);
}

async function signIn(wallet) {
  const challenge = await json(await fetch(`${node}/v1/auth/challenge?address=${wallet.address}`));
  // personal_sign (EIP-191) of the message exactly as received.
  const signature = await wallet.signMessage(challenge.message);
  const token = await json(await fetch(`${node}/oauth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "urn:glovebox:params:oauth:grant-type:siwe",
      message: challenge.message,
      signature,
    }),
  }));
  console.error(`signed in as ${wallet.address}; the token is valid for ${token.expires_in} s`);
  return token.access_token;
}

const wallet = await loadWallet();
const token = await signIn(wallet);
const resp = await fetch(`${node}/graphql`, {
  method: "POST",
  headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
  body: JSON.stringify({ query, variables: { id: vehicle } }),
});
console.log(JSON.stringify(await resp.json(), null, 2));

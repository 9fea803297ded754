// Sign in to a Glovebox node with ethers v6 and read a vehicle's latest signals over GraphQL.
//
//   npm install
//   GLOVEBOX_KEY=../../glovebox-data/demo-keys/owner.json node signin.mjs [vehicleId]
//
// GLOVEBOX_KEY is the path of a key file (Web3 Secret Storage v3, as `glovebox key new` writes it), as for
// the glovebox command; its passphrase is read from the file GLOVEBOX_PASSPHRASE_FILE, or asked on the
// terminal. GLOVEBOX_NODE is the node's base URL (default http://127.0.0.1:8080). The flow is the one in
// docs/graphql.md: GET /v1/auth/challenge, personal_sign of the message as it is, POST /oauth/token,
// then POST /graphql with "Authorization: Bearer <token>".
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
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
  const file = process.env.GLOVEBOX_KEY;
  if (!file) throw new Error("set GLOVEBOX_KEY to the path of a key file (e.g. glovebox-data/demo-keys/owner.json)");
  let json;
  try {
    json = await readFile(file, "utf8");
  } catch (e) {
    // Not repeating the name: should someone have put a private key in GLOVEBOX_KEY, it is not printed.
    throw new Error(`couldn't read the key file named by GLOVEBOX_KEY (a path): ${e.code}`);
  }
  const passFile = process.env.GLOVEBOX_PASSPHRASE_FILE;
  const passphrase = passFile
    ? (await readFile(passFile, "utf8")).replace(/[\r\n]+$/, "")
    : await askHidden(`Passphrase for ${file}: `);
  return Wallet.fromEncryptedJson(json, passphrase);
}

// askHidden reads a line from the terminal without echoing it.
async function askHidden(prompt) {
  if (!process.stdin.isTTY) throw new Error("set GLOVEBOX_PASSPHRASE_FILE (standard input is not a terminal to ask on)");
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  rl._writeToOutput = () => {}; // no echo
  process.stderr.write(prompt);
  const answer = await new Promise((resolve) => rl.question("", resolve));
  rl.close();
  process.stderr.write("\n");
  return answer;
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

// An app's webhook endpoint built only on the stock Standard Webhooks library: node receiver.mjs, then the
// webhook's secret (whsec_…) as the first line of standard input (the node tells it only when the webhook is
// created, which needs the endpoint up; requests wait for it). It answers the verification challenge, verifies every request with the library (the v1 HMAC signature
// and the timestamp) and answers 204 when it verifies, 400 otherwise. It prints {"port":N} once listening,
// then one JSON line per request: {"verified":bool, "id", "type", "error"?, "event"?}.
import http from "node:http";
import readline from "node:readline";
import { Webhook } from "standardwebhooks";

const webhook = new Promise((resolve) => {
  const rl = readline.createInterface({ input: process.stdin });
  rl.once("line", (line) => resolve(new Webhook(line.trim())));
});
const out = (v) => process.stdout.write(JSON.stringify(v) + "\n");

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const wh = await webhook;
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      event = wh.verify(body, req.headers);
    } catch (e) {
      out({ verified: false, id: req.headers["webhook-id"], error: String(e && e.message) });
      res.writeHead(400).end();
      return;
    }
    out({ verified: true, id: req.headers["webhook-id"], type: event.type, event });
    if (event.type === "glovebox.webhook.verify") {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ challenge: event.data.challenge }));
      return;
    }
    res.writeHead(204).end();
  });
});
server.listen(0, "127.0.0.1", () => out({ port: server.address().port }));

// A GraphQL subscriber built only on the stock graphql-ws client (graphql-transport-ws over the stock ws
// WebSocket): node subscribe.mjs <ws URL> <bearer token> <query>. It prints one JSON line per event:
// {"connected":true}, {"next":<payload>}, {"error":<error>}, {"complete":true}, then exits.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, query] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: token ? { Authorization: "Bearer " + token } : undefined,
  retryAttempts: 0,
  onNonLazyError: () => {}, // reported through the subscription's error sink
  lazy: false,
  on: { connected: () => out({ connected: true }) },
});

client.subscribe(
  { query },
  {
    next: (payload) => out({ next: payload }),
    error: (err) => {
      // A close event or an array of GraphQL errors.
      out({ error: err && err.code !== undefined ? { closeCode: err.code, reason: err.reason } : err });
      client.dispose();
      process.exit(0);
    },
    complete: () => {
      out({ complete: true });
      client.dispose();
      process.exit(0);
    },
  },
);

// The GraphQL playground served at /graphql/playground: GraphiQL (schema docs, autocomplete, history)
// bundled with React into one script, nothing loaded from elsewhere. Queries run as the account signed
// in to the web app in this tab (its token is in sessionStorage, shared by every page of this origin in
// the tab), or as the account of a key file unlocked here; the example tabs are DIMO's kinds of queries.
import "graphiql/graphiql.css";
import "./playground.css";
import React from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import * as session from "../app/session.js";
import { errorText } from "../wallet.js";
import latest from "./queries/1-latest.graphql";
import history from "./queries/2-history.graphql";
import available from "./queries/3-available.graphql";
import vehicles from "./queries/4-vehicles.graphql";
import accessLog from "./queries/5-access-log.graphql";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

// The sign-in bar: who queries run as, and a key file form.
const bar = document.getElementById("signin");
function renderBar(message = "") {
  bar.textContent = "";
  const s = session.current();
  const home = el("a", { href: "/", class: "home" }, "Glovebox");
  if (s) {
    bar.append(home, el("span", { id: "who" }, "Queries run as ", el("code", { title: s.address }, s.address)),
      el("button", { type: "button", id: "signout", onclick: () => { session.signOut(); renderBar("Signed out: queries run without a token."); } }, "Sign out"));
  } else {
    const file = el("input", { type: "file", id: "keyfile", accept: ".json,application/json", "aria-label": "Key file" });
    const pass = el("input", { type: "password", id: "passphrase", placeholder: "Passphrase", autocomplete: "current-password", "aria-label": "Passphrase" });
    const go = el("button", { type: "submit", id: "unlock" }, "Sign in");
    const form = el("form", { id: "keyfile-form", onsubmit: async (ev) => {
      ev.preventDefault();
      go.disabled = true;
      note.textContent = "Unlocking the key (a few seconds)…";
      try {
        await session.signInWithKeyFile(file.files[0], pass.value);
        renderBar("Signed in.");
      } catch (e) {
        note.textContent = errorText(e);
        go.disabled = false;
      }
    } }, el("span", {}, "Not signed in: queries of vehicle data need a token. Sign in with a key file "), file, pass, go,
      el("span", {}, " or in the "), el("a", { href: "/" }, "web app"), el("span", {}, " (same tab)."));
    bar.append(home, form);
  }
  const note = el("span", { id: "note", role: "status" }, message);
  bar.append(note);
}
renderBar();

async function fetcher(params, opts) {
  const headers = { "Content-Type": "application/json", ...(opts && opts.headers) };
  const s = session.current();
  if (s && !headers.Authorization) headers.Authorization = "Bearer " + s.token;
  const r = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify(params) });
  return r.json();
}

// The examples read the demo owner's car, tokenId 1; the history example the last six hours.
const to = new Date(Math.floor(Date.now() / 60000) * 60000);
const from = new Date(to.getTime() - 6 * 3600 * 1000);
const defaultTabs = [
  { query: latest },
  { query: history.replace(/from: "[^"]*", to: "[^"]*"/, `from: "${from.toISOString()}", to: "${to.toISOString()}"`) },
  { query: available },
  { query: vehicles },
  { query: accessLog },
];

createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, { fetcher, defaultTabs, shouldPersistHeaders: false }),
);

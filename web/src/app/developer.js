// For developers: register an app (its key made in the browser, or a key file), edit its name and
// redirect URIs, see how many cars granted what, copy the first steps of Connect and GraphQL, and manage
// the app's webhooks (webhooks.js).
import { Wallet } from "ethers";
import { h, act, field, section, empty, addr, copyButton } from "./ui.js";
import * as session from "./session.js";
import { lockedNotice } from "./signin.js";
import { account, app, forgetApp, permissionTitle } from "./data.js";
import { unlockKeyFile } from "../wallet.js";
import { webhooksPanel } from "./webhooks.js";

export async function developerView(ctx) {
  const me = session.current();
  const list = h("div", { id: "apps", class: "apps", "aria-busy": "true" }, h("p", { class: "hint" }, "Loading your apps…"));
  ctx.draw(h("div", { class: "head" }, h("h1", {}, "Developers"), h("a", { class: "button secondary", href: "#register-app" }, "Register an app")),
    lockedNotice(ctx.reload),
    h("p", { class: "lead" }, "An app is an account: its address is the OAuth client id. Drivers grant it access to their cars through Connect; it reads them over GraphQL."),
    list, registerForm(ctx));
  const acc = await account(me.address);
  if (ctx.stale()) return;
  list.textContent = "";
  list.removeAttribute("aria-busy");
  if (!acc.apps || acc.apps.length === 0) { list.append(empty("You have no apps yet.")); return; }
  for (const a of acc.apps) list.append(await appCard(ctx, a));
}

async function appCard(ctx, address) {
  forgetApp(address);
  const [a, held] = await Promise.all([app(address), account(address)]);
  const now = Date.now() / 1000;
  const live = (held.grantsHeld || []).filter((g) => g.expiresAt > now);
  const perms = new Map();
  for (const g of live) for (const p of g.permissions) perms.set(p, (perms.get(p) || 0) + 1);
  const name = h("input", { value: a.name, required: true, maxlength: 64, id: "edit-name-" + address });
  const uris = h("textarea", { rows: 3, spellcheck: false, id: "edit-uris-" + address }, (a.redirectUris || []).join("\n"));
  const save = h("button", { type: "submit", class: "primary", id: "edit-save-" + address }, "Save changes");
  const form = h("form", { class: "stack" }, field("Name drivers see", name), field("Redirect URIs, one per line", uris,
    "https:// (or http:// on localhost), at most 10. The consent screen sends drivers back only to these."), save);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(save, "Saving…", async (step) => {
      await session.submit("UpdateApp", { app: address, name: name.value.trim(), redirectUris: lines(uris.value) }, [], step);
      ctx.reload();
    }, "Saved: drivers now see “" + name.value.trim() + "”.");
  });
  const node = location.origin;
  const redirect = (a.redirectUris || [])[0] || "https://your.app/callback";
  const authURL = node + "/oauth/authorize?response_type=code&client_id=" + address + "&redirect_uri=" + encodeURIComponent(redirect) +
    "&scope=" + encodeURIComponent("openid vehicle:signals") + "&state=STATE&nonce=NONCE&code_challenge=CHALLENGE&code_challenge_method=S256" +
    "&purpose=" + encodeURIComponent("Why you need the data");
  const goSnippet = `cfg := oauth2.Config{
	ClientID:    "${address}",
	Endpoint:    provider.Endpoint(), // provider, _ := oidc.NewProvider(ctx, "${node}")
	RedirectURL: "${redirect}",
	Scopes:      []string{oidc.ScopeOpenID, "vehicle:signals"},
}
verifier := oauth2.GenerateVerifier()
url := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
	oauth2.SetAuthURLParam("purpose", "Why you need the data"))
// … in the callback:
tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))`;
  const gqlSnippet = `curl -s ${node}/graphql -H "Authorization: Bearer $ACCESS_TOKEN" -H 'Content-Type: application/json' \\
  -d '{"query": "{ vehicles { nodes { tokenId definition { make model year } } } signalsLatest(tokenId: 1) { speed { value timestamp } } }"}'`;
  return h("article", { class: "card app", "data-app": address },
    h("div", { class: "grant-head" }, h("h2", {}, a.name), addr(address), copyButton(address, "Copy address")),
    h("p", { class: "meta", id: "app-stats-" + address }, live.length === 0 ? "No car has granted access yet." :
      live.length + " car" + (live.length > 1 ? "s" : "") + " granted access: " + [...perms].map(([p, n]) => permissionTitle(p) + " (" + n + ")").join(", ") + "."),
    h("details", {}, h("summary", {}, "Edit name and redirect URIs"), form),
    h("details", {}, h("summary", {}, "Connect: ask drivers for access"),
      h("p", {}, "Send the driver to this URL (PKCE S256; any OAuth 2.0 / OpenID Connect library builds it with the issuer ", h("code", {}, node), "):"),
      h("pre", { class: "code url", tabindex: "0" }, authURL), copyButton(authURL),
      h("p", {}, "With Go's golang.org/x/oauth2 and go-oidc:"), h("pre", { class: "code", tabindex: "0", "aria-label": "Go code" }, goSnippet), copyButton(goSnippet)),
    h("details", {}, h("summary", {}, "Your first GraphQL query"),
      h("pre", { class: "code", tabindex: "0", "aria-label": "curl command" }, gqlSnippet), copyButton(gqlSnippet),
      h("p", {}, "Try queries in the ", h("a", { href: "/graphql/playground" }, "playground"), ".")),
    webhooksPanel(address));
}

function lines(s) {
  return s.split(/\s*\n\s*/).map((x) => x.trim()).filter(Boolean);
}

function registerForm(ctx) {
  const name = h("input", { id: "app-name", required: true, maxlength: 64, autocomplete: "off" });
  const uris = h("textarea", { id: "app-uris", rows: 3, required: true, spellcheck: false, placeholder: "https://your.app/callback" });
  const gen = h("input", { type: "radio", name: "app-key", id: "app-key-new", value: "new", checked: true });
  const useFile = h("input", { type: "radio", name: "app-key", id: "app-key-file", value: "file" });
  const keyFile = h("input", { type: "file", id: "app-keyfile", accept: ".json,application/json" });
  const keyPass = h("input", { type: "password", id: "app-keypass", autocomplete: "off" });
  const fileBox = h("div", { class: "stack", hidden: true }, field("The app's key file", keyFile), field("Its passphrase", keyPass));
  for (const r of [gen, useFile]) r.addEventListener("change", () => { fileBox.hidden = !useFile.checked; });
  const submit = h("button", { type: "submit", class: "primary", id: "app-submit" }, "Register the app");
  const result = h("div", { id: "app-result", "aria-live": "polite" });
  const form = h("form", { class: "stack", id: "register-app" },
    field("Name drivers see", name),
    field("Redirect URIs, one per line", uris, "https:// (or http:// on localhost), at most 10."),
    h("fieldset", {}, h("legend", {}, "The app's key (its address is the client id)"),
      h("label", { class: "check" }, gen, " Make a new key in this browser"),
      h("label", { class: "check" }, useFile, " Use a key file I have"), fileBox),
    submit, result);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(submit, "Preparing the app's key…", async (step) => {
      const me = session.current();
      let key;
      let made = null;
      if (useFile.checked) {
        key = await unlockKeyFile(await keyFile.files[0].text(), keyPass.value);
      } else {
        made = Wallet.createRandom();
        key = { address: made.address, signTypedData: (d, t, p, m) => made.signTypedData(d, { [p]: t[p] }, m) };
      }
      const rc = await session.submit("RegisterApp", { app: key.address, owner: me.address, name: name.value.trim(), redirectUris: lines(uris.value) }, [key], step);
      result.textContent = "";
      result.append(h("div", { class: "notice ok" }, h("p", {}, "Registered “" + name.value.trim() + "”, client id ", h("code", { id: "new-app" }, key.address), " (log entry " + rc.index + ")."),
        made ? saveKey(made) : null));
      const list = document.getElementById("apps");
      if (list) {
        if (list.querySelector(".empty")) list.textContent = "";
        list.append(await appCard(ctx, key.address));
      }
      return key.address;
    }, "Registered: the app can now ask drivers for access.");
  });
  return section("Register an app", form);
}

// saveKey offers the app's new key: a key file encrypted with a passphrase of the developer's choice, or
// the raw private key. It is not kept anywhere else.
function saveKey(w) {
  const pass = h("input", { type: "password", id: "app-save-pass", autocomplete: "new-password", minlength: 8 });
  const btn = h("button", { type: "button", class: "secondary" }, "Download the key file");
  const link = h("a", { hidden: true, download: "app-" + w.address.slice(2, 10).toLowerCase() + ".json" }, "key file");
  btn.addEventListener("click", () => act(btn, "Encrypting the key. This takes a few seconds…", async () => {
    if (pass.value.length < 8) throw Object.assign(new Error("short"), { code: "short_password" });
    const json = await w.encrypt(pass.value);
    link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
    link.click();
  }, "Saved the app's key file. Keep it safe: it signs for the app."));
  const raw = h("code", { hidden: true, class: "secret" }, w.privateKey);
  const show = h("button", { type: "button", class: "small", onclick: () => { raw.hidden = !raw.hidden; } }, "Show the private key");
  return h("div", { class: "stack" }, h("p", {}, h("strong", {}, "Save the app's key now: "), "this page does not keep it."),
    field("Passphrase for the key file", pass), h("div", { class: "row" }, btn, show), raw, link);
}


// Sign-in: with the key file made by `glovebox key new` (decrypted here, never sent) or a browser
// wallet. Either way the account signs the node's sign-in message and gets a token.
import { discoverWallets } from "../wallet.js";
import { h, act, field, say } from "./ui.js";
import * as session from "./session.js";

export function signInView(why, then) {
  const file = h("input", { type: "file", id: "keyfile", accept: ".json,application/json", required: true });
  const pass = h("input", { type: "password", id: "password", autocomplete: "current-password" });
  const bar = h("progress", { id: "unlock-progress", max: 100, value: 0, class: "bar", "aria-label": "Unlocking the key" });
  bar.style.visibility = "hidden";
  const unlock = h("button", { type: "submit", class: "primary", id: "unlock" }, "Unlock and sign in");
  const form = h("form", { id: "keyfile-form", class: "stack" },
    field("Key file", file, "The .json file made by glovebox key new, or exported from a wallet. It stays on this device."),
    field("Passphrase", pass),
    bar, unlock);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(unlock, "Unlocking your key. This takes a few seconds…", async () => {
      bar.style.visibility = "visible";
      try {
        await session.signInWithKeyFile(file.files[0], pass.value, (p) => { bar.value = Math.round(p * 100); });
      } finally {
        bar.style.visibility = "hidden";
      }
      pass.value = "";
      then();
    }, "Signed in.");
  });
  const looking = h("p", { class: "hint" }, "Looking for browser wallets…");
  const wallets = h("div", { id: "wallet-choice", class: "wallets" }, looking);
  discoverWallets().then((found) => {
    looking.remove();
    for (const w of found) {
      const b = h("button", { type: "button", class: "secondary", id: wallets.childElementCount === 0 ? "use-wallet" : null },
        w.name ? "Use " + w.name : "Use my wallet app");
      b.addEventListener("click", () => act(b, "Open " + (w.name || "your wallet") + " to continue…", async () => {
        await session.signInWithWallet(w.provider);
        then();
      }, "Signed in."));
      wallets.append(b);
    }
    if (found.length === 0) wallets.append(h("p", { class: "hint" }, "No browser wallet on this device. Install one (MetaMask, Rabby, Coinbase Wallet …) or use your key file."));
  });
  return h("div", { class: "signin" },
    h("h1", {}, "Sign in"),
    h("p", { class: "lead" }, why || "See your cars, who can see their data, and every access. You sign in with your own key: Glovebox never sees it."),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "s-keyfile" }, h("h2", { id: "s-keyfile" }, "With your key file"), form),
      h("section", { class: "card", "aria-labelledby": "s-wallet" }, h("h2", { id: "s-wallet" }, "With a browser wallet"),
        h("p", {}, "Any Ethereum wallet works: it asks you to sign a sign-in message."), wallets)),
  );
}

// lockedNotice is shown above views with changes to sign when the key is not unlocked in this tab
// (after a reload: the token is kept, the key is not).
export function lockedNotice(then) {
  if (session.canSign()) return null;
  return h("div", { class: "notice", id: "locked" }, h("p", {}, "You can look around, but your key is not unlocked in this tab, so you cannot sign changes. "),
    h("button", { type: "button", class: "secondary", onclick: () => { session.signOut(); say(""); then(); } }, "Unlock my key"));
}

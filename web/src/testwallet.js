// A browser wallet for tests: an EIP-1193 provider (window.ethereum) that signs with an ethers.js Wallet,
// as most wallets do. Not served by the node; the connect tests inject it into the page.
import { Wallet, getBytes } from "ethers";

globalThis.GloveboxTestWallet = {
  install(privateKey) {
    const w = new Wallet(privateKey);
    const calls = [];
    const provider = {
      isGloveboxTestWallet: true,
      calls,
      async request({ method, params }) {
        calls.push(method);
        switch (method) {
          case "eth_requestAccounts":
          case "eth_accounts":
            return [w.address];
          case "eth_chainId":
            return "0x1";
          case "eth_signTypedData_v4": {
            const [from, json] = params;
            if (from.toLowerCase() !== w.address.toLowerCase()) throw Object.assign(new Error("unknown account"), { code: 4100 });
            const typed = JSON.parse(json);
            const types = { ...typed.types };
            delete types.EIP712Domain;
            return w.signTypedData(typed.domain, types, typed.message);
          }
          case "personal_sign": {
            const [hex, from] = params;
            if (from.toLowerCase() !== w.address.toLowerCase()) throw Object.assign(new Error("unknown account"), { code: 4100 });
            return w.signMessage(getBytes(hex));
          }
          default:
            throw Object.assign(new Error("unsupported method " + method), { code: 4200 });
        }
      },
    };
    // Injected as window.ethereum and announced (EIP-6963), as wallets do.
    window.ethereum = provider;
    const info = { uuid: "6f0c1e2a-6b1d-4a57-9f0e-0b6f4e1d2c3a", name: "Test Wallet", icon: "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>", rdns: "dev.glovebox.testwallet" };
    const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
    window.addEventListener("eip6963:requestProvider", announce);
    announce();
  },
};

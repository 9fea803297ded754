// The web app's credential checks, for tests: they run them against credentials the node issued and
// tampered with in Go, and compare with credential.Verify. Not served by the node.
import * as credential from "./app/credential.js";

globalThis.GloveboxCredential = credential;

// The web app's log checks, for tests: they run them against vectors made by Go's golang.org/x/mod
// sumdb/tlog and sumdb/note. Not served by the node.
import * as tlog from "./app/tlog.js";

globalThis.GloveboxTlog = tlog;

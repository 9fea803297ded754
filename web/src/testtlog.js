// The web app's log checks and entry decoder, for tests: they run them against vectors made by Go's
// golang.org/x/mod sumdb/tlog and sumdb/note, and against the node's own entries. Not served by the node.
import * as tlog from "./app/tlog.js";
import * as entry from "./app/entry.js";

globalThis.GloveboxTlog = { ...tlog, ...entry };

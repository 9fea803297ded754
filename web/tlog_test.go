package web_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/ledger"
)

// hashes is an in-memory tlog.HashReader over the stored hashes of a tree.
type hashes []tlog.Hash

func (h hashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h[x]
	}
	return out, nil
}

type proofVector struct {
	Index  int64    `json:"index"`
	Size   int64    `json:"size"`
	Entry  string   `json:"entry"`
	Proof  []string `json:"proof"`
	Root   string   `json:"root"`
	Hash   string   `json:"hash"` // the receipt's 0x-hex leaf hash
	Signed string   `json:"checkpoint"`
}

type noteVector struct {
	Text  string `json:"text"`
	Key   string `json:"key"`
	Valid bool   `json:"valid"`
	What  string `json:"what"`
}

// TestTlogChecksAgainstGo runs the web app's log checks (web/src/app/tlog.js) in Chromium against
// proofs and signed checkpoints made by golang.org/x/mod's sumdb/tlog and sumdb/note, the code the node
// itself uses: every leaf of every tree of 1 to 40 entries must check, and a flipped bit in any proof
// hash, the leaf or the root, another index, a proof one hash too long or short, another entry or
// tree size in the receipt must fail; a checkpoint must verify with its key and
// fail with any other key, any changed character of the key, or any changed character of the text.
func TestTlogChecksAgainstGo(t *testing.T) {
	ctx := browser(t)
	var proofs []proofVector
	var stored hashes
	b64 := base64.StdEncoding.EncodeToString
	const origin = "glovebox.test/vectors"
	// A key whose base64 holds a "+", as about half of them do.
	var skey, vkey string
	for {
		var err error
		if skey, vkey, err = note.GenerateKey(rand.Reader, origin); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(vkey[len(origin)+10:], "+") {
			break
		}
	}
	signer, _ := note.NewSigner(skey)
	for n := int64(0); n < 40; n++ {
		entry := []byte(fmt.Sprintf("entry %d", n))
		hs, err := tlog.StoredHashes(n, entry, stored)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		size := n + 1
		root, err := tlog.TreeHash(size, stored)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", origin, size, b64(root[:]))}, signer)
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < size; i++ {
			p, err := tlog.ProveRecord(size, i, stored)
			if err != nil {
				t.Fatal(err)
			}
			e := []byte(fmt.Sprintf("entry %d", i))
			leaf := tlog.RecordHash(e)
			v := proofVector{Index: i, Size: size, Entry: b64(e), Root: b64(root[:]), Hash: fmt.Sprintf("0x%x", leaf[:]), Signed: string(cp), Proof: []string{}}
			for _, h := range p {
				v.Proof = append(v.Proof, b64(h[:]))
			}
			proofs = append(proofs, v)
		}
	}
	// Notes: the right key, every one-character change of the key and of the text, another key of the
	// same name.
	text := fmt.Sprintf("%s\n7\n%s\n", origin, b64(make([]byte, 32)))
	signed, _ := note.Sign(&note.Note{Text: text}, signer)
	notes := []noteVector{{Text: string(signed), Key: vkey, Valid: true, What: "the key"}}
	_, other, _ := note.GenerateKey(rand.Reader, origin)
	notes = append(notes, noteVector{Text: string(signed), Key: other, What: "another key of the same name"})
	for i := range vkey {
		k := []byte(vkey)
		k[i] = flipChar(k[i])
		notes = append(notes, noteVector{Text: string(signed), Key: string(k), What: fmt.Sprintf("key character %d changed", i)})
	}
	for i := range text {
		s := []byte(signed)
		s[i] = flipChar(s[i])
		notes = append(notes, noteVector{Text: string(s), Key: vkey, What: fmt.Sprintf("text character %d changed", i)})
	}

	// A secure context (localhost) for WebCrypto, and the module.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>tlog checks</title>")
	}))
	defer srv.Close()
	module, err := os.ReadFile(filepath.Join("testdata", "tlog.js"))
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(proofs)
	nj, _ := json.Marshal(notes)
	js := string(module) + `;(async () => {
  const T = GloveboxTlog;
  const fails = [];
  const d = (s) => T.fromBase64(s);
  let checked = 0;
  for (const v of ` + string(pj) + `) {
    const leaf = await T.leafHash(d(v.entry));
    const proof = v.proof.map(d);
    const root = d(v.root);
    const name = "leaf " + v.index + " of " + v.size;
    if (!(await T.checkInclusion(v.index, v.size, leaf, proof, root))) fails.push(name + ": valid proof refused");
    const rc = { index: v.index, treeSize: v.size, entry: v.entry, hash: v.hash, inclusionProof: v.proof, checkpoint: v.checkpoint };
    const res = await T.checkReceipt(rc, ` + "`" + vkey + "`" + `);
    if (!res.ok) fails.push(name + ": receipt refused " + JSON.stringify(res.steps));
    const flip = (b, bit) => { const c = Uint8Array.from(b); c[bit >> 3] ^= 1 << (bit & 7); return c; };
    for (let j = 0; j < proof.length; j++) {
      const bad = proof.slice();
      bad[j] = flip(proof[j], (j * 37 + v.index) % 256);
      if (await T.checkInclusion(v.index, v.size, leaf, bad, root)) fails.push(name + ": bit flip in proof hash " + j + " accepted");
      checked++;
    }
    if (await T.checkInclusion(v.index, v.size, flip(leaf, v.index % 256), proof, root)) fails.push(name + ": flipped leaf accepted");
    if (await T.checkInclusion(v.index, v.size, leaf, proof, flip(root, 7))) fails.push(name + ": flipped root accepted");
    if (v.size > 1 && await T.checkInclusion(v.index ^ 1, v.size, leaf, proof, root)) fails.push(name + ": other index accepted");
    // (The same proof may fit a tree of another size whose shape is the same around the leaf: the size
    // is bound to the root by the signed checkpoint, which checkReceipt reads it from.)
    if ((await T.checkReceipt({ ...rc, treeSize: v.size + 1 }, ` + "`" + vkey + "`" + `)).ok) fails.push(name + ": receipt for another size accepted");
    if (await T.checkInclusion(v.index, v.size, leaf, proof.concat([root]), root)) fails.push(name + ": extra hash accepted");
    if (proof.length > 0 && await T.checkInclusion(v.index, v.size, leaf, proof.slice(1), root)) fails.push(name + ": short proof accepted");
    const tampered = { ...rc, entry: btoa("entry x") };
    if ((await T.checkReceipt(tampered, ` + "`" + vkey + "`" + `)).ok) fails.push(name + ": receipt with another entry accepted");
  }
  for (const n of ` + string(nj) + `) {
    let ok;
    try { ok = await T.verifyNote(n.text, n.key); } catch (e) { ok = false; }
    if (ok !== n.valid) fails.push("note, " + n.what + ": " + (ok ? "accepted" : "refused"));
  }
  return { fails, checked };
})()`
	type result struct {
		Fails   []string
		Checked int
	}
	var res result
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
			r, err := chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise)(c, tg)
			res = r
			return err
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Fails {
		t.Error(f)
	}
	if res.Checked < 1000 {
		t.Errorf("only %d bit flips checked", res.Checked)
	}
	t.Logf("%d proofs, %d bit flips, %d notes checked", len(proofs), res.Checked, len(notes))
}

// flipChar changes a character to another printable one.
func flipChar(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	if c == '\n' {
		return ' '
	}
	return 'A'
}

// TestEntryDecodingAgainstTheLedger: the browser's decoder of log entries reads every entry of a node
// that holds every transaction type to exactly what the node's receipt shows (type, accept time,
// message, signatures), and a receipt altered in any member, its time or a signature no longer matches.
func TestEntryDecodingAgainstTheLedger(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	n := w.n
	dev := fixedKey(t, "insurer developer")
	n.Submit(t, &ledger.Tx{Type: ledger.TypeUpdateApp, App: w.app.Address, Name: "Acme Insurance Ltd", RedirectURIs: []string{"https://acme.example/cb", "https://acme.example/cb2"}}, dev)
	renounce := &ledger.Tx{Type: ledger.TypeRenounce, App: w.app.Address}
	renounce.VehicleID.SetUint64(w.car)
	n.Submit(t, renounce, w.app)
	car := n.Vehicle(t, w.owner)
	dongle := n.PairedDevice(t, w.owner, car, ledger.KindHardware)
	unpair := &ledger.Tx{Type: ledger.TypeUnpairDevice, Device: dongle.Address}
	unpair.VehicleID.SetUint64(car)
	n.Submit(t, unpair, w.owner)
	n.Grant(t, w.owner, car, w.app.Address, time.Now().Add(time.Hour).Unix(), "signals")
	revoke := &ledger.Tx{Type: ledger.TypeRevoke, App: w.app.Address}
	revoke.VehicleID.SetUint64(car)
	n.Submit(t, revoke, w.owner)
	keep := &ledger.Tx{Type: ledger.TypeSetRetention, Days: 400}
	keep.VehicleID.SetUint64(car)
	n.Submit(t, keep, w.owner)
	buyer := fixedKey(t, "buyer")
	transfer := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	transfer.VehicleID.SetUint64(car)
	n.Submit(t, transfer, w.owner)
	erase := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(time.Now().Unix())}
	erase.VehicleID.SetUint64(car)
	n.Submit(t, erase, w.owner) // the former owner
	burn := &ledger.Tx{Type: ledger.TypeBurnVehicle}
	burn.VehicleID.SetUint64(car)
	n.Submit(t, burn, buyer)

	module, err := os.ReadFile(filepath.Join("testdata", "tlog.js"))
	if err != nil {
		t.Fatal(err)
	}
	js := string(module) + `;(async () => {
  const T = GloveboxTlog;
  const eip712 = await (await fetch("/v1/eip712")).json();
  const size = (await (await fetch("/v1/node")).json()).treeSize;
  const fails = [];
  const types = new Set();
  let altered = 0;
  for (let i = 0; i < size; i++) {
    const rc = await (await fetch("/v1/transactions/" + i)).json();
    let d;
    try { d = T.decodeEntry(T.fromBase64(rc.entry), eip712); } catch (e) { fails.push(i + ": " + e.message); continue; }
    types.add(d.type);
    if (!T.sameAsShown(d, rc)) { fails.push(i + " (" + rc.type + "): decodes to " + JSON.stringify(d) + ", the node shows " + JSON.stringify(rc.message)); continue; }
    const variants = [{ ...rc, acceptTime: rc.acceptTime + 1 }, { ...rc, signatures: [rc.signatures[0].slice(0, -2) + (rc.signatures[0].endsWith("1b") ? "1c" : "1b")] }];
    for (const k of Object.keys(rc.message)) {
      const v = rc.message[k];
      const other = Array.isArray(v) ? v.concat(["x"]) : typeof v === "number" ? v + 1 : /^0x[0-9a-fA-F]{40}$/.test(v) ? "0x" + "1".repeat(40) : /^[0-9]+$/.test(v) ? String(BigInt(v) + 1n) : v + "x";
      variants.push({ ...rc, message: { ...rc.message, [k]: other } });
    }
    for (const alt of variants) {
      altered++;
      if (T.sameAsShown(d, alt)) fails.push(i + " (" + rc.type + "): an altered receipt matches " + JSON.stringify(alt.message));
    }
    const cut = T.fromBase64(rc.entry).slice(0, -1);
    try { T.decodeEntry(cut, eip712); fails.push(i + ": a cut entry decodes"); } catch (e) { /* refused */ }
  }
  return { fails, types: [...types].sort(), altered };
})()`
	type result struct {
		Fails   []string
		Types   []string
		Altered int
	}
	var res result
	err = chromedp.Do(ctx,
		chromedp.Navigate(n.URL+"/v1/node"),
		chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
			r, err := chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise)(c, tg)
			res = r
			return err
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Fails {
		t.Error(f)
	}
	if len(res.Types) != len(ledger.TxTypes()) {
		t.Errorf("the log held the types %v, want all %d", res.Types, len(ledger.TxTypes()))
	}
	t.Logf("%d types decoded, %d altered receipts refused", len(res.Types), res.Altered)
}

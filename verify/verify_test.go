package verify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/verify"
	"github.com/glovebox/glovebox/verify/verifytest"
)

// vehicles is how many vehicles the test nodes register in one batch: with the transactions Populate adds
// after them, the log spans a full entry bundle and hash tile, a partial one, and a partial level-1 tile.
const vehicles = 300

// populated starts a node and fills it.
func populated(t *testing.T) (*verifytest.Node, verifytest.Population) {
	t.Helper()
	n := verifytest.Start(t, t.TempDir())
	return n, n.Populate(t, vehicles)
}

// mustVerify runs the auditor and fails the test if it does not pass.
func mustVerify(t *testing.T, c *client.Client, opts verify.Options) *verify.Summary {
	t.Helper()
	s, err := verify.Log(t.Context(), c, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return s
}

// mustFail runs the auditor, demands a *verify.Failure at stage about entry index (-1: about none) whose
// message contains each of wants, and returns it.
func mustFail(t *testing.T, c *client.Client, opts verify.Options, stage string, index int64, wants ...string) *verify.Failure {
	t.Helper()
	s, err := verify.Log(t.Context(), c, opts)
	if err == nil {
		t.Fatalf("verify passed (%v), want a failure at %s", s, stage)
	}
	var f *verify.Failure
	if !errors.As(err, &f) {
		t.Fatalf("verify failed with %T %v, want a *verify.Failure", err, err)
	}
	if f.Stage != stage || f.Index != index {
		t.Fatalf("verify failed at stage %q, entry %d (%v); want stage %q, entry %d", f.Stage, f.Index, err, stage, index)
	}
	t.Logf("failed as it should: %v", err)
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the failure %q does not mention %q", err, w)
		}
	}
	return f
}

func TestVerifyPassesOnAnHonestNode(t *testing.T) {
	n, p := populated(t)
	var mu sync.Mutex
	progress := map[string]int64{}
	s := mustVerify(t, n.Client, verify.Options{Key: n.LogKey, Progress: func(stage string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if done > total {
			t.Errorf("progress %s: %d done of %d", stage, done, total)
		}
		progress[stage] = max(progress[stage], done)
	}})

	if s.Origin != n.Log.Origin() || s.TreeSize != p.Entries || s.Entries != p.Entries || s.Signatures != p.Signatures {
		t.Errorf("summary says origin %q, tree %d, %d entries, %d signatures; want %q, %d, %d, %d",
			s.Origin, s.TreeSize, s.Entries, s.Signatures, n.Log.Origin(), p.Entries, p.Entries, p.Signatures)
	}
	if s.Vehicles != p.Vehicles || s.Devices != p.Devices || s.Apps != p.Apps || s.Grants != p.Grants || s.VehicleReads != p.Vehicles {
		t.Errorf("summary counts %d vehicles, %d devices, %d apps, %d grants, %d vehicle reads; want %d, %d, %d, %d, %d",
			s.Vehicles, s.Devices, s.Apps, s.Grants, s.VehicleReads, p.Vehicles, p.Devices, p.Apps, p.Grants, p.Vehicles)
	}
	root, err := n.Log.RootHash(s.TreeSize)
	if err != nil || root != s.RootHash {
		t.Errorf("summary root %v, the log's %v (%v)", s.RootHash, root, err)
	}
	dg, err := n.Client.StateDigest(t.Context())
	if err != nil || dg.Digest != "0x"+hex.EncodeToString(s.StateDigest[:]) {
		t.Errorf("summary state digest 0x%x, the node's %+v (%v)", s.StateDigest, dg, err)
	}
	v, err := note.NewVerifier(n.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	if size, _, err := tlog.OpenCheckpoint(s.Checkpoint, n.Log.Origin(), v); err != nil || size != s.TreeSize {
		t.Errorf("summary checkpoint opens to size %d (%v), want %d", size, err, s.TreeSize)
	}
	for _, stage := range []string{verify.ProgressDownload, verify.ProgressReplay, verify.ProgressCompare} {
		if progress[stage] == 0 {
			t.Errorf("no progress reported for %s (got %v)", stage, progress)
		}
	}
	if progress[verify.ProgressReplay] != p.Entries || progress[verify.ProgressCompare] != int64(p.Vehicles) {
		t.Errorf("progress ended at %v, want replay %d and compare %d", progress, p.Entries, p.Vehicles)
	}
	line := s.String()
	if !strings.HasPrefix(line, "ok: "+n.Log.Origin()+" ") || strings.Contains(line, "\n") ||
		!strings.Contains(line, strconv.FormatInt(p.Entries, 10)+" entries") {
		t.Errorf("summary line %q", line)
	}

	t.Run("again with the checkpoint seen before", func(t *testing.T) {
		s2 := mustVerify(t, n.Client, verify.Options{Key: n.LogKey, Previous: s.Checkpoint})
		if s2.TreeSize != s.TreeSize || s2.StateDigest != s.StateDigest {
			t.Errorf("second run: tree %d state %x, first: %d %x", s2.TreeSize, s2.StateDigest, s.TreeSize, s.StateDigest)
		}
	})

	t.Run("after more appends", func(t *testing.T) {
		n.RegisterVehicles(t, p.Owner, vehicles)
		s3 := mustVerify(t, n.Client, verify.Options{Key: n.LogKey, Previous: s.Checkpoint})
		if s3.TreeSize != p.Entries+vehicles || s3.Vehicles != p.Vehicles+vehicles || s3.Signatures != p.Signatures+vehicles {
			t.Errorf("after appends: tree %d, %d vehicles, %d signatures; want %d, %d, %d",
				s3.TreeSize, s3.Vehicles, s3.Signatures, p.Entries+vehicles, p.Vehicles+vehicles, p.Signatures+vehicles)
		}
	})

	t.Run("reading back a sample of the vehicles", func(t *testing.T) {
		s4 := mustVerify(t, n.Client, verify.Options{Key: n.LogKey, MaxVehicleReads: 10})
		if s4.VehicleReads != 10 {
			t.Errorf("read back %d vehicles, want 10", s4.VehicleReads)
		}
		if s5 := mustVerify(t, n.Client, verify.Options{Key: n.LogKey, MaxVehicleReads: -1}); s5.VehicleReads != 0 {
			t.Errorf("read back %d vehicles, want none", s5.VehicleReads)
		}
	})
}

func TestVerifyPassesOnAnEmptyLog(t *testing.T) {
	n := verifytest.Start(t, t.TempDir())
	s := mustVerify(t, n.Client, verify.Options{Key: n.LogKey})
	if s.TreeSize != 0 || s.Entries != 0 || s.Vehicles != 0 || s.VehicleReads != 0 {
		t.Errorf("empty log summary: %+v", s)
	}
	n.RegisterVehicles(t, verifytest.NewAccount(t), 1)
	if s2 := mustVerify(t, n.Client, verify.Options{Key: n.LogKey, Previous: s.Checkpoint}); s2.TreeSize != 1 {
		t.Errorf("after one append the tree has %d entries", s2.TreeSize)
	}
}

// TestVerifyFollowsANodeThatMovesOn appends to the node while it is being verified: the auditor must
// verify the new checkpoint and replay exactly as far as the node's answers.
func TestVerifyFollowsANodeThatMovesOn(t *testing.T) {
	n, p := populated(t)
	more := make([]*ledger.Tx, 20)
	for i := range more {
		more[i] = n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: p.Owner.Address, Make: "Fiat", Model: "500e", Year: 2024}, p.Owner)
	}
	transfer := n.Sign(t, func() *ledger.Tx {
		tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: verifytest.NewAccount(t).Address}
		tx.VehicleID.SetUint64(1)
		return tx
	}(), p.Owner)

	// appendAndRewrite serves the node's API, but the first time path is asked for it first appends txs;
	// and it passes the answers for rewritePath, if any, through rewrite.
	appendAndRewrite := func(path string, txs []*ledger.Tx, rewritePath string, rewrite func([]byte) []byte) *client.Client {
		var once sync.Once
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == rewritePath {
				rec := httptest.NewRecorder()
				n.API.ServeHTTP(rec, r)
				w.WriteHeader(rec.Code)
				w.Write(rewrite(rec.Body.Bytes()))
				return
			}
			if r.URL.Path == path {
				once.Do(func() {
					items, err := n.Client.SubmitBatch(context.Background(), txs)
					for _, it := range items {
						if it.Error != nil {
							err = errors.New(it.Error.Message)
						}
					}
					if err != nil {
						t.Errorf("appending while the node is verified: %v", err)
					}
				})
			}
			n.API.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return client.New(srv.URL)
	}
	appendOnce := func(path string, txs ...*ledger.Tx) *client.Client { return appendAndRewrite(path, txs, "", nil) }

	t.Run("before the state digest is read", func(t *testing.T) {
		s := mustVerify(t, appendOnce("/v1/state/digest", more...), verify.Options{Key: n.LogKey})
		want := p.Entries + int64(len(more))
		if s.TreeSize != want || s.Entries != want || s.Vehicles != p.Vehicles+len(more) {
			t.Errorf("verified tree %d, %d entries, %d vehicles; want %d, %d, %d", s.TreeSize, s.Entries, s.Vehicles, want, want, p.Vehicles+len(more))
		}
	})
	t.Run("while the vehicles are read back", func(t *testing.T) {
		// Vehicle 1 changes owner just before the node answers about it.
		s := mustVerify(t, appendOnce("/v1/vehicles/1", transfer), verify.Options{Key: n.LogKey})
		if want := p.Entries + int64(len(more)) + 1; s.Entries != want {
			t.Errorf("verified %d entries, want %d", s.Entries, want)
		}
	})
	t.Run("but changes an entry it served before", func(t *testing.T) {
		size := n.Log.Size()
		later := make([]*ledger.Tx, 10)
		for i := range later {
			later[i] = n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: p.Owner.Address, Make: "Fiat", Model: "Panda", Year: 2024}, p.Owner)
		}
		// The wider partial bundle that the auditor fetches while catching up changes entry 261.
		wider := "/log/tile/entries/001.p/" + strconv.FormatInt(size+int64(len(later))-256, 10)
		c := appendAndRewrite("/v1/state/digest", later, wider, func(b []byte) []byte {
			return editBundle(t, b, func(l [][]byte) [][]byte { l[5][len(l[5])/2] ^= 0x01; return l })
		})
		mustFail(t, c, verify.Options{Key: n.LogKey}, verify.StageTree, 261, "holds a different entry 261")
	})
}

// bundle re-encodes entries as a C2SP entry bundle.
func bundle(entries [][]byte) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b
}

// editBundle returns the bundle body with its entries changed by edit.
func editBundle(t *testing.T, body []byte, edit func([][]byte) [][]byte) []byte {
	list, err := tlog.ParseEntryBundle(body)
	if err != nil {
		t.Errorf("the honest node served a bad bundle: %v", err)
		return body
	}
	for i := range list {
		list[i] = bytes.Clone(list[i])
	}
	return bundle(edit(list))
}

func TestVerifyCatchesTampering(t *testing.T) {
	n, p := populated(t)
	origin := n.Log.Origin()
	proxy := verifytest.NewProxy(t, n.URL)
	c := client.New(proxy.URL)
	opts := verify.Options{Key: n.LogKey}
	// The log has p.Entries entries: bundle 000 is full, 001 partial; hash tiles 0/000, 0/001.p/W, 1/000.p/1.
	partial := "/log/tile/entries/001.p/" + strconv.FormatInt(p.Entries-256, 10)

	flipEntry := func(k int) func(*testing.T, []byte) []byte {
		return func(t *testing.T, b []byte) []byte {
			return editBundle(t, b, func(l [][]byte) [][]byte { l[k][len(l[k])/2] ^= 0x01; return l })
		}
	}
	flipByte := func(t *testing.T, b []byte) []byte { b[100%len(b)] ^= 0x80; return b }
	checkpointLines := func(b []byte) []string { return strings.SplitN(string(b), "\n", 3) }

	tests := []struct {
		name    string
		rewrite map[string]func(*testing.T, []byte) []byte // path → rewrite
		stage   string
		index   int64
		kind    error // the kind of failure (errors.Is), nil for none of them
		wants   []string
	}{
		{name: "one flipped byte in an entry of a full bundle names that entry",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/tile/entries/000": flipEntry(17)},
			kind:    verify.ErrEntryChanged, stage: verify.StageTree, index: 17, wants: []string{"entry 17:", "not leaf 17"}},
		{name: "one flipped byte in an entry of the partial bundle names that entry",
			rewrite: map[string]func(*testing.T, []byte) []byte{partial: flipEntry(5)},
			kind:    verify.ErrEntryChanged, stage: verify.StageTree, index: 261, wants: []string{"entry 261:"}},
		{name: "a dropped entry names the first entry out of place",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/tile/entries/000": func(t *testing.T, b []byte) []byte {
				return editBundle(t, b, func(l [][]byte) [][]byte { return append(l[:40], l[41:]...) })
			}},
			kind: verify.ErrEntryMissing, stage: verify.StageTree, index: 40, wants: []string{"entry 40:", "has 255 entries, want 256"}},
		{name: "a reordered pair of entries names the first of them",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/tile/entries/000": func(t *testing.T, b []byte) []byte {
				return editBundle(t, b, func(l [][]byte) [][]byte { l[50], l[51] = l[51], l[50]; return l })
			}},
			kind: verify.ErrEntryChanged, stage: verify.StageTree, index: 50, wants: []string{"entry 50:"}},
		{name: "an extra entry in a partial bundle",
			rewrite: map[string]func(*testing.T, []byte) []byte{partial: func(t *testing.T, b []byte) []byte {
				return editBundle(t, b, func(l [][]byte) [][]byte { return append(l, l[0]) })
			}},
			kind: verify.ErrMalformed, stage: verify.StageDownload, index: -1, wants: []string{partial[len("/log/"):], "entries, want"}},
		{name: "one flipped byte in a full hash tile names the tile",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/tile/0/000": flipByte},
			kind:    verify.ErrTileMismatch, stage: verify.StageTiles, index: -1, wants: []string{"hash tile tile/0/000 ", "hash 3 "}},
		{name: "one flipped byte in a partial level-1 hash tile names the tile",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/tile/1/000.p/1": flipByte},
			kind:    verify.ErrTileMismatch, stage: verify.StageTiles, index: -1, wants: []string{"hash tile tile/1/000.p/1 "}},
		{name: "a flipped entry and a flipped hash tile can't name the entry",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/tile/entries/000": flipEntry(17), "/log/tile/0/000": flipByte},
			kind:    verify.ErrEntryChanged, stage: verify.StageTree, index: -1, wants: []string{"can't be named"}},
		{name: "a checkpoint signed by another key",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/checkpoint": func(t *testing.T, b []byte) []byte {
				skey, _, err := note.GenerateKey(rand.Reader, origin)
				if err != nil {
					t.Fatal(err)
				}
				s, err := note.NewSigner(skey)
				if err != nil {
					t.Fatal(err)
				}
				text, _, _ := strings.Cut(string(b), "\n\n")
				forged, err := note.Sign(&note.Note{Text: text + "\n"}, s)
				if err != nil {
					t.Fatal(err)
				}
				return forged
			}},
			kind: verify.ErrCheckpoint, stage: verify.StageCheckpoint, index: -1, wants: []string{"does not verify"}},
		{name: "a checkpoint with a changed size",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/checkpoint": func(t *testing.T, b []byte) []byte {
				l := checkpointLines(b)
				l[1] = strconv.FormatInt(p.Entries-1, 10)
				return []byte(strings.Join(l, "\n"))
			}},
			kind: verify.ErrCheckpoint, stage: verify.StageCheckpoint, index: -1, wants: []string{"does not verify"}},
		{name: "a checkpoint with a changed root",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/log/checkpoint": func(t *testing.T, b []byte) []byte {
				l := checkpointLines(b)
				_, rest, _ := strings.Cut(l[2], "\n")
				l[2] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n" + rest
				return []byte(strings.Join(l, "\n"))
			}},
			kind: verify.ErrCheckpoint, stage: verify.StageCheckpoint, index: -1, wants: []string{"does not verify"}},
		{name: "a state digest that is not the replay's",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/v1/state/digest": func(t *testing.T, b []byte) []byte {
				var d map[string]any
				if err := json.Unmarshal(b, &d); err != nil {
					t.Fatal(err)
				}
				d["digest"] = "0x" + strings.Repeat("ab", 32)
				out, _ := json.Marshal(d)
				return out
			}},
			kind: verify.ErrState, stage: verify.StageState, index: -1, wants: []string{"0x" + strings.Repeat("ab", 32)}},
		{name: "a vehicle answer with a changed field names the vehicle and field",
			rewrite: map[string]func(*testing.T, []byte) []byte{"/v1/vehicles/1": func(t *testing.T, b []byte) []byte {
				var v map[string]any
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatal(err)
				}
				v["make"] = "Trabant"
				out, _ := json.Marshal(v)
				return out
			}},
			stage: verify.StageVehicles, index: -1, wants: []string{"vehicle 1:", "field make", "Trabant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy.SetRewrite(func(path string, body []byte) []byte {
				if f := tt.rewrite[path]; f != nil {
					return f(t, body)
				}
				return body
			})
			defer proxy.SetRewrite(nil)
			f := mustFail(t, c, opts, tt.stage, tt.index, tt.wants...)
			for _, k := range []error{verify.ErrCheckpoint, verify.ErrFork, verify.ErrEntryMissing, verify.ErrEntryChanged,
				verify.ErrTileMismatch, verify.ErrState, verify.ErrMalformed} {
				if errors.Is(f, k) != (k == tt.kind) {
					t.Errorf("errors.Is(failure, %q) = %v, want %v", k, errors.Is(f, k), k == tt.kind)
				}
			}
		})
	}

	t.Run("the honest answers behind the proxy pass", func(t *testing.T) {
		mustVerify(t, c, opts)
	})
}

// TestVerifyDetectsAFork runs a second node with the first one's log key but other transactions: each
// node's log is consistent on its own, but not with a checkpoint of the other.
func TestVerifyDetectsAFork(t *testing.T) {
	a, _ := populated(t)
	sa := mustVerify(t, a.Client, verify.Options{Key: a.LogKey})

	dirB := t.TempDir()
	for _, f := range []string{"log.key", "log.pub"} {
		b, err := os.ReadFile(filepath.Join(a.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := verifytest.Start(t, dirB)
	if b.LogKey != a.LogKey {
		t.Fatalf("node B has key %s, want A's %s", b.LogKey, a.LogKey)
	}
	b.RegisterVehicles(t, verifytest.NewAccount(t), 10)

	mustVerify(t, b.Client, verify.Options{Key: b.LogKey}) // consistent on its own
	if f := mustFail(t, b.Client, verify.Options{Key: b.LogKey, Previous: sa.Checkpoint}, verify.StageConsistency, -1, "fork", "rolled back"); !errors.Is(f, verify.ErrFork) {
		t.Errorf("a rolled back log: %v, want an ErrFork", f)
	}

	b.RegisterVehicles(t, verifytest.NewAccount(t), 2*vehicles) // now larger than A
	if f := mustFail(t, b.Client, verify.Options{Key: b.LogKey, Previous: sa.Checkpoint}, verify.StageConsistency, -1, "fork", "rewritten"); !errors.Is(f, verify.ErrFork) {
		t.Errorf("a rewritten log: %v, want an ErrFork", f)
	}

	other := verifytest.Start(t, t.TempDir())
	so := mustVerify(t, other.Client, verify.Options{Key: other.LogKey})
	if f := mustFail(t, a.Client, verify.Options{Key: a.LogKey, Previous: so.Checkpoint}, verify.StageConsistency, -1, "previous checkpoint does not verify"); !errors.Is(f, verify.ErrCheckpoint) {
		t.Errorf("another log's checkpoint: %v, want an ErrCheckpoint", f)
	}
}

// TestVerifyNamesTheEntryThatBreaksARule serves logs written directly with package tlog, whose entries
// are well-formed log entries but one of which the ledger's rules refuse.
func TestVerifyNamesTheEntryThatBreaksARule(t *testing.T) {
	const bad = 300
	tests := []struct {
		name  string
		entry func(*testing.T, *verifytest.RawLog, time.Time, verifytest.Account) []byte
		code  ledger.Code
	}{
		{"an entry signed by the wrong key", func(t *testing.T, r *verifytest.RawLog, at time.Time, owner verifytest.Account) []byte {
			return encode(t, r.Entry(t, at, registerVehicle(owner), verifytest.NewAccount(t)))
		}, ledger.CodeWrongSigner},
		{"an entry whose signature is not canonical", func(t *testing.T, r *verifytest.RawLog, at time.Time, owner verifytest.Account) []byte {
			e := r.Entry(t, at, registerVehicle(owner), owner)
			e.Tx.Signatures[0][32] = 0xff // s in the upper half of the curve order
			return encode(t, e)
		}, ledger.CodeBadSignature},
		{"an entry that does not decode", func(t *testing.T, r *verifytest.RawLog, at time.Time, owner verifytest.Account) []byte {
			b := encode(t, r.Entry(t, at, registerVehicle(owner), owner))
			return append(b, 0)
		}, ledger.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := verifytest.StartRawLog(t, t.TempDir(), "glovebox.test/raw")
			owner := verifytest.NewAccount(t)
			at := time.Now()
			var raw [][]byte
			for range bad {
				raw = append(raw, encode(t, r.Entry(t, at, registerVehicle(owner), owner)))
			}
			raw = append(raw, tt.entry(t, r, at, owner))
			for range 5 {
				raw = append(raw, encode(t, r.Entry(t, at, registerVehicle(owner), owner)))
			}
			if _, _, err := r.Log.Append(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
			f := mustFail(t, client.New(r.URL), verify.Options{Key: r.LogKey}, verify.StageReplay, bad,
				"entry "+strconv.Itoa(bad)+": "+string(tt.code)+":")
			if ledger.CodeOf(f) != tt.code {
				t.Errorf("failure code %q, want %q", ledger.CodeOf(f), tt.code)
			}
		})
	}
}

func registerVehicle(owner verifytest.Account) *ledger.Tx {
	return &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Renault", Model: "Zoe", Year: 2019}
}

func encode(t *testing.T, e *ledger.Entry) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyRefusesABadKey(t *testing.T) {
	n := verifytest.Start(t, t.TempDir())
	mustFail(t, n.Client, verify.Options{Key: "not a key"}, verify.StageCheckpoint, -1, "bad log key")
	_, otherKey, err := tlog.GenerateKey(n.Log.Origin())
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, n.Client, verify.Options{Key: otherKey}, verify.StageCheckpoint, -1, "does not verify")
	_, otherOrigin, err := tlog.GenerateKey("glovebox.test/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, n.Client, verify.Options{Key: otherOrigin}, verify.StageCheckpoint, -1, "does not verify")
}

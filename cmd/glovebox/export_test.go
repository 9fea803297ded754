package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"archive/zip"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/google/uuid"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// keyFile writes k to a keystore file with the passphrase in pass.
func keyFile(t *testing.T, dir, name string, k testnode.Key, pass string) string {
	t.Helper()
	b, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: k.Address, PrivateKey: k.Key}, "pw", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExportAndVerifyExportCommands downloads an export with the CLI, resumes a download cut in half,
// and verifies archives good and tampered.
func TestExportAndVerifyExportCommands(t *testing.T) {
	clearEnv(t)
	var mu sync.Mutex
	now := time.Now().Add(-10 * time.Minute)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n := testnode.Start(t, testnode.Options{Now: clock})
	owner, stranger := testnode.NewKey(t), testnode.NewKey(t)
	car := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, car, ledger.KindHardware)
	var subs []telemetry.Submission
	start := clock().Add(time.Second)
	for i := range 50 {
		subs = append(subs, testnode.Record(t, dev, car, "r"+strconv.Itoa(i), start.Add(time.Duration(i)*time.Second)))
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	for _, r := range n.Ingester.Ingest(t.Context(), subs) {
		if r.Status != telemetry.StatusAccepted {
			t.Fatal(r.Status, r.Message)
		}
	}
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ownerKey, strangerKey := keyFile(t, dir, "owner.json", owner, "pw"), keyFile(t, dir, "stranger.json", stranger, "pw")
	id := strconv.FormatUint(car, 10)
	out := filepath.Join(dir, "car.zip")

	code, stdout, stderr := runCLI(t, "export", "--node", n.URL, "--vehicle", id, "--key", ownerKey, "--passphrase-file", pass, "--out", out)
	if code != 0 || !strings.Contains(stdout, "records   50 from 1 device(s) "+dev.Address.Hex()) || !strings.Contains(stdout, "all passed") ||
		!strings.Contains(stderr, "downloaded") {
		t.Fatalf("export: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out + ".resume"); !os.IsNotExist(err) {
		t.Fatalf("the resume state is left after a whole download: %v", err)
	}
	if code, _, stderr := runCLI(t, "export", "--node", n.URL, "--vehicle", id, "--key", ownerKey, "--passphrase-file", pass, "--out", out); code != 1 ||
		!strings.Contains(stderr, "exists") {
		t.Fatalf("export over an existing file: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "export", "--node", n.URL, "--vehicle", id, "--key", strangerKey, "--passphrase-file", pass,
		"--out", filepath.Join(dir, "x.zip")); code != 1 || !strings.Contains(stderr, "forbidden") {
		t.Fatalf("export by a stranger: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "export", "--node", n.URL, "--vehicle", id, "--key", ownerKey, "--passphrase-file", pass,
		"--out", filepath.Join(dir, "y.zip"), "--from", "last week"); code != 2 || !strings.Contains(stderr, "RFC 3339") {
		t.Fatalf("export --from 'last week': exit %d\n%s", code, stderr)
	}

	// A download cut in half: the state a stopped run leaves, then the same command again.
	cl := client.New(n.URL)
	tok, err := cl.SignIn(t.Context(), owner.Key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Export(t.Context(), tok.AccessToken, client.ExportQuery{Vehicle: car})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(st.Body)
	st.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.zip")
	if err := os.WriteFile(cut, whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(resumeState{Node: n.URL, Vehicle: car, Snapshot: st.Snapshot, ETag: st.ETag})
	if err := os.WriteFile(cut+".resume", state, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "export", "--node", n.URL, "--vehicle", id, "--key", ownerKey, "--passphrase-file", pass, "--out", cut); code != 0 {
		t.Fatalf("resumed export: exit %d\n%s%s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(cut); !bytes.Equal(got, whole) {
		t.Fatalf("the resumed file is %d bytes and not the archive of %d", len(got), len(whole))
	}

	info, err := cl.Node(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "verify-export", "--log-key", info.LogKey, out); code != 0 || !strings.Contains(stdout, "values    100") {
		t.Fatalf("verify-export --log-key: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, "verify-export", "--node", n.URL, out); code != 0 {
		t.Fatalf("verify-export --node: exit %d\n%s%s", code, stdout, stderr)
	}
	// One hex digit of the first record's signature changed.
	bad := filepath.Join(dir, "bad.zip")
	if err := os.WriteFile(bad, tamperSignature(t, whole), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "verify-export", "--log-key", info.LogKey, bad); code != 1 || !strings.Contains(stderr, "check signature failed at records.ndjson line 1") {
		t.Fatalf("verify-export of a tampered archive: exit %d\n%s%s", code, stdout, stderr)
	}
}

// tamperSignature returns the archive with one hex digit of the first record's signature changed.
func tamperSignature(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "records.ndjson" {
			i := bytes.Index(data, []byte(`"signature":"0x`)) + len(`"signature":"0x`) + 3
			data[i] = "10"[min(1, int(data[i]-'0'))%2]
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

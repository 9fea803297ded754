package node_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
	"github.com/glovebox/glovebox/verify"
)

// buildBinary builds cmd/glovebox once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "glovebox-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "glovebox")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/glovebox").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

var listenLine = regexp.MustCompile(`listening on (http://\S+?)/? `)

// startNode runs `glovebox serve` on dataDir with a random port and returns the process and its URL.
func startNode(t *testing.T, dataDir string, flags ...string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--data", dataDir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}, flags...)...)
	return cmd, untilListening(t, cmd)
}

// untilListening starts cmd, a node, and returns the URL it prints once it listens; the test's end kills
// it.
func untilListening(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1]
		}
	}
	t.Fatalf("the node exited before listening: %v", sc.Err())
	return ""
}

type ack struct {
	receipt *api.Receipt
	owner   string
}

// TestKill9LosesNothingAcknowledged kills a real node with SIGKILL while clients submit single and batched
// transactions, restarts it, and checks that every acknowledged receipt's entry is in the log with a valid
// proof, the log verifies end to end, and the replayed state matches the node's.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	data := t.TempDir()
	var acked []ack
	var mu sync.Mutex
	keys := make([]*ecdsa.PrivateKey, 16)
	for i := range keys {
		keys[i], _ = crypto.GenerateKey()
	}
	for round := 0; round < 3; round++ {
		cmd, url := startNode(t, data)
		c := client.New(url)
		ctx, cancel := context.WithCancel(context.Background())
		d, err := c.Domain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := 0; w < 24; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					key := keys[(w+i)%len(keys)]
					n := 1
					if w%6 == 0 {
						n = 50 // some submitters send batches
					}
					txs := make([]*ledger.Tx, n)
					for j := range txs {
						txs[j] = &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(key.PublicKey),
							Make: "Crash", Model: fmt.Sprintf("Round %d", round), Year: 2025}
						client.Prepare(txs[j], time.Hour)
						if err := d.Sign(txs[j], key); err != nil {
							t.Error(err)
							return
						}
					}
					var got []*api.Receipt
					if n == 1 {
						rc, err := c.Submit(ctx, txs[0])
						if err != nil {
							continue // killed mid-request: its fate is unknown, and that is allowed
						}
						got = append(got, rc)
					} else {
						items, err := c.SubmitBatch(ctx, txs)
						if err != nil {
							continue
						}
						for _, it := range items {
							if it.Error != nil {
								t.Errorf("batch item refused: %s %s", it.Error.Code, it.Error.Message)
								return
							}
							got = append(got, it.Receipt)
						}
					}
					mu.Lock()
					for _, rc := range got {
						acked = append(acked, ack{rc, crypto.PubkeyToAddress(key.PublicKey).Hex()})
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(400+rand.IntN(600)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		cancel()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: %d receipts acknowledged so far", round, len(acked))
		mu.Unlock()
	}
	if len(acked) == 0 {
		t.Fatal("no transaction was acknowledged before the kills")
	}

	_, url := startNode(t, data)
	c := client.New(url)
	ctx := context.Background()
	info, err := c.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(info.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, a := range acked {
		rc := a.receipt
		if seen[rc.Index] {
			t.Fatalf("two acknowledged transactions share entry %d", rc.Index)
		}
		seen[rc.Index] = true
		// The receipt's own proof verifies against its own checkpoint…
		checkProof(t, rc, info.Origin, verifier)
		// …and after the restart the entry is still there, proved against the latest checkpoint.
		now, err := c.Transaction(ctx, rc.Index)
		if err != nil {
			t.Fatalf("acknowledged entry %d is gone: %v", rc.Index, err)
		}
		if now.Hash != rc.Hash {
			t.Fatalf("entry %d changed: hash %s, acknowledged %s", rc.Index, now.Hash, rc.Hash)
		}
		checkProof(t, now, info.Origin, verifier)
		v, err := c.Vehicle(ctx, rc.Result.VehicleID)
		if err != nil || !strings.EqualFold(v.Owner, a.owner) {
			t.Fatalf("vehicle %d of entry %d: %v %+v", rc.Result.VehicleID, rc.Index, err, v)
		}
	}
	sum, err := verify.Log(ctx, c, verify.Options{Key: info.LogKey})
	if err != nil {
		t.Fatalf("the log does not verify after the kills: %v", err)
	}
	t.Logf("%d acknowledged receipts all present; %s", len(acked), sum)
}

func checkProof(t *testing.T, rc *api.Receipt, origin string, v note.Verifier) {
	t.Helper()
	size, root, err := tlog.OpenCheckpoint([]byte(rc.Checkpoint), origin, v)
	if err != nil {
		t.Fatalf("entry %d: bad checkpoint: %v", rc.Index, err)
	}
	if size != rc.TreeSize {
		t.Fatalf("entry %d: checkpoint size %d, receipt says %d", rc.Index, size, rc.TreeSize)
	}
	proof := make(xtlog.RecordProof, len(rc.InclusionProof))
	for i, p := range rc.InclusionProof {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(b) != 32 {
			t.Fatalf("entry %d: bad proof hash %q", rc.Index, p)
		}
		copy(proof[i][:], b)
	}
	var leaf xtlog.Hash
	hb, err := hex.DecodeString(strings.TrimPrefix(rc.Hash, "0x"))
	if err != nil || len(hb) != 32 {
		t.Fatalf("entry %d: bad hash %q", rc.Index, rc.Hash)
	}
	copy(leaf[:], hb)
	if err := xtlog.CheckRecord(proof, size, root, rc.Index, leaf); err != nil {
		t.Fatalf("entry %d: inclusion proof fails: %v", rc.Index, err)
	}
}

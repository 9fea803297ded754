package ledger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// memLog is an in-memory Log that can be told to fail: a disk error is a fault the real log can't be made
// to produce on demand.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	appends int
	fail    error
	delay   time.Duration // each append takes this long, like an fsync
}

func (l *memLog) Append(_ context.Context, entries [][]byte) (int64, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return 0, nil, l.fail
	}
	time.Sleep(l.delay)
	first := int64(len(l.entries))
	l.entries = append(l.entries, entries...)
	l.appends++
	return first, []byte("checkpoint"), nil
}

func (l *memLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries))
}

func (l *memLog) read(ctx context.Context, from, n int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries[from : from+n], nil
}

// memStore is an in-memory read model.
type memStore struct {
	mu   sync.Mutex
	snap Changes
}

func (s *memStore) Load(context.Context) (Changes, error) { return Changes{NextVehicle: 1}, nil }
func (s *memStore) Save(_ context.Context, c Changes) error {
	s.mu.Lock()
	s.snap.Merge(c)
	s.mu.Unlock()
	return nil
}
func (s *memStore) Reset(context.Context) error { return nil }

func startSequencer(t *testing.T, log *memLog) (*Sequencer, *Domain) {
	t.Helper()
	d := NewDomain("test/sequencer")
	q, err := OpenSequencer(context.Background(), d, log, log.read, &memStore{}, SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return q, d
}

func registerVehicle(t *testing.T, d *Domain) (*Tx, []common.Address) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	tx := &Tx{Type: TypeRegisterVehicle, Owner: crypto.PubkeyToAddress(key.PublicKey), Make: "A", Model: "B", Year: 2020}
	tx.Nonce.SetUint64(1)
	tx.Deadline.SetUint64(uint64(time.Now().Add(time.Hour).Unix()))
	if err := d.Sign(tx, key); err != nil {
		t.Fatal(err)
	}
	signers, err := d.Signers(tx)
	if err != nil {
		t.Fatal(err)
	}
	return tx, signers
}

func TestConcurrentSubmissionsShareAppendsAndGetConsecutiveEntries(t *testing.T) {
	log := &memLog{delay: 2 * time.Millisecond}
	q, d := startSequencer(t, log)
	const n = 200
	indexes := make(chan int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		tx, signers := registerVehicle(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := q.Submit(context.Background(), []*Tx{tx}, [][]common.Address{signers})
			if err != nil || out[0].Err != nil {
				t.Errorf("submit: %v %v", err, out)
				return
			}
			indexes <- out[0].Index
		}()
	}
	wg.Wait()
	close(indexes)
	seen := make([]bool, n)
	for i := range indexes {
		if i < 0 || i >= n || seen[i] {
			t.Fatalf("entry %d given twice or out of range", i)
		}
		seen[i] = true
	}
	// While one append is under way the others queue: they must be written together.
	if log.appends > n/2 {
		t.Fatalf("%d appends for %d submissions that waited on each other: no group commit", log.appends, n)
	}
	if st := q.Stats(); st.Entries != n || st.Batches != int64(log.appends) {
		t.Fatalf("stats %+v, %d appends", st, log.appends)
	}
}

func TestAFailedAppendStopsTheSequencerAndAcknowledgesNothing(t *testing.T) {
	log := &memLog{}
	q, d := startSequencer(t, log)
	tx, signers := registerVehicle(t, d)
	if _, err := q.Submit(context.Background(), []*Tx{tx}, [][]common.Address{signers}); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	log.fail = errors.New("disk full")
	log.mu.Unlock()
	tx2, signers2 := registerVehicle(t, d)
	if _, err := q.Submit(context.Background(), []*Tx{tx2}, [][]common.Address{signers2}); !errors.Is(err, ErrStopped) {
		t.Fatalf("submit after a failed append: %v, want ErrStopped", err)
	}
	tx3, signers3 := registerVehicle(t, d)
	if _, err := q.Submit(context.Background(), []*Tx{tx3}, [][]common.Address{signers3}); !errors.Is(err, ErrStopped) {
		t.Fatalf("a later submit: %v, want ErrStopped", err)
	}
	if log.Size() != 1 {
		t.Fatalf("log has %d entries", log.Size())
	}
}

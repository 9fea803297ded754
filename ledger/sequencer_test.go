package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	hold    func()        // if set, called by each append before it writes: a disk that stalls
}

func (l *memLog) Append(_ context.Context, entries [][]byte) (int64, []byte, error) {
	if l.hold != nil {
		l.hold()
	}
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

func TestAFailedAppendIsUndoneAnsweredUnavailableAndTheNextOneGoesThrough(t *testing.T) {
	log := &memLog{}
	q, d := startSequencer(t, log)
	submit := func(tx *Tx, signers []common.Address) ([]Outcome, error) {
		return q.Submit(context.Background(), []*Tx{tx}, [][]common.Address{signers})
	}
	tx, signers := registerVehicle(t, d)
	if _, err := submit(tx, signers); err != nil {
		t.Fatal(err)
	}
	var before [32]byte
	q.Read(func(s *State) { before = s.Digest() })
	log.mu.Lock()
	log.fail = errors.New("disk full")
	log.mu.Unlock()
	tx2, signers2 := registerVehicle(t, d)
	for range 3 {
		if _, err := submit(tx2, signers2); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("submit while the log fails: %v, want ErrUnavailable", err)
		}
		q.Read(func(s *State) {
			if s.Digest() != before {
				t.Fatal("the failed batch is still in the state")
			}
		})
	}
	log.mu.Lock()
	log.fail = nil
	log.mu.Unlock()
	out, err := submit(tx2, signers2)
	if err != nil || out[0].Err != nil || out[0].Index != 1 || out[0].Result.VehicleID != 2 {
		t.Fatalf("the same transaction once the log works again: %+v, %v; want entry 1, vehicle 2", out, err)
	}
	if log.Size() != 2 {
		t.Fatalf("log has %d entries", log.Size())
	}
	if st := q.Stats(); st.Failed != 3 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
	checkReplay(t, q, d, log)
}

// A batch is validated, made durable and only then shown: while the log syncs, readers see the state
// before the batch, and they do not wait for the disk.
func TestReadersDoNotWaitForTheLog(t *testing.T) {
	log := &memLog{}
	entered, release := make(chan struct{}), make(chan struct{})
	log.hold = func() {
		entered <- struct{}{}
		<-release
	}
	q, d := startSequencer(t, log)
	tx, signers := registerVehicle(t, d)
	submitted := make(chan error, 1)
	go func() {
		out, err := q.Submit(context.Background(), []*Tx{tx}, [][]common.Address{signers})
		if err == nil {
			err = out[0].Err
		}
		submitted <- err
	}()
	<-entered // the append has begun and does not end until released
	type view struct {
		size    int64
		vehicle bool
		digest  [32]byte
	}
	read := make(chan view, 1)
	go q.Read(func(s *State) {
		_, ok := s.Vehicle(1)
		read <- view{s.Size(), ok, s.Digest()}
	})
	select {
	case v := <-read:
		if v.size != 0 || v.vehicle || v.digest != NewState().Digest() {
			t.Fatalf("while the batch was not durable a reader saw %d entries (vehicle 1: %v), want the empty state", v.size, v.vehicle)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a reader waited for the log's append")
	}
	close(release)
	if err := <-submitted; err != nil {
		t.Fatal(err)
	}
	q.Read(func(s *State) {
		if _, ok := s.Vehicle(1); !ok || s.Size() != 1 {
			t.Fatalf("after the submission was answered the state holds %d entries (vehicle 1: %v), want 1", s.Size(), ok)
		}
	})
}

// refusingStore is a read model whose saves fail while refuse is set, as on a full disk.
type refusingStore struct {
	memStore
	refuse atomic.Bool
	failed atomic.Int64
}

func (s *refusingStore) Save(ctx context.Context, c Changes) error {
	if s.refuse.Load() {
		s.failed.Add(1)
		return errors.New("database or disk is full")
	}
	return s.memStore.Save(ctx, c)
}

func TestAReadModelSaveThatFailsIsKeptAndTriedAgain(t *testing.T) {
	log := &memLog{}
	store := &refusingStore{}
	store.refuse.Store(true)
	d := NewDomain("test/sequencer")
	q, err := OpenSequencer(context.Background(), d, log, log.read, store, SequencerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	for range 3 {
		tx, signers := registerVehicle(t, d)
		if _, err := q.Submit(context.Background(), []*Tx{tx}, [][]common.Address{signers}); err != nil {
			t.Fatal(err)
		}
	}
	for store.failed.Load() < 2 { // saves are tried again while they fail
		time.Sleep(10 * time.Millisecond)
	}
	store.refuse.Store(false)
	cancel() // Run saves what it holds before it returns
	<-done
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.snap.Size != 3 || len(store.snap.Vehicles) != 3 {
		t.Fatalf("the read model holds size %d and %d vehicles, want 3 and 3", store.snap.Size, len(store.snap.Vehicles))
	}
}

// Readers running alongside a stream of group commits, some of whose appends fail, never see a batch before
// it is in the log, nor a part of one: with only registrations, a state of n entries holds exactly vehicles
// 1 to n and n used nonces, and never more entries than the log.
func TestReadersSeeWholeDurableBatchesOnly(t *testing.T) {
	log := &memLog{}
	var appends int
	log.hold = func() {
		time.Sleep(300 * time.Microsecond) // the sync, during which the batch is sealed
		log.mu.Lock()
		appends++
		log.fail = nil
		if appends%4 == 0 {
			log.fail = errors.New("disk full")
		}
		log.mu.Unlock()
	}
	q, d := startSequencer(t, log)
	const submitters, batches, per = 4, 12, 20
	txs := make([][]*Tx, submitters*batches)
	signers := make([][][]common.Address, len(txs))
	for i := range txs {
		for range per {
			tx, s := registerVehicle(t, d)
			txs[i], signers[i] = append(txs[i], tx), append(signers[i], s)
		}
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	var reads atomic.Int64
	fail := make(chan string, 1)
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				q.Read(func(st *State) {
					n := st.Size()
					var bad string
					if logged := log.Size(); n > logged {
						bad = fmt.Sprintf("the state holds %d entries, the log %d", n, logged)
					} else if _, ok := st.Vehicle(uint64(n)); n > 0 && !ok {
						bad = fmt.Sprintf("a state of %d entries lacks vehicle %d", n, n)
					} else if _, ok := st.Vehicle(uint64(n + 1)); ok {
						bad = fmt.Sprintf("a state of %d entries holds vehicle %d", n, n+1)
					} else if st.UsedNonces() != int(n) {
						bad = fmt.Sprintf("a state of %d entries holds %d used nonces", n, st.UsedNonces())
					} else if i%20 == 0 && len(st.Snapshot().Vehicles) != int(n) {
						bad = fmt.Sprintf("a snapshot of a state of %d entries lists %d vehicles", n, len(st.Snapshot().Vehicles))
					}
					if bad != "" {
						select {
						case fail <- bad:
						default:
						}
					}
				})
				reads.Add(1)
			}
		}()
	}
	var wg sync.WaitGroup
	var refused atomic.Int64
	for s := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				i := s*batches + b
				if _, err := q.Submit(context.Background(), txs[i], signers[i]); errors.Is(err, ErrUnavailable) {
					refused.Add(1)
				} else if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	select {
	case bad := <-fail:
		t.Fatal(bad)
	default:
	}
	if refused.Load() == 0 || reads.Load() < 100 {
		t.Fatalf("%d submissions refused, %d reads: the test proves nothing", refused.Load(), reads.Load())
	}
	checkReplay(t, q, d, log)
}

// checkReplay demands that the sequencer's state is the replay of its log.
func checkReplay(t *testing.T, q *Sequencer, d *Domain, log *memLog) {
	t.Helper()
	r := NewState()
	if err := Replay(context.Background(), d, r, log.Size(), log.read, nil); err != nil {
		t.Fatal(err)
	}
	q.Read(func(s *State) {
		if s.Digest() != r.Digest() {
			t.Fatal("the sequencer's state is not the replay of its log")
		}
	})
}

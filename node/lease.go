package node

// The lease and sequencing: of the processes with the sequencer role, the one holding the lease in
// PostgreSQL (postgres.Acquire) appends to the log; the others follow it and stand by. ClusterLedger is
// what the rest of the process reads and submits to, whichever of the two it is doing.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
)

// ClusterLedger is the ledger as one cluster process sees it: the state it follows from the log, and
// once it holds the sequencer lease, its own sequencer. It implements api.Ledger.
type ClusterLedger struct {
	d   *ledger.Domain
	seq atomic.Pointer[ledger.Sequencer]

	mu sync.RWMutex // guards st, the followed state
	st *ledger.State
}

var _ api.Ledger = (*ClusterLedger)(nil)

// Domain implements api.Ledger.
func (c *ClusterLedger) Domain() *ledger.Domain { return c.d }

// Read implements api.Ledger: the sequencer's state on the leader, the followed state elsewhere.
func (c *ClusterLedger) Read(f func(*ledger.State)) {
	if q := c.seq.Load(); q != nil {
		q.Read(f)
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	f(c.st)
}

// Submit implements api.Ledger; only the leader sequences (others forward over HTTP before this).
func (c *ClusterLedger) Submit(ctx context.Context, txs []*ledger.Tx, signers [][]common.Address) ([]ledger.Outcome, error) {
	if q := c.seq.Load(); q != nil {
		return q.Submit(ctx, txs, signers)
	}
	return nil, ledger.ErrStopped
}

// IsLeader reports whether this process sequences.
func (c *ClusterLedger) IsLeader() bool { return c.seq.Load() != nil }

// LeaseLosses returns how many times this process stopped sequencing because it lost the lease (or could
// not take over the log) and went back to standing by.
func (c *Cluster) LeaseLosses() int64 { return c.leaseLosses.Load() }

// standByAndSequence follows the log while standing by for the lease, then sequences until ctx is done or
// the lease is lost.
func (c *Cluster) standByAndSequence(ctx context.Context) error {
	following, stopFollowing := context.WithCancel(ctx)
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		c.followLoop(following)
	}()
	defer func() {
		stopFollowing()
		<-followDone
	}()
	return c.sequence(ctx, stopFollowing, followDone)
}

// sequence stands by for the lease, then takes over: it stops following, catches up with the log one last
// time, and sequences from that state until ctx is done or the lease is lost.
func (c *Cluster) sequence(ctx context.Context, stopFollowing func(), followDone chan struct{}) error {
	host, _ := os.Hostname()
	c.logger.Info("standing by for the sequencer lease")
	var lease *postgres.Lease
	for {
		var err error
		lease, err = postgres.Acquire(ctx, c.pool, fmt.Sprintf("%s/%d", host, os.Getpid()), c.cfg.AdvertiseURL)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		// The database went away while standing by: keep standing by.
		c.logger.Warn("couldn't try the sequencer lease; trying again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(postgres.PollInterval):
		}
	}
	defer lease.Release()
	stopFollowing()
	<-followDone
	if err := c.Log.SetWriter(ctx, lease, c.signer); err != nil {
		return fmt.Errorf("couldn't take over the log: %w", err)
	}
	if err := c.follow(ctx); err != nil {
		return err
	}
	c.Ledger.mu.RLock()
	snap := c.Ledger.st.Snapshot()
	c.Ledger.mu.RUnlock()
	q, err := ledger.OpenSequencer(ctx, c.Ledger.d, c.Log, c.Log.Entries, &memoryStore{snap: snap},
		ledger.SequencerOptions{Now: c.cfg.Now, Logger: c.logger})
	if err != nil {
		return err
	}
	c.Ledger.seq.Store(q)
	// Once the sequencer stops, its state (everything it acknowledged, nothing it undid) goes back to the
	// follower, so that reads go on from it while the process stands by: the database may be down.
	defer c.Ledger.handBack(q, c.logger)
	c.logger.Info("sequencing", "epoch", lease.Epoch(), "log size", c.Log.Size())
	seqCtx, stop := context.WithCancel(ctx)
	// The lease is checked now and then, so that a process whose session died stops at once rather than
	// at its next append.
	lost := make(chan error, 1)
	// The lease check and the snapshot loop end with seqCtx and are waited for before sequence returns
	// (before the lease is released and the state handed back): nothing of this term outlives it.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(postgres.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-seqCtx.Done():
				return
			case <-tick.C:
				// Check bounds itself (postgres.LeaseCheckTimeout): a hung database loses the lease
				// rather than hanging this check.
				if err := lease.Check(seqCtx); err != nil && seqCtx.Err() == nil {
					lost <- err
					stop()
					return
				}
			}
		}
	}()
	go func() { defer wg.Done(); c.snapshotLoop(seqCtx) }()
	err = q.Run(seqCtx)
	select {
	case lerr := <-lost:
		return fmt.Errorf("lost the sequencer lease: %w", lerr)
	default:
	}
	return err
}

// handBack makes the followed state the stopped sequencer q's, and stops reading from q.
func (c *ClusterLedger) handBack(q *ledger.Sequencer, logger *slog.Logger) {
	var snap ledger.Changes
	q.Read(func(st *ledger.State) { snap = st.Snapshot() })
	st, err := ledger.Restore(snap)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// The followed state is older but sound; following the log catches it up.
		logger.Error("couldn't take the sequencer's state back; following the log from the older one", "err", err)
	} else {
		c.st = st
	}
	c.seq.Store(nil)
}

// memoryStore hands the sequencer the followed state; the state's only durable copy is the log.
type memoryStore struct{ snap ledger.Changes }

func (m *memoryStore) Load(context.Context) (ledger.Changes, error) { return m.snap, nil }
func (m *memoryStore) Save(context.Context, ledger.Changes) error   { return nil }
func (m *memoryStore) Reset(context.Context) error {
	m.snap = ledger.Changes{NextVehicle: 1}
	return nil
}

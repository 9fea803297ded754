package node

// Following: a cluster process that does not sequence keeps its ledger state by reading what the sequencer
// committed to the log in PostgreSQL and replaying it, every signature and rule checked as at any replay.
// The state starts from the newest snapshot (snapshot.go); the sequencer's own state is handed back here
// when it stops (lease.go).

import (
	"context"
	"fmt"
	"time"

	"github.com/glovebox/glovebox/ledger"
)

// follow reads what the sequencer committed since the last call and applies it to the followed state,
// checking every signature and rule as any replay does.
func (c *Cluster) follow(ctx context.Context) error {
	if err := c.Log.Refresh(ctx); err != nil {
		return err
	}
	size := c.Log.Size()
	c.Ledger.mu.RLock()
	have := c.Ledger.st.Size()
	c.Ledger.mu.RUnlock()
	if have >= size {
		return nil
	}
	// A small step is read before taking the lock, so that readers never wait for the database; a long
	// catch-up (at start) streams its entries while holding it.
	src := c.Log.Entries
	if size-have <= 4096 {
		es, err := c.Log.Entries(ctx, have, size-have)
		if err != nil {
			return err
		}
		src = func(_ context.Context, from, n int64) ([][]byte, error) {
			if from < have || from+n > size {
				return nil, fmt.Errorf("entries %d..%d were not read ahead", from, from+n)
			}
			return es[from-have : from-have+n], nil
		}
	}
	c.Ledger.mu.Lock()
	defer c.Ledger.mu.Unlock()
	if c.Ledger.st.Size() != have {
		return nil // someone else moved it meanwhile; the next tick goes on from there
	}
	if err := ledger.Replay(ctx, c.Ledger.d, c.Ledger.st, size, src, nil); err != nil {
		return fmt.Errorf("couldn't replay the log: %w", err)
	}
	return nil
}

// followLoop follows the log every FollowInterval until ctx is done.
func (c *Cluster) followLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.FollowInterval)
	defer tick.Stop()
	failing := false
	for {
		err := c.follow(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			c.logger.Error("couldn't follow the log; trying again every follow interval", "err", err)
			failing = true
		case err == nil && failing:
			c.logger.Info("following the log again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

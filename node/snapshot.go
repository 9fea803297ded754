package node

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
)

// snapshotFormat opens every stored snapshot. Format 2 holds each used nonce's deadline (the state forgets
// nonces past it); format 1 had no such line and is not read: a process that finds one replays the log.
const snapshotFormat = "glovebox-snapshot/2\n"

// encodeSnapshot packs a full ledger snapshot for the identity_snapshots table: snapshotFormat, then the
// gob of ledger.Changes, gzipped.
func encodeSnapshot(c ledger.Changes) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotFormat)
	zw := gzip.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(c); err != nil {
		return nil, fmt.Errorf("couldn't encode the snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeSnapshot unpacks encodeSnapshot's bytes into a state.
func decodeSnapshot(data []byte) (*ledger.State, error) {
	data, ok := bytes.CutPrefix(data, []byte(snapshotFormat))
	if !ok {
		return nil, fmt.Errorf("couldn't decode the snapshot: not of format %q", strings.TrimSpace(snapshotFormat))
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("couldn't decode the snapshot: %w", err)
	}
	var c ledger.Changes
	if err := gob.NewDecoder(zr).Decode(&c); err != nil {
		return nil, fmt.Errorf("couldn't decode the snapshot: %w", err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("couldn't decode the snapshot: %w", err)
	}
	return ledger.Restore(c)
}

// restoreSnapshot starts the followed state from the newest snapshot the log covers, if there is one
// that decodes; otherwise the state replays the whole log.
func (c *Cluster) restoreSnapshot(ctx context.Context) error {
	size, data, ok, err := postgres.LatestSnapshot(ctx, c.pool, c.Log.Size())
	if err != nil || !ok {
		return err
	}
	st, err := decodeSnapshot(data)
	if err == nil && st.Size() != size {
		err = fmt.Errorf("the snapshot of size %d holds a state of %d entries", size, st.Size())
	}
	if err != nil {
		c.logger.Warn("ignoring the stored snapshot; replaying the whole log", "err", err)
		return nil
	}
	c.Ledger.st, c.RestoredFrom = st, size
	c.logger.Info("restored the ledger state from a snapshot", "entries", size)
	return nil
}

// SaveSnapshot stores a snapshot of the current state. The sequencer calls it now and then.
func (c *Cluster) SaveSnapshot(ctx context.Context) (int64, error) {
	var snap ledger.Changes
	c.Ledger.Read(func(st *ledger.State) { snap = st.Snapshot() })
	data, err := encodeSnapshot(snap)
	if err != nil {
		return 0, err
	}
	return snap.Size, postgres.SaveSnapshot(ctx, c.pool, snap.Size, data)
}

// snapshotLoop stores a snapshot every SnapshotInterval when enough entries were appended since the last.
func (c *Cluster) snapshotLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.SnapshotInterval)
	defer tick.Stop()
	last := c.RestoredFrom
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.Log.Size()-last < c.cfg.SnapshotEntries {
			continue
		}
		size, err := c.SaveSnapshot(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Warn("couldn't store a snapshot", "err", err)
			}
			continue
		}
		last = size
	}
}

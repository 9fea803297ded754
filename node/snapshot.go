package node

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
)

// snapshotFormat opens every stored snapshot. Format 3 carries the digest of the state it holds; format 2
// (each used nonce with its deadline, no digest) and format 1 (nonces without deadlines) are not read: a
// process that finds one replays the log.
const snapshotFormat = "glovebox-snapshot/3\n"

// encodeSnapshot packs a full ledger snapshot for the identity_snapshots table:
//
//	glovebox-snapshot/3
//	<ledger.DigestVersion> <State.Digest of the state, 64 hex digits>
//	<the gob of ledger.Changes, gzipped>
//
// digest is the digest of the state c was taken from.
func encodeSnapshot(c ledger.Changes, digest [32]byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotFormat)
	fmt.Fprintf(&buf, "%s %x\n", ledger.DigestVersion, digest)
	zw := gzip.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(c); err != nil {
		return nil, fmt.Errorf("couldn't encode the snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeSnapshot unpacks encodeSnapshot's bytes into a state, and checks that it is the state whose
// digest they carry: a snapshot of another format, another digest version, or whose state decodes to
// anything else (a changed field decoding as its zero value, a damaged row) is refused, so that the
// caller replays the log rather than start from it.
func decodeSnapshot(data []byte) (*ledger.State, error) {
	data, ok := bytes.CutPrefix(data, []byte(snapshotFormat))
	if !ok {
		return nil, fmt.Errorf("couldn't decode the snapshot: not of format %q", strings.TrimSpace(snapshotFormat))
	}
	line, data, ok := bytes.Cut(data, []byte("\n"))
	version, sum, _ := strings.Cut(string(line), " ")
	if !ok || version != ledger.DigestVersion {
		return nil, fmt.Errorf("couldn't decode the snapshot: its digest is not of version %q", ledger.DigestVersion)
	}
	var want [32]byte
	if n, err := hex.Decode(want[:], []byte(sum)); err != nil || n != len(want) || len(sum) != 2*len(want) || sum != hex.EncodeToString(want[:]) {
		return nil, errors.New("couldn't decode the snapshot: its digest is not 64 lower-case hex digits")
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
	st, err := ledger.Restore(c)
	if err != nil {
		return nil, fmt.Errorf("couldn't restore the snapshot: %w", err)
	}
	if got := st.Digest(); got != want {
		return nil, fmt.Errorf("the snapshot's state has digest %x, not the %x it carries", got, want)
	}
	return st, nil
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
	var digest [32]byte
	c.Ledger.Read(func(st *ledger.State) { snap, digest = st.Snapshot(), st.Digest() })
	data, err := encodeSnapshot(snap, digest)
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

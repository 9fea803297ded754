package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
)

// ErrNotLeader is returned by Append when this process no longer holds the sequencer lease: another
// process has taken over, and this one must stop sequencing.
var ErrNotLeader = errors.New("postgres: this process is no longer the sequencer")

// Log is the Merkle log kept in PostgreSQL: the same entries, hashes and checkpoints as package tlog keeps
// in files, served on the same C2SP tlog-tiles paths. Every process opens it; readers follow what the
// sequencer appended with Refresh. Only the process holding the sequencer lease appends (Append runs on the
// lease's own connection and checks the lease's epoch in the same transaction, so a process that lost the
// lease can never append).
//
// The stored hashes are kept in memory (32 bytes per stored hash, about two per entry), as tlog.Log does,
// so that proofs and hash tiles cost no query.
//
// Every call that reaches the database takes a context and runs under a deadline of at most the statement
// timeout (DefaultStatementTimeout, SetStatementTimeout): a database that stops answering fails the call,
// and with it the sequencer's append (which then stops, as after any failed append), instead of hanging it.
type Log struct {
	pool    *pgxpool.Pool
	origin  string
	timeout time.Duration // bound of each call's database work; see SetStatementTimeout

	wmu    sync.Mutex // serializes Append and Refresh
	writer *Lease     // set by SetWriter; nil in a reader
	signer note.Signer

	mu     sync.RWMutex // guards the committed view below; never held during I/O
	size   int64
	stored hashSlice
	cp     []byte
}

var _ ledger.Log = (*Log)(nil)

// DefaultStatementTimeout bounds the database work of each call of a Log: a query, or an append's whole
// transaction.
const DefaultStatementTimeout = 10 * time.Second

// SetStatementTimeout replaces DefaultStatementTimeout; call it before the log is shared.
func (l *Log) SetStatementTimeout(d time.Duration) { l.timeout = d }

// bounded returns ctx with the statement timeout as a deadline (or ctx's own, if sooner).
func (l *Log) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.timeout)
}

type hashSlice []xtlog.Hash

func (s hashSlice) ReadHashes(indexes []int64) ([]xtlog.Hash, error) {
	out := make([]xtlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("stored hash %d is not in the log (have %d)", x, len(s))
		}
		out[i] = s[x]
	}
	return out, nil
}

// OpenLog opens the log of a migrated database. A new database is bound to origin; a database bound to
// another origin is refused. It reads every stored hash and the latest checkpoint.
func OpenLog(ctx context.Context, pool *pgxpool.Pool, origin string) (*Log, error) {
	l := &Log{pool: pool, origin: origin, timeout: DefaultStatementTimeout}
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	if _, err := pool.Exec(ctx, `INSERT INTO log_meta (origin) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM log_meta)`, origin); err != nil {
		return nil, fmt.Errorf("couldn't record the log's origin: %w", err)
	}
	var have string
	if err := pool.QueryRow(ctx, `SELECT origin FROM log_meta`).Scan(&have); err != nil {
		return nil, fmt.Errorf("couldn't read the log's origin: %w", err)
	}
	if have != origin {
		return nil, fmt.Errorf("the database holds the log of %q, not %q", have, origin)
	}
	if err := l.Refresh(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// Size implements ledger.Log.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// Latest returns the tree size and the signed checkpoint of exactly that size (nil for an empty log that
// no sequencer has signed yet).
func (l *Log) Latest() (int64, []byte) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size, slices.Clone(l.cp)
}

// Refresh reads what the sequencer committed since the last Refresh: the newest checkpoint, and the
// hashes up to its size. The view only ever moves forward, to a size some checkpoint commits to, and the
// new hashes are checked against that checkpoint's root.
func (l *Log) Refresh(ctx context.Context) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.refresh(ctx)
}

func (l *Log) refresh(ctx context.Context) error {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	var size int64
	var cp []byte
	err := l.pool.QueryRow(ctx, `SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &cp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read the latest checkpoint: %w", err)
	}
	l.mu.RLock()
	have, stored := l.size, l.stored
	l.mu.RUnlock()
	if size <= have {
		if size == have && l.cp == nil {
			l.mu.Lock()
			l.cp = cp
			l.mu.Unlock()
		}
		return nil
	}
	from, to := xtlog.StoredHashCount(have), xtlog.StoredHashCount(size)
	rows, err := l.pool.Query(ctx, `SELECT idx, hash FROM log_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx`, from, to)
	if err != nil {
		return fmt.Errorf("couldn't read log hashes: %w", err)
	}
	next := stored[:len(stored):len(stored)]
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			rows.Close()
			return err
		}
		if idx != int64(len(next)) || len(h) != xtlog.HashSize {
			rows.Close()
			return fmt.Errorf("log hash %d is missing or malformed", len(next))
		}
		next = append(next, xtlog.Hash(h))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read log hashes: %w", err)
	}
	if int64(len(next)) != to {
		return fmt.Errorf("the database has %d log hashes for a checkpoint of size %d, want %d", len(next), size, to)
	}
	root, err := xtlog.TreeHash(size, next)
	if err != nil {
		return err
	}
	if _, croot, err := parseCheckpoint(cp, l.origin); err != nil || croot != root {
		return fmt.Errorf("the checkpoint of size %d does not match the stored hashes (%v)", size, err)
	}
	l.mu.Lock()
	l.size, l.stored, l.cp = size, next, cp
	l.mu.Unlock()
	return nil
}

// parseCheckpoint reads the size and root of a checkpoint's text, without its signature (the database is
// trusted by the processes sharing it; clients check signatures).
func parseCheckpoint(cp []byte, origin string) (int64, xtlog.Hash, error) {
	n, err := note.Open(cp, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		n = unverified.Note
	} else if err != nil {
		return 0, xtlog.Hash{}, err
	}
	var c fmtlog.Checkpoint
	if _, err := c.Unmarshal([]byte(n.Text)); err != nil || c.Origin != origin || len(c.Hash) != xtlog.HashSize {
		return 0, xtlog.Hash{}, fmt.Errorf("checkpoint is not for %q: %v", origin, err)
	}
	return int64(c.Size), xtlog.Hash(c.Hash), nil
}

// SetWriter makes this Log append on behalf of the lease holder, signing checkpoints with signer. It
// first reads what earlier sequencers committed. When the database holds no checkpoint yet, it signs one
// of size 0.
func (l *Log) SetWriter(ctx context.Context, lease *Lease, signer note.Signer) error {
	if signer.Name() != l.origin {
		return fmt.Errorf("the signer is %q, the log's origin %q", signer.Name(), l.origin)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.refresh(ctx); err != nil {
		return err
	}
	l.writer, l.signer = lease, signer
	l.mu.RLock()
	empty := l.cp == nil
	l.mu.RUnlock()
	if empty {
		if _, _, err := l.appendLocked(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// Append implements ledger.Log: the entries, their hashes and a checkpoint signed for the new size are
// written in one transaction on the lease's connection, after checking that the lease is still this
// process's (ErrNotLeader otherwise). When it returns without error they are durable. The transaction
// runs under ctx and the statement timeout: when either ends first it is rolled back and Append fails.
func (l *Log) Append(ctx context.Context, entries [][]byte) (first int64, checkpoint []byte, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.appendLocked(ctx, entries)
}

func (l *Log) appendLocked(ctx context.Context, entries [][]byte) (int64, []byte, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	if l.writer == nil {
		return 0, nil, errors.New("postgres: this log is read-only (not the sequencer)")
	}
	l.mu.RLock()
	size, stored := l.size, l.stored
	l.mu.RUnlock()
	next := stored[:len(stored):len(stored)]
	var hashIdx []int64
	var hashes [][]byte
	idx := make([]int64, len(entries))
	for i, e := range entries {
		if len(e) > 1<<16-1 {
			return 0, nil, fmt.Errorf("entry of %d bytes is too large", len(e))
		}
		n := size + int64(i)
		idx[i] = n
		hs, err := xtlog.StoredHashesForRecordHash(n, xtlog.RecordHash(e), next)
		if err != nil {
			return 0, nil, err
		}
		for _, h := range hs {
			hashIdx = append(hashIdx, int64(len(next)))
			hashes = append(hashes, slices.Clone(h[:]))
			next = append(next, h)
		}
	}
	newSize := size + int64(len(entries))
	root, err := xtlog.TreeHash(newSize, next)
	if err != nil {
		return 0, nil, err
	}
	cp, err := tlog.SignCheckpoint(l.origin, newSize, root, l.signer)
	if err != nil {
		return 0, nil, err
	}
	err = l.writer.inTx(ctx, func(tx pgx.Tx) error {
		if len(entries) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO log_entries (idx, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, idx, entries); err != nil {
				return fmt.Errorf("couldn't insert log entries: %w", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO log_hashes (idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, hashIdx, hashes); err != nil {
				return fmt.Errorf("couldn't insert log hashes: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log_checkpoints (size, note, epoch) VALUES ($1, $2, $3)
			ON CONFLICT (size) DO UPDATE SET note = excluded.note, epoch = excluded.epoch`, newSize, cp, l.writer.epoch); err != nil {
			return fmt.Errorf("couldn't insert the checkpoint: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	l.mu.Lock()
	l.size, l.stored, l.cp = newSize, next, cp
	l.mu.Unlock()
	return size, slices.Clone(cp), nil
}

// Entries returns the committed entries [from, from+n).
func (l *Log) Entries(ctx context.Context, from, n int64) ([][]byte, error) {
	if size := l.Size(); from < 0 || n < 0 || from+n > size {
		return nil, fmt.Errorf("entries %d..%d: %w (log size %d)", from, from+n, tlog.ErrNotFound, size)
	}
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	rows, err := l.pool.Query(ctx, `SELECT data FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`, from, from+n)
	if err != nil {
		return nil, fmt.Errorf("couldn't read log entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("couldn't read log entries: %w", err)
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("log entries %d..%d: the database has %d of them", from, from+n, len(out))
	}
	return out, nil
}

// Entry returns the committed entry at index.
func (l *Log) Entry(ctx context.Context, index int64) ([]byte, error) {
	e, err := l.Entries(ctx, index, 1)
	if err != nil {
		return nil, err
	}
	return e[0], nil
}

// InclusionProof proves the entry at index in the tree of size, 0 ≤ index < size ≤ Size().
func (l *Log) InclusionProof(index, size int64) (xtlog.RecordProof, error) {
	l.mu.RLock()
	have, stored := l.size, l.stored
	l.mu.RUnlock()
	if index < 0 || index >= size || size > have {
		return nil, fmt.Errorf("inclusion proof of %d in size %d: want 0 ≤ index < size ≤ %d", index, size, have)
	}
	return xtlog.ProveRecord(size, index, stored)
}

// InclusionProofs returns InclusionProof(n, size) for each n of indexes, computing the hashes the proofs
// share once (tlog.ProveRecords), as tlog.Log.InclusionProofs does.
func (l *Log) InclusionProofs(indexes []int64, size int64) ([]xtlog.RecordProof, error) {
	l.mu.RLock()
	have, stored := l.size, l.stored
	l.mu.RUnlock()
	if size > have {
		return nil, fmt.Errorf("inclusion proofs in size %d: want size ≤ %d", size, have)
	}
	return tlog.ProveRecords(size, indexes, stored)
}

// ReadTile serves a C2SP tlog-tiles path, as tlog.Log.ReadTile does. Entry bundles are read from the
// database under ctx (and the statement timeout); the checkpoint and hash tiles come from memory.
func (l *Log) ReadTile(ctx context.Context, path string) ([]byte, error) {
	l.mu.RLock()
	size, stored, cp := l.size, l.stored, l.cp
	l.mu.RUnlock()
	if path == "checkpoint" {
		if cp == nil {
			return nil, fmt.Errorf("no checkpoint yet: %w", tlog.ErrNotFound)
		}
		return slices.Clone(cp), nil
	}
	t, err := tlog.ParseTilePath(path)
	if err != nil {
		return nil, err
	}
	notFound := fmt.Errorf("tile %s: %w (log size %d)", path, tlog.ErrNotFound, size)
	if t.L == -1 {
		start, ok := tlog.TileStart(t, size)
		if !ok {
			return nil, notFound
		}
		es, err := l.Entries(ctx, start, int64(t.W)) // under the statement timeout
		if err != nil {
			return nil, err
		}
		var out []byte
		for _, e := range es {
			out = append(out, byte(len(e)>>8), byte(len(e)))
			out = append(out, e...)
		}
		return out, nil
	}
	if t.L >= 8 {
		return nil, notFound
	}
	level := 8 * t.L
	start, ok := tlog.TileStart(t, size>>level)
	if !ok {
		return nil, notFound
	}
	out := make([]byte, 0, t.W*xtlog.HashSize)
	for n := start; n < start+int64(t.W); n++ {
		out = append(out, stored[xtlog.StoredHashIndex(level, n)][:]...)
	}
	return out, nil
}

// Handler serves the log's C2SP tlog-tiles paths under prefix.
func (l *Log) Handler(prefix string) http.Handler { return tlog.TileHandler(prefix, l.ReadTile) }

package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease is the sequencer role, held by at most one process at a time: a session advisory lock on a
// connection of its own, plus an epoch (a fencing token) bumped in sequencer_lease when the lock is taken.
// When the holder dies its connection closes and PostgreSQL releases the lock at once; a standby waiting
// in Acquire then takes it. Every Append checks the epoch inside its own transaction on the same
// connection, so an old holder whose connection was lost can never append after a new one took over.
type Lease struct {
	mu    sync.Mutex // serializes use of conn
	conn  *pgx.Conn  // taken out of the pool: the lock lives and dies with this session
	epoch int64
}

// PollInterval is how often a standby tries to take the lease, and how often a holder checks it still has
// its connection.
var PollInterval = 500 * time.Millisecond

// Acquire waits until this process holds the sequencer lease (or ctx ends). holder and url are recorded
// for the other processes: url is where they forward transactions.
func Acquire(ctx context.Context, pool *pgxpool.Pool, holder, url string) (*Lease, error) {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect for the sequencer lease: %w", err)
	}
	// This session never goes back to the pool: the lock belongs to it.
	conn := pc.Hijack()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockSequencer).Scan(&ok); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("couldn't try the sequencer lock: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			conn.Close(context.Background())
			return nil, ctx.Err()
		case <-time.After(PollInterval):
		}
	}
	l := &Lease{conn: conn}
	if err := conn.QueryRow(ctx, `UPDATE sequencer_lease SET epoch = epoch + 1, holder = $1, url = $2, since = now()
		WHERE id = 1 RETURNING epoch`, holder, url).Scan(&l.epoch); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("couldn't take the sequencer lease: %w", err)
	}
	return l, nil
}

// Epoch returns the lease's fencing token.
func (l *Lease) Epoch() int64 { return l.epoch }

// inTx runs f in a transaction on the lease's connection after checking the epoch is still this lease's.
func (l *Lease) inTx(ctx context.Context, f func(pgx.Tx) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return ErrNotLeader
	}
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		var epoch int64
		if err := tx.QueryRow(ctx, `SELECT epoch FROM sequencer_lease WHERE id = 1 FOR SHARE`).Scan(&epoch); err != nil {
			return fmt.Errorf("couldn't check the sequencer lease: %w", err)
		}
		if epoch != l.epoch {
			return ErrNotLeader
		}
		return f(tx)
	})
	return err
}

// LeaseCheckTimeout bounds Check: a database that does not answer within it fails the check (and the
// session with it), rather than hanging the holder's check loop.
var LeaseCheckTimeout = 5 * time.Second

// Check verifies that the lease's session is alive and the epoch unchanged, within LeaseCheckTimeout
// (or ctx's deadline, if sooner). An append in flight on the lease's connection is waited for first; it
// is bounded by the log's statement timeout.
func (l *Lease) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, LeaseCheckTimeout)
	defer cancel()
	return l.inTx(ctx, func(pgx.Tx) error { return nil })
}

// Release gives the lease up: the session (and with it the lock) is closed.
func (l *Lease) Release() error {
	return l.conn.Close(context.Background())
}

// Leader returns the holder and URL recorded by the current lease holder, if any.
func Leader(ctx context.Context, pool *pgxpool.Pool) (holder, url string, epoch int64, err error) {
	err = pool.QueryRow(ctx, `SELECT holder, url, epoch FROM sequencer_lease WHERE id = 1`).Scan(&holder, &url, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", 0, nil
	}
	return holder, url, epoch, err
}

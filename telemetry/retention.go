package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glovebox/glovebox/ledger"
)

// Deletion of telemetry as the ledger orders it: a vehicle's retention window (SetRetention) and the
// erasures its owners and former owners asked for (EraseData). docs/retention.md is the reference.
//
// A Sweeper turns the ledger state into deletion jobs, each a vehicle and a range of measurement times,
// and has a Deleter delete each job in bounded batches until nothing of it is left. Deleting is
// idempotent: a job interrupted by a crash is simply run again by the next sweep, and every sweep runs
// every job again, so a record a device sends again after its deletion is deleted again. The access log
// is not telemetry and is never deleted.

// RetentionJob is the key of a vehicle's retention job.
const RetentionJob = "retention"

// ErasureJob returns the key of the deletion of range i of the erasure at log index.
func ErasureJob(index int64, i int) string {
	return "erasure/" + strconv.FormatInt(index, 10) + "/" + strconv.Itoa(i)
}

// ErasureOf returns the log index of the erasure an ErasureJob key names.
func ErasureOf(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, "erasure/")
	if !ok {
		return 0, false
	}
	idx, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(idx, 10, 64)
	return n, err == nil
}

// DeleteJob is the deletion of Vehicle's telemetry measured in [From, To) (unix ms).
type DeleteJob struct {
	Key      string // RetentionJob or an ErasureJob
	Vehicle  uint64
	From, To int64
}

// Deleted counts deleted rows.
type Deleted struct {
	Records int64 `json:"records"` // device-signed records
	Values  int64 `json:"values"`  // signal values derived from them (latest values and roll-ups follow)
	Events  int64 `json:"events"`  // driving events
}

// Add adds o to d.
func (d *Deleted) Add(o Deleted) {
	d.Records, d.Values, d.Events = d.Records+o.Records, d.Values+o.Values, d.Events+o.Events
}

// Tally is what one job deleted so far.
type Tally struct {
	Key     string
	Vehicle uint64
	Deleted
	CompletedAt int64 // unix ms when a sweep first found nothing of the job left; 0 while pending
	SweptAt     int64 // unix ms of the last sweep that found nothing left
}

// Deleter is a telemetry store that deletes.
type Deleter interface {
	// DeleteBatch deletes at most about limit rows of each kind of job's telemetry (records, values,
	// events, and the roll-ups and latest values derived from them) and adds what it deleted to the job's
	// tally in the same transactions as the deletion, so the tally survives a crash exactly. It returns
	// what it deleted, and done when nothing of the job was left. A batch MUST be short (a few tens of
	// milliseconds): ingest waits for it.
	DeleteBatch(ctx context.Context, job DeleteJob, limit int) (d Deleted, done bool, err error)

	// Finish is called when DeleteBatch found nothing left. If any batch since the last Finish (in this
	// process or one that crashed) deleted derived rows, it brings the latest values and roll-ups in line
	// with what remains. It records the job swept at now, and completed at now the first time.
	Finish(ctx context.Context, job DeleteJob, now int64) error

	// Tallies returns the tallies of every job of vehicle, in no particular order.
	Tallies(ctx context.Context, vehicle uint64) ([]Tally, error)
}

// Eraser is a store that keeps copies of telemetry outside the telemetry store (the webhook outbox: the
// events it delivered carry values) and deletes them with the telemetry they were taken from.
type Eraser interface {
	// Erase deletes what it holds of vehicle's telemetry measured in [from, to) (unix ms), in batches of
	// short transactions, and returns how many items it deleted. Erasing again deletes nothing more.
	Erase(ctx context.Context, vehicle uint64, from, to int64) (int64, error)
}

// Jobs returns the deletion jobs of vehicle v at unix-ms time now: its retention window, when it has
// one, and every range of every erasure.
func Jobs(v ledger.Vehicle, now int64) []DeleteJob {
	var out []DeleteJob
	if v.RetentionDays > 0 {
		out = append(out, DeleteJob{Key: RetentionJob, Vehicle: v.ID, From: 0, To: now - int64(v.RetentionDays)*24*3600*1000})
	}
	for _, e := range v.Erasures {
		for i, r := range e.Ranges {
			out = append(out, DeleteJob{Key: ErasureJob(e.Index, i), Vehicle: v.ID, From: r.From, To: r.To})
		}
	}
	return out
}

// Sweeper runs the deletion jobs of every vehicle with a retention window or an erasure.
type Sweeper struct {
	opts SweeperOptions
}

// SweeperOptions configures a Sweeper.
type SweeperOptions struct {
	State StateReader // the ledger state (required)
	Store Deleter     // required
	// Erasers delete the copies of telemetry other stores keep; each job runs on each of them before it
	// is recorded swept, so that a completed erasure left no copy behind.
	Erasers []Eraser
	// Interval is the time between sweeps; zero means DefaultSweepInterval. Data falls out of a retention
	// window at most Interval plus one sweep's duration before it is deleted.
	Interval time.Duration
	// Batch is the most rows of each kind one DeleteBatch deletes; zero means DefaultDeleteBatch.
	Batch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Progress, when set, is called after every batch with the job and what the batch deleted (for
	// logs and progress displays). It runs on the sweeping goroutine.
	Progress func(job DeleteJob, d Deleted)
}

// Defaults of SweeperOptions.
const (
	DefaultSweepInterval = 10 * time.Minute
	DefaultDeleteBatch   = 10000
)

// NewSweeper returns a sweeper; Run starts it.
func NewSweeper(opts SweeperOptions) *Sweeper {
	if opts.Interval <= 0 {
		opts.Interval = DefaultSweepInterval
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultDeleteBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Sweeper{opts: opts}
}

// Run sweeps at once and then every Interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context) {
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for {
		if d, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("couldn't delete telemetry as the retention policies and erasures ask", "err", err)
		} else if d.Records+d.Values+d.Events > 0 {
			s.opts.Logger.Info("deleted telemetry", "records", d.Records, "values", d.Values, "events", d.Events)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sweep runs every job of the current ledger state to its end and returns what it deleted.
func (s *Sweeper) Sweep(ctx context.Context) (Deleted, error) {
	var vehicles []ledger.Vehicle
	s.opts.State(func(st *ledger.State) { vehicles = st.Retained() })
	now := s.opts.Now().UnixMilli()
	var total Deleted
	for _, v := range vehicles {
		for _, job := range Jobs(v, now) {
			if job.To <= job.From {
				continue
			}
			for {
				d, done, err := s.opts.Store.DeleteBatch(ctx, job, s.opts.Batch)
				if err != nil {
					return total, fmt.Errorf("couldn't delete %s of vehicle %d: %w", job.Key, job.Vehicle, err)
				}
				total.Add(d)
				if s.opts.Progress != nil {
					s.opts.Progress(job, d)
				}
				if done {
					for _, e := range s.opts.Erasers {
						if _, err := e.Erase(ctx, job.Vehicle, job.From, job.To); err != nil {
							return total, fmt.Errorf("couldn't erase the copies of %s of vehicle %d: %w", job.Key, job.Vehicle, err)
						}
					}
					if err := s.opts.Store.Finish(ctx, job, now); err != nil {
						return total, fmt.Errorf("couldn't finish %s of vehicle %d: %w", job.Key, job.Vehicle, err)
					}
					break
				}
				if err := ctx.Err(); err != nil {
					return total, err
				}
			}
		}
	}
	return total, nil
}

// RetentionReport is what GET /v1/vehicles/{id}/retention answers (docs/api.md).
type RetentionReport struct {
	Vehicle uint64 `json:"vehicleId"`
	// Days is the retention window (0: kept until erased); SetAt when it was set (RFC 3339, absent if never).
	Days  uint16 `json:"days"`
	SetAt string `json:"setAt,omitempty"`
	// Retention is what the window deleted so far and when a sweep last completed (absent before).
	Retention *RetentionTally `json:"retention,omitempty"`
	Erasures  []ErasureReport `json:"erasures"`
}

// RetentionTally is what a vehicle's retention window deleted.
type RetentionTally struct {
	Deleted
	SweptAt string `json:"sweptAt,omitempty"`
}

// ErasureReport is one erasure and its progress.
type ErasureReport struct {
	Index       int64       `json:"index"`   // its log entry
	Account     string      `json:"account"` // who asked
	Before      string      `json:"before"`  // RFC 3339
	RequestedAt string      `json:"requestedAt"`
	Ranges      []TimeRange `json:"ranges"`
	Status      string      `json:"status"` // "pending" or "completed"
	CompletedAt string      `json:"completedAt,omitempty"`
	Deleted     Deleted     `json:"deleted"`
}

// TimeRange is [From, To) in RFC 3339.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func rfc3339(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.999Z07:00")
}

// Report builds the retention report of vehicle v from the store's tallies. Only the erasures accepted
// from account are listed unless all is true (the current owner sees every erasure).
func Report(v ledger.Vehicle, tallies []Tally, account string, all bool) RetentionReport {
	r := RetentionReport{Vehicle: v.ID, Days: v.RetentionDays, Erasures: []ErasureReport{}}
	if v.RetentionSetAt != 0 {
		r.SetAt = rfc3339(v.RetentionSetAt)
	}
	type agg struct {
		d         Deleted
		completed int64
		ranges    int
	}
	byIndex := map[int64]*agg{}
	for _, t := range tallies {
		if t.Key == RetentionJob {
			rt := &RetentionTally{Deleted: t.Deleted}
			if t.SweptAt != 0 {
				rt.SweptAt = rfc3339(t.SweptAt)
			}
			r.Retention = rt
			continue
		}
		idx, ok := ErasureOf(t.Key)
		if !ok {
			continue
		}
		a := byIndex[idx]
		if a == nil {
			a = &agg{}
			byIndex[idx] = a
		}
		a.d.Add(t.Deleted)
		if t.CompletedAt != 0 {
			a.ranges++
			a.completed = max(a.completed, t.CompletedAt)
		}
	}
	for _, e := range v.Erasures {
		if !all && !strings.EqualFold(e.Account, account) {
			continue
		}
		er := ErasureReport{Index: e.Index, Account: e.Account, Before: rfc3339(e.Before * 1000), RequestedAt: rfc3339(e.RequestedAt),
			Ranges: []TimeRange{}, Status: "pending"}
		for _, rg := range e.Ranges {
			er.Ranges = append(er.Ranges, TimeRange{rfc3339(rg.From), rfc3339(rg.To)})
		}
		a := byIndex[e.Index]
		if a != nil {
			er.Deleted = a.d
		}
		if len(e.Ranges) == 0 {
			er.Status, er.CompletedAt = "completed", er.RequestedAt
		} else if a != nil && a.ranges == len(e.Ranges) {
			er.Status, er.CompletedAt = "completed", rfc3339(a.completed)
		}
		r.Erasures = append(r.Erasures, er)
	}
	slices.SortFunc(r.Erasures, func(a, b ErasureReport) int { return int(max(-1, min(1, a.Index-b.Index))) })
	return r
}

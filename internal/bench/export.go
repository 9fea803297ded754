package bench

import (
	"archive/zip"
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// ExportOptions configures Export.
type ExportOptions struct {
	Days      int           // of telemetry of the one car (default 30)
	Interval  time.Duration // between two samples of 10 signals (default 1 s)
	PerRecord int           // samples to a record (default 30, a dongle uploading every half minute)
	Progress  io.Writer
	// Profile, if set, starts a CPU profile of the export over HTTP (node included) and returns what
	// stops it.
	Profile func() (stop func())
}

// ExportReport is what Export measured.
type ExportReport struct {
	Cores             int
	Days              int
	Interval          time.Duration
	PerRecord         int
	Records, Values   int
	Load              time.Duration // signing, storing, indexing and rolling up the history
	Bytes             int64         // of the archive
	Duration          time.Duration // GET /v1/vehicles/{id}/export over HTTP, first byte to last
	HeapBefore        uint64        // live heap before the export (bytes)
	HeapPeak          uint64        // the highest heap in use sampled during it
	VerifyDuration    time.Duration // export.Verify of the archive
	VerifiedRecords   int64
	VerifiedValues    int64
	VerifyHeapPeakInc uint64

	// The owner's erasure of the whole history, swept while a device of another car sends one record per
	// request, one request after another.
	DeleteDuration  time.Duration // the sweep, first batch to last
	Deleted         telemetry.Deleted
	Batches         int           // DeleteBatch transactions
	LongestBatch    time.Duration // the longest of them (ingest waits for a batch)
	IngestBefore    time.Duration // the slowest ingest request in the second before the sweep
	LongestIngest   time.Duration // the slowest ingest request during the sweep: the longest stall
	IngestDuring    int           // ingest requests answered during the sweep
	IngestRejected  int           // of all ingest requests, those not accepted (must be 0)
	RemainingValues int64         // values of the car left after the sweep (must be 0)
}

// Export runs a node in this process, loads Days of one car's telemetry (signed by its device, written
// straight into the store, then indexed and rolled up), and measures its owner's export over HTTP — time
// and the growth of the heap while it streams — then export.Verify of the archive; then the deletion of
// all of it (the owner's EraseData, one sweep) while another car's device keeps sending: its time, its
// longest batch and the slowest ingest request meanwhile.
func Export(ctx context.Context, opts ExportOptions) (*ExportReport, error) {
	if opts.Days == 0 {
		opts.Days = 30
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	if opts.PerRecord == 0 {
		opts.PerRecord = 30
	}
	logf := func(format string, args ...any) { logTo(opts.Progress, format, args...) }
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	qo := &QueryOptions{HistoryDays: opts.Days, HistoryInterval: opts.Interval, HistoryPerRecord: opts.PerRecord, HistoryDirect: true,
		Progress: opts.Progress}
	car, err := loadOneCar(ctx, end, qo)
	if err != nil {
		return nil, err
	}
	defer car.qn.stop()
	qn, c, owner, ids, clock, qr := car.qn, car.c, car.owner, []uint64{car.id}, car.clock, car.hist
	rep := &ExportReport{Cores: runtime.NumCPU(), Days: opts.Days, Interval: opts.Interval, PerRecord: opts.PerRecord,
		Records: qr.HistoryRecords, Values: qr.HistoryValues, Load: car.load}
	token, err := SignIn(ctx, qn.url, owner)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "glovebox-bench-export-*.zip")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()

	logf("exporting %d records (%d values) over HTTP…", rep.Records, rep.Values)
	rep.HeapBefore, rep.HeapPeak, rep.Duration, err = measureHeap(func() error {
		if opts.Profile != nil {
			defer opts.Profile()()
		}
		st, err := c.Export(ctx, token, client.ExportQuery{Vehicle: ids[0]})
		if err != nil {
			return err
		}
		defer st.Body.Close()
		rep.Bytes, err = io.Copy(f, st.Body)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("the export failed: %w", err)
	}
	info, err := c.Node(ctx)
	if err != nil {
		return nil, err
	}
	logf("verifying the archive (%d bytes)…", rep.Bytes)
	zr, err := zip.OpenReader(f.Name())
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var vr *export.Report
	before, peak, d, err := measureHeap(func() error {
		var err error
		vr, err = export.Verify(&zr.Reader, info.LogKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("the archive does not verify: %w", err)
	}
	rep.VerifyDuration, rep.VerifiedRecords, rep.VerifiedValues, rep.VerifyHeapPeakInc = d, vr.Records, vr.Values, peak-min(peak, before)

	logf("erasing the history while another car's device sends…")
	if err := measureDeletion(ctx, qn, c, owner, ids[0], clock, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// measureDeletion has the owner erase all of vehicle's telemetry (EraseData before now) and runs one sweep
// of it while a device of a second car sends one record per request: how long the sweep took, its longest
// batch, and the slowest ingest request before and during it.
func measureDeletion(ctx context.Context, qn *queryNode, c *client.Client, owner *ecdsa.PrivateKey, vehicle uint64, clock func() time.Time,
	rep *ExportReport) error {
	devs, ids, err := ownedFleet(ctx, c, owner, 1, clock)
	if err != nil {
		return err
	}
	d, err := c.Domain(ctx)
	if err != nil {
		return err
	}
	erase := &ledger.Tx{Type: ledger.TypeEraseData, Before: uint64(time.Now().Unix())}
	erase.VehicleID.SetUint64(vehicle)
	client.Prepare(erase, time.Hour)
	if err := d.Sign(erase, owner); err != nil {
		return err
	}
	if _, err := c.Submit(ctx, erase); err != nil {
		return fmt.Errorf("the erasure was refused: %w", err)
	}

	var mu sync.Mutex
	var slowest time.Duration
	var answered, rejected int
	stop := make(chan struct{})
	ingestDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				ingestDone <- nil
				return
			default:
			}
			now := time.Now()
			ev, err := telemetry.NewEvent(crypto.PubkeyToAddress(devs[0].PublicKey), ids[0], "live-"+strconv.Itoa(i), now,
				[]telemetry.EventSignal{{Name: "speed", Timestamp: now, Value: 50.0}})
			if err != nil {
				ingestDone <- err
				return
			}
			sub, err := telemetry.Sign(ev, devs[0])
			if err != nil {
				ingestDone <- err
				return
			}
			t0 := time.Now()
			res, err := c.PostEvents(ctx, []telemetry.Submission{sub})
			took := time.Since(t0)
			if err != nil {
				ingestDone <- err
				return
			}
			mu.Lock()
			slowest = max(slowest, took)
			answered++
			if res[0].Status != telemetry.StatusAccepted {
				rejected++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(time.Second)
	mu.Lock()
	rep.IngestBefore, slowest, answered = slowest, 0, 0
	mu.Unlock()

	var last time.Time
	sw := telemetry.NewSweeper(telemetry.SweeperOptions{State: qn.n.Sequencer.Read, Store: qn.n.Telemetry,
		Erasers: []telemetry.Eraser{qn.n.WebhookStore}, Logger: slog.New(slog.DiscardHandler),
		Progress: func(job telemetry.DeleteJob, _ telemetry.Deleted) {
			rep.Batches++
			rep.LongestBatch = max(rep.LongestBatch, time.Since(last))
			last = time.Now()
		}})
	t0 := time.Now()
	last = t0
	rep.Deleted, err = sw.Sweep(ctx)
	rep.DeleteDuration = time.Since(t0)
	close(stop)
	if ierr := <-ingestDone; ierr != nil && err == nil {
		err = fmt.Errorf("ingest during the deletion: %w", ierr)
	}
	if err != nil {
		return err
	}
	mu.Lock()
	rep.LongestIngest, rep.IngestDuring, rep.IngestRejected = slowest, answered, rejected
	mu.Unlock()
	return qn.n.Telemetry.SignalsDB().QueryRowContext(ctx, `SELECT (SELECT COALESCE(SUM(cnt), 0) FROM open_values WHERE vehicle = ?1) + (SELECT COALESCE(SUM(cnt), 0) FROM chunk_sums WHERE vehicle = ?1)`, vehicle).Scan(&rep.RemainingValues)
}

// oneCar is a node in this process holding the history of one car, signed by its paired device.
type oneCar struct {
	qn     *queryNode
	c      *client.Client
	owner  *ecdsa.PrivateKey
	id     uint64
	clock  func() time.Time // the node's: the wall clock once the history is loaded
	hist   QueryReport      // what loadHistory loaded
	load   time.Duration    // signing, storing, indexing and rolling up the history
	cached bool             // reopened from a cache directory: hist holds only its counts
}

// loadOneCar starts a node whose clock stands before the history while a new owner registers the car
// and pairs its device, then runs with the wall clock, and loads qo's history (one vehicle, ending at
// end) into it. The caller stops car.qn.
func loadOneCar(ctx context.Context, end time.Time, qo *QueryOptions) (*oneCar, error) {
	return loadOneCarIn(ctx, "", end, qo)
}

// loadOneCarIn is loadOneCar on the node directory dir, kept when the node stops, or on a temporary
// directory if dir is "".
func loadOneCarIn(ctx context.Context, dir string, end time.Time, qo *QueryOptions) (*oneCar, error) {
	start := end.Add(-time.Duration(qo.HistoryDays) * 24 * time.Hour)
	var live atomic.Bool
	clock := func() time.Time {
		if live.Load() {
			return time.Now()
		}
		return start.Add(-time.Hour)
	}
	var qn *queryNode
	var err error
	if dir == "" {
		qn, err = startQueryNode(ctx, clock)
	} else {
		qn, err = startQueryNodeIn(ctx, dir, false, clock)
	}
	if err != nil {
		return nil, err
	}
	car := &oneCar{qn: qn, c: client.New(qn.url), clock: clock}
	car.owner, _ = crypto.GenerateKey()
	devs, ids, err := ownedFleet(ctx, car.c, car.owner, 1, clock)
	if err != nil {
		qn.stop()
		return nil, err
	}
	car.id = ids[0]
	live.Store(true)
	t0 := time.Now()
	if err := loadHistory(ctx, qn.n, devs, ids, end, qo, &car.hist); err != nil {
		qn.stop()
		return nil, err
	}
	car.load = time.Since(t0)
	return car, nil
}

// measureHeap runs f and samples the heap in use every 20 ms: before f (after a collection), the
// highest seen while it ran, and how long it took.
func measureHeap(f func() error) (before, peak uint64, d time.Duration, err error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before, peak = ms.HeapInuse, ms.HeapInuse
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	t0 := time.Now()
	err = f()
	d = time.Since(t0)
	close(stop)
	wg.Wait()
	return before, peak, d, err
}

// Print writes the report.
func (r *ExportReport) Print(w io.Writer) {
	mb := func(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	fmt.Fprintf(w, "cores: %d; one car, %d days of 10 signals every %s, %d samples to a record: %d records, %d values (loaded in %s)\n",
		r.Cores, r.Days, r.Interval, r.PerRecord, r.Records, r.Values, r.Load.Round(time.Second))
	fmt.Fprintf(w, "export over HTTP: %s, %s archive (%.0f values/s); heap %s before, peak %s (growth %s)\n",
		r.Duration.Round(time.Millisecond), mb(uint64(r.Bytes)), float64(r.Values)/r.Duration.Seconds(), mb(r.HeapBefore), mb(r.HeapPeak),
		mb(r.HeapPeak-min(r.HeapPeak, r.HeapBefore)))
	fmt.Fprintf(w, "export.Verify: %s for %d records and %d values (heap growth %s)\n",
		r.VerifyDuration.Round(time.Millisecond), r.VerifiedRecords, r.VerifiedValues, mb(r.VerifyHeapPeakInc))
	fmt.Fprintf(w, "erasing it: %s for %d records, %d values, %d events in %d batches (longest %s); %d values left\n",
		r.DeleteDuration.Round(time.Millisecond), r.Deleted.Records, r.Deleted.Values, r.Deleted.Events, r.Batches,
		r.LongestBatch.Round(time.Millisecond), r.RemainingValues)
	fmt.Fprintf(w, "ingest meanwhile (one record a request): slowest %s during the deletion (%d requests), %s in the second before; %d not accepted\n",
		r.LongestIngest.Round(time.Millisecond), r.IngestDuring, r.IngestBefore.Round(time.Millisecond), r.IngestRejected)
}

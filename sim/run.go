package sim

import (
	"context"
	"crypto/ecdsa"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/telemetry"
)

// Transport delivers signed records to a node: one result per submission, in order. An error means the
// whole delivery failed (nothing is known about the records; they are sent again).
type Transport interface {
	Send(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error)
}

// DeviceTransport is a Transport that speaks as each device (MQTT logs in per device): Run gives it the
// fleet's device keys and the log's origin once the fleet is set up.
type DeviceTransport interface {
	Transport
	SetDevices(origin string, keys []*ecdsa.PrivateKey)
}

// HTTPTransport posts records to POST /v1/events, up to api.MaxEventBatch per request.
type HTTPTransport struct {
	Client *client.Client
}

// NewHTTPTransport returns a transport to the node at nodeURL.
func NewHTTPTransport(nodeURL string) *HTTPTransport {
	return &HTTPTransport{Client: client.New(nodeURL)}
}

// Send posts subs in as few requests as the batch limit allows.
func (h *HTTPTransport) Send(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error) {
	out := make([]telemetry.Result, 0, len(subs))
	for lo := 0; lo < len(subs); lo += api.MaxEventBatch {
		res, err := h.Client.PostEvents(ctx, subs[lo:min(lo+api.MaxEventBatch, len(subs))])
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// Options configures Run.
type Options struct {
	Node      string        // the node's base URL, e.g. "http://127.0.0.1:8080"
	Vehicles  int           // default 25
	Rate      time.Duration // the tick: simulated time advances with the wall clock, one step per Rate; default 1s
	Duration  time.Duration // stop after this long; 0 runs until ctx is cancelled
	Seed      uint64        // 0: the keys file's seed, or a random one for a new fleet
	KeysDir   string        // default "./sim-keys"
	Transport Transport     // nil: HTTP to Node
	Logger    *slog.Logger  // default slog.Default()
	// StatusEvery is the interval of the status lines; default 10s.
	StatusEvery time.Duration
	// OwnerPassphrase, if set, has Run write the key of the first vehicle's owner to
	// KeysDir/OwnerKeyFile as a Web3 key file encrypted with it (unless the file exists), so that the
	// owner can sign in to the web app with it. The file uses light scrypt parameters: it is a demo key.
	OwnerPassphrase string
	// DemoApp has Run also set up the demo insurer app (see setupInsurer: registered, granted a few cars)
	// and have it read its cars every DemoAppEvery (default 30s) with its own key, over GraphQL.
	DemoApp      bool
	DemoAppEvery time.Duration
	// Progress, if set, is told in a sentence each step of the setup (for a terminal at startup).
	Progress func(string)
}

// Stats counts a run's records.
type Stats struct {
	Vehicles   int
	Setup      SetupResult
	Seed       uint64
	Records    int64                      // delivered by the devices (not counting those still in their buffers)
	Sent       int64                      // submitted to the node (retries counted once each time)
	Accepted   int64                      // acknowledged as accepted
	Duplicates int64                      // acknowledged as duplicates
	Rejected   map[telemetry.Status]int64 // by code
	Failures   int64                      // deliveries that failed as a whole (the records were kept)
	Dropped    int64                      // records given up after failures piled up
	Pending    int                        // records waiting to be sent when the run stopped
}

func (s *Stats) rejected() string {
	if len(s.Rejected) == 0 {
		return "none"
	}
	codes := make([]string, 0, len(s.Rejected))
	for c := range s.Rejected {
		codes = append(codes, string(c))
	}
	slices.Sort(codes)
	var b strings.Builder
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", c, s.Rejected[telemetry.Status(c)])
	}
	return b.String()
}

// RejectedTotal is the number of rejected records.
func (s *Stats) RejectedTotal() int64 {
	var n int64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// maxPending bounds the records kept while the node cannot be reached.
const maxPending = 500_000

// Run sets the fleet up on the node (see Setup; keys are read from and written to KeysDir), then drives
// it in real time: every Rate the fleet steps to the wall clock and the tick's records of all vehicles
// go to the node in one delivery. It logs a line when the fleet is ready, a status line every
// StatusEvery and every rejected record with its code. It returns when ctx is cancelled (no error) or
// after Duration.
func Run(ctx context.Context, o Options) (Stats, error) {
	if o.Vehicles <= 0 {
		o.Vehicles = 25
	}
	if o.Rate <= 0 {
		o.Rate = time.Second
	}
	if o.KeysDir == "" {
		o.KeysDir = "./sim-keys"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = 10 * time.Second
	}
	st := Stats{Vehicles: o.Vehicles, Rejected: map[telemetry.Status]int64{}}
	if o.Node == "" {
		return st, errors.New("sim: no node URL")
	}
	c := client.New(o.Node)
	info, err := c.Node(ctx)
	if err != nil {
		return st, fmt.Errorf("couldn't reach the node at %s: %w", o.Node, err)
	}

	// Keys: reuse the directory's fleet, grow it if asked for more vehicles.
	keys, err := LoadKeys(o.KeysDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		seed := o.Seed
		if seed == 0 {
			var b [8]byte
			crand.Read(b[:])
			seed = binary.LittleEndian.Uint64(b[:]) | 1
		}
		keys = &Keys{Seed: seed, Specs: Specs(seed, o.Vehicles)}
	case err != nil:
		return st, err
	default:
		next := 0
		for _, s := range keys.Specs {
			next = max(next, s.Index+1)
		}
		for len(keys.Specs) < o.Vehicles {
			keys.Specs = append(keys.Specs, newSpec(keys.Seed, next))
			next++
		}
	}
	keys.Node, keys.Origin = o.Node, info.Origin
	seed := keys.Seed
	if o.Seed != 0 {
		seed = o.Seed
	}
	st.Seed = seed
	active := keys.Specs[:o.Vehicles]
	save := func() error { return SaveKeys(o.KeysDir, keys) }
	if err := save(); err != nil {
		return st, fmt.Errorf("couldn't write the keys: %w", err)
	}
	if o.OwnerPassphrase != "" && len(active) > 0 {
		if err := writeKeyFile(filepath.Join(o.KeysDir, OwnerKeyFile), active[0].OwnerKey, o.OwnerPassphrase); err != nil {
			return st, err
		}
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	progress(fmt.Sprintf("Setting up %d simulated vehicles: registering them and pairing their devices through signed transactions…", len(active)))
	st.Setup, err = Setup(ctx, c, active, o.Logger, save)
	if err != nil {
		return st, err
	}
	progress(fmt.Sprintf("Fleet ready: %d vehicles (%d registered now, %d already there), sending signed telemetry every %s", len(active),
		st.Setup.Registered, st.Setup.Reused, o.Rate))
	if o.DemoApp {
		ins, granted, err := setupInsurer(ctx, c, seed, active, o.KeysDir, o.Logger)
		if err != nil {
			return st, err
		}
		every := o.DemoAppEvery
		if every <= 0 {
			every = 30 * time.Second
		}
		if len(granted) > 0 {
			progress(fmt.Sprintf("Demo app %q (%s) registered and granted %s on vehicles %v", InsurerName, ins.addr, strings.Join(InsurerPermissions, ","), granted))
		}
		progress(fmt.Sprintf("Demo app %q reads the cars it may read every %s with its own key (%s)", InsurerName, every, filepath.Join(o.KeysDir, InsurerKeyFile)))
		appCtx, stopApp := context.WithCancel(ctx)
		appDone := make(chan struct{})
		go func() {
			defer close(appDone)
			ins.run(appCtx, every)
		}()
		defer func() {
			stopApp()
			<-appDone
		}()
	}
	o.Logger.Info("fleet ready", "node", o.Node, "vehicles", len(active), "registered", st.Setup.Registered,
		"paired", st.Setup.Paired, "reused", st.Setup.Reused, "keys", o.KeysDir, "seed", seed)

	tr := o.Transport
	if tr == nil {
		tr = &HTTPTransport{Client: c}
	}
	if dt, ok := tr.(DeviceTransport); ok {
		keys := make([]*ecdsa.PrivateKey, len(active))
		for i, s := range active {
			keys[i] = s.DeviceKey
		}
		dt.SetDevices(info.Origin, keys)
	}
	fleet, err := NewFleetFromSpecs(seed, active, time.Now().Truncate(time.Millisecond))
	if err != nil {
		return st, err
	}
	d := &driver{o: o, fleet: fleet, tr: tr, st: &st}
	return st, d.loop(ctx)
}

type driver struct {
	o       Options
	fleet   *Fleet
	tr      Transport
	st      *Stats
	pending []Record
	failLog time.Time
}

func (d *driver) loop(ctx context.Context) error {
	tick := time.NewTicker(d.o.Rate)
	defer tick.Stop()
	status := time.NewTicker(d.o.StatusEvery)
	defer status.Stop()
	var end <-chan time.Time
	if d.o.Duration > 0 {
		t := time.NewTimer(d.o.Duration)
		defer t.Stop()
		end = t.C
	}
	for {
		select {
		case <-ctx.Done():
			d.status("stopped")
			return nil
		case <-end:
			d.status("done")
			return nil
		case <-status.C:
			d.status("status")
		case now := <-tick.C:
			dt := now.Truncate(time.Millisecond).Sub(d.fleet.Now())
			if dt < time.Millisecond {
				continue
			}
			recs := d.fleet.Step(dt)
			d.st.Records += int64(len(recs))
			d.pending = append(d.pending, recs...)
			d.send(ctx)
		}
	}
}

// send delivers the pending records; on a failed delivery they stay pending for the next tick.
func (d *driver) send(ctx context.Context) {
	if len(d.pending) == 0 {
		return
	}
	batch := d.pending
	d.pending = nil
	res, err := d.tr.Send(ctx, Submissions(batch))
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("the transport answered %d results for %d records", len(res), len(batch))
	}
	if err != nil {
		if ctx.Err() != nil {
			d.pending = batch
			return
		}
		d.st.Failures++
		if time.Since(d.failLog) > d.o.StatusEvery {
			d.o.Logger.Warn("couldn't deliver records; keeping them for the next tick", "records", len(batch), "err", err)
			d.failLog = time.Now()
		}
		if over := len(batch) - maxPending; over > 0 {
			d.st.Dropped += int64(over)
			batch = batch[over:]
		}
		d.pending = batch
		return
	}
	d.st.Sent += int64(len(batch))
	var retry []Record
	for i, r := range res {
		switch r.Status {
		case telemetry.StatusAccepted:
			d.st.Accepted++
		case telemetry.StatusDuplicate:
			d.st.Duplicates++
		case telemetry.StatusUnavailable:
			retry = append(retry, batch[i])
		default:
			d.st.Rejected[r.Status]++
			rec := &batch[i]
			d.o.Logger.Error("record rejected", "code", string(r.Status), "message", r.Message,
				"vehicle", rec.VehicleID, "device", rec.Device.Hex(), "id", rec.ID, "time", rec.Time.Format(time.RFC3339Nano))
		}
	}
	d.pending = retry
}

func (d *driver) status(msg string) {
	d.st.Pending = len(d.pending)
	d.o.Logger.Info(msg, "records", d.st.Records, "sent", d.st.Sent, "accepted", d.st.Accepted,
		"duplicates", d.st.Duplicates, "rejected", d.st.rejected(), "buffered", d.fleet.Backlog(), "pending", len(d.pending))
}

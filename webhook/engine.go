package webhook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Defaults of Options.
const (
	DefaultWorkers     = 128
	DefaultPerWebhook  = 1
	DefaultTimeout     = 15 * time.Second
	DefaultRetryBase   = 5 * time.Second
	DefaultRetryMax    = 6 * time.Hour
	DefaultRetryWindow = 24 * time.Hour
	DefaultHeartbeat   = 5 * time.Minute
	DefaultTick        = time.Second
)

// Options configures an Engine. Zero fields take the defaults above.
type Options struct {
	Store   Store
	State   func(f func(*ledger.State)) // the ledger's current state (ledger.Sequencer.Read)
	Catalog *telemetry.Catalog
	// LogSize and Entries follow the ledger's log for grant events: the committed size, and entries
	// [from, from+count).
	LogSize func() int64
	Entries func(ctx context.Context, from, count int64) ([][]byte, error)
	// Record puts an entry in the vehicle owner's access log (accesslog.Recorder.Record).
	Record func(accesslog.Entry)
	// Key signs every message "v1a," (Ed25519) besides the webhook's own HMAC; nil signs HMAC only.
	Key ed25519.PrivateKey
	// Source is the CloudEvents source of every event: the node's public URL.
	Source string
	Policy Policy
	Now    func() time.Time
	Logger *slog.Logger

	// Workers bounds concurrent attempts; PerWebhook bounds those to one webhook, so that a slow endpoint
	// holds PerWebhook slots, not the node.
	Workers, PerWebhook int
	// Timeout bounds one attempt, and the verification challenge's answer.
	Timeout time.Duration
	// Retries: the n-th retry waits about RetryBase·2ⁿ⁻¹ (capped at RetryMax, ±20 % jitter, at least a
	// Retry-After the endpoint asked for); a delivery still failing RetryWindow after it was enqueued
	// fails for good and disables its webhook.
	RetryBase, RetryMax, RetryWindow time.Duration
	// Heartbeat is how often an active webhook gets a glovebox.webhook.heartbeat event; negative: never.
	Heartbeat time.Duration
	// Tick is how often the engine looks for due deliveries, ledger changes and silent vehicles when
	// nothing wakes it sooner.
	Tick time.Duration
	// Reload is how often the engine reads the webhooks again from the store, for the changes other
	// processes sharing it made (a change made through this engine applies at once); zero means every
	// ten Ticks.
	Reload time.Duration
	// Lease is how long a claimed delivery is this process's before another may claim it again (a
	// process that dies mid-delivery leaves it to another after that); zero means Timeout + 15 s.
	Lease time.Duration
	// Leader reports whether this process makes the events the processes sharing the store would
	// otherwise each make: grant events from the ledger's log, grant expiries and heartbeats. Nil means
	// always (a single node). Events from records (signal, event, trip, connectivity) are made by the
	// process that accepted the records, whatever Leader says.
	Leader func() bool
}

// Engine produces events and delivers them. Run owns every goroutine it starts.
type Engine struct {
	opts   Options
	store  Store
	client *http.Client
	logger *slog.Logger

	wake     chan struct{} // a delivery was enqueued
	verifyQ  chan string   // webhook ids to verify
	accepted chan []*telemetry.Record
	stopped  chan struct{} // closed when Run returns

	// fresh carries deliveries just enqueued and leased to this engine (a LeasingStore) to the
	// dispatcher, which attempts them without claiming them back. handMu guards handOpen, which is true
	// while the dispatcher takes them; a batch it cannot take is released to the outbox and claimed.
	fresh    chan []*Delivery
	handMu   sync.Mutex
	handOpen bool

	// loadMu orders the reads of webhooks from the store with their application to hooks (reload,
	// refresh): without it a reload that read the store before a webhook was created could finish after
	// the creation's refresh and drop the new webhook, with its trigger state. Taken before e.mu.
	loadMu sync.Mutex
	mu     sync.Mutex // guards hooks and the trigger state below
	hooks  map[string]*hook
	// sets are the hooks by trigger (fire's); nil after any change to hooks or to a hook's webhook.
	sets *triggerSets
	// grants remembers the grants in force of apps with grant webhooks: vehicle → app → grant.
	grants map[uint64]map[common.Address]ledger.Grant
	ended  map[int64]bool // log indexes of the grants whose expiry was handled
	// lastSeen is the newest record time per vehicle (unix ms), for connectivity triggers.
	lastSeen map[uint64]int64
	// trips follows each vehicle's ignition, for trip triggers; derive makes the driving events the
	// node derives from speed (as the stores do), for event triggers.
	trips  map[uint64]*tripState
	derive telemetry.SpeedDeriver

	inflight sync.WaitGroup // the dispatcher's attempt workers
}

// hook is a webhook with its compiled trigger and per-vehicle trigger state. Guarded by Engine.mu.
type hook struct {
	w       *Webhook
	cond    *Condition
	perms   []string
	permKey string                     // perms joined, for fire's cache of grant checks
	prev    map[uint64]telemetry.Value // previous value per vehicle (signal)
	fired   map[uint64]int64           // last firing per vehicle, unix ms (signal, cooldown)
	online  map[uint64]bool            // connectivity state per vehicle (absent: unknown)
	beat    time.Time                  // last heartbeat
}

// NewEngine returns an engine; Run starts it.
func NewEngine(opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Catalog == nil {
		opts.Catalog = telemetry.DefaultCatalog
	}
	if opts.Record == nil {
		opts.Record = func(accesslog.Entry) {}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.Timeout, DefaultTimeout)
	def(&opts.RetryBase, DefaultRetryBase)
	def(&opts.RetryMax, DefaultRetryMax)
	def(&opts.RetryWindow, DefaultRetryWindow)
	def(&opts.Heartbeat, DefaultHeartbeat)
	def(&opts.Tick, DefaultTick)
	def(&opts.Lease, opts.Timeout+15*time.Second)
	def(&opts.Reload, 10*opts.Tick)
	if opts.Leader == nil {
		opts.Leader = func() bool { return true }
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.PerWebhook <= 0 {
		opts.PerWebhook = DefaultPerWebhook
	}
	return &Engine{opts: opts, store: opts.Store, client: opts.Policy.client(opts.Timeout, max(64, opts.Workers)), logger: opts.Logger,
		wake: make(chan struct{}, 1), verifyQ: make(chan string, 1024), accepted: make(chan []*telemetry.Record, 4096), stopped: make(chan struct{}),
		fresh: make(chan []*Delivery, 64),
		hooks: map[string]*hook{}, grants: map[uint64]map[common.Address]ledger.Grant{}, ended: map[int64]bool{}, lastSeen: map[uint64]int64{},
		trips: map[uint64]*tripState{}}
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// PublicKey returns the node's Ed25519 webhook key, nil when messages are signed with HMAC only.
func (e *Engine) PublicKey() ed25519.PublicKey {
	if e.opts.Key == nil {
		return nil
	}
	return e.opts.Key.Public().(ed25519.PublicKey)
}

// Policy returns what the operator allows webhook targets to be.
func (e *Engine) Policy() Policy { return e.opts.Policy }

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run loads the webhooks and produces and delivers events until ctx is done; it returns after every
// attempt in flight has ended.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.stopped)
	if err := e.reload(ctx); err != nil {
		return err
	}
	hooks, err := e.store.Webhooks(ctx, common.Address{})
	if err != nil {
		return err
	}
	for _, w := range hooks {
		if w.Status == StatusPending {
			e.verifyQ <- w.ID
		}
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); e.evaluate(ctx) }()
	go func() { defer wg.Done(); e.follow(ctx) }()
	go func() { defer wg.Done(); e.verifier(ctx) }()
	e.dispatch(ctx)
	wg.Wait()
	e.inflight.Wait()
	return nil
}

// reload reads every webhook from the store into the engine's cache, keeping trigger state of those
// whose trigger did not change.
func (e *Engine) reload(ctx context.Context) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	return e.reloadLoaded(ctx)
}

// reloadLoaded is reload with e.loadMu held.
func (e *Engine) reloadLoaded(ctx context.Context) error {
	all, err := e.store.Webhooks(ctx, common.Address{})
	if err != nil {
		return fmt.Errorf("couldn't load the webhooks: %w", err)
	}
	// The grants of apps with grant webhooks, read before taking e.mu (the lock order is state, then e.mu).
	var held []ledger.Grant
	if e.opts.State != nil {
		apps := map[common.Address]bool{}
		for _, w := range all {
			if w.Trigger.Kind == KindGrant {
				apps[w.App] = true
			}
		}
		if len(apps) > 0 {
			e.opts.State(func(s *ledger.State) {
				for app := range apps {
					held = append(held, s.Account(app).GrantsHeld...)
				}
			})
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	next := make(map[string]*hook, len(all))
	for _, w := range all {
		if old, ok := e.hooks[w.ID]; ok && old.w.Trigger == w.Trigger {
			old.w = w
			next[w.ID] = old
			continue
		}
		h, err := e.newHook(w)
		if err != nil {
			e.logger.Error("a stored webhook's trigger does not compile", "webhook", w.ID, "err", err)
			continue
		}
		next[w.ID] = h
	}
	for _, g := range held {
		if _, known := e.grants[g.VehicleID][common.HexToAddress(g.App)]; !known && !e.ended[g.Index] {
			e.rememberGrant(g)
		}
	}
	e.hooks, e.sets = next, nil
	return nil
}

// newHook returns w with its compiled trigger and no trigger state.
func (e *Engine) newHook(w *Webhook) (*hook, error) {
	perms := TriggerPermissions(&w.Trigger, e.opts.Catalog)
	h := &hook{w: w, perms: perms, permKey: strings.Join(perms, ","), prev: map[uint64]telemetry.Value{},
		fired: map[uint64]int64{}, online: map[uint64]bool{}, beat: e.opts.Now()}
	if w.Trigger.Kind == KindSignal {
		c, err := CheckTrigger(&w.Trigger, e.opts.Catalog)
		if err != nil {
			return nil, err
		}
		h.cond = c
	}
	return h, nil
}

// refresh reads webhook id from the store into the cache, or drops it from the cache when the store no
// longer holds it, keeping its trigger state when its trigger did not change: the work of one webhook,
// where reload reads them all (a node with n webhooks did n reads per change).
func (e *Engine) refresh(ctx context.Context, id string) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	w, err := e.store.Webhook(ctx, id)
	if errors.Is(err, ErrNotFound) {
		e.mu.Lock()
		delete(e.hooks, id)
		e.sets = nil
		e.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't load webhook %s: %w", id, err)
	}
	if w.Trigger.Kind == KindGrant {
		return e.reloadLoaded(ctx) // it also follows the grants the app holds, which reload reads from the ledger
	}
	h, err := e.newHook(w)
	if err != nil {
		return fmt.Errorf("webhook %s's trigger does not compile: %w", id, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sets = nil
	if old, ok := e.hooks[id]; ok && old.w.Trigger == w.Trigger {
		old.w = w
		return nil
	}
	e.hooks[id] = h
	return nil
}

// rememberGrant notes a grant of an app with grant webhooks. e.mu held.
func (e *Engine) rememberGrant(g ledger.Grant) {
	app := common.HexToAddress(g.App)
	m := e.grants[g.VehicleID]
	if m == nil {
		m = map[common.Address]ledger.Grant{}
		e.grants[g.VehicleID] = m
	}
	m[app] = g
}

// Changed tells the engine that a webhook was created, changed or deleted (by this process's API).
func (e *Engine) Changed(ctx context.Context) error { return e.reload(ctx) }

// Allowed decides whether app may be told about vehicle now with perms: the app owns the vehicle, or
// holds a grant in force with stream and every one of perms. A permission signals:<name> (a signal
// trigger's on a signal that signals guards) is held with signals or with signals:<name> itself
// (access.CheckSignal). It reads the vehicle once (access.Check of stream) and checks perms against the
// grant that check found: the same state, so the same answers as a Check of each, at a view of the
// vehicle instead of one per permission.
func Allowed(st *ledger.State, app common.Address, vehicle uint64, perms []string, now time.Time) error {
	d, err := access.Check(st, app, vehicle, ledger.PermStream, now)
	if err != nil {
		return err
	}
	if d.Role == access.RoleOwner {
		return nil
	}
	granted := d.Grant.Permissions
	for _, p := range perms {
		if name, ok := ledger.SignalOf(p); ok {
			if !access.ImpliesSignal(granted, name, ledger.PermSignals) {
				return &access.Denied{Permission: ledger.PermSignals, Signal: name,
					Reason: fmt.Sprintf("the grant on vehicle %d does not include it", vehicle)}
			}
			continue
		}
		if !ledger.KnownPermission(p) {
			return fmt.Errorf("access: unknown permission %q", p)
		}
		if !access.Implies(granted, p) {
			return &access.Denied{Permission: p, Reason: fmt.Sprintf("the grant on vehicle %d does not include it", vehicle)}
		}
	}
	return nil
}

// newID returns a new id: prefix and the base32 of 16 bytes, the time in milliseconds (6 bytes, big
// endian) and 10 random bytes. The alphabet is in ASCII order, so ids sort by their time: a new one goes
// at the end of the outbox's index of ids (and of its attempts), not at a random page of it, which cost a
// page written a delivery.
func newID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	rand.Read(b[6:])
	return prefix + idEncoding.EncodeToString(b[:])
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// derivedID returns the delivery id of an event derived from a log entry, the same on every run.
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "msg_" + idEncoding.EncodeToString(h.Sum(nil)[:16])
}

// CloudEvent is the body of every delivery (CloudEvents 1.0, JSON format).
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// newDelivery builds a delivery of an event of type typ about vehicle (0: none) to w.
func (e *Engine) newDelivery(id string, w *Webhook, vehicle uint64, typ string, perms []string, at time.Time, data any) (*Delivery, error) {
	raw, err := encodeData(data)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the event: %w", err)
	}
	body, err := encodeEvent(id, e.opts.Source, typ, vehicle, at, raw)
	if err != nil {
		return nil, err
	}
	now := e.opts.Now()
	return &Delivery{ID: id, Webhook: w.ID, App: w.App, Vehicle: vehicle, Type: typ, Permissions: perms, Body: body,
		Status: DeliveryPending, Created: now, NextAttempt: now}, nil
}

// enqueue puts ds in the outbox. With a LeasingStore, the deliveries are leased to this engine as they
// are committed and handed to the dispatcher, which attempts them at once (no claim reads them back); a
// batch the dispatcher cannot take now is released to the outbox, where a claim finds it.
func (e *Engine) enqueue(ctx context.Context, ds []*Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ls, ok := e.store.(LeasingStore)
	if !ok {
		if err := e.store.Enqueue(ctx, ds); err != nil {
			return fmt.Errorf("couldn't enqueue %d deliveries: %w", len(ds), err)
		}
		e.poke()
		return nil
	}
	leased, err := ls.EnqueueLeased(ctx, ds, e.opts.Now().Add(e.opts.Lease))
	if err != nil {
		return fmt.Errorf("couldn't enqueue %d deliveries: %w", len(ds), err)
	}
	if len(leased) == 0 {
		return nil
	}
	e.handMu.Lock()
	handed := false
	if e.handOpen {
		select {
		case e.fresh <- leased:
			handed = true
		default:
		}
	}
	e.handMu.Unlock()
	if !handed {
		ls.Release(deliveryIDs(leased))
		e.poke()
	}
	return nil
}

func deliveryIDs(ds []*Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

// dispatch claims due deliveries and attempts each on its own goroutine, at most Workers at once.
func (e *Engine) dispatch(ctx context.Context) {
	done := make(chan string, e.opts.Workers)
	busy := map[string]int{}
	inflight := 0
	tick := time.NewTicker(e.opts.Tick)
	defer tick.Stop()
	lease := e.opts.Lease
	// Workers long-lived goroutines make the attempts: a goroutine per attempt grew its stack anew each
	// time (the HTTP client and SQLite call deep). work never holds more than the free slots, so a send
	// to it does not block.
	work := make(chan *Delivery, e.opts.Workers)
	defer close(work)
	e.inflight.Add(e.opts.Workers)
	for range e.opts.Workers {
		go func() {
			defer e.inflight.Done()
			for d := range work {
				e.attempt(d)
				done <- d.Webhook
			}
		}()
	}
	start := func(d *Delivery) {
		inflight++
		busy[d.Webhook]++
		work <- d
	}
	// waiting holds the fresh deliveries handed over leased that found no free slot, oldest first: they
	// start as slots free, before any claim. One that waited half its lease, or beyond maxWaiting, goes
	// back to the outbox (released), so that no lease runs out while its delivery waits here.
	var waiting []handed
	drain := func() {
		now := e.opts.Now()
		var back []string
		if over := len(waiting) - maxWaiting; over > 0 {
			for _, h := range waiting[:over] {
				back = append(back, h.d.ID)
			}
			waiting = waiting[over:]
		}
		// waiting is in the order of arrival, so those that waited half their lease are a prefix; and once
		// every slot is busy the rest stays as it is (a scan of all of them on every event cost more than
		// the dispatcher's other work).
		old := 0
		for old < len(waiting) && (ctx.Err() != nil || now.Sub(waiting[old].at) > lease/2) {
			back = append(back, waiting[old].d.ID)
			old++
		}
		kept := waiting[:0]
		for i, h := range waiting[old:] {
			if inflight >= e.opts.Workers {
				kept = append(kept, waiting[old+i:]...)
				break
			}
			if busy[h.d.Webhook] < e.opts.PerWebhook {
				start(h.d)
			} else {
				kept = append(kept, h)
			}
		}
		clear(waiting[len(kept):])
		waiting = kept
		if len(back) > 0 {
			e.store.(LeasingStore).Release(back)
		}
	}
	e.handMu.Lock()
	e.handOpen = true
	e.handMu.Unlock()
	defer func() {
		if len(waiting) > 0 {
			back := make([]string, len(waiting))
			for i, h := range waiting {
				back[i] = h.d.ID
			}
			e.store.(LeasingStore).Release(back)
		}
		e.closeHand()
	}()
	for {
		if len(waiting) > 0 {
			drain()
		}
		if free := e.opts.Workers - inflight; free > 0 && ctx.Err() == nil {
			var full []string
			for id, n := range busy {
				if n >= e.opts.PerWebhook {
					full = append(full, id)
				}
			}
			ds, err := e.store.Claim(ctx, e.opts.Now(), free, e.opts.PerWebhook, full, lease)
			if err != nil && ctx.Err() == nil {
				e.logger.Error("couldn't claim deliveries", "err", err)
			}
			for _, d := range ds {
				start(d)
			}
			if len(ds) == free {
				// There may be more: look again once a slot frees, and then once claimBatch slots are free
				// or claimWait has passed — a claim reads the due deliveries, and made for every slot
				// that freed it cost more than the attempt.
				select {
				case id := <-done:
					e.release(busy, &inflight, id)
				case <-ctx.Done():
				}
				wait := time.NewTimer(claimWait)
			gather:
				for e.opts.Workers-inflight < min(claimBatch, e.opts.Workers) {
					select {
					case id := <-done:
						e.release(busy, &inflight, id)
					case <-wait.C:
						break gather
					case <-ctx.Done():
						break gather
					}
				}
				wait.Stop()
				continue
			}
		}
		select {
		case <-ctx.Done():
			for inflight > 0 {
				e.release(busy, &inflight, <-done)
			}
			return
		case id := <-done:
			e.release(busy, &inflight, id)
		case ds := <-e.fresh:
			now := e.opts.Now()
			for _, d := range ds {
				waiting = append(waiting, handed{d, now})
			}
			drain()
		case <-e.wake:
		case <-tick.C:
		}
	}
}

// handed is a delivery handed to the dispatcher leased, and when.
type handed struct {
	d  *Delivery
	at time.Time
}

// maxWaiting bounds the fresh deliveries the dispatcher keeps waiting for a slot; beyond it the oldest go
// back to the outbox, for a claim.
const maxWaiting = 4096

// closeHand stops handing fresh deliveries to the dispatcher, and releases those handed and not taken.
func (e *Engine) closeHand() {
	e.handMu.Lock()
	defer e.handMu.Unlock()
	e.handOpen = false
	for {
		select {
		case ds := <-e.fresh:
			e.store.(LeasingStore).Release(deliveryIDs(ds))
		default:
			return
		}
	}
}

// A dispatcher with every slot busy claims again when claimBatch slots are free, or claimWait after the
// first one freed.
const (
	claimBatch = 16
	claimWait  = 2 * time.Millisecond
)

func (e *Engine) release(busy map[string]int, inflight *int, id string) {
	*inflight--
	if busy[id]--; busy[id] <= 0 {
		delete(busy, id)
	}
}

// errorText shortens an error for the delivery log.
func errorText(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// attempt makes one attempt at d and records its outcome. It uses a context of its own (bounded by
// Timeout), so that stopping the engine lets attempts in flight finish and be recorded.
func (e *Engine) attempt(d *Delivery) {
	ctx := context.Background()
	now := e.opts.Now()
	e.mu.Lock()
	h := e.hooks[d.Webhook]
	var w Webhook
	if h != nil {
		w = *h.w
	}
	e.mu.Unlock()
	if h == nil {
		// Another process sharing the store may have created it since the last reload.
		if fresh, err := e.store.Webhook(ctx, d.Webhook); err == nil {
			w, h = *fresh, &hook{w: fresh}
			if err := e.reload(ctx); err != nil {
				e.logger.Warn("couldn't reload the webhooks", "err", err)
			}
		} else if !errors.Is(err, ErrNotFound) {
			// The store is unreachable: leave the delivery to a later claim when its lease runs out.
			e.logger.Error("couldn't read a delivery's webhook", "delivery", d.ID, "err", err)
			return
		}
	}
	a := Attempt{Time: now}
	finish := func() {
		if err := e.store.Finish(ctx, d, a); err != nil {
			e.logger.Error("couldn't record a delivery attempt", "delivery", d.ID, "err", err)
		}
	}
	drop := func(reason string) {
		d.Status, d.LastError, d.Done = DeliveryDropped, reason, now
		a.Error = reason
		finish()
		e.record(d, "dropped")
	}
	if h == nil {
		drop("the webhook was deleted")
		return
	}
	if w.Status != StatusActive {
		drop("the webhook is " + string(w.Status))
		return
	}
	if d.Vehicle != 0 && len(d.Permissions) > 0 && e.opts.State != nil {
		var err error
		e.opts.State(func(st *ledger.State) { err = Allowed(st, d.App, d.Vehicle, d.Permissions, now) })
		if err != nil {
			drop("no longer allowed: " + err.Error())
			return
		}
	}
	secret, err := ParseSecret(w.Secret)
	if err != nil {
		drop("the webhook's secret is unreadable")
		return
	}
	code, retryAfter, err := e.post(ctx, w.URL, d.ID, d.Body, secret)
	answered := e.opts.Now()
	d.Attempts++
	a.Code, a.Duration = code, answered.Sub(now)
	d.LastCode = code
	switch {
	case err == nil && code >= 200 && code < 300:
		d.Status, d.LastError, d.Done, d.NextAttempt = DeliveryDelivered, "", e.opts.Now(), time.Time{}
		finish()
		e.record(d, "ok")
		return
	case err == nil && code == http.StatusGone:
		a.Error = "410 Gone: the endpoint asked not to be sent more"
		d.Status, d.LastError, d.Done, d.NextAttempt = DeliveryFailed, a.Error, now, time.Time{}
		finish()
		e.disable(ctx, w.ID, "the endpoint answered 410 Gone")
		return
	case err != nil:
		a.Error = errorText(err)
	default:
		a.Error = fmt.Sprintf("the endpoint answered %d", code)
	}
	d.LastError = a.Error
	next := now.Add(e.backoff(d.Attempts))
	if retryAfter > 0 && answered.Add(retryAfter).After(next) {
		// Retry-After counts from the answer that carried it, and is a lower bound: rounded up to the
		// millisecond the outbox keeps times in.
		next = answered.Add(min(retryAfter, e.opts.RetryWindow)).Add(time.Millisecond - 1).Truncate(time.Millisecond)
	}
	if next.Sub(d.Created) > e.opts.RetryWindow && now.Sub(d.Created) >= e.opts.RetryWindow {
		d.Status, d.Done, d.NextAttempt = DeliveryFailed, now, time.Time{}
		finish()
		e.disable(ctx, w.ID, "the last retry of delivery "+d.ID+" failed: "+a.Error)
		return
	}
	if end := d.Created.Add(e.opts.RetryWindow); next.After(end) {
		next = end // the last attempt lands at the end of the window
	}
	d.NextAttempt = next
	finish()
}

// backoff is the wait before retry n (n ≥ 1): RetryBase·2ⁿ⁻¹, capped at RetryMax, ±20 % jitter.
func (e *Engine) backoff(n int) time.Duration {
	d := e.opts.RetryBase
	for i := 1; i < n && d < e.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, e.opts.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s > 0 {
		return time.Duration(min(s, 7*24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// post sends one signed message and returns the status code and any Retry-After it asked for. It calls
// the client's transport itself: the client added a layer of redirect and deadline handling that the
// engine does not use (it follows no redirect, and ctx bounds the attempt), and cost as much again.
func (e *Engine) post(ctx context.Context, target, id string, body, secret []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("bad request: %w", err)
	}
	req.Header = e.headers(id, body, secret)
	resp, err := e.client.Transport.RoundTrip(req)
	if err != nil {
		err = &url.Error{Op: "Post", URL: target, Err: err} // as the client reported it
		if refused(err) {
			return 0, 0, fmt.Errorf("the target address is not public (the operator did not allow private targets): %w", err)
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), e.opts.Now()), nil
}

// headers returns the headers of a message: its type, the engine's name and the Standard Webhooks
// headers (Sign's), in their canonical form.
func (e *Engine) headers(id string, body, secret []byte) http.Header {
	ts, sig := signature(id, e.opts.Now().Unix(), body, secret, e.opts.Key)
	return http.Header{"Content-Type": {"application/cloudevents+json"}, "User-Agent": {"Glovebox-Webhooks/1"},
		canonicalID: {id}, canonicalTimestamp: {ts}, canonicalSignature: {sig}}
}

// The canonical forms of the Standard Webhooks headers, as http.Header keys.
var (
	canonicalID        = http.CanonicalHeaderKey(HeaderID)
	canonicalTimestamp = http.CanonicalHeaderKey(HeaderTimestamp)
	canonicalSignature = http.CanonicalHeaderKey(HeaderSignature)
)

// disable marks a webhook disabled with reason.
func (e *Engine) disable(ctx context.Context, id, reason string) {
	if err := e.setStatus(ctx, id, StatusDisabled, reason); err != nil {
		e.logger.Error("couldn't disable a webhook", "webhook", id, "err", err)
	}
}

func (e *Engine) setStatus(ctx context.Context, id string, s Status, reason string) error {
	w, err := e.store.Webhook(ctx, id)
	if err != nil {
		return err
	}
	w.Status, w.Reason, w.Updated = s, reason, e.opts.Now()
	if err := e.store.UpdateWebhook(ctx, w); err != nil {
		return err
	}
	return e.refresh(ctx, id)
}

// record puts a delivery in the vehicle owner's access log.
func (e *Engine) record(d *Delivery, outcome string) {
	if d.Vehicle == 0 {
		return
	}
	perms := append([]string{ledger.PermStream}, d.Permissions...)
	e.opts.Record(accesslog.Entry{Time: e.opts.Now(), Vehicle: d.Vehicle, Caller: d.App,
		Query: "webhook " + d.Type + " " + d.ID, Permissions: perms, Values: 1, Outcome: outcome})
}

// verifier answers verification requests one at a time.
func (e *Engine) verifier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-e.verifyQ:
			if err := e.verify(ctx, id); err != nil && ctx.Err() == nil {
				e.logger.Error("couldn't verify a webhook", "webhook", id, "err", err)
			}
		}
	}
}

// VerifyType is the CloudEvent type of the endpoint verification challenge.
const VerifyType = "glovebox.webhook.verify"

// verify sends the verification challenge and sets the webhook active or verification_failed.
func (e *Engine) verify(ctx context.Context, id string) error {
	w, err := e.store.Webhook(ctx, id)
	if err != nil {
		return err
	}
	if w.Status != StatusPending {
		return nil
	}
	var c [24]byte
	rand.Read(c[:])
	challenge := idEncoding.EncodeToString(c[:])
	d, err := e.newDelivery(newID("msg_"), w, 0, VerifyType, nil, e.opts.Now(),
		map[string]string{"challenge": challenge, "webhookId": w.ID})
	if err != nil {
		return err
	}
	secret, err := ParseSecret(w.Secret)
	if err != nil {
		return err
	}
	status, reason := StatusActive, ""
	if err := e.challenge(ctx, w.URL, d, secret, challenge); err != nil {
		status, reason = StatusVerificationFailed, err.Error()
	}
	return e.setStatus(ctx, id, status, reason)
}

func (e *Engine) challenge(ctx context.Context, url string, d *Delivery, secret []byte, challenge string) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	req.Header = e.headers(d.ID, d.Body, secret)
	resp, err := e.client.Do(req)
	if err != nil {
		if refused(err) {
			return errors.New("the target address is not public (the operator did not allow private targets)")
		}
		return fmt.Errorf("the endpoint did not answer the challenge: %s", errorText(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("couldn't read the answer to the challenge: %s", errorText(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the endpoint answered the challenge with %d, not 200", resp.StatusCode)
	}
	var ans struct {
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(b, &ans) != nil || ans.Challenge != challenge {
		return errors.New(`the endpoint did not answer {"challenge": "<the challenge>"}`)
	}
	return nil
}

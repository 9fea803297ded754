package webhook

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// The CloudEvent types of deliveries.
const (
	TypeSignal      = "glovebox.signal.triggered"
	TypeOnline      = "glovebox.vehicle.online"
	TypeOffline     = "glovebox.vehicle.offline"
	TypeGranted     = "glovebox.grant.granted"
	TypeRevoked     = "glovebox.grant.revoked"
	TypeRenounced   = "glovebox.grant.renounced"
	TypeExpired     = "glovebox.grant.expired"
	TypeTransferred = "glovebox.grant.transferred"
	TypeEvent       = "glovebox.event.detected"
	TypeTripStarted = "glovebox.trip.started"
	TypeTripEnded   = "glovebox.trip.ended"
	TypeTest        = "glovebox.webhook.test"
	TypeHeartbeat   = "glovebox.webhook.heartbeat"
)

// Accepted hands the engine records that are durable and acknowledged, for signal and connectivity
// triggers. It is called by the ingest writer (telemetry.IngesterOptions.Accepted) and blocks only when
// the engine is far behind.
func (e *Engine) Accepted(recs []*telemetry.Record) {
	select {
	case e.accepted <- recs:
	case <-e.stopped:
	}
}

// SignalData is the data of a glovebox.signal.triggered event.
type SignalData struct {
	WebhookID     string      `json:"webhookId"`
	VehicleID     uint64      `json:"vehicleId"`
	Signal        SignalValue `json:"signal"`
	PreviousValue any         `json:"previousValue"`
	Condition     string      `json:"condition"`
}

// SignalValue is one value of a signal, as in the GraphQL API.
type SignalValue struct {
	Name      string    `json:"name"`
	Timestamp time.Time `json:"timestamp"`
	Value     any       `json:"value"`
	Unit      string    `json:"unit,omitempty"`
}

// ConnectivityData is the data of glovebox.vehicle.online and glovebox.vehicle.offline events.
type ConnectivityData struct {
	WebhookID      string    `json:"webhookId"`
	VehicleID      uint64    `json:"vehicleId"`
	Status         string    `json:"status"` // "online" or "offline"
	LastSeen       time.Time `json:"lastSeen"`
	SilenceSeconds int64     `json:"silenceSeconds"`
}

// GrantData is the data of glovebox.grant.* events.
type GrantData struct {
	WebhookID   string   `json:"webhookId"`
	VehicleID   uint64   `json:"vehicleId"`
	App         string   `json:"app"`
	Permissions []string `json:"permissions,omitempty"`
	ExpiresAt   int64    `json:"expiresAt,omitempty"`
	Purpose     string   `json:"purpose,omitempty"`
	// LogIndex is the log entry that made the change (none for an expiry).
	LogIndex *int64 `json:"logIndex,omitempty"`
}

// jsonValue is v as the event's JSON carries it.
func jsonValue(v telemetry.Value) any {
	switch v.Signal.Kind {
	case telemetry.KindLocation:
		return telemetry.Location{Latitude: v.Lat, Longitude: v.Lon, HDOP: v.HDOP}
	case telemetry.KindStrings:
		return celValue(v)
	}
	return celValue(v)
}

// evaluate runs the signal and connectivity triggers over accepted records.
func (e *Engine) evaluate(ctx context.Context) {
	var held heldDeliveries
	for {
		var batch [][]*telemetry.Record
		var retry <-chan time.Time
		if held.waiting() {
			retry = time.After(e.opts.Tick)
		}
		select {
		case <-ctx.Done():
			return
		case <-retry:
			e.enqueueHolding(&held, nil, "triggered events")
			continue
		case recs := <-e.accepted:
			batch = append(batch, recs)
		}
	drain:
		for len(batch) < 256 {
			select {
			case recs := <-e.accepted:
				batch = append(batch, recs)
			default:
				break drain
			}
		}
		e.enqueueHolding(&held, e.fire(batch), "triggered events")
	}
}

// MaxHeldDeliveries bounds the deliveries an engine holds in memory while its store refuses them (a full
// disk, a database down); beyond it the oldest are dropped, and counted in the log.
const MaxHeldDeliveries = 100_000

// heldDeliveries are deliveries the store refused, to be enqueued again. Owned by one loop.
type heldDeliveries struct {
	ds      []*Delivery
	failing bool
	dropped int
}

func (h *heldDeliveries) waiting() bool { return len(h.ds) > 0 }

// enqueueHolding enqueues what was held and ds. When the store refuses them (a full disk), they are
// held and tried again with the next call, rather than lost: a trigger fires once, so its event must
// outlive the outage.
func (e *Engine) enqueueHolding(h *heldDeliveries, ds []*Delivery, what string) {
	all := append(h.ds, ds...)
	if over := len(all) - MaxHeldDeliveries; over > 0 {
		h.dropped += over
		all = all[over:]
	}
	if err := e.enqueue(context.Background(), all); err != nil {
		if !h.failing {
			e.logger.Error("couldn't enqueue "+what+"; holding them to retry", "deliveries", len(all), "err", err)
		}
		h.ds, h.failing = all, true
		return
	}
	if h.failing {
		e.logger.Info("enqueued the held "+what, "deliveries", len(all), "dropped", h.dropped)
	}
	h.ds, h.failing, h.dropped = nil, false, 0
}

// hookSet is a batch's hooks of one trigger by the vehicles they cover, so that a record meets only the
// hooks covering its vehicle (with 1,000 webhooks of one vehicle each, every record met all 1,000).
type hookSet struct {
	byVehicle map[uint64][]*hook
	all       []*hook // those covering every vehicle the app holds a grant on
}

func (s *hookSet) add(h *hook) {
	if h.w.AllGranted {
		s.all = append(s.all, h)
		return
	}
	if s.byVehicle == nil {
		s.byVehicle = map[uint64][]*hook{}
	}
	for _, v := range h.w.Vehicles {
		if l := s.byVehicle[v]; len(l) == 0 || l[len(l)-1] != h { // a vehicle listed twice counts once
			s.byVehicle[v] = append(l, h)
		}
	}
}

// covering returns the hooks of s that cover vehicle (s may be nil: none).
func (s *hookSet) covering(vehicle uint64) []*hook {
	if s == nil {
		return nil
	}
	if len(s.all) == 0 {
		return s.byVehicle[vehicle]
	}
	return append(slices.Clip(s.byVehicle[vehicle]), s.all...)
}

type allowKey struct {
	app     common.Address
	vehicle uint64
	perms   string
}

// triggerSets are the active hooks of the record-driven triggers, by what they listen to. The engine
// keeps them between batches (Engine.sets) and builds them again after the hooks changed: built for every
// batch, they cost more than the batch's evaluation.
type triggerSets struct {
	bySignal, byEvent map[string]*hookSet
	conn, trips       *hookSet
}

// triggers returns the trigger sets of the current hooks. e.mu held.
func (e *Engine) triggers() *triggerSets {
	if e.sets != nil {
		return e.sets
	}
	ts := &triggerSets{bySignal: map[string]*hookSet{}, byEvent: map[string]*hookSet{}, conn: &hookSet{}, trips: &hookSet{}}
	in := func(m map[string]*hookSet, k string) *hookSet {
		if m[k] == nil {
			m[k] = &hookSet{}
		}
		return m[k]
	}
	for _, h := range e.hooks {
		if h.w.Status != StatusActive {
			continue
		}
		switch h.w.Trigger.Kind {
		case KindSignal:
			if h.cond != nil {
				in(ts.bySignal, h.w.Trigger.Signal).add(h)
			}
		case KindConnectivity:
			ts.conn.add(h)
		case KindEvent:
			in(ts.byEvent, h.w.Trigger.Name).add(h)
		case KindTrip:
			ts.trips.add(h)
		}
	}
	e.sets = ts
	return ts
}

// fire evaluates the triggers on a batch of records and returns the deliveries to enqueue.
func (e *Engine) fire(batch [][]*telemetry.Record) []*Delivery {
	now := e.opts.Now()
	var ds []*Delivery
	e.opts.State(func(st *ledger.State) {
		allowed := map[allowKey]bool{}
		may := func(h *hook, vehicle uint64) bool {
			k := allowKey{h.w.App, vehicle, h.permKey}
			ok, seen := allowed[k]
			if !seen {
				ok = Allowed(st, h.w.App, vehicle, h.perms, now) == nil
				allowed[k] = ok
			}
			return ok
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		ts := e.triggers()
		bySignal, byEvent, conn, trips := ts.bySignal, ts.byEvent, ts.conn, ts.trips
		for _, recs := range batch {
			for _, r := range recs {
				veh := r.VehicleID
				if r.Time > e.lastSeen[veh] {
					e.lastSeen[veh] = r.Time
				}
				if len(byEvent) > 0 {
					ds = append(ds, e.fireEvents(r, byEvent, may)...)
				}
				ds = append(ds, e.fireTrips(r, trips, may, now)...)
				for _, h := range conn.covering(veh) {
					if !may(h, veh) {
						continue
					}
					wasOnline, known := h.online[veh]
					h.online[veh] = true
					if known && !wasOnline {
						if d, err := e.newDelivery(newID("msg_"), h.w, veh, TypeOnline, h.perms, now, ConnectivityData{
							WebhookID: h.w.ID, VehicleID: veh, Status: "online", LastSeen: time.UnixMilli(e.lastSeen[veh]).UTC(),
							SilenceSeconds: h.w.Trigger.Silence()}); err == nil {
							d.Measured = time.UnixMilli(e.lastSeen[veh])
							ds = append(ds, d)
						}
					}
				}
				for _, v := range r.Values {
					for _, h := range bySignal[v.Signal.Name].covering(veh) {
						prev, ok := h.prev[veh]
						if ok && v.Time < prev.Time {
							continue // an older value than the one last seen: not a change
						}
						h.prev[veh] = v
						if !ok {
							prev = v // nothing seen before: the value is its own predecessor
						}
						if fire, err := h.cond.Eval(v, prev); err != nil || !fire {
							continue
						}
						if last, ok := h.fired[veh]; ok && v.Time-last < int64(h.w.Trigger.CooldownSeconds)*1000 {
							continue
						}
						if !may(h, veh) {
							continue
						}
						h.fired[veh] = v.Time
						d, err := e.newDelivery(newID("msg_"), h.w, veh, TypeSignal, h.perms, now, SignalData{
							WebhookID: h.w.ID, VehicleID: veh,
							Signal:        SignalValue{Name: v.Signal.Name, Timestamp: time.UnixMilli(v.Time).UTC(), Value: jsonValue(v), Unit: v.Signal.Unit},
							PreviousValue: jsonValue(prev), Condition: h.w.Trigger.Condition})
						if err == nil {
							d.Measured = time.UnixMilli(min(v.Time, prev.Time))
							ds = append(ds, d)
						}
					}
				}
			}
		}
	})
	return ds
}

// fireEvents returns the deliveries of the driving events of r, those its device sent and those derived
// from its speed values. Each delivery's id derives from the event (which a store keeps once per
// vehicle, name, source and time), so an event seen twice is delivered once. e.mu held.
func (e *Engine) fireEvents(r *telemetry.Record, byEvent map[string]*hookSet, may func(*hook, uint64) bool) []*Delivery {
	evs := r.Events
	if derived := e.derive.Add(r.VehicleID, telemetry.SpeedSamples(r.Values)); len(derived) > 0 {
		evs = append(append([]telemetry.Event(nil), evs...), derived...)
	}
	var ds []*Delivery
	for _, ev := range evs {
		for _, h := range byEvent[ev.Name].covering(ev.Vehicle) {
			if !may(h, ev.Vehicle) {
				continue
			}
			id := derivedID(h.w.ID, TypeEvent, strconv.FormatUint(ev.Vehicle, 10), ev.Name, ev.Source, strconv.FormatInt(ev.Time, 10))
			if d, err := e.newDelivery(id, h.w, ev.Vehicle, TypeEvent, h.perms, time.UnixMilli(ev.Time), eventData(h.w, ev)); err == nil {
				d.Measured = time.UnixMilli(ev.Time)
				ds = append(ds, d)
			}
		}
	}
	return ds
}

// fireTrips follows r's ignition values and returns the deliveries of the trips they start or end.
// e.mu held.
func (e *Engine) fireTrips(r *telemetry.Record, hooks *hookSet, may func(*hook, uint64) bool, now time.Time) []*Delivery {
	ign := ignitionValues(r.Values)
	if len(ign) == 0 {
		return nil
	}
	st := e.trips[r.VehicleID]
	if st == nil {
		st = &tripState{}
		e.trips[r.VehicleID] = st
	}
	var ds []*Delivery
	for _, v := range ign {
		for _, c := range st.add(v.Time, v.Number != 0, now, TripGap.Milliseconds()) {
			ds = append(ds, e.tripDeliveries(hooks, r.VehicleID, c, may)...)
		}
	}
	return ds
}

// tripDeliveries returns the deliveries of one trip change to the trip hooks covering vehicle. Their ids
// derive from the trip, so that a trip is announced started and ended once each. e.mu held.
func (e *Engine) tripDeliveries(hooks *hookSet, vehicle uint64, c tripChange, may func(*hook, uint64) bool) []*Delivery {
	typ, at := TypeTripStarted, c.start
	if !c.started() {
		typ, at = TypeTripEnded, c.end
	}
	var ds []*Delivery
	for _, h := range hooks.covering(vehicle) {
		if !may(h, vehicle) {
			continue
		}
		id := derivedID(h.w.ID, typ, strconv.FormatUint(vehicle, 10), strconv.FormatInt(c.start, 10))
		if d, err := e.newDelivery(id, h.w, vehicle, typ, h.perms, time.UnixMilli(at), tripData(h.w, vehicle, c)); err == nil {
			d.Measured = time.UnixMilli(c.start)
			ds = append(ds, d)
		}
	}
	return ds
}

// parked returns the trip-ended events of vehicles whose ignition went off and that then fell silent for
// TripGap.
func (e *Engine) parked() []*Delivery {
	if e.opts.State == nil {
		return nil
	}
	now := e.opts.Now()
	var ds []*Delivery
	e.opts.State(func(st *ledger.State) {
		e.mu.Lock()
		defer e.mu.Unlock()
		hooks := &hookSet{}
		for _, h := range e.hooks {
			if h.w.Status == StatusActive && h.w.Trigger.Kind == KindTrip {
				hooks.add(h)
			}
		}
		may := func(h *hook, vehicle uint64) bool { return Allowed(st, h.w.App, vehicle, h.perms, now) == nil }
		for veh, s := range e.trips {
			if c, ok := s.expire(now, TripGap.Milliseconds()); ok {
				ds = append(ds, e.tripDeliveries(hooks, veh, c, may)...)
			}
		}
	})
	return ds
}

// follow follows the ledger's log for grant events, and on every tick calls vehicles offline, ends
// expired grants and sends heartbeats.
func (e *Engine) follow(ctx context.Context) {
	tick := time.NewTicker(e.opts.Tick)
	defer tick.Stop()
	beats := make(chan struct{}, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	reloaded := time.Now()
	var held heldDeliveries
	for {
		leader := e.opts.Leader()
		if leader {
			if err := e.followLog(ctx); err != nil && ctx.Err() == nil {
				e.logger.Error("couldn't follow the log for grant events", "err", err)
			}
		}
		var ds []*Delivery
		if leader {
			ds = append(ds, e.expire()...)
		}
		ds = append(ds, e.silent()...)
		ds = append(ds, e.parked()...)
		e.enqueueHolding(&held, ds, "events")
		if leader {
			e.heartbeats(ctx, beats, &wg)
		}
		if now := time.Now(); now.Sub(reloaded) >= e.opts.Reload {
			// Other processes of a cluster change webhooks too.
			reloaded = now
			if err := e.reload(ctx); err != nil && ctx.Err() == nil {
				e.logger.Error("couldn't reload the webhooks", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ledgerCursor names the engine's position in the ledger's log.
const ledgerCursor = "ledger"

// followLog turns new log entries into grant events. A new outbox starts at the log's current end.
func (e *Engine) followLog(ctx context.Context) error {
	if e.opts.LogSize == nil || e.opts.Entries == nil {
		return nil
	}
	size := e.opts.LogSize()
	cur, ok, err := e.store.Cursor(ctx, ledgerCursor)
	if err != nil {
		return err
	}
	if !ok {
		return e.store.SetCursor(ctx, ledgerCursor, size)
	}
	for cur < size {
		n := min(size-cur, 1000)
		raws, err := e.opts.Entries(ctx, cur, n)
		if err != nil {
			return err
		}
		for i, raw := range raws {
			ent, err := ledger.UnmarshalEntry(raw)
			if err != nil {
				return err
			}
			if err := e.onEntry(ctx, cur+int64(i), ent); err != nil {
				return err
			}
		}
		cur += int64(len(raws))
		if err := e.store.SetCursor(ctx, ledgerCursor, cur); err != nil {
			return err
		}
		if len(raws) == 0 {
			break
		}
	}
	return nil
}

// onEntry enqueues the grant events of one log entry and drops pending deliveries it ends.
func (e *Engine) onEntry(ctx context.Context, index int64, ent *ledger.Entry) error {
	tx := ent.Tx
	vehicle := tx.VehicleID.Uint64()
	at := time.UnixMilli(ent.AcceptTime)
	var typ string
	var apps []common.Address
	e.mu.Lock()
	switch tx.Type {
	case ledger.TypeGrant:
		typ, apps = TypeGranted, []common.Address{tx.App}
		g := ledger.Grant{VehicleID: vehicle, App: tx.App.Hex(), Permissions: tx.Permissions, ExpiresAt: int64(tx.ExpiresAt.Uint64()),
			Purpose: tx.Purpose, TermsURI: tx.TermsURI, Index: index, GrantedAt: ent.AcceptTime}
		if e.hasGrantHook(tx.App) {
			e.rememberGrant(g)
		}
	case ledger.TypeRevoke, ledger.TypeRenounce:
		typ, apps = TypeRevoked, []common.Address{tx.App}
		if tx.Type == ledger.TypeRenounce {
			typ = TypeRenounced
		}
		delete(e.grants[vehicle], tx.App)
	case ledger.TypeTransferVehicle:
		typ = TypeTransferred
		for app := range e.grants[vehicle] {
			apps = append(apps, app)
		}
		delete(e.grants, vehicle)
	default:
		e.mu.Unlock()
		return nil
	}
	var ds []*Delivery
	for _, app := range apps {
		for _, h := range e.hooks {
			if h.w.App != app || h.w.Trigger.Kind != KindGrant || h.w.Status != StatusActive || !h.w.Covers(vehicle) ||
				ent.AcceptTime < h.w.Created.UnixMilli() {
				continue
			}
			idx := index
			data := GrantData{WebhookID: h.w.ID, VehicleID: vehicle, App: app.Hex(), LogIndex: &idx}
			if tx.Type == ledger.TypeGrant {
				data.Permissions, data.ExpiresAt, data.Purpose = tx.Permissions, int64(tx.ExpiresAt.Uint64()), tx.Purpose
			}
			d, err := e.newDelivery(derivedID(h.w.ID, typ, strconv.FormatInt(index, 10)), h.w, vehicle, typ, nil, at, data)
			if err == nil {
				ds = append(ds, d)
			}
		}
	}
	e.mu.Unlock()
	if typ != TypeGranted {
		for _, app := range append(apps, tx.App) {
			if err := e.drop(ctx, app, vehicle, typ); err != nil {
				return err
			}
		}
	}
	return e.enqueue(ctx, ds)
}

// drop drops the pending deliveries of app about vehicle after the grant ended, recording each.
func (e *Engine) drop(ctx context.Context, app common.Address, vehicle uint64, why string) error {
	if app == (common.Address{}) {
		return nil
	}
	reason := map[string]string{TypeRevoked: "the grant was revoked", TypeRenounced: "the app renounced the grant",
		TypeTransferred: "the vehicle was transferred", TypeExpired: "the grant expired"}[why]
	dropped, err := e.store.Drop(ctx, app, vehicle, reason, e.opts.Now())
	if err != nil {
		return err
	}
	for _, d := range dropped {
		e.record(d, "dropped")
	}
	return nil
}

// hasGrantHook reports whether app has a grant webhook. e.mu held.
func (e *Engine) hasGrantHook(app common.Address) bool {
	for _, h := range e.hooks {
		if h.w.App == app && h.w.Trigger.Kind == KindGrant {
			return true
		}
	}
	return false
}

// expire returns the events of grants that expired, and drops their pending deliveries.
func (e *Engine) expire() []*Delivery {
	now := e.opts.Now()
	type ended struct {
		app common.Address
		g   ledger.Grant
	}
	var gone []ended
	var ds []*Delivery
	e.mu.Lock()
	for vehicle, m := range e.grants {
		for app, g := range m {
			if g.ActiveAt(now.Unix()) {
				continue
			}
			delete(m, app)
			e.ended[g.Index] = true
			gone = append(gone, ended{app, g})
			for _, h := range e.hooks {
				if h.w.App != app || h.w.Trigger.Kind != KindGrant || h.w.Status != StatusActive || !h.w.Covers(vehicle) ||
					g.ExpiresAt < h.w.Created.Unix() {
					continue
				}
				d, err := e.newDelivery(derivedID(h.w.ID, TypeExpired, strconv.FormatInt(g.Index, 10)), h.w, vehicle, TypeExpired, nil,
					time.Unix(g.ExpiresAt, 0), GrantData{WebhookID: h.w.ID, VehicleID: vehicle, App: app.Hex(), Permissions: g.Permissions,
						ExpiresAt: g.ExpiresAt, Purpose: g.Purpose})
				if err == nil {
					ds = append(ds, d)
				}
			}
		}
	}
	e.mu.Unlock()
	for _, x := range gone {
		if err := e.drop(context.Background(), x.app, x.g.VehicleID, TypeExpired); err != nil {
			e.logger.Error("couldn't drop deliveries of an expired grant", "err", err)
		}
	}
	return ds
}

// silent returns the offline events of vehicles that stopped sending.
func (e *Engine) silent() []*Delivery {
	now := e.opts.Now()
	var ds []*Delivery
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.hooks {
		if h.w.Trigger.Kind != KindConnectivity || h.w.Status != StatusActive {
			continue
		}
		silence := h.w.Trigger.Silence() * 1000
		for veh, on := range h.online {
			last := e.lastSeen[veh]
			if !on || now.UnixMilli()-last < silence {
				continue
			}
			h.online[veh] = false
			d, err := e.newDelivery(newID("msg_"), h.w, veh, TypeOffline, h.perms, now, ConnectivityData{WebhookID: h.w.ID,
				VehicleID: veh, Status: "offline", LastSeen: time.UnixMilli(last).UTC(), SilenceSeconds: h.w.Trigger.Silence()})
			if err == nil {
				d.Measured = time.UnixMilli(last)
				ds = append(ds, d)
			}
		}
	}
	return ds
}

// HeartbeatData is the data of a glovebox.webhook.heartbeat event.
type HeartbeatData struct {
	WebhookID string `json:"webhookId"`
	Pending   int    `json:"pending"` // deliveries waiting for this webhook
}

// heartbeats sends a heartbeat to each active webhook whose last one is Heartbeat old: one attempt, not
// kept in the outbox (the next one follows anyway).
func (e *Engine) heartbeats(ctx context.Context, slots chan struct{}, wg *sync.WaitGroup) {
	if e.opts.Heartbeat < 0 {
		return
	}
	now := e.opts.Now()
	var due []Webhook
	e.mu.Lock()
	for _, h := range e.hooks {
		if h.w.Status == StatusActive && now.Sub(h.beat) >= e.opts.Heartbeat {
			h.beat = now
			due = append(due, *h.w)
		}
	}
	e.mu.Unlock()
	for _, w := range due {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			n, err := e.store.Pending(ctx, w.ID)
			if err != nil {
				return
			}
			d, err := e.newDelivery(newID("msg_"), &w, 0, TypeHeartbeat, nil, now, HeartbeatData{WebhookID: w.ID, Pending: n})
			if err != nil {
				return
			}
			secret, err := ParseSecret(w.Secret)
			if err != nil {
				return
			}
			if _, _, err := e.post(ctx, w.URL, d.ID, d.Body, secret); err != nil {
				e.logger.Debug("heartbeat failed", "webhook", w.ID, "err", err)
			}
		}()
	}
}

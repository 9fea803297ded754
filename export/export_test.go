package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/internal/pgtest"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/telemetry"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is a settable clock for the node.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) get() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// stores is the telemetry and access-log store under test, and how records reach it.
type stores struct {
	telemetry telemetry.Reader
	accessLog accesslog.Store
	// write stores signed submissions received at now (through the node's ingest, or straight into the
	// store as ingest would); every one must be accepted.
	write func(t *testing.T, subs []telemetry.Submission, now time.Time)
	// settle makes the derived tables current (SQLite's indexer).
	settle func(t *testing.T)
}

// world is a simulated stretch: vehicle car sold by alice to bob half-way, and another car of alice's,
// both driven by the simulator, with grants and access-log entries in both owners' periods.
type world struct {
	n            *testnode.Node
	clock        *clock
	st           stores
	logKey       string
	alice, bob   testnode.Key
	car, other   uint64
	start, sold  time.Time
	end          time.Time
	accepted     map[uint64][]telemetry.Submission // by vehicle, in the order sent
	times        map[string]int64                  // record time by event bytes
	aliceApp     testnode.Key
	bobApp       testnode.Key
	fleet        *sim.Fleet
	logSizeAtEnd int64
}

const stretch = 30 * time.Minute

func newWorld(t *testing.T, pick func(t *testing.T, n *testnode.Node, c *clock) stores) *world {
	t.Helper()
	c := &clock{}
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	c.set(start)
	n := testnode.Start(t, testnode.Options{Now: c.get})
	w := &world{n: n, clock: c, alice: testnode.NewKey(t), bob: testnode.NewKey(t), start: start, accepted: map[uint64][]telemetry.Submission{},
		times: map[string]int64{}}
	w.st = pick(t, n, c)
	info, err := n.Client.Node(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.logKey = info.LogKey
	w.car, w.other = n.Vehicle(t, w.alice), n.Vehicle(t, w.alice)
	devCar := n.PairedDevice(t, w.alice, w.car, ledger.KindHardware)
	devOther := n.PairedDevice(t, w.alice, w.other, ledger.KindHardware)
	w.aliceApp, w.bobApp = n.App(t, w.alice), n.App(t, w.bob)
	n.Grant(t, w.alice, w.car, w.aliceApp.Address, start.Add(24*time.Hour).Unix(), ledger.PermSignals)

	// The simulator's petrol cars (hardware dongles), with this node's keys and ids.
	specs := sim.Specs(7, 3)[1:]
	specs[0].VehicleID, specs[0].DeviceKey, specs[0].Device = w.car, devCar.Key, devCar.Address
	specs[1].VehicleID, specs[1].DeviceKey, specs[1].Device = w.other, devOther.Key, devOther.Address
	w.fleet, err = sim.NewFleetFromSpecs(7, specs, start)
	if err != nil {
		t.Fatal(err)
	}
	w.sold = start.Add(stretch / 2)
	w.drive(t, w.sold)
	c.set(w.sold)
	tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: w.bob.Address}
	tx.VehicleID.SetUint64(w.car)
	n.Submit(t, tx, w.alice)
	n.Grant(t, w.bob, w.car, w.bobApp.Address, w.sold.Add(24*time.Hour).Unix(), ledger.PermSignals)
	w.drive(t, start.Add(stretch))
	w.end = c.get()
	// Access-log entries: one in each owner's period, one of the other car.
	if err := w.st.accessLog.Append(t.Context(), []accesslog.Entry{
		{Time: start.Add(5 * time.Minute), Vehicle: w.car, Caller: w.aliceApp.Address, Query: "signalsLatest", Permissions: []string{"signals"}, Outcome: "ok"},
		{Time: w.sold.Add(5 * time.Minute), Vehicle: w.car, Caller: w.bobApp.Address, Query: "signals", Permissions: []string{"signals"}, Outcome: "ok"},
		{Time: start.Add(6 * time.Minute), Vehicle: w.other, Caller: w.aliceApp.Address, Query: "signals", Permissions: []string{"signals"}, Outcome: "ok"},
	}); err != nil {
		t.Fatal(err)
	}
	w.st.settle(t)
	w.logSizeAtEnd, _ = n.Log.Latest()
	return w
}

// drive steps the fleet a second at a time until until, storing each minute's records with the clock at
// the minute's end.
func (w *world) drive(t *testing.T, until time.Time) {
	t.Helper()
	var batch []sim.Record
	flush := func() {
		if len(batch) == 0 {
			return
		}
		w.clock.set(w.fleet.Now())
		w.st.write(t, sim.Submissions(batch), w.fleet.Now())
		for _, r := range batch {
			w.accepted[r.VehicleID] = append(w.accepted[r.VehicleID], r.Submission)
			w.times[string(r.Submission.Event)] = r.Time.UnixMilli()
		}
		batch = batch[:0]
	}
	for w.fleet.Now().Before(until) {
		batch = append(batch, w.fleet.Step(time.Second)...)
		if w.fleet.Now().Sub(w.start)%time.Minute == 0 {
			flush()
		}
	}
	flush()
}

func (w *world) source() *export.Source {
	return &export.Source{State: w.n.Sequencer.Read, Entries: w.n.Entries, Log: w.n.Log, LogKey: w.logKey, Telemetry: w.st.telemetry,
		AccessLog: w.st.accessLog, Now: w.clock.get}
}

func (w *world) build(t *testing.T, req export.Request) (*export.Plan, []byte) {
	t.Helper()
	p, err := w.source().Plan(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Write(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return p, b.Bytes()
}

func openZip(t *testing.T, b []byte) *zip.Reader {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func member(t *testing.T, zr *zip.Reader, name string) []byte {
	t.Helper()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ndjson[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

func sqliteStores(t *testing.T, n *testnode.Node, c *clock) stores {
	return stores{telemetry: n.Telemetry, accessLog: n.AccessLog,
		write: func(t *testing.T, subs []telemetry.Submission, _ time.Time) {
			for i, r := range n.Ingester.Ingest(t.Context(), subs) {
				if r.Status != telemetry.StatusAccepted {
					t.Fatalf("record %d: %s %s", i, r.Status, r.Message)
				}
			}
		},
		settle: func(t *testing.T) {
			if _, err := n.Telemetry.Index(t.Context()); err != nil {
				t.Fatal(err)
			}
		}}
}

func postgresStores(t *testing.T, n *testnode.Node, c *clock) stores {
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	tel := postgres.NewTelemetry(pool)
	return stores{telemetry: tel, accessLog: postgres.NewAccessLog(pool),
		write: func(t *testing.T, subs []telemetry.Submission, now time.Time) {
			// As ingest stores them: verified, parsed, with the pairing in force at their time.
			recs := make([]*telemetry.Record, len(subs))
			for i := range subs {
				signer, err := subs[i].Signer()
				if err != nil {
					t.Fatal(err)
				}
				r, err := telemetry.DefaultCatalog.Parse(&subs[i], now.Add(time.Minute).UnixMilli())
				if err != nil || r.Source != signer {
					t.Fatalf("record %d: %v (signed by %s)", i, err, signer.Hex())
				}
				copy(r.Signature[:], subs[i].Signature)
				n.Sequencer.Read(func(st *ledger.State) {
					p, ok := st.PairingAt(r.Source, r.VehicleID, r.Time)
					if !ok {
						t.Fatalf("record %s: not paired", r.ID)
					}
					r.Pairing = p
				})
				r.Received = now.UnixMilli()
				recs[i] = r
			}
			st, err := tel.Write(t.Context(), recs)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range st {
				if s != telemetry.StatusAccepted {
					t.Fatalf("record %s: %s", recs[i].ID, s)
				}
			}
		},
		settle: func(*testing.T) {}}
}

var storeKinds = []struct {
	name string
	pick func(t *testing.T, n *testnode.Node, c *clock) stores
}{
	{"SQLite", sqliteStores},
	{"PostgreSQL", postgresStores},
}

// TestAnExportHoldsEveryRecordOfTheOwnersPeriodOnceAndVerifies exports a simulated half hour of a car
// sold half-way, as its seller and as its buyer, on both stores: every record accepted in the owner's
// period is in the archive once, byte for byte, and nothing else is; the archive verifies offline; its
// signal values are what GraphQL answers; the same snapshot builds the same bytes after more data came.
func TestAnExportHoldsEveryRecordOfTheOwnersPeriodOnceAndVerifies(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			w := newWorld(t, sk.pick)
			for _, who := range []struct {
				name   string
				owner  testnode.Key
				lo, hi time.Time
				app    testnode.Key
			}{
				{"seller", w.alice, w.start, w.sold, w.aliceApp},
				{"buyer", w.bob, w.sold, w.end.Add(time.Millisecond), w.bobApp},
			} {
				t.Run(who.name, func(t *testing.T) {
					p, b := w.build(t, export.Request{Vehicle: w.car, Caller: who.owner.Address})
					zr := openZip(t, b)
					rep, err := export.Verify(zr, w.logKey)
					if err != nil {
						t.Fatalf("the archive does not verify: %v", err)
					}
					want := map[string]bool{}
					for _, s := range w.accepted[w.car] {
						if at := w.times[string(s.Event)]; at >= who.lo.UnixMilli() && at < who.hi.UnixMilli() {
							want[string(s.Event)] = true
						}
					}
					if len(want) == 0 {
						t.Fatal("the stretch gave this owner no records")
					}
					got := ndjson[export.RecordLine](t, member(t, zr, "records.ndjson"))
					seen := map[string]bool{}
					for _, r := range got {
						if !want[r.Event] {
							t.Fatalf("record %s (%s) is not one of this owner's period of this car", r.ID, r.Time)
						}
						if seen[r.Event] {
							t.Fatalf("record %s is in the archive twice", r.ID)
						}
						seen[r.Event] = true
					}
					if len(seen) != len(want) || rep.Records != int64(len(want)) {
						t.Fatalf("the archive holds %d records (report %d), the owner's period %d", len(seen), rep.Records, len(want))
					}
					grants := ndjson[export.GrantLine](t, member(t, zr, "grants.ndjson"))
					if len(grants) != 1 || grants[0].App != who.app.Address.Hex() {
						t.Fatalf("grants.ndjson holds %+v, want the one grant to %s", grants, who.app.Address.Hex())
					}
					alog := ndjson[accesslog.Entry](t, member(t, zr, "access-log.ndjson"))
					if len(alog) != 1 || alog[0].Caller != who.app.Address || alog[0].Vehicle != w.car {
						t.Fatalf("access-log.ndjson holds %+v, want the one entry of %s on car %d", alog, who.app.Address.Hex(), w.car)
					}
					// GraphQL answers the current owner (the buyer) only.
					if who.name == "seller" {
						return
					}
					w.checkValuesAgainstGraphQL(t, zr, who.owner, who.lo, who.hi)

					// The same snapshot later, with more records stored since: the same bytes.
					w.drive(t, w.fleet.Now().Add(2*time.Minute))
					w.st.settle(t)
					_, again := w.build(t, export.Request{Vehicle: w.car, Caller: who.owner.Address, Snapshot: p.Snapshot()})
					if !bytes.Equal(again, b) {
						t.Fatal("the same snapshot built different bytes")
					}
					p2, fresh := w.build(t, export.Request{Vehicle: w.car, Caller: who.owner.Address})
					if p2.ETag() == p.ETag() || bytes.Equal(fresh, b) {
						t.Fatal("a new snapshot after more records has the old ETag or bytes")
					}
				})
			}
		})
	}
}

// checkValuesAgainstGraphQL asks GraphQL for speed and the odometer a second at a time over [lo, hi) as
// owner and demands the archive's CSV values of those seconds.
func (w *world) checkValuesAgainstGraphQL(t *testing.T, zr *zip.Reader, owner testnode.Key, lo, hi time.Time) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(member(t, zr, "signals.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "time,signal,value,unit" {
		t.Fatalf("signals.csv header %v", rows[0])
	}
	signals := []string{"speed", "powertrainTransmissionTravelledDistance"}
	csvVals := map[string]map[int64]string{} // signal → second → last value in it
	for _, r := range rows[1:] {
		at, err := time.Parse(time.RFC3339, r[0])
		if err != nil {
			t.Fatal(err)
		}
		if csvVals[r[1]] == nil {
			csvVals[r[1]] = map[int64]string{}
		}
		csvVals[r[1]][at.Unix()] = r[2]
	}
	h := graphql.NewHandler(graphql.Config{State: w.n.Sequencer.Read, Telemetry: w.st.telemetry, Now: w.clock.get, AccessLog: w.st.accessLog})
	for from := lo; from.Before(hi); from = from.Add(10 * time.Minute) {
		to := from.Add(10 * time.Minute)
		if to.After(hi) {
			to = hi
		}
		q := `{ signals(tokenId: ` + strconv.FormatUint(w.car, 10) + `, interval: "1s", from: "` + from.UTC().Format(time.RFC3339Nano) +
			`", to: "` + to.UTC().Format(time.RFC3339Nano) + `") { timestamp speed(agg: LAST) powertrainTransmissionTravelledDistance(agg: LAST) } }`
		body, _ := json.Marshal(map[string]string{"query": q})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(graphql.WithCaller(req.Context(), owner.Address))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var ans struct {
			Data struct {
				Signals []map[string]any
			}
			Errors []any
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || len(ans.Errors) > 0 {
			t.Fatalf("GraphQL: %v %s", err, rec.Body.String())
		}
		for _, b := range ans.Data.Signals {
			at, err := time.Parse(time.RFC3339, b["timestamp"].(string))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range signals {
				v, ok := b[s].(float64)
				if !ok {
					continue
				}
				got, ok := csvVals[s][at.Unix()]
				if !ok {
					t.Fatalf("GraphQL has %s = %v at %s, signals.csv has no value then", s, v, at)
				}
				f, err := strconv.ParseFloat(got, 64)
				if err != nil || f != v {
					t.Fatalf("%s at %s: signals.csv holds %s, GraphQL answers %v", s, at, got, v)
				}
				delete(csvVals[s], at.Unix())
			}
		}
	}
	for _, s := range signals {
		if len(csvVals[s]) != 0 {
			t.Fatalf("signals.csv has %d seconds of %s that GraphQL does not answer", len(csvVals[s]), s)
		}
	}
}

// TestOnlyOwnersExportAndBadInputIsRefused asks for exports that must not be built.
func TestOnlyOwnersExportAndBadInputIsRefused(t *testing.T) {
	c := &clock{}
	c.set(time.Now())
	n := testnode.Start(t, testnode.Options{Now: c.get})
	alice, mallory := testnode.NewKey(t), testnode.NewKey(t)
	car := n.Vehicle(t, alice)
	info, err := n.Client.Node(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	src := &export.Source{State: n.Sequencer.Read, Entries: n.Entries, Log: n.Log, LogKey: info.LogKey, Telemetry: n.Telemetry, AccessLog: n.AccessLog}
	other := testnode.Start(t, testnode.Options{})
	otherCP := func() string {
		_, cp := other.Log.Latest()
		return "1." + base64.RawURLEncoding.EncodeToString(cp)
	}()
	now := time.Now()
	for _, tc := range []struct {
		name string
		req  export.Request
		want error
	}{
		{"a stranger", export.Request{Vehicle: car, Caller: mallory.Address}, export.ErrNotOwner},
		{"a vehicle that does not exist", export.Request{Vehicle: car + 10, Caller: alice.Address}, export.ErrUnknownVehicle},
		{"from after to", export.Request{Vehicle: car, Caller: alice.Address, From: now, To: now.Add(-time.Hour)}, export.ErrInvertedRange},
		{"from equal to to", export.Request{Vehicle: car, Caller: alice.Address, From: now, To: now}, export.ErrInvertedRange},
		{"a snapshot that is not one", export.Request{Vehicle: car, Caller: alice.Address, Snapshot: "yesterday"}, export.ErrBadSnapshot},
		{"a snapshot of another log", export.Request{Vehicle: car, Caller: alice.Address, Snapshot: otherCP}, export.ErrBadSnapshot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := src.Plan(t.Context(), tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// rezip returns the archive with member name changed by f (nil: removed).
func rezip(t *testing.T, b []byte, name string, f func([]byte) []byte) []byte {
	t.Helper()
	zr := openZip(t, b)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, m := range zr.File {
		data := member(t, zr, m.Name)
		if m.Name == name {
			if f == nil {
				continue
			}
			data = f(data)
		}
		fw, err := zw.Create(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// firstLine changes the first line of an NDJSON member through f on its decoded form.
func firstLine[T any](f func(*T)) func([]byte) []byte {
	return func(b []byte) []byte {
		first, rest, _ := bytes.Cut(b, []byte("\n"))
		var v T
		if err := json.Unmarshal(first, &v); err != nil {
			panic(err)
		}
		f(&v)
		nb, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return append(append(nb, '\n'), rest...)
	}
}

// TestATamperedArchiveFailsVerifyNamingWhy changes one thing of a good archive at a time: Verify must
// fail, and name the check that caught it.
func TestATamperedArchiveFailsVerifyNamingWhy(t *testing.T) {
	w := newWorld(t, sqliteStores)
	_, good := w.build(t, export.Request{Vehicle: w.car, Caller: w.alice.Address})
	if _, err := export.Verify(openZip(t, good), w.logKey); err != nil {
		t.Fatalf("the untouched archive fails: %v", err)
	}
	other := testnode.Start(t, testnode.Options{})
	otherInfo, err := other.Client.Node(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		member string
		change func([]byte) []byte
		key    string
		want   string
	}{
		{"a record's event bytes changed", "records.ndjson", firstLine(func(r *export.RecordLine) {
			r.Event = strings.Replace(r.Event, `"specversion":"1.0"`, `"specversion": "1.0"`, 1)
		}), "", export.CheckSignature},
		{"a record's signature changed", "records.ndjson", firstLine(func(r *export.RecordLine) {
			r.Signature = r.Signature[:10] + strings.Map(func(c rune) rune {
				if c == '0' {
					return '1'
				}
				return '0'
			}, r.Signature[10:12]) + r.Signature[12:]
		}), "", export.CheckSignature},
		{"a record's pairing entry changed", "records.ndjson", firstLine(func(r *export.RecordLine) { r.Pairing++ }), "", export.CheckPairing},
		{"a record's receive time after the snapshot", "records.ndjson", firstLine(func(r *export.RecordLine) { r.Received = "2999-01-01T00:00:00.000Z" }), "", export.CheckRecord},
		{"a record twice", "records.ndjson", func(b []byte) []byte {
			first, _, _ := bytes.Cut(b, []byte("\n"))
			return append(append(first, '\n'), b...)
		}, "", export.CheckRecord},
		{"a record dropped", "records.ndjson", func(b []byte) []byte { _, rest, _ := bytes.Cut(b, []byte("\n")); return rest }, "", export.CheckValues},
		{"a CSV value changed", "signals.csv", func(b []byte) []byte {
			lines := strings.SplitN(string(b), "\n", 3)
			f := strings.Split(lines[1], ",")
			f[2] += "1"
			lines[1] = strings.Join(f, ",")
			return []byte(strings.Join(lines, "\n"))
		}, "", export.CheckValues},
		{"an NDJSON value dropped", "signals.ndjson", func(b []byte) []byte { _, rest, _ := bytes.Cut(b, []byte("\n")); return rest }, "", export.CheckValues},
		{"a value added to the CSV", "signals.csv", func(b []byte) []byte { return append(b, "2000-01-01T00:00:00.000Z,speed,1,km/h\n"...) }, "", export.CheckValues},
		{"a proof hash flipped", "ledger.ndjson", firstLine(func(l *export.LedgerLine) { l.Proof[0][0] ^= 1 }), "", export.CheckLedger},
		{"a ledger entry's bytes changed", "ledger.ndjson", firstLine(func(l *export.LedgerLine) { l.Entry[len(l.Entry)-1] ^= 1 }), "", export.CheckLedger},
		{"the checkpoint changed", "checkpoint.txt", func(b []byte) []byte { return bytes.Replace(b, []byte("\n"), []byte("\n\n"), 1) }, "", export.CheckCheckpoint},
		{"another log's key", "", nil, otherInfo.LogKey, export.CheckCheckpoint},
		{"the owner's period stretched", "export.json", func(b []byte) []byte {
			var m map[string]any
			json.Unmarshal(b, &m)
			m["periods"].([]any)[0].(map[string]any)["toIndex"] = -1
			nb, _ := json.Marshal(m)
			return nb
		}, "", export.CheckPeriods},
		{"the owner changed", "export.json", func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte(w.alice.Address.Hex()), []byte(w.bob.Address.Hex()))
		}, "", export.CheckPeriods},
		{"a count changed", "summary.json", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"grants.ndjson": 1`), []byte(`"grants.ndjson": 2`), 1)
		}, "", export.CheckSummary},
		{"a member missing", "README.txt", nil, "", export.CheckLayout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			if tc.member != "" {
				b = rezip(t, good, tc.member, tc.change)
			}
			key := w.logKey
			if tc.key != "" {
				key = tc.key
			}
			_, err := export.Verify(openZip(t, b), key)
			var f *export.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Verify: %v, want a failure of check %s", err, tc.want)
			}
			if f.Check != tc.want {
				t.Fatalf("check %s failed (%v), want check %s", f.Check, err, tc.want)
			}
			t.Log(err)
		})
	}
}

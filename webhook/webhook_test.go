package webhook

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/glovebox/glovebox/telemetry"
)

func TestAStockStandardWebhooksLibraryVerifiesOurSignatures(t *testing.T) {
	secret := NewSecret()
	key, err := ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	stock, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"specversion":"1.0","id":"msg_1","type":"glovebox.webhook.test","data":{"a":1}}`)
	h := http.Header{}
	Sign(h, "msg_1", time.Now(), body, key, priv)
	if err := stock.Verify(body, h); err != nil {
		t.Fatalf("the stock library refused a signature: %v (header %q)", err, h.Get(HeaderSignature))
	}
	if err := Verify(h, body, nil, pub, time.Now()); err != nil {
		t.Fatalf("the v1a signature does not verify: %v", err)
	}
	if err := Verify(h, body, key, nil, time.Now()); err != nil {
		t.Fatalf("the v1 signature does not verify: %v", err)
	}
	// Every one-byte change of the body is refused by both.
	for i := range body {
		bad := append([]byte(nil), body...)
		bad[i] ^= 1
		if stock.Verify(bad, h) == nil || Verify(h, bad, key, pub, time.Now()) == nil {
			t.Fatalf("a body changed at byte %d verified", i)
		}
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if Verify(h, body, nil, other, time.Now()) == nil {
		t.Fatal("a v1a signature verified under another key")
	}
	if Verify(h, body, key, pub, time.Now().Add(10*time.Minute)) == nil {
		t.Fatal("a message 10 minutes old verified")
	}
}

func TestKeysRoundTripInTheStandardWebhooksForms(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	if !strings.HasPrefix(EncodePublicKey(pub), "whpk_") || !strings.HasPrefix(EncodePrivateKey(priv), "whsk_") {
		t.Fatal("wrong prefixes")
	}
	p2, err := ParsePublicKey(EncodePublicKey(pub))
	if err != nil || !p2.Equal(pub) {
		t.Fatalf("public key round trip: %v", err)
	}
	k2, err := ParsePrivateKey(EncodePrivateKey(priv))
	if err != nil || !k2.Equal(priv) {
		t.Fatalf("private key round trip: %v", err)
	}
	for _, bad := range []string{"", "whsec_AAAA", "whsec_!!!", "whsec_" + strings.Repeat("A", 8), "secret"} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}

func TestURLsAreCheckedAgainstThePolicy(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", MaxURLLen)
	for _, tc := range []struct {
		url    string
		policy Policy
		want   error
	}{
		{"https://hooks.example.com/glovebox", Policy{}, nil},
		{"http://hooks.example.com/glovebox", Policy{}, ErrURLScheme},
		{"http://hooks.example.com/glovebox", Policy{AllowHTTP: true}, nil},
		{"ftp://hooks.example.com/", Policy{AllowHTTP: true}, ErrURLScheme},
		{long, Policy{}, ErrURLTooLong},
		{"https://user:pw@hooks.example.com/", Policy{}, ErrURLInvalid},
		{"https:///nohost", Policy{}, ErrURLInvalid},
		{"/relative", Policy{}, ErrURLInvalid},
		{"https://127.0.0.1/", Policy{}, ErrURLPrivate},
		{"https://[::1]:8443/", Policy{}, ErrURLPrivate},
		{"https://[::ffff:127.0.0.1]/", Policy{}, ErrURLPrivate},
		{"https://10.1.2.3/", Policy{}, ErrURLPrivate},
		{"https://169.254.169.254/latest/meta-data", Policy{}, ErrURLPrivate},
		{"https://[fe80::1]/", Policy{}, ErrURLPrivate},
		{"https://localhost:8080/", Policy{}, ErrURLPrivate},
		{"https://127.0.0.1/", Policy{AllowPrivate: true}, nil},
		{"https://8.8.8.8/", Policy{}, nil},
	} {
		if got := tc.policy.CheckURL(tc.url); got != tc.want {
			t.Errorf("CheckURL(%.60q, %+v) = %v, want %v", tc.url, tc.policy, got, tc.want)
		}
	}
}

func TestOnlyPublicUnicastAddressesArePublic(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"8.8.8.8", true}, {"2606:4700::1111", true},
		{"127.0.0.1", false}, {"127.9.9.9", false}, {"::1", false}, {"::ffff:127.0.0.1", false},
		{"10.0.0.1", false}, {"172.16.5.4", false}, {"192.168.1.1", false}, {"fd00::1", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"0.0.0.0", false}, {"::", false},
		{"100.64.0.1", false}, {"224.0.0.1", false}, {"255.255.255.255", false}, {"192.0.2.1", false},
	} {
		if got := Public(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Public(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}

// The dialer judges the address it connects to, after resolution: "localhost" resolves to loopback.
func TestTheClientRefusesNamesThatResolveToLoopbackAndFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/private", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, u := range []string{"http://localhost:" + port + "/", srv.URL + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		_, err := Policy{}.Client(5 * time.Second).Get(u)
		if err == nil || !refused(err) {
			t.Errorf("GET %s: %v, want refused", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the server was reached %d times", hits.Load())
	}
	resp, err := Policy{AllowPrivate: true}.Client(5 * time.Second).Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
		t.Fatalf("got %d after %d requests, want the 302 itself after 1", resp.StatusCode, hits.Load())
	}
}

func TestConditionsAreCELOverValueAndPreviousValue(t *testing.T) {
	cat := telemetry.DefaultCatalog
	num := func(name string, v float64) telemetry.Value {
		s, _ := cat.Lookup(name)
		return telemetry.Value{Signal: s, Number: v}
	}
	str := func(name, v string) telemetry.Value {
		s, _ := cat.Lookup(name)
		return telemetry.Value{Signal: s, String: v}
	}
	loc := func(lat, lon float64) telemetry.Value {
		s, _ := cat.Lookup(telemetry.SignalLocation)
		return telemetry.Value{Signal: s, Lat: lat, Lon: lon, HDOP: 1}
	}
	for _, tc := range []struct {
		signal, cond string
		value, prev  telemetry.Value
		want         bool
	}{
		{"speed", "value > 120 && previousValue <= 120", num("speed", 121), num("speed", 119), true},
		{"speed", "value > 120 && previousValue <= 120", num("speed", 125), num("speed", 121), false},
		{"speed", "value > 120", num("speed", 100), num("speed", 130), false},
		{"speed", "value > 120", num("speed", 120.5), num("speed", 0), true},
		{"powertrainTractionBatteryStateOfChargeCurrent", "value >= 80.0 && previousValue < 80.0", num("powertrainTractionBatteryStateOfChargeCurrent", 80), num("powertrainTractionBatteryStateOfChargeCurrent", 79.5), true},
		{"isIgnitionOn", "value && !previousValue", num("isIgnitionOn", 1), num("isIgnitionOn", 0), true},
		{"isIgnitionOn", "value && !previousValue", num("isIgnitionOn", 1), num("isIgnitionOn", 1), false},
		{"powertrainType", `value == "ELECTRIC"`, str("powertrainType", "ELECTRIC"), str("powertrainType", ""), true},
		{telemetry.SignalLocation, "value.latitude > 52.0 && previousValue.latitude <= 52.0", loc(52.1, 13), loc(51.9, 13), true},
		{"speed", "value / 0.0 > 1.0", num("speed", 10), num("speed", 10), true}, // IEEE division: +Inf
	} {
		sig, ok := cat.Lookup(tc.signal)
		if !ok {
			t.Fatalf("no signal %s", tc.signal)
		}
		c, err := CompileCondition(sig, tc.cond)
		if err != nil {
			t.Fatalf("%s on %s: %v", tc.cond, tc.signal, err)
		}
		if got, err := c.Eval(tc.value, tc.prev); got != tc.want {
			t.Errorf("%s on %s = %v (%v), want %v", tc.cond, tc.signal, got, err, tc.want)
		}
	}
}

// A condition whose cost CEL bounds statically (numbers, booleans) runs untracked; one over values of
// unknown size is stopped at the cost limit, and counts as false.
func TestConditionsOverValuesOfUnknownSizeStopAtTheCostLimit(t *testing.T) {
	list := &telemetry.Signal{Name: "dtcList", Kind: telemetry.KindStrings}
	var codes []string
	for i := range 40 {
		codes = append(codes, fmt.Sprintf("P%04d", i))
	}
	raw, _ := json.Marshal(codes)
	v := telemetry.Value{Signal: list, String: string(raw)}
	for _, tc := range []struct {
		cond    string
		want    bool
		stopped bool
	}{
		{`value.exists(c, c == "P0003")`, true, false},
		{`value.all(a, value.all(b, value.all(c, a + b + c != "")))`, false, true}, // 64,000 steps
	} {
		c, err := CompileCondition(list, tc.cond)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Eval(v, v)
		if got != tc.want || (err != nil) != tc.stopped || (tc.stopped && !strings.Contains(err.Error(), "cost limit")) {
			t.Errorf("%s = %v (%v), want %v, stopped %v", tc.cond, got, err, tc.want, tc.stopped)
		}
	}
}

func TestBadTriggersAreRefusedNamingTheField(t *testing.T) {
	cat := telemetry.DefaultCatalog
	for _, tc := range []struct {
		trig        Trigger
		field, code string
	}{
		{Trigger{}, "trigger.kind", CodeInvalidTrigger},
		{Trigger{Kind: "weather"}, "trigger.kind", CodeInvalidTrigger},
		{Trigger{Kind: KindSignal, Signal: "warpSpeed", Condition: "value > 1"}, "trigger.signal", CodeUnknownSignal},
		{Trigger{Kind: KindSignal, Signal: "speed"}, "trigger.condition", CodeInvalidCondition},
		{Trigger{Kind: KindSignal, Signal: "speed", Condition: "value >"}, "trigger.condition", CodeInvalidCondition},
		{Trigger{Kind: KindSignal, Signal: "speed", Condition: "value + 1"}, "trigger.condition", CodeInvalidCondition},
		{Trigger{Kind: KindSignal, Signal: "speed", Condition: "speed > 1"}, "trigger.condition", CodeInvalidCondition},
		{Trigger{Kind: KindSignal, Signal: "speed", Condition: `value == "fast"`}, "trigger.condition", CodeInvalidCondition},
		{Trigger{Kind: KindSignal, Signal: "speed", Condition: strings.Repeat("value > 1 && ", 100) + "true"}, "trigger.condition", CodeInvalidCondition},
		{Trigger{Kind: KindSignal, Signal: "speed", Condition: "value > 1", CooldownSeconds: -1}, "trigger.cooldownSeconds", CodeInvalidTrigger},
		{Trigger{Kind: KindConnectivity, SilenceSeconds: 1}, "trigger.silenceSeconds", CodeInvalidTrigger},
		{Trigger{Kind: KindConnectivity, Signal: "speed"}, "trigger", CodeInvalidTrigger},
		{Trigger{Kind: KindGrant, Condition: "true"}, "trigger", CodeInvalidTrigger},
		{Trigger{Kind: KindTrip, Name: "behavior.harshBraking"}, "trigger", CodeInvalidTrigger},
		{Trigger{Kind: KindEvent}, "trigger.name", CodeInvalidTrigger},
		{Trigger{Kind: KindEvent, Name: "behavior.napping"}, "trigger.name", CodeInvalidTrigger},
		{Trigger{Kind: KindEvent, Name: "behavior.harshBraking", Signal: "speed"}, "trigger", CodeInvalidTrigger},
	} {
		_, err := CheckTrigger(&tc.trig, cat)
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field || fe.Code != tc.code {
			t.Errorf("%+v: got %v, want %s on %s", tc.trig, err, tc.code, tc.field)
		}
	}
	for _, good := range []Trigger{
		{Kind: KindSignal, Signal: "speed", Condition: "value > 120 && previousValue <= 120", CooldownSeconds: 60},
		{Kind: KindConnectivity}, {Kind: KindConnectivity, SilenceSeconds: 60}, {Kind: KindGrant},
		{Kind: KindEvent, Name: "behavior.harshBraking"}, {Kind: KindTrip},
	} {
		if _, err := CheckTrigger(&good, cat); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
}

func TestRetryAfterIsReadAsSecondsOrADate(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"120", 2 * time.Minute}, {"0", 0}, {"-5", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	e := NewEngine(Options{})
	for n, base := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
		for range 50 {
			d := e.backoff(n + 1)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("retry %d waits %v, want %v ± 20 %%", n+1, d, base)
			}
		}
	}
	if d := e.backoff(40); d > DefaultRetryMax*12/10 || d < DefaultRetryMax*8/10 {
		t.Fatalf("retry 40 waits %v, want about %v", d, DefaultRetryMax)
	}
	// The schedule reaches the 24-hour window: the sum of the waits before it closes.
	var total time.Duration
	n := 0
	for total < DefaultRetryWindow {
		n++
		total += e.backoff(n)
	}
	if n < 10 || n > 30 {
		t.Fatalf("%d retries fill the window, want between 10 and 30", n)
	}
}

func FuzzParseInput(f *testing.F) {
	f.Add([]byte(`{"url":"https://a.example/h","vehicles":[1,2],"trigger":{"kind":"signal","signal":"speed","condition":"value > 1"}}`))
	f.Add([]byte(`{"vehicles":"all-granted","trigger":{"kind":"grant"}}`))
	f.Add([]byte(`{"status":"active"}`))
	f.Add([]byte(`{"url":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseInput(body)
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("a non-field error: %v", err)
			}
			return
		}
		if in.Vehicles != nil {
			parseVehicles(in.Vehicles)
		}
		if in.Trigger != nil {
			CheckTrigger(in.Trigger, telemetry.DefaultCatalog)
		}
	})
}

func TestTripsStartAtIgnitionOnAndEndAfterTheGapAsSegmentsCutThem(t *testing.T) {
	const gap = 300_000
	type val struct {
		t  int64
		on bool
	}
	arrived := time.Unix(1_000, 0)
	for _, tc := range []struct {
		name string
		vals []val
		want []tripChange
	}{
		{"an on starts a trip", []val{{1000, false}, {2000, true}, {3000, true}}, []tripChange{{start: 2000}}},
		{"the first value on starts a trip", []val{{1000, true}}, []tripChange{{start: 1000}}},
		{"an off alone does not end it yet", []val{{1000, true}, {5000, false}, {6000, false}}, []tripChange{{start: 1000}}},
		{"a value the gap after the off ends it at the off", []val{{1000, true}, {5000, false}, {5000 + gap, false}},
			[]tripChange{{start: 1000}, {1000, 5000}}},
		{"an on within the gap continues the trip", []val{{1000, true}, {5000, false}, {5000 + gap - 1, true}, {5000 + 2*gap, false}},
			[]tripChange{{start: 1000}}},
		{"an on at the gap ends the trip and starts another", []val{{1000, true}, {5000, false}, {5000 + gap, true}},
			[]tripChange{{start: 1000}, {1000, 5000}, {start: 5000 + gap}}},
		{"older and repeated values are ignored", []val{{1000, true}, {5000, false}, {4000, true}, {5000, true}, {5000 + gap, false}},
			[]tripChange{{start: 1000}, {1000, 5000}}},
		{"offs without a trip do nothing", []val{{1000, false}, {1000 + 2*gap, false}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s tripState
			var got []tripChange
			for _, v := range tc.vals {
				got = append(got, s.add(v.t, v.on, arrived, gap)...)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestASilentVehicleEndsItsTripTheGapAfterItsLastValue(t *testing.T) {
	const gap = 300_000
	arrived := time.UnixMilli(10_000_000)
	var s tripState
	s.add(9_000_000, true, arrived, gap)
	if _, ok := s.expire(arrived.Add(time.Hour), gap); ok {
		t.Fatal("a trip with the ignition on ended by silence")
	}
	s.add(9_100_000, false, arrived, gap)
	for _, tc := range []struct {
		now  time.Time
		ends bool
	}{
		{arrived.Add(gap*time.Millisecond - time.Millisecond), false},
		{arrived.Add(gap * time.Millisecond), true},
		{arrived.Add(2 * gap * time.Millisecond), false}, // ended once
	} {
		c, ok := s.expire(tc.now, gap)
		if ok != tc.ends || (ok && c != (tripChange{9_000_000, 9_100_000})) {
			t.Fatalf("at %v: %+v %v, want ended %v", tc.now, c, ok, tc.ends)
		}
	}
}

// Delivery ids sort by the time they were made (the outbox indexes them), and stay unique within a
// millisecond.
func TestIDsSortByTimeAndAreUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := newID("msg_")
	for i := range 2000 {
		if i%500 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		id := newID("msg_")
		if len(id) != len("msg_")+26 || seen[id] {
			t.Fatalf("id %q: wrong length or made twice", id)
		}
		seen[id] = true
		if i%500 == 0 && id <= prev {
			t.Fatalf("%q, made 2 ms after %q, sorts before it", id, prev)
		}
		prev = id
	}
}

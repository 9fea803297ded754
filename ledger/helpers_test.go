package ledger

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testOrigin is the log origin line of every test domain.
const testOrigin = "glovebox.test/log"

var testDomain = NewDomain(testOrigin)

// testStart is the fixed clock every test starts from: 2026-03-01T12:00:00.250Z in unix milliseconds. The
// quarter second checks that deadlines are judged against whole seconds of the accept time.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 250*int(time.Millisecond), time.UTC).UnixMilli()

// actor is a test account with a deterministic key.
type actor struct {
	name string
	key  *ecdsa.PrivateKey
	addr common.Address
}

// newActor derives a key from a fixed seed, so addresses (and RFC 6979 signatures) never change.
func newActor(name string) actor {
	seed := sha256.Sum256([]byte("glovebox ledger test key: " + name))
	key, err := crypto.ToECDSA(seed[:])
	if err != nil {
		panic(err)
	}
	return actor{name: name, key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// The cast. The fixture (newFixture) gives them these roles.
var (
	alice     = newActor("alice")     // owns vehicle 1
	bob       = newActor("bob")       // another owner; buys vehicle 1 in transfers
	mallory   = newActor("mallory")   // entitled to nothing
	dongle    = newActor("dongle")    // hardware device, paired to vehicle 1
	connector = newActor("connector") // software device registered by maker, not paired
	spare     = newActor("spare")     // an unregistered device
	maker     = newActor("maker")     // registers connector
	insurer   = newActor("insurer")   // registered app holding a grant on vehicle 1
	dev       = newActor("dev")       // owns the insurer app
	fleet     = newActor("fleet")     // an unregistered app
)

func addrs(as ...actor) []common.Address {
	out := make([]common.Address, len(as))
	for i, a := range as {
		out[i] = a.addr
	}
	return out
}

// message returns an unsigned message of type typ that the fixture state (see newFixture) accepts, with the
// given nonce and a deadline one hour after now (unix ms).
func message(typ TxType, nonce uint64, now int64) *Tx {
	tx := &Tx{Type: typ}
	tx.Nonce.SetUint64(nonce)
	tx.Deadline.SetUint64(uint64(now/1000 + 3600))
	switch typ {
	case TypeRegisterVehicle:
		tx.Owner, tx.Make, tx.Model, tx.Year = alice.addr, "Volkswagen", "ID.3 Pro S", 2023
	case TypeRegisterDevice:
		tx.Device, tx.Kind, tx.Maker = spare.addr, KindHardware, maker.addr
	case TypePairDevice:
		tx.Device = connector.addr
		tx.VehicleID.SetUint64(1)
	case TypeUnpairDevice:
		tx.Device = dongle.addr
		tx.VehicleID.SetUint64(1)
	case TypeTransferVehicle:
		tx.To = bob.addr
		tx.VehicleID.SetUint64(1)
	case TypeBurnVehicle:
		tx.VehicleID.SetUint64(1)
	case TypeRegisterApp:
		tx.App, tx.Owner, tx.Name = fleet.addr, dev.addr, "Fleet Tool"
		tx.RedirectURIs = []string{"https://fleet.example/callback"}
	case TypeUpdateApp:
		tx.App, tx.Name = insurer.addr, "Insurer Plus"
		tx.RedirectURIs = []string{"https://insurer.example/cb", "http://127.0.0.1:8765/cb"}
	case TypeGrant:
		tx.App = insurer.addr
		tx.VehicleID.SetUint64(1)
		tx.Permissions = []string{PermSignals, PermLocationApproximate}
		tx.ExpiresAt.SetUint64(uint64(now/1000 + 30*24*3600))
		tx.Purpose, tx.TermsURI = "Pay-as-you-drive insurance quote", "https://insurer.example/terms"
	case TypeRevoke, TypeRenounce:
		tx.App = insurer.addr
		tx.VehicleID.SetUint64(1)
	case TypeSetRetention:
		tx.Days = 30
		tx.VehicleID.SetUint64(1)
	case TypeEraseData:
		tx.Before = uint64(now / 1000)
		tx.VehicleID.SetUint64(1)
	default:
		panic("message: bad type")
	}
	return tx
}

// rightSigners returns who must sign message(typ, …) in the fixture state.
func rightSigners(typ TxType) []actor {
	switch typ {
	case TypeRegisterVehicle, TypePairDevice, TypeUnpairDevice, TypeTransferVehicle, TypeBurnVehicle, TypeGrant, TypeRevoke,
		TypeSetRetention, TypeEraseData:
		if typ == TypePairDevice {
			return []actor{alice, connector}
		}
		return []actor{alice}
	case TypeRegisterDevice:
		return []actor{spare, maker}
	case TypeRegisterApp:
		return []actor{dev, fleet}
	case TypeUpdateApp:
		return []actor{dev}
	case TypeRenounce:
		return []actor{insurer}
	}
	panic("rightSigners: bad type")
}

// sign replaces tx's signatures by ones from signers, in order, and returns tx.
func sign(tb testing.TB, tx *Tx, signers ...actor) *Tx {
	tb.Helper()
	tx.Signatures = nil
	for _, a := range signers {
		if err := testDomain.Sign(tx, a.key); err != nil {
			tb.Fatal(err)
		}
	}
	return tx
}

// sampleTx returns message(typ) at testStart with a fixed nonce, signed by its right signers: the
// transaction behind the golden files and the fuzz seeds.
func sampleTx(tb testing.TB, typ TxType) *Tx {
	return sign(tb, message(typ, 1000+uint64(typ), testStart), rightSigners(typ)...)
}

// world is a state under test with a fixed clock. Every accepted entry is kept in its encoded form; when
// the test ends, the log is decoded and replayed into a fresh state, and the state is snapshotted and
// restored, and both must reproduce the state's digest.
type world struct {
	tb      testing.TB
	s       *State
	now     int64 // unix ms, the accept time of the next entry
	nonce   uint64
	entries [][]byte
}

func newWorld(tb testing.TB) *world {
	w := &world{tb: tb, s: NewState(), now: testStart}
	tb.Cleanup(w.checkReplay)
	return w
}

// newFixture returns a world holding vehicle 1 of alice with dongle (hardware) paired, connector (software,
// registered by maker) unpaired, the insurer app of dev, and a grant on vehicle 1 to the insurer.
func newFixture(tb testing.TB) *world {
	w := newWorld(tb)
	w.mustApply(w.sign(&Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Tesla", Model: "Model 3", Year: 2021}, alice))
	w.mustApply(w.sign(&Tx{Type: TypeRegisterDevice, Device: dongle.addr, Kind: KindHardware}, dongle))
	w.mustApply(w.sign(&Tx{Type: TypeRegisterDevice, Device: connector.addr, Kind: KindSoftware, Maker: maker.addr}, connector, maker))
	pair := &Tx{Type: TypePairDevice, Device: dongle.addr}
	pair.VehicleID.SetUint64(1)
	w.mustApply(w.sign(pair, alice, dongle))
	w.mustApply(w.sign(&Tx{Type: TypeRegisterApp, App: insurer.addr, Owner: dev.addr, Name: "Insurer",
		RedirectURIs: []string{"https://insurer.example/cb"}}, dev, insurer))
	w.mustApply(w.sign(message(TypeGrant, w.next(), w.now), alice))
	return w
}

func (w *world) next() uint64 { w.nonce++; return w.nonce }

// advance moves the clock forward.
func (w *world) advance(d time.Duration) { w.now += d.Milliseconds() }

// msg returns message(typ) with a fresh nonce and a deadline an hour from the world's clock.
func (w *world) msg(typ TxType) *Tx { return message(typ, w.next(), w.now) }

// sign gives tx a fresh nonce and a deadline an hour ahead unless it has them, and signs it.
func (w *world) sign(tx *Tx, signers ...actor) *Tx {
	w.tb.Helper()
	if tx.Nonce.IsZero() {
		tx.Nonce.SetUint64(w.next())
	}
	if tx.Deadline.IsZero() {
		tx.Deadline.SetUint64(uint64(w.now/1000 + 3600))
	}
	return sign(w.tb, tx, signers...)
}

// valid returns the fixture-valid transaction of type typ, signed by its right signers.
func (w *world) valid(typ TxType) *Tx { return w.sign(w.msg(typ), rightSigners(typ)...) }

// apply recovers tx's signers and applies it at the world's clock. A refusal must leave the state's digest
// unchanged; an accepted entry must survive MarshalBinary/UnmarshalEntry.
func (w *world) apply(tx *Tx) (Result, error) {
	w.tb.Helper()
	return w.applyAt(tx, w.now)
}

func (w *world) applyAt(tx *Tx, acceptTime int64) (Result, error) {
	w.tb.Helper()
	before := w.s.Digest()
	size := w.s.Size()
	signers, err := testDomain.Signers(tx)
	var res Result
	if err == nil {
		e := &Entry{AcceptTime: acceptTime, Tx: tx}
		res, err = w.s.Apply(e, signers, w.s.Size())
		if err == nil {
			b, merr := e.MarshalBinary()
			if merr != nil {
				w.tb.Fatalf("accepted entry %d does not encode: %v", size, merr)
			}
			w.entries = append(w.entries, b)
		}
	}
	if err != nil {
		if after := w.s.Digest(); after != before || w.s.Size() != size {
			w.tb.Fatalf("refused %s (%v) changed the state digest", tx.Type, err)
		}
	}
	return res, err
}

func (w *world) mustApply(tx *Tx) Result {
	w.tb.Helper()
	res, err := w.apply(tx)
	if err != nil {
		w.tb.Fatalf("apply %s: %v", tx.Type, err)
	}
	return res
}

// expect applies tx and demands the rule code want ("" for accepted).
func (w *world) expect(tx *Tx, want Code) {
	w.tb.Helper()
	_, err := w.apply(tx)
	checkCode(w.tb, err, want)
}

func checkCode(tb testing.TB, err error, want Code) {
	tb.Helper()
	switch {
	case want == "" && err != nil:
		tb.Fatalf("refused: %v; want accepted", err)
	case want != "" && err == nil:
		tb.Fatalf("accepted; want %s", want)
	case want != "" && CodeOf(err) != want:
		tb.Fatalf("refused with %v; want code %s", err, want)
	}
}

// checkReplay is the whole-state invariant: the recorded log replays to the same state, and
// Restore(Snapshot()) is the same state.
func (w *world) checkReplay() {
	if w.tb.Failed() {
		return
	}
	want := w.s.Digest()
	r := NewState()
	for i, b := range w.entries {
		e, err := UnmarshalEntry(b)
		if err != nil {
			w.tb.Fatalf("replay: entry %d does not decode: %v", i, err)
		}
		signers, err := testDomain.Signers(e.Tx)
		if err != nil {
			w.tb.Fatalf("replay: entry %d: %v", i, err)
		}
		if _, err := r.Apply(e, signers, int64(i)); err != nil {
			w.tb.Fatalf("replay: entry %d refused: %v", i, err)
		}
	}
	if got := r.Digest(); got != want {
		w.tb.Fatalf("replayed log has digest %x, state has %x", got, want)
	}
	restored, err := Restore(w.s.Snapshot())
	if err != nil {
		w.tb.Fatalf("Restore(Snapshot()): %v", err)
	}
	if got := restored.Digest(); got != want {
		w.tb.Fatalf("Restore(Snapshot()) has digest %x, state has %x", got, want)
	}
	// PairingsOf is an index the digest does not cover: the three states must agree on it too.
	for id := uint64(1); id < w.s.nextVehicle; id++ {
		want := w.s.PairingsOf(id)
		for name, st := range map[string]*State{"replayed": r, "restored": restored} {
			if got := st.PairingsOf(id); !reflect.DeepEqual(got, want) {
				w.tb.Fatalf("%s state: PairingsOf(%d) = %+v, want %+v", name, id, got, want)
			}
		}
	}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s line %d:\n got: %s\nwant: %s", path, i+1, g, w)
		}
	}
}

// sameTx reports whether a and b are the same transaction; a nil string list equals an empty one.
func sameTx(a, b *Tx) bool {
	norm := func(tx *Tx) Tx {
		c := *tx
		if c.RedirectURIs == nil {
			c.RedirectURIs = []string{}
		}
		if c.Permissions == nil {
			c.Permissions = []string{}
		}
		return c
	}
	na, nb := norm(a), norm(b)
	return reflect.DeepEqual(&na, &nb)
}

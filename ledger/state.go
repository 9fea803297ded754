package ledger

import (
	"container/heap"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// Limits of the rules, part of the public wire format.
const (
	MaxDeadlineAhead = 24 * 60 * 60 // seconds a deadline may lie after the sequencer's clock
	MaxTextLen       = 64           // make, model, app name (characters)
	MaxPurposeLen    = 280          // grant purpose (characters)
	MaxURILen        = 512          // redirect and terms URIs (bytes)
	MaxRedirectURIs  = 10
	MinYear          = 1886
	MaxRetentionDays = 3650         // SetRetention's longest window (about ten years)
	maxExpiresAt     = 253402300799 // 9999-12-31T23:59:59Z
)

// Pairing is one interval during which a device spoke for a vehicle: from the entry that paired it up to
// (not including) the entry that unpaired it. ToIndex is -1 while the pairing is in force.
type Pairing struct {
	VehicleID uint64 `json:"vehicleId"`
	Device    string `json:"device"`
	Kind      string `json:"kind"`
	FromIndex int64  `json:"fromIndex"`
	FromTime  int64  `json:"fromTime"` // unix ms of FromIndex's entry
	ToIndex   int64  `json:"toIndex"`
	ToTime    int64  `json:"toTime"` // unix ms of ToIndex's entry, 0 while in force
}

// Grant is an app's permissions on a vehicle.
type Grant struct {
	VehicleID   uint64   `json:"vehicleId"`
	App         string   `json:"app"`
	Permissions []string `json:"permissions"`
	ExpiresAt   int64    `json:"expiresAt"` // unix seconds; the grant is in force while now < ExpiresAt
	Purpose     string   `json:"purpose"`
	TermsURI    string   `json:"termsUri"`
	Index       int64    `json:"index"`     // log entry of the Grant
	GrantedAt   int64    `json:"grantedAt"` // unix ms
}

// ActiveAt reports whether the grant is in force at unix second now.
func (g *Grant) ActiveAt(now int64) bool { return now < g.ExpiresAt }

// Has reports whether the grant names permission p.
func (g *Grant) Has(p string) bool { return slices.Contains(g.Permissions, p) }

// Vehicle is a registered vehicle.
type Vehicle struct {
	ID           uint64 `json:"id"`
	Owner        string `json:"owner"`
	Make         string `json:"make"`
	Model        string `json:"model"`
	Year         uint16 `json:"year"`
	Burned       bool   `json:"burned"`
	RegisteredAt int64  `json:"registeredAt"` // log index
	// OwnedSince is when the current owner got the vehicle (unix ms of the RegisterVehicle or the last
	// TransferVehicle): data from before it belongs to earlier owners and is not shown to this one.
	OwnedSince int64     `json:"ownedSince"`
	Devices    []Pairing `json:"devices"` // pairings in force, hardware first
	Grants     []Grant   `json:"grants"`  // by app address
	// RetentionDays is how many days the node keeps the vehicle's telemetry (SetRetention); 0 keeps it
	// until it is erased. RetentionSetAt is the unix ms of the SetRetention that set it, 0 if none did.
	RetentionDays  uint16 `json:"retentionDays,omitempty"`
	RetentionSetAt int64  `json:"retentionSetAt,omitempty"`
	// FormerOwners are the ownership periods before the current one, oldest first.
	FormerOwners []Ownership `json:"formerOwners,omitempty"`
	// Erasures are the accepted EraseData transactions, in log order.
	Erasures []Erasure `json:"erasures,omitempty"`
}

// Ownership is one period during which an account owned a vehicle: [From, To) in unix ms.
type Ownership struct {
	Owner string `json:"owner"`
	From  int64  `json:"from"`
	To    int64  `json:"to"`
}

// TimeRange is the interval [From, To) in unix ms.
type TimeRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Erasure is an accepted EraseData: the telemetry recorded in Ranges (the signer's ownership periods, cut
// at Before) is to be deleted. An erasure whose Before precedes all of them is accepted and deletes nothing.
type Erasure struct {
	Index       int64       `json:"index"` // log entry of the EraseData
	Account     string      `json:"account"`
	Before      int64       `json:"before"`           // unix seconds, as signed
	RequestedAt int64       `json:"requestedAt"`      // unix ms of the entry
	Ranges      []TimeRange `json:"ranges,omitempty"` // unix ms, oldest first; empty when before precedes every period
}

// Periods returns every ownership period of account a, oldest first; the current owner's last period
// ends at now (unix ms).
func (v *Vehicle) Periods(a common.Address, now int64) []TimeRange {
	var out []TimeRange
	for _, o := range v.FormerOwners {
		if owner, err := ParseAddress(o.Owner); err == nil && owner == a {
			out = append(out, TimeRange{o.From, o.To})
		}
	}
	if owner, err := ParseAddress(v.Owner); err == nil && owner == a {
		out = append(out, TimeRange{v.OwnedSince, now})
	}
	return out
}

// Device is a registered device.
type Device struct {
	Address      string    `json:"address"`
	Kind         string    `json:"kind"`
	Maker        string    `json:"maker,omitempty"`
	RegisteredAt int64     `json:"registeredAt"`
	VehicleID    uint64    `json:"vehicleId"` // 0 when not paired
	Pairings     []Pairing `json:"pairings"`  // every pairing, oldest first
}

// App is a registered app (an OAuth client).
type App struct {
	Address      string   `json:"address"`
	Owner        string   `json:"owner"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirectUris"`
	RegisteredAt int64    `json:"registeredAt"`
	UpdatedAt    int64    `json:"updatedAt"`
}

// Nonce is a (signer, nonce) pair that was used, with the deadline of the transaction that used it. The
// state keeps it while the log's time (the last entry's accept second) has not passed Deadline: after
// that, a transaction with this deadline is refused as expired anyway, so the nonce is forgotten.
type Nonce struct {
	Signer   common.Address
	Nonce    uint256.Int
	Deadline int64 // unix seconds
}

// Result describes what an accepted transaction did.
type Result struct {
	VehicleID uint64 `json:"vehicleId,omitempty"`
	Device    string `json:"device,omitempty"`
	App       string `json:"app,omitempty"`
}

type vehicle struct {
	Vehicle
	owner   common.Address
	devices map[string]common.Address // kind → device; nil until a device is paired
	grants  map[common.Address]*Grant // nil until a grant is given
	paired  []common.Address          // every device ever paired to it, in the order first paired
}

type device struct {
	Device
	addr common.Address
}

type app struct {
	App
	owner common.Address
}

type nonceKey struct {
	signer common.Address
	nonce  [32]byte
}

// nonceDue is one used nonce in the prune queue.
type nonceDue struct {
	deadline int64
	key      nonceKey
}

// nonceQueue is a min-heap of used nonces by deadline (container/heap), so that pruning costs O(log n)
// per forgotten nonce and nothing for those that stay.
type nonceQueue []nonceDue

func (q nonceQueue) Len() int           { return len(q) }
func (q nonceQueue) Less(i, j int) bool { return q[i].deadline < q[j].deadline }
func (q nonceQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *nonceQueue) Push(x any)        { *q = append(*q, x.(nonceDue)) }
func (q *nonceQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// queue returns the prune queue as container/heap works it: while a journal is open, through a view that
// records each step, so that rollback can take them back one by one (undo.go).
func (s *State) queue() heap.Interface {
	if s.jr == nil {
		return &s.due
	}
	return journaledQueue{&s.due, s.jr}
}

// State is the identity state replayed from the log: vehicles, devices and their pairings, apps, grants and
// the used nonces whose deadline the log's time has not passed. It is a pure function of the entries
// applied to it. State is not safe for concurrent use;
// its owner (the sequencer, or a verifier) serialises access.
type State struct {
	size        int64 // entries applied
	lastTime    int64 // accept time of the last entry, unix ms
	nextVehicle uint64
	vehicles    map[uint64]*vehicle
	devices     map[common.Address]*device
	apps        map[common.Address]*app
	nonces      map[nonceKey]int64                    // used nonce → deadline (unix s), none before the horizon (nonceHorizon)
	due         nonceQueue                            // the keys of nonces, soonest deadline first
	owned       index[common.Address, uint64]         // owner → vehicles
	held        index[common.Address, uint64]         // app → vehicles with a grant
	ownedApps   index[common.Address, common.Address] // owner → apps
	retained    map[uint64]struct{}                   // vehicles with a retention window or an erasure

	track   bool     // record touched entities for TakeChanges
	jr      *journal // how to undo what was applied since mark (undo.go); nil when not recording
	touched touched
	changes Changes
}

// NewState returns the state of an empty log.
func NewState() *State {
	return &State{
		nextVehicle: 1,
		vehicles:    map[uint64]*vehicle{},
		devices:     map[common.Address]*device{},
		apps:        map[common.Address]*app{},
		nonces:      map[nonceKey]int64{},
		owned:       newIndex[common.Address, uint64](),
		held:        newIndex[common.Address, uint64](),
		ownedApps:   newIndex[common.Address, common.Address](),
		retained:    map[uint64]struct{}{},
	}
}

// Size returns the number of entries applied.
func (s *State) Size() int64 {
	if jr := s.sealed(); jr != nil {
		return jr.size
	}
	return s.size
}

// LastTime returns the accept time of the last applied entry (unix ms).
func (s *State) LastTime() int64 {
	if jr := s.sealed(); jr != nil {
		return jr.lastTime
	}
	return s.lastTime
}

// party is an account whose signature a transaction needs, and the code to give when it is missing and
// someone else signed instead.
type party struct {
	addr common.Address
	code Code
	role string
}

// checkSigners demands that signers are exactly the parties (in any order).
func checkSigners(signers []common.Address, parties ...party) error {
	for _, sg := range signers {
		if !slices.ContainsFunc(parties, func(p party) bool { return p.addr == sg }) {
			for _, p := range parties {
				if !slices.Contains(signers, p.addr) {
					return errorf(p.code, "needs the signature of the %s %s, got one by %s", p.role, p.addr.Hex(), sg.Hex())
				}
			}
			return errorf(CodeWrongSigner, "unexpected signature by %s", sg.Hex())
		}
	}
	for _, p := range parties {
		if !slices.Contains(signers, p.addr) && p.code == CodeNotOwner { // the owner's word comes first
			return errorf(CodeNotOwner, "needs the signature of the %s %s", p.role, p.addr.Hex())
		}
	}
	for _, p := range parties {
		if !slices.Contains(signers, p.addr) {
			return errorf(CodeMissingSignature, "needs the signature of the %s %s too", p.role, p.addr.Hex())
		}
	}
	return nil
}

func checkText(fieldName, s string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) {
		return errorf(CodeInvalidField, "%s is not UTF-8", fieldName)
	}
	if n < minLen || n > maxLen {
		if minLen > 0 && n == 0 {
			return errorf(CodeInvalidField, "%s is empty", fieldName)
		}
		return errorf(CodeInvalidField, "%s must be %d to %d characters", fieldName, minLen, maxLen)
	}
	if strings.TrimSpace(s) != s {
		return errorf(CodeInvalidField, "%s has leading or trailing space", fieldName)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errorf(CodeInvalidField, "%s contains a control character", fieldName)
		}
	}
	return nil
}

// checkRedirectURI allows https URIs, and http only on loopback hosts (RFC 8252 §7.3), without fragments.
func checkRedirectURI(s string) error {
	if len(s) > MaxURILen {
		return errorf(CodeInvalidField, "redirect URI longer than %d bytes", MaxURILen)
	}
	if !utf8.ValidString(s) { // url.Parse takes any byte, but an entry holds only UTF-8
		return errorf(CodeInvalidField, "redirect URI is not UTF-8")
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.Opaque != "" || u.User != nil {
		return errorf(CodeInvalidField, "redirect URI %q must be an absolute URL with a host and no fragment or user info", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
		default:
			return errorf(CodeInvalidField, "redirect URI %q: plain http is allowed only on loopback", s)
		}
	default:
		return errorf(CodeInvalidField, "redirect URI %q must use https (or http on loopback)", s)
	}
	return nil
}

func checkTermsURI(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if len(s) > MaxURILen || !utf8.ValidString(s) || err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errorf(CodeInvalidField, "termsUri must be empty or an absolute http(s) URL of at most %d bytes", MaxURILen)
	}
	return nil
}

func checkApp(name string, uris []string) error {
	if err := checkText("name", name, 1, MaxTextLen); err != nil {
		return err
	}
	if len(uris) > MaxRedirectURIs {
		return errorf(CodeInvalidField, "at most %d redirect URIs", MaxRedirectURIs)
	}
	for i, u := range uris {
		if err := checkRedirectURI(u); err != nil {
			return err
		}
		if slices.Contains(uris[:i], u) {
			return errorf(CodeInvalidField, "redirect URI %q is listed twice", u)
		}
	}
	return nil
}

func (s *State) lookupVehicle(id *uint256.Int) (*vehicle, error) {
	if !id.IsUint64() {
		return nil, errorf(CodeUnknownVehicle, "no vehicle %s", id.Dec())
	}
	v := s.vehicles[id.Uint64()]
	if v == nil {
		return nil, errorf(CodeUnknownVehicle, "no vehicle %s", id.Dec())
	}
	if v.Burned {
		return nil, errorf(CodeVehicleBurned, "vehicle %d was burned", v.ID)
	}
	return v, nil
}

func (s *State) lookupDevice(a common.Address) (*device, error) {
	d := s.devices[a]
	if d == nil {
		return nil, errorf(CodeUnknownDevice, "no device %s", a.Hex())
	}
	return d, nil
}

func (s *State) lookupApp(a common.Address) (*app, error) {
	p := s.apps[a]
	if p == nil {
		return nil, errorf(CodeUnknownApp, "no app %s", a.Hex())
	}
	return p, nil
}

// Apply validates the entry, whose signatures were made by signers (as Domain.Signers recovers them, in
// order), against the state and, if every rule holds, applies it as log entry number index (which must be
// Size()). A refused entry changes nothing and returns an *Error.
func (s *State) Apply(e *Entry, signers []common.Address, index int64) (Result, error) {
	if index != s.size {
		return Result{}, fmt.Errorf("ledger: entry index %d applied to a state of size %d", index, s.size)
	}
	tx := e.Tx
	if !tx.Type.valid() {
		return Result{}, errorf(CodeMalformed, "unknown transaction type %d", tx.Type)
	}
	if len(signers) != len(tx.Signatures) || len(signers) == 0 {
		return Result{}, errorf(CodeMissingSignature, "the transaction carries no signature")
	}
	if e.AcceptTime < s.lastTime {
		return Result{}, errorf(CodeBadTime, "accept time %d is before the previous entry's %d", e.AcceptTime, s.lastTime)
	}
	now := e.AcceptSeconds()
	if tx.Deadline.CmpUint64(uint64(now)) < 0 {
		return Result{}, errorf(CodeExpired, "deadline %s is before the sequencer's clock %d", tx.Deadline.Dec(), now)
	}
	if tx.Deadline.CmpUint64(uint64(now+MaxDeadlineAhead)) > 0 {
		return Result{}, errorf(CodeDeadlineTooFar, "deadline %s is more than 24 h after the sequencer's clock %d", tx.Deadline.Dec(), now)
	}
	nonce := tx.Nonce.Bytes32()
	for _, sg := range signers {
		// A nonce whose deadline passed is as good as forgotten: the pruning below forgets it for good.
		if deadline, used := s.nonces[nonceKey{sg, nonce}]; used && deadline >= now {
			return Result{}, errorf(CodeNonceUsed, "%s already used nonce %s", sg.Hex(), tx.Nonce.Dec())
		}
	}
	res, commit, err := s.check(e, signers, index)
	if err != nil {
		return Result{}, err
	}
	s.pruneNonces(now)                      // before the new ones go in: a key used again must not meet its old queue entry
	deadline := int64(tx.Deadline.Uint64()) // at most now+MaxDeadlineAhead, checked above
	for _, sg := range signers {
		k := nonceKey{sg, nonce}
		s.saveNonce(k)
		s.nonces[k] = deadline
		heap.Push(s.queue(), nonceDue{deadline, k})
		s.onUndo(func() { delete(s.nonces, k) })
		if s.track {
			s.changes.Nonces = append(s.changes.Nonces, Nonce{sg, tx.Nonce, deadline})
		}
	}
	commit()
	s.size++
	s.lastTime = e.AcceptTime
	return res, nil
}

// nonceHorizon is the accept second of a state whose last entry was accepted at lastTime (unix ms): the
// state keeps no nonce whose deadline is before it.
func nonceHorizon(lastTime int64) int64 { return lastTime / 1000 }

// pruneNonces forgets the used nonces whose deadline is before now (unix seconds).
func (s *State) pruneNonces(now int64) {
	for len(s.due) > 0 && s.due[0].deadline < now {
		d := heap.Pop(s.queue()).(nonceDue)
		s.saveNonce(d.key)
		delete(s.nonces, d.key)
		s.onUndo(func() { s.nonces[d.key] = d.deadline })
	}
}

// saveNonce records the nonce at k before a change, when a journal is open.
func (s *State) saveNonce(k nonceKey) {
	if s.jr != nil && !hasKey(s.jr.nonces, k) {
		d, held := s.nonces[k]
		s.jr.nonces[k] = usedNonce{d, held}
	}
}

// UsedNonces returns how many used nonces the state holds: those whose deadline the last entry's accept
// second has not passed.
func (s *State) UsedNonces() int {
	if jr := s.sealed(); jr != nil {
		return jr.usedNonces
	}
	return len(s.nonces)
}

// check validates a transaction's own rules and returns the function that applies it.
func (s *State) check(e *Entry, signers []common.Address, index int64) (Result, func(), error) {
	tx := e.Tx
	now := e.AcceptSeconds()
	switch tx.Type {
	case TypeRegisterVehicle:
		if tx.Owner == (common.Address{}) {
			return Result{}, nil, errorf(CodeInvalidField, "owner is the zero address")
		}
		if err := checkText("make", tx.Make, 1, MaxTextLen); err != nil {
			return Result{}, nil, err
		}
		if err := checkText("model", tx.Model, 1, MaxTextLen); err != nil {
			return Result{}, nil, err
		}
		maxYear := time.Unix(now, 0).UTC().Year() + 2
		if int(tx.Year) < MinYear || int(tx.Year) > maxYear {
			return Result{}, nil, errorf(CodeInvalidField, "year must be %d to %d", MinYear, maxYear)
		}
		if err := checkSigners(signers, party{tx.Owner, CodeWrongSigner, "owner"}); err != nil {
			return Result{}, nil, err
		}
		id := s.nextVehicle
		return Result{VehicleID: id}, func() {
			s.nextVehicle++
			v := &vehicle{
				Vehicle: Vehicle{ID: id, Owner: tx.Owner.Hex(), Make: tx.Make, Model: tx.Model, Year: tx.Year, RegisteredAt: index,
					OwnedSince: e.AcceptTime},
				owner: tx.Owner,
			}
			s.createdVehicle(id)
			s.vehicles[id] = v
			add(s, &s.owned, tx.Owner, id)
			s.touchVehicle(v)
		}, nil

	case TypeRegisterDevice:
		if tx.Device == (common.Address{}) {
			return Result{}, nil, errorf(CodeInvalidField, "device is the zero address")
		}
		if tx.Kind != KindHardware && tx.Kind != KindSoftware {
			return Result{}, nil, errorf(CodeInvalidField, "kind must be %q or %q", KindHardware, KindSoftware)
		}
		if s.devices[tx.Device] != nil {
			return Result{}, nil, errorf(CodeAlreadyRegistered, "device %s is already registered", tx.Device.Hex())
		}
		parties := []party{{tx.Device, CodeWrongSigner, "device"}}
		if tx.Maker != (common.Address{}) && tx.Maker != tx.Device {
			parties = append(parties, party{tx.Maker, CodeWrongSigner, "maker"})
		}
		if err := checkSigners(signers, parties...); err != nil {
			return Result{}, nil, err
		}
		spelled := tx.Device.Hex()
		return Result{Device: spelled}, func() {
			d := &device{Device: Device{Address: spelled, Kind: tx.Kind, RegisteredAt: index}, addr: tx.Device}
			if tx.Maker != (common.Address{}) {
				d.Maker = tx.Maker.Hex()
			}
			s.createdDevice(tx.Device)
			s.devices[tx.Device] = d
			s.touchDevice(d)
		}, nil

	case TypePairDevice:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		d, err := s.lookupDevice(tx.Device)
		if err != nil {
			return Result{}, nil, err
		}
		if err := checkSigners(signers, party{v.owner, CodeNotOwner, "vehicle owner"}, party{d.addr, CodeWrongSigner, "device"}); err != nil {
			return Result{}, nil, err
		}
		if d.VehicleID != 0 {
			return Result{}, nil, errorf(CodeAlreadyPaired, "device %s is paired to vehicle %d", d.Address, d.VehicleID)
		}
		if _, taken := v.devices[d.Kind]; taken {
			return Result{}, nil, errorf(CodeKindTaken, "vehicle %d already has a paired %s device", v.ID, d.Kind)
		}
		return Result{VehicleID: v.ID, Device: d.Address}, func() {
			p := Pairing{VehicleID: v.ID, Device: d.Address, Kind: d.Kind, FromIndex: index, FromTime: e.AcceptTime, ToIndex: -1}
			s.saveVehicle(v)
			s.saveDevice(d)
			d.VehicleID = v.ID
			d.Pairings = append(d.Pairings, p)
			if v.devices == nil {
				v.devices = map[string]common.Address{}
			}
			v.devices[d.Kind] = d.addr
			if !slices.Contains(v.paired, d.addr) {
				v.paired = append(v.paired, d.addr)
			}
			s.touchVehicle(v)
			s.touchDevice(d)
		}, nil

	case TypeUnpairDevice:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		d, err := s.lookupDevice(tx.Device)
		if err != nil {
			return Result{}, nil, err
		}
		for _, sg := range signers {
			if sg != v.owner && sg != d.addr {
				return Result{}, nil, errorf(CodeWrongSigner, "needs the signature of the vehicle owner %s or the device %s, got one by %s", v.Owner, d.Address, sg.Hex())
			}
		}
		if d.VehicleID != v.ID {
			return Result{}, nil, errorf(CodeNotPaired, "device %s is not paired to vehicle %d", d.Address, v.ID)
		}
		return Result{VehicleID: v.ID, Device: d.Address}, func() {
			s.unpair(v, d, index, e.AcceptTime)
		}, nil

	case TypeTransferVehicle:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		if tx.To == (common.Address{}) {
			return Result{}, nil, errorf(CodeInvalidField, "to is the zero address")
		}
		if err := checkSigners(signers, party{v.owner, CodeNotOwner, "vehicle owner"}); err != nil {
			return Result{}, nil, err
		}
		if tx.To == v.owner {
			return Result{}, nil, errorf(CodeInvalidField, "vehicle %d already belongs to %s", v.ID, v.Owner)
		}
		return Result{VehicleID: v.ID}, func() {
			// A software device speaks through the seller's account at the maker's cloud: it must not keep
			// reporting the buyer's car. A hardware device stays in the car and stays paired.
			if a, ok := v.devices[KindSoftware]; ok {
				s.unpair(v, s.devices[a], index, e.AcceptTime)
			}
			s.saveVehicle(v)
			remove(s, &s.owned, v.owner, v.ID)
			v.FormerOwners = append(v.FormerOwners, Ownership{Owner: v.Owner, From: v.OwnedSince, To: e.AcceptTime})
			v.owner, v.Owner, v.OwnedSince = tx.To, tx.To.Hex(), e.AcceptTime
			add(s, &s.owned, tx.To, v.ID)
			s.clearGrants(v)
			s.touchVehicle(v)
		}, nil

	case TypeBurnVehicle:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		if err := checkSigners(signers, party{v.owner, CodeNotOwner, "vehicle owner"}); err != nil {
			return Result{}, nil, err
		}
		return Result{VehicleID: v.ID}, func() {
			for _, k := range []string{KindHardware, KindSoftware} {
				if a, ok := v.devices[k]; ok {
					s.unpair(v, s.devices[a], index, e.AcceptTime)
				}
			}
			s.saveVehicle(v)
			s.clearGrants(v)
			v.Burned = true
			s.touchVehicle(v)
		}, nil

	case TypeRegisterApp:
		if tx.App == (common.Address{}) || tx.Owner == (common.Address{}) {
			return Result{}, nil, errorf(CodeInvalidField, "app and owner must not be the zero address")
		}
		if s.apps[tx.App] != nil {
			return Result{}, nil, errorf(CodeAlreadyRegistered, "app %s is already registered", tx.App.Hex())
		}
		if err := checkApp(tx.Name, tx.RedirectURIs); err != nil {
			return Result{}, nil, err
		}
		parties := []party{{tx.Owner, CodeWrongSigner, "app owner"}}
		if tx.App != tx.Owner {
			parties = append(parties, party{tx.App, CodeWrongSigner, "app"})
		}
		if err := checkSigners(signers, parties...); err != nil {
			return Result{}, nil, err
		}
		spelled := tx.App.Hex()
		return Result{App: spelled}, func() {
			a := &app{App: App{Address: spelled, Owner: tx.Owner.Hex(), Name: tx.Name,
				RedirectURIs: slices.Clone(tx.RedirectURIs), RegisteredAt: index, UpdatedAt: index}, owner: tx.Owner}
			s.createdApp(tx.App)
			s.apps[tx.App] = a
			add(s, &s.ownedApps, tx.Owner, tx.App)
			s.touchApp(a)
		}, nil

	case TypeUpdateApp:
		a, err := s.lookupApp(tx.App)
		if err != nil {
			return Result{}, nil, err
		}
		if err := checkApp(tx.Name, tx.RedirectURIs); err != nil {
			return Result{}, nil, err
		}
		if err := checkSigners(signers, party{a.owner, CodeNotOwner, "app owner"}); err != nil {
			return Result{}, nil, err
		}
		return Result{App: a.Address}, func() {
			s.saveApp(a)
			a.Name, a.RedirectURIs, a.UpdatedAt = tx.Name, slices.Clone(tx.RedirectURIs), index
			s.touchApp(a)
		}, nil

	case TypeGrant:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		a, err := s.lookupApp(tx.App)
		if err != nil {
			return Result{}, nil, err
		}
		if len(tx.Permissions) == 0 {
			return Result{}, nil, errorf(CodeUnknownPermission, "a grant names at least one permission")
		}
		for i, p := range tx.Permissions {
			if !GrantablePermission(p) {
				return Result{}, nil, errorf(CodeUnknownPermission, "no permission %q (known: %s, or %s<name> for a non-location catalogue signal)",
					p, strings.Join(Permissions, ", "), SignalPermissionPrefix)
			}
			if slices.Contains(tx.Permissions[:i], p) {
				return Result{}, nil, errorf(CodeUnknownPermission, "permission %q is named twice", p)
			}
		}
		if tx.ExpiresAt.CmpUint64(uint64(now)) <= 0 {
			return Result{}, nil, errorf(CodeExpired, "expiresAt %s is not after the sequencer's clock %d", tx.ExpiresAt.Dec(), now)
		}
		if tx.ExpiresAt.CmpUint64(maxExpiresAt) > 0 {
			return Result{}, nil, errorf(CodeInvalidField, "expiresAt is after the year 9999")
		}
		if err := checkText("purpose", tx.Purpose, 1, MaxPurposeLen); err != nil {
			return Result{}, nil, err
		}
		if err := checkTermsURI(tx.TermsURI); err != nil {
			return Result{}, nil, err
		}
		if err := checkSigners(signers, party{v.owner, CodeNotOwner, "vehicle owner"}); err != nil {
			return Result{}, nil, err
		}
		return Result{VehicleID: v.ID, App: a.Address}, func() {
			s.saveVehicle(v)
			if v.grants == nil {
				v.grants = map[common.Address]*Grant{}
			}
			v.grants[a.addr()] = &Grant{VehicleID: v.ID, App: a.Address, Permissions: slices.Clone(tx.Permissions),
				ExpiresAt: int64(tx.ExpiresAt.Uint64()), Purpose: tx.Purpose, TermsURI: tx.TermsURI, Index: index, GrantedAt: e.AcceptTime}
			add(s, &s.held, a.addr(), v.ID)
			s.touchVehicle(v)
		}, nil

	case TypeRevoke, TypeRenounce:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		a, err := s.lookupApp(tx.App)
		if err != nil {
			return Result{}, nil, err
		}
		if tx.Type == TypeRevoke {
			err = checkSigners(signers, party{v.owner, CodeNotOwner, "vehicle owner"})
		} else {
			err = checkSigners(signers, party{a.addr(), CodeWrongSigner, "app"})
		}
		if err != nil {
			return Result{}, nil, err
		}
		if v.grants[a.addr()] == nil {
			return Result{}, nil, errorf(CodeNoGrant, "app %s holds no grant on vehicle %d", a.Address, v.ID)
		}
		return Result{VehicleID: v.ID, App: a.Address}, func() {
			s.saveVehicle(v)
			delete(v.grants, a.addr())
			remove(s, &s.held, a.addr(), v.ID)
			s.touchVehicle(v)
		}, nil

	case TypeSetRetention:
		v, err := s.lookupVehicle(&tx.VehicleID)
		if err != nil {
			return Result{}, nil, err
		}
		if err := checkSigners(signers, party{v.owner, CodeNotOwner, "vehicle owner"}); err != nil {
			return Result{}, nil, err
		}
		if tx.Days > MaxRetentionDays {
			return Result{}, nil, errorf(CodeRetentionTooLong, "days %d is more than %d", tx.Days, MaxRetentionDays)
		}
		return Result{VehicleID: v.ID}, func() {
			s.saveVehicle(v)
			v.RetentionDays, v.RetentionSetAt = tx.Days, e.AcceptTime
			s.retain(v.ID)
			s.touchVehicle(v)
		}, nil

	case TypeEraseData:
		// A burned vehicle's former owners may still erase their data, so the vehicle is looked up
		// without lookupVehicle's burned check.
		if !tx.VehicleID.IsUint64() || s.vehicles[tx.VehicleID.Uint64()] == nil {
			return Result{}, nil, errorf(CodeUnknownVehicle, "no vehicle %s", tx.VehicleID.Dec())
		}
		v := s.vehicles[tx.VehicleID.Uint64()]
		if len(signers) != 1 {
			return Result{}, nil, errorf(CodeWrongSigner, "EraseData is signed by one account, got %d signatures", len(signers))
		}
		if tx.Before > uint64(now) {
			return Result{}, nil, errorf(CodeBeforeInFuture, "before %d is after the sequencer's clock %d", tx.Before, now)
		}
		periods := v.Periods(signers[0], e.AcceptTime)
		if len(periods) == 0 {
			return Result{}, nil, errorf(CodeNeverOwned, "%s never owned vehicle %d", signers[0].Hex(), v.ID)
		}
		cut := int64(tx.Before) * 1000
		var ranges []TimeRange
		for _, p := range periods {
			if to := min(p.To, cut); p.From < to {
				ranges = append(ranges, TimeRange{p.From, to})
			}
		}
		return Result{VehicleID: v.ID}, func() {
			s.saveVehicle(v)
			v.Erasures = append(v.Erasures, Erasure{Index: index, Account: signers[0].Hex(), Before: int64(tx.Before),
				RequestedAt: e.AcceptTime, Ranges: ranges})
			s.retain(v.ID)
			s.touchVehicle(v)
		}, nil
	}
	return Result{}, nil, errorf(CodeMalformed, "unknown transaction type %d", tx.Type)
}

func (a *app) addr() common.Address { return common.HexToAddress(a.Address) }

func (s *State) unpair(v *vehicle, d *device, index, at int64) {
	s.saveVehicle(v)
	s.saveDevice(d)
	last := &d.Pairings[len(d.Pairings)-1]
	last.ToIndex, last.ToTime = index, at
	d.VehicleID = 0
	delete(v.devices, d.Kind)
	s.touchVehicle(v)
	s.touchDevice(d)
}

func (s *State) clearGrants(v *vehicle) {
	for a := range v.grants {
		remove(s, &s.held, a, v.ID)
	}
	clear(v.grants)
}

// retain adds vehicle id to the retained set, recording the reversal.
func (s *State) retain(id uint64) {
	if _, had := s.retained[id]; !had {
		if s.jr != nil {
			s.jr.retained[id] = struct{}{}
		}
		s.onUndo(func() { delete(s.retained, id) })
	}
	s.retained[id] = struct{}{}
}

func addTo[K, V comparable](m map[K]map[V]struct{}, k K, v V) {
	set := m[k]
	if set == nil {
		set = map[V]struct{}{}
		m[k] = set
	}
	set[v] = struct{}{}
}

func removeFrom[K, V comparable](m map[K]map[V]struct{}, k K, v V) {
	if set := m[k]; set != nil {
		delete(set, v)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// view returns a copy of the vehicle with its current pairings and grants, safe to hand out.
func (v *vehicle) view(s *State) Vehicle {
	out := v.Vehicle
	out.Devices = []Pairing{}
	for _, k := range []string{KindHardware, KindSoftware} {
		if a, ok := v.devices[k]; ok {
			d := s.deviceOf(a)
			out.Devices = append(out.Devices, d.Pairings[len(d.Pairings)-1])
		}
	}
	out.FormerOwners = slices.Clone(v.FormerOwners)
	out.Erasures = cloneErasures(v.Erasures)
	out.Grants = make([]Grant, 0, len(v.grants))
	for _, g := range v.grants {
		c := *g
		c.Permissions = slices.Clone(g.Permissions)
		out.Grants = append(out.Grants, c)
	}
	slices.SortFunc(out.Grants, func(a, b Grant) int { return strings.Compare(strings.ToLower(a.App), strings.ToLower(b.App)) })
	return out
}

func cloneErasures(es []Erasure) []Erasure {
	out := slices.Clone(es)
	for i := range out {
		out[i].Ranges = slices.Clone(out[i].Ranges)
	}
	return out
}

func (d *device) view() Device {
	out := d.Device
	out.Pairings = slices.Clone(d.Pairings)
	if out.Pairings == nil {
		out.Pairings = []Pairing{}
	}
	return out
}

func (a *app) view() App {
	out := a.App
	out.RedirectURIs = slices.Clone(a.RedirectURIs)
	if out.RedirectURIs == nil {
		out.RedirectURIs = []string{}
	}
	return out
}

// vehicleOf returns vehicle id as readers see it: as it was before a sealed batch, if one is.
func (s *State) vehicleOf(id uint64) *vehicle {
	if jr := s.sealed(); jr != nil {
		if v, saved := jr.vehicles[id]; saved {
			return v
		}
	}
	return s.vehicles[id]
}

// deviceOf returns the device at a as readers see it.
func (s *State) deviceOf(a common.Address) *device {
	if jr := s.sealed(); jr != nil {
		if d, saved := jr.devices[a]; saved {
			return d
		}
	}
	return s.devices[a]
}

// appOf returns the app at a as readers see it.
func (s *State) appOf(a common.Address) *app {
	if jr := s.sealed(); jr != nil {
		if p, saved := jr.apps[a]; saved {
			return p
		}
	}
	return s.apps[a]
}

// Vehicle returns vehicle id (burned ones too).
func (s *State) Vehicle(id uint64) (Vehicle, bool) {
	v := s.vehicleOf(id)
	if v == nil {
		return Vehicle{}, false
	}
	return v.view(s), true
}

// Device returns the device with address a.
func (s *State) Device(a common.Address) (Device, bool) {
	d := s.deviceOf(a)
	if d == nil {
		return Device{}, false
	}
	return d.view(), true
}

// App returns the app with address a.
func (s *State) App(a common.Address) (App, bool) {
	p := s.appOf(a)
	if p == nil {
		return App{}, false
	}
	return p.view(), true
}

// GrantOf returns the grant app holds on vehicle id, in force or expired.
func (s *State) GrantOf(id uint64, a common.Address) (Grant, bool) {
	v := s.vehicleOf(id)
	if v == nil || v.grants[a] == nil {
		return Grant{}, false
	}
	g := *v.grants[a]
	g.Permissions = slices.Clone(g.Permissions)
	return g, true
}

// Account is everything the state knows about one address.
type Account struct {
	Address     string   `json:"address"`
	Vehicles    []uint64 `json:"vehicles"`    // owned, not burned
	Apps        []string `json:"apps"`        // apps this account owns
	Device      *Device  `json:"device"`      // when the address is a device
	App         *App     `json:"app"`         // when the address is an app
	GrantsGiven []Grant  `json:"grantsGiven"` // on vehicles this account owns
	GrantsHeld  []Grant  `json:"grantsHeld"`  // when the address is an app
}

// Account returns what the state holds for address a.
func (s *State) Account(a common.Address) Account {
	acc := Account{Address: a.Hex(), Vehicles: []uint64{}, Apps: []string{}, GrantsGiven: []Grant{}, GrantsHeld: []Grant{}}
	for id := range s.owned.of(s, a) {
		if !s.vehicleOf(id).Burned {
			acc.Vehicles = append(acc.Vehicles, id)
		}
	}
	slices.Sort(acc.Vehicles)
	for _, id := range acc.Vehicles {
		acc.GrantsGiven = append(acc.GrantsGiven, s.vehicleOf(id).view(s).Grants...)
	}
	for p := range s.ownedApps.of(s, a) {
		acc.Apps = append(acc.Apps, p.Hex())
	}
	slices.Sort(acc.Apps)
	if d, ok := s.Device(a); ok {
		acc.Device = &d
	}
	if p, ok := s.App(a); ok {
		acc.App = &p
		var ids []uint64
		for id := range s.held.of(s, a) {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			g, _ := s.GrantOf(id, a)
			acc.GrantsHeld = append(acc.GrantsHeld, g)
		}
	}
	return acc
}

// Retained returns every vehicle that has a retention window or an erasure (burned ones too), by id:
// what the telemetry deletion sweeper works through.
func (s *State) Retained() []Vehicle {
	ids := make([]uint64, 0, len(s.retained))
	jr := s.sealed()
	for id := range s.retained {
		if jr != nil && hasKey(jr.retained, id) {
			continue // put there by the sealed batch
		}
		if v := s.vehicleOf(id); v.RetentionDays > 0 || len(v.Erasures) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]Vehicle, len(ids))
	for i, id := range ids {
		out[i] = s.vehicleOf(id).view(s)
	}
	return out
}

// PairingsOf returns every pairing of any device to vehicle id, in force or ended, in log order.
func (s *State) PairingsOf(id uint64) []Pairing {
	v := s.vehicleOf(id)
	if v == nil {
		return nil
	}
	var out []Pairing
	for _, a := range v.paired {
		for _, p := range s.deviceOf(a).Pairings {
			if p.VehicleID == id {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b Pairing) int { return int(max(-1, min(1, a.FromIndex-b.FromIndex))) })
	return out
}

// PairingAt returns the pairing of device a that was in force at unix-ms time t, if any. Pairing
// intervals are [FromTime, ToTime).
func (s *State) PairingAt(a common.Address, vehicleID uint64, t int64) (Pairing, bool) {
	d := s.deviceOf(a)
	if d == nil {
		return Pairing{}, false
	}
	for i := len(d.Pairings) - 1; i >= 0; i-- {
		p := d.Pairings[i]
		if p.VehicleID == vehicleID && p.FromTime <= t && (p.ToIndex < 0 || t < p.ToTime) {
			return p, true
		}
	}
	return Pairing{}, false
}

// DigestVersion names the meaning of State.Digest, and is its listing's first line. Version 2 lists only
// the used nonces whose deadline has not passed, each with that deadline; version 1 listed every nonce
// ever used, without deadlines.
const DigestVersion = "glovebox-state/v2"

// Digest returns a SHA-256 hash of the whole state: a canonical listing (DigestVersion) of the tree size,
// the next vehicle id, every vehicle (by id), device and app (by address) as JSON lines, and every used
// nonce still held with its deadline. Two states are equal exactly when their digests are.
func (s *State) Digest() [32]byte {
	h := sha256.New()
	size, lastTime, next := s.counters()
	fmt.Fprintf(h, DigestVersion+"\nsize %d\ntime %d\nnext-vehicle %d\n", size, lastTime, next)
	enc := json.NewEncoder(h)
	ids := make([]uint64, 0, len(s.vehicles))
	for id := range s.vehicles {
		if s.vehicleOf(id) != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		enc.Encode(s.vehicleOf(id).view(s))
	}
	devs := make([]common.Address, 0, len(s.devices))
	for a := range s.devices {
		if s.deviceOf(a) != nil {
			devs = append(devs, a)
		}
	}
	slices.SortFunc(devs, func(a, b common.Address) int { return a.Cmp(b) })
	for _, a := range devs {
		enc.Encode(s.deviceOf(a).view())
	}
	apps := make([]common.Address, 0, len(s.apps))
	for a := range s.apps {
		if s.appOf(a) != nil {
			apps = append(apps, a)
		}
	}
	slices.SortFunc(apps, func(a, b common.Address) int { return a.Cmp(b) })
	for _, a := range apps {
		enc.Encode(s.appOf(a).view())
	}
	type held struct {
		k        nonceKey
		deadline int64
	}
	var nonces []held
	s.eachNonce(func(k nonceKey, deadline int64) { nonces = append(nonces, held{k, deadline}) })
	slices.SortFunc(nonces, func(a, b held) int {
		if c := a.k.signer.Cmp(b.k.signer); c != 0 {
			return c
		}
		return strings.Compare(string(a.k.nonce[:]), string(b.k.nonce[:]))
	})
	for _, n := range nonces {
		fmt.Fprintf(h, "nonce %x %x %d\n", n.k.signer, n.k.nonce, n.deadline)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// counters returns the size, last accept time and next vehicle id as readers see them.
func (s *State) counters() (size, lastTime int64, nextVehicle uint64) {
	if jr := s.sealed(); jr != nil {
		return jr.size, jr.lastTime, jr.nextVehicle
	}
	return s.size, s.lastTime, s.nextVehicle
}

// eachNonce calls f with every used nonce readers see, and its deadline, in no order.
func (s *State) eachNonce(f func(k nonceKey, deadline int64)) {
	jr := s.sealed()
	for k, d := range s.nonces {
		if jr != nil && hasKey(jr.nonces, k) {
			continue // changed by the sealed batch: its pre-image is below
		}
		f(k, d)
	}
	if jr != nil {
		for k, n := range jr.nonces {
			if n.held {
				f(k, n.deadline)
			}
		}
	}
}

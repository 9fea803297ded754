package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/holiman/uint256"
)

// The transaction commands build one EIP-712 message, sign it locally with keystore keys, submit it to a
// node over HTTP and print the receipt. Keys never leave this process.

func init() {
	for _, c := range []command{
		{name: "vehicle register", args: "--make M --model X --year Y [--owner ADDR] [common flags]", short: "register a vehicle (signed by its owner)", run: runVehicleRegister},
		{name: "vehicle transfer", args: "--vehicle ID --to ADDR [common flags]", short: "transfer a vehicle to a new owner", run: runVehicleTransfer},
		{name: "vehicle burn", args: "--vehicle ID [common flags]", short: "retire a vehicle for good", run: runVehicleBurn},
		{name: "vehicle show", args: "[--node URL] ID", short: "print the node's view of a vehicle", run: runVehicleShow},
		{name: "device register", args: "--kind hardware|software [--maker-key FILE] [common flags]", short: "register a device (signed by the device key)", run: runDeviceRegister},
		{name: "device pair", args: "--vehicle ID (--device-key FILE | --device-signature JSON|@FILE) [common flags]", short: "pair a device to a vehicle (owner and device sign)", run: runDevicePair},
		{name: "device pair-sign", args: "--vehicle ID --key DEVICE.json [--node URL | --origin ORIGIN] [--ttl D]", short: "device side of an offline pairing: print its signature", run: runDevicePairSign},
		{name: "device unpair", args: "--vehicle ID [--device ADDR] [common flags]", short: "unpair a device (owner or device signs)", run: runDeviceUnpair},
		{name: "device show", args: "[--node URL] ADDR", short: "print the node's view of a device", run: runDeviceShow},
		{name: "app register", args: "--name N [--redirect-uri U]... --app-key FILE [common flags]", short: "register an app (owner and app key sign)", run: runAppRegister},
		{name: "app update", args: "--app ADDR [--name N] [--redirect-uri U]... [common flags]", short: "change an app's name or redirect URIs", run: runAppUpdate},
		{name: "app show", args: "[--node URL] ADDR", short: "print the node's view of an app", run: runAppShow},
		{name: "grant", args: "--vehicle ID --app ADDR --permissions P,… --expires D|TIME --purpose TEXT [--terms URL] [common flags]", short: "grant an app permissions on a vehicle", run: runGrant},
		{name: "revoke", args: "--vehicle ID --app ADDR [common flags]", short: "revoke an app's grant on a vehicle", run: runRevoke},
		{name: "renounce", args: "--vehicle ID [common flags]", short: "as an app, give up a grant on a vehicle", run: runRenounce},
		{name: "account show", args: "[--node URL] ADDR", short: "print what the node knows of an address", run: runAccountShow},
	} {
		register(c)
	}
}

const commonFlagsHelp = `Common flags: --node URL (env GLOVEBOX_NODE), --key FILE (the signer's keystore; env GLOVEBOX_KEY),
--passphrase-file FILE (env GLOVEBOX_PASSPHRASE_FILE; without it the passphrase is asked on the
terminal), --json (print the whole receipt, with its checkpoint and inclusion proof).`

// ---- flag helpers ----

// newCommandFlags returns a flag set whose -h prints the command's usage line, help text and flags.
func newCommandFlags(name, args, help string) *flag.FlagSet {
	fl := newFlags(name)
	fl.Usage = func() {
		w := fl.Output()
		fmt.Fprintf(w, "usage: glovebox %s %s\n\n%s\n", name, args, help)
		n := 0
		fl.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nFlags:\n")
			fl.PrintDefaults()
		}
	}
	return fl
}

// parseArgs parses flags that may come before, between or after the positional arguments, and demands
// exactly npos positional arguments.
func parseArgs(fl *flag.FlagSet, args []string, npos int) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage // the flag package has printed what was wrong
		}
		rest := fl.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != npos {
		if npos == 0 {
			return nil, usageError(fl, "unexpected argument %q", pos[0])
		}
		return nil, usageError(fl, "want %d argument(s), got %d", npos, len(pos))
	}
	return pos, nil
}

// usageError prints what is wrong with the command line and returns errUsage, so main prints the usage
// line and exits 2.
func usageError(fl *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fl.Output(), "%s: %s\n", fl.Name(), fmt.Sprintf(format, args...))
	return errUsage
}

// required demands that each named flag has a non-empty value.
func required(fl *flag.FlagSet, names ...string) error {
	for _, n := range names {
		f := fl.Lookup(n)
		if f == nil {
			panic("required: no flag " + n)
		}
		if f.Value.String() == "" {
			return usageError(fl, "missing --%s", n)
		}
	}
	return nil
}

// addrFlag is an address flag: all-lower, all-upper or EIP-55 hex.
type addrFlag struct {
	a   common.Address
	set bool
}

func (f *addrFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.a.Hex()
}

func (f *addrFlag) Set(s string) error {
	a, err := ledger.ParseAddress(s)
	if err != nil {
		return err
	}
	f.a, f.set = a, true
	return nil
}

// idFlag is a vehicle id.
type idFlag struct {
	id  uint64
	set bool
}

func (f *idFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatUint(f.id, 10)
}

func (f *idFlag) Set(s string) error {
	id, err := parseVehicleID(s)
	if err != nil {
		return err
	}
	f.id, f.set = id, true
	return nil
}

func parseVehicleID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("a vehicle id is a positive decimal integer, not %q", s)
	}
	return id, nil
}

func (f *idFlag) u256() uint256.Int {
	var v uint256.Int
	v.SetUint64(f.id)
	return v
}

// listFlag is a repeatable string flag.
type listFlag []string

func (f *listFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *listFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// nodeFlag adds --node.
func nodeFlag(fl *flag.FlagSet) *string {
	return fl.String("node", envDefault("GLOVEBOX_NODE", "http://127.0.0.1:8080"), "the node's base `URL` (env GLOVEBOX_NODE)")
}

// ---- transaction commands ----

// txCommand holds the flags every transaction command has.
type txCommand struct {
	fl       *flag.FlagSet
	node     *string
	key      *string
	passFile *string
	json     *bool
}

func newTxCommand(name, args, help, keyHelp string) *txCommand {
	fl := newCommandFlags(name, args, help+"\n\n"+commonFlagsHelp)
	return &txCommand{
		fl:       fl,
		node:     nodeFlag(fl),
		key:      fl.String("key", envDefault("GLOVEBOX_KEY", ""), keyHelp+" (env GLOVEBOX_KEY)"),
		passFile: fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)"),
		json:     fl.Bool("json", false, "print the whole receipt as JSON"),
	}
}

// parse parses the flags and demands the named ones, plus --key.
func (c *txCommand) parse(args []string, names ...string) error {
	if _, err := parseArgs(c.fl, args, 0); err != nil {
		return err
	}
	return required(c.fl, append(names, "key")...)
}

// signer decrypts --key.
func (c *txCommand) signer() (*signer, error) {
	return loadSigner(*c.key, *c.passFile, "key", "passphrase-file")
}

// extraSigner decrypts a second key given by the flags keyFlag and passFlag.
// When its own passphrase flag is not given, the second key is tried with --passphrase-file (one person
// holding both keys, as in a demo), then prompted for.
func (c *txCommand) extraSigner(keyFlag, passFlag string) (*signer, error) {
	pass := c.fl.Lookup(passFlag).Value.String()
	if pass == "" {
		pass = *c.passFile
	}
	return loadSigner(c.fl.Lookup(keyFlag).Value.String(), pass, keyFlag, passFlag)
}

func (c *txCommand) client() *client.Client { return client.New(*c.node) }

// submit gives tx a nonce and deadline (unless it has them), signs it with each signer in the node's
// domain, submits it and returns the receipt.
func (c *txCommand) submit(ctx context.Context, tx *ledger.Tx, signers ...*signer) (*api.Receipt, error) {
	cl := c.client()
	d, err := cl.Domain(ctx)
	if err != nil {
		return nil, nodeError(cl, err)
	}
	client.Prepare(tx, client.DefaultTTL)
	for _, s := range signers {
		if err := d.Sign(tx, s.key); err != nil {
			return nil, err
		}
	}
	rc, err := cl.Submit(ctx, tx)
	if err != nil {
		return nil, refusal(cl, err)
	}
	return rc, nil
}

// report prints the receipt: headline (which says what happened) with its entry, and the leaf hash and
// tree size, or with --json the whole receipt.
func (c *txCommand) report(rc *api.Receipt, headline string) error {
	if *c.json {
		return printJSON(rc)
	}
	fmt.Fprintf(stdout, "%s (entry %d)\n", headline, rc.Index)
	fmt.Fprintf(stdout, "leaf hash %s, tree size %d (--json for the checkpoint and inclusion proof)\n", rc.Hash, rc.TreeSize)
	return nil
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// refusedError is the node's refusal of a transaction.
type refusedError struct{ *client.APIError }

func (e refusedError) Error() string { return "refused: " + e.Code + ": " + e.Message }
func (e refusedError) Unwrap() error { return e.APIError }

// refusal turns the node's error answer to a submission into a refusedError.
func refusal(cl *client.Client, err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return refusedError{ae}
	}
	return nodeError(cl, err)
}

// nodeError explains an error of a read from the node.
func nodeError(cl *client.Client, err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.Code, ae.Message)
	}
	return fmt.Errorf("couldn't talk to the node at %s: %w", cl.URL(), err)
}

// resultVehicle returns the vehicle id of the receipt's result, or want when the node gave none.
func resultVehicle(rc *api.Receipt, want uint64) uint64 {
	if rc.Result != nil && rc.Result.VehicleID != 0 {
		return rc.Result.VehicleID
	}
	return want
}

func runVehicleRegister(ctx context.Context, args []string) error {
	c := newTxCommand("vehicle register", "--make M --model X --year Y [--owner ADDR] [common flags]",
		`Registers a vehicle. The owner (by default the address of --key) signs; the node assigns the id.`,
		"keystore `FILE` of the owner, who signs")
	mk := c.fl.String("make", "", "the vehicle's make (required)")
	model := c.fl.String("model", "", "the vehicle's model (required)")
	year := c.fl.Uint("year", 0, "model year (required)")
	var owner addrFlag
	c.fl.Var(&owner, "owner", "owner address `ADDR` (default: the address of --key, which must be the owner's)")
	if err := c.parse(args, "make", "model"); err != nil {
		return err
	}
	if *year == 0 || *year > 65535 {
		return usageError(c.fl, "missing or bad --year")
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: s.addr, Make: *mk, Model: *model, Year: uint16(*year)}
	if owner.set {
		tx.Owner = owner.a
	}
	rc, err := c.submit(ctx, tx, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("vehicle %d registered", resultVehicle(rc, 0)))
}

func runVehicleTransfer(ctx context.Context, args []string) error {
	c := newTxCommand("vehicle transfer", "--vehicle ID --to ADDR [common flags]",
		`Transfers a vehicle to a new owner. The current owner signs. Every grant on the vehicle is cleared.`,
		"keystore `FILE` of the current owner, who signs")
	var id idFlag
	var to addrFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	c.fl.Var(&to, "to", "the new owner's address `ADDR` (required)")
	if err := c.parse(args, "vehicle", "to"); err != nil {
		return err
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	rc, err := c.submit(ctx, &ledger.Tx{Type: ledger.TypeTransferVehicle, VehicleID: id.u256(), To: to.a}, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("vehicle %d transferred to %s", id.id, to.a.Hex()))
}

func runVehicleBurn(ctx context.Context, args []string) error {
	c := newTxCommand("vehicle burn", "--vehicle ID [common flags]",
		`Retires a vehicle for good: its devices are unpaired, its grants cleared, and it accepts no more
transactions. The owner signs.`,
		"keystore `FILE` of the owner, who signs")
	var id idFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	if err := c.parse(args, "vehicle"); err != nil {
		return err
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	rc, err := c.submit(ctx, &ledger.Tx{Type: ledger.TypeBurnVehicle, VehicleID: id.u256()}, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("vehicle %d burned", id.id))
}

func runDeviceRegister(ctx context.Context, args []string) error {
	c := newTxCommand("device register", "--kind hardware|software [--maker-key FILE] [common flags]",
		`Registers a device. Its own key (--key) signs, proving possession. When a maker registers it, the
maker's key (--maker-key) signs too and the maker is recorded.`,
		"keystore `FILE` of the device, which signs")
	kind := c.fl.String("kind", "", "hardware or software (required)")
	c.fl.String("maker-key", "", "keystore `FILE` of the maker, who signs too (optional)")
	c.fl.String("maker-passphrase-file", "", "`FILE` holding the passphrase of --maker-key (default: --passphrase-file, else prompt)")
	if err := c.parse(args, "kind"); err != nil {
		return err
	}
	if *kind != ledger.KindHardware && *kind != ledger.KindSoftware {
		return usageError(c.fl, "--kind must be %s or %s", ledger.KindHardware, ledger.KindSoftware)
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: s.addr, Kind: *kind}
	signers := []*signer{s}
	if c.fl.Lookup("maker-key").Value.String() != "" {
		m, err := c.extraSigner("maker-key", "maker-passphrase-file")
		if err != nil {
			return err
		}
		tx.Maker = m.addr
		signers = append(signers, m)
	}
	rc, err := c.submit(ctx, tx, signers...)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("%s device %s registered", *kind, s.addr.Hex())
	if tx.Maker != (common.Address{}) {
		head += " by maker " + tx.Maker.Hex()
	}
	return c.report(rc, head)
}

// pairSignature is the device's half of a two-party pairing, as `device pair-sign` prints it and
// `device pair --device-signature` takes it. Integers are decimal strings.
type pairSignature struct {
	Device    string `json:"device"`
	VehicleID string `json:"vehicleId"`
	Nonce     string `json:"nonce"`
	Deadline  string `json:"deadline"`
	Signature string `json:"signature"`
}

const pairHelp = `Pairs a device to a vehicle: from this entry on the device speaks for the vehicle. Both the vehicle
owner (--key) and the device sign the same message, in one of two ways:

  Both keys here:
    glovebox device pair --vehicle 3 --key owner.json --device-key device.json

  Two parties (the device key stays on the device): the device side runs
    glovebox device pair-sign --vehicle 3 --key device.json > pairing.json
  which prints one JSON line {"device","vehicleId","nonce","deadline","signature"}, and the owner submits
    glovebox device pair --vehicle 3 --key owner.json --device-signature @pairing.json
  (--device-signature takes the JSON itself or @FILE). The device's signature binds the node's log, the
  vehicle, a nonce and a deadline; the owner's signature is added over the same message.`

func runDevicePair(ctx context.Context, args []string) error {
	c := newTxCommand("device pair", "--vehicle ID (--device-key FILE | --device-signature JSON|@FILE) [common flags]",
		pairHelp, "keystore `FILE` of the vehicle owner, who signs")
	var id idFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	c.fl.String("device-key", "", "keystore `FILE` of the device, when it signs here")
	c.fl.String("device-passphrase-file", "", "`FILE` holding the passphrase of --device-key (default: --passphrase-file, else prompt)")
	devSig := c.fl.String("device-signature", "", "the device's signature printed by 'device pair-sign': the `JSON` line, or @FILE")
	if err := c.parse(args, "vehicle"); err != nil {
		return err
	}
	devKey := c.fl.Lookup("device-key").Value.String()
	switch {
	case devKey != "" && *devSig != "":
		return usageError(c.fl, "give --device-key or --device-signature, not both")
	case devKey == "" && *devSig == "":
		return usageError(c.fl, "missing --device-key or --device-signature")
	}
	owner, err := c.signer()
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypePairDevice, VehicleID: id.u256()}
	var signers []*signer
	if devKey != "" {
		dev, err := c.extraSigner("device-key", "device-passphrase-file")
		if err != nil {
			return err
		}
		tx.Device = dev.addr
		signers = []*signer{owner, dev}
	} else {
		ps, err := readPairSignature(*devSig)
		if err != nil {
			return err
		}
		if err := ps.fill(tx); err != nil {
			return err
		}
		if !tx.VehicleID.IsUint64() || tx.VehicleID.Uint64() != id.id {
			return fmt.Errorf("the device signed a pairing to vehicle %s, not %d", tx.VehicleID.Dec(), id.id)
		}
		cl := c.client()
		d, err := cl.Domain(ctx)
		if err != nil {
			return nodeError(cl, err)
		}
		who, err := ledger.Recover(d.Digest(tx), tx.Signatures[0])
		if err != nil || who != tx.Device {
			return fmt.Errorf("the device signature is not %s's over this pairing on this node's log (signed for another node, or altered?)", tx.Device.Hex())
		}
		signers = []*signer{owner}
	}
	rc, err := c.submit(ctx, tx, signers...)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("device %s paired to vehicle %d", tx.Device.Hex(), id.id))
}

// readPairSignature reads the --device-signature value: JSON, or @FILE.
func readPairSignature(v string) (*pairSignature, error) {
	data := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("couldn't read --device-signature: %w", err)
		}
		data = b
	}
	var ps pairSignature
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ps); err != nil {
		return nil, fmt.Errorf("--device-signature is not the JSON line of `device pair-sign`: %w", err)
	}
	return &ps, nil
}

// fill sets the pairing's device, vehicle, nonce, deadline and device signature on tx.
func (ps *pairSignature) fill(tx *ledger.Tx) error {
	dev, err := ledger.ParseAddress(ps.Device)
	if err != nil {
		return fmt.Errorf("device signature: device: %w", err)
	}
	tx.Device = dev
	for _, f := range []struct {
		name string
		s    string
		v    *uint256.Int
	}{{"vehicleId", ps.VehicleID, &tx.VehicleID}, {"nonce", ps.Nonce, &tx.Nonce}, {"deadline", ps.Deadline, &tx.Deadline}} {
		if err := f.v.SetFromDecimal(f.s); err != nil {
			return fmt.Errorf("device signature: %s: want a decimal integer, got %q", f.name, f.s)
		}
	}
	sig, err := ledger.ParseSignature(ps.Signature)
	if err != nil {
		return fmt.Errorf("device signature: %w", err)
	}
	tx.Signatures = []ledger.Signature{sig}
	return nil
}

func runDevicePairSign(ctx context.Context, args []string) error {
	fl := newCommandFlags("device pair-sign", "--vehicle ID --key DEVICE.json [--node URL | --origin ORIGIN] [--ttl D]",
		`The device's half of a two-party pairing: signs PairDevice(vehicle, this device) with the device key
and prints one JSON line {"device","vehicleId","nonce","deadline","signature"} for the vehicle owner to
submit with 'glovebox device pair --device-signature'. It needs the log's EIP-712 domain: from the node
(--node), or fully offline from the log's origin line (--origin). The owner must submit before the
deadline (--ttl from now).`)
	var id idFlag
	fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	node := nodeFlag(fl)
	origin := fl.String("origin", "", "the log's origin line, to sign without contacting a node")
	key := fl.String("key", envDefault("GLOVEBOX_KEY", ""), "keystore `FILE` of the device (env GLOVEBOX_KEY)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	ttl := fl.Duration("ttl", client.DefaultTTL, "how long the signature stays valid (at most 24h)")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, "vehicle", "key"); err != nil {
		return err
	}
	if *ttl <= 0 || *ttl > ledger.MaxDeadlineAhead*time.Second {
		return usageError(fl, "--ttl must be positive and at most 24h")
	}
	dev, err := loadSigner(*key, *passFile, "key", "passphrase-file")
	if err != nil {
		return err
	}
	var d *ledger.Domain
	if *origin != "" {
		d = ledger.NewDomain(*origin)
	} else {
		cl := client.New(*node)
		if d, err = cl.Domain(ctx); err != nil {
			return nodeError(cl, err)
		}
	}
	tx := &ledger.Tx{Type: ledger.TypePairDevice, VehicleID: id.u256(), Device: dev.addr}
	client.Prepare(tx, *ttl)
	if err := d.Sign(tx, dev.key); err != nil {
		return err
	}
	b, err := json.Marshal(pairSignature{Device: dev.addr.Hex(), VehicleID: tx.VehicleID.Dec(), Nonce: tx.Nonce.Dec(),
		Deadline: tx.Deadline.Dec(), Signature: "0x" + common.Bytes2Hex(tx.Signatures[0][:])})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func runDeviceUnpair(ctx context.Context, args []string) error {
	c := newTxCommand("device unpair", "--vehicle ID [--device ADDR] [common flags]",
		`Unpairs a device from a vehicle. Either the vehicle owner or the device signs (--key). Without
--device, the device is the address of --key (a device unpairing itself).`,
		"keystore `FILE` of the vehicle owner or of the device, who signs")
	var id idFlag
	var dev addrFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	c.fl.Var(&dev, "device", "the device's address `ADDR` (default: the address of --key)")
	if err := c.parse(args, "vehicle"); err != nil {
		return err
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypeUnpairDevice, VehicleID: id.u256(), Device: s.addr}
	if dev.set {
		tx.Device = dev.a
	}
	rc, err := c.submit(ctx, tx, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("device %s unpaired from vehicle %d", tx.Device.Hex(), id.id))
}

func runAppRegister(ctx context.Context, args []string) error {
	c := newTxCommand("app register", "--name N [--redirect-uri U]... --app-key FILE [common flags]",
		`Registers an app (an OAuth client whose client id is the app key's address). The app owner (--key)
and the app key (--app-key) both sign. Redirect URIs must be https, or http on a loopback host.`,
		"keystore `FILE` of the app owner, who signs")
	name := c.fl.String("name", "", "the app's display name (required)")
	var uris listFlag
	c.fl.Var(&uris, "redirect-uri", "an OAuth redirect `URI` (repeatable)")
	c.fl.String("app-key", "", "keystore `FILE` of the app, which signs too (required)")
	c.fl.String("app-passphrase-file", "", "`FILE` holding the passphrase of --app-key (default: --passphrase-file, else prompt)")
	if err := c.parse(args, "name", "app-key"); err != nil {
		return err
	}
	owner, err := c.signer()
	if err != nil {
		return err
	}
	app, err := c.extraSigner("app-key", "app-passphrase-file")
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.addr, Owner: owner.addr, Name: *name, RedirectURIs: nonNil(uris)}
	signers := []*signer{owner}
	if app.addr != owner.addr {
		signers = append(signers, app)
	}
	rc, err := c.submit(ctx, tx, signers...)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("app %s (%q) registered, owned by %s", app.addr.Hex(), *name, owner.addr.Hex()))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func runAppUpdate(ctx context.Context, args []string) error {
	c := newTxCommand("app update", "--app ADDR [--name N] [--redirect-uri U]... [common flags]",
		`Changes an app's name and redirect URIs. The app owner signs. What is not given is kept: without
--name the current name, without --redirect-uri the current list; --redirect-uri replaces the whole list.`,
		"keystore `FILE` of the app owner, who signs")
	var app addrFlag
	c.fl.Var(&app, "app", "the app's address `ADDR` (required)")
	name := c.fl.String("name", "", "the new name (default: keep)")
	var uris listFlag
	c.fl.Var(&uris, "redirect-uri", "a redirect `URI` of the new list (repeatable; default: keep the list)")
	if err := c.parse(args, "app"); err != nil {
		return err
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypeUpdateApp, App: app.a, Name: *name, RedirectURIs: nonNil(uris)}
	if *name == "" || len(uris) == 0 {
		cl := c.client()
		cur, err := cl.App(ctx, app.a)
		if err != nil {
			return nodeError(cl, err)
		}
		if *name == "" {
			tx.Name = cur.Name
		}
		if len(uris) == 0 {
			tx.RedirectURIs = nonNil(cur.RedirectURIs)
		}
	}
	rc, err := c.submit(ctx, tx, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("app %s updated: %q, redirect URIs %s", app.a.Hex(), tx.Name, strings.Join(tx.RedirectURIs, " ")))
}

// parseExpires reads --expires: a duration from now (720h, 30d) or a time (RFC 3339, or a date taken
// as midnight UTC).
func parseExpires(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--expires %s is not in the future", s)
		}
		return now.Add(d), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, n), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--expires wants a duration (720h, 30d) or a time (2027-01-01T00:00:00Z, 2027-01-01), not %q", s)
}

// parsePermissions splits a comma-separated list and checks every name.
func parsePermissions(s string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !ledger.KnownPermission(p) {
			return nil, fmt.Errorf("no permission %q (known: %s)", p, strings.Join(ledger.Permissions, ", "))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--permissions names no permission (known: %s)", strings.Join(ledger.Permissions, ", "))
	}
	return out, nil
}

func runGrant(ctx context.Context, args []string) error {
	c := newTxCommand("grant", "--vehicle ID --app ADDR --permissions P,… --expires D|TIME --purpose TEXT [--terms URL] [common flags]",
		`Grants an app permissions on a vehicle until a time, replacing any grant it held. The vehicle owner
signs. Permissions: `+strings.Join(ledger.Permissions, ", ")+`.`,
		"keystore `FILE` of the vehicle owner, who signs")
	var id idFlag
	var app addrFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	c.fl.Var(&app, "app", "the app's address `ADDR` (required)")
	perms := c.fl.String("permissions", "", "comma-separated permission names (required)")
	expires := c.fl.String("expires", "", "when the grant ends: a duration from now (720h, 30d) or a time (2027-01-01T00:00:00Z) (required)")
	purpose := c.fl.String("purpose", "", "why the app gets the data, shown to the owner (required)")
	terms := c.fl.String("terms", "", "URL of the app's terms (optional)")
	if err := c.parse(args, "vehicle", "app", "permissions", "expires", "purpose"); err != nil {
		return err
	}
	ps, err := parsePermissions(*perms)
	if err != nil {
		return usageError(c.fl, "%v", err)
	}
	until, err := parseExpires(*expires, time.Now())
	if err != nil {
		return usageError(c.fl, "%v", err)
	}
	if until.Unix() <= 0 {
		return usageError(c.fl, "--expires %s is before 1970", *expires)
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	tx := &ledger.Tx{Type: ledger.TypeGrant, VehicleID: id.u256(), App: app.a, Permissions: ps,
		Purpose: *purpose, TermsURI: *terms}
	tx.ExpiresAt.SetUint64(uint64(until.Unix()))
	rc, err := c.submit(ctx, tx, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("app %s granted %s on vehicle %d until %s", app.a.Hex(),
		strings.Join(ps, ","), id.id, until.UTC().Format(time.RFC3339)))
}

func runRevoke(ctx context.Context, args []string) error {
	c := newTxCommand("revoke", "--vehicle ID --app ADDR [common flags]",
		`Revokes the grant an app holds on a vehicle. The vehicle owner signs.`,
		"keystore `FILE` of the vehicle owner, who signs")
	var id idFlag
	var app addrFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	c.fl.Var(&app, "app", "the app's address `ADDR` (required)")
	if err := c.parse(args, "vehicle", "app"); err != nil {
		return err
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	rc, err := c.submit(ctx, &ledger.Tx{Type: ledger.TypeRevoke, VehicleID: id.u256(), App: app.a}, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("grant of app %s on vehicle %d revoked", app.a.Hex(), id.id))
}

func runRenounce(ctx context.Context, args []string) error {
	c := newTxCommand("renounce", "--vehicle ID [common flags]",
		`As an app, gives up the grant the app holds on a vehicle. The app key (--key) signs; the app is its
address.`,
		"keystore `FILE` of the app, which signs")
	var id idFlag
	c.fl.Var(&id, "vehicle", "vehicle `ID` (required)")
	if err := c.parse(args, "vehicle"); err != nil {
		return err
	}
	s, err := c.signer()
	if err != nil {
		return err
	}
	rc, err := c.submit(ctx, &ledger.Tx{Type: ledger.TypeRenounce, VehicleID: id.u256(), App: s.addr}, s)
	if err != nil {
		return err
	}
	return c.report(rc, fmt.Sprintf("app %s renounced its grant on vehicle %d", s.addr.Hex(), id.id))
}

// ---- reads ----

// runShow parses `[--node URL] ARG` and prints what get returns as indented JSON.
func runShow(ctx context.Context, name, argName, help string, args []string, get func(context.Context, *client.Client, string) (any, error)) error {
	fl := newCommandFlags(name, "[--node URL] "+argName, help)
	node := nodeFlag(fl)
	pos, err := parseArgs(fl, args, 1)
	if err != nil {
		return err
	}
	cl := client.New(*node)
	v, err := get(ctx, cl, pos[0])
	if err != nil {
		if errors.Is(err, errUsage) {
			return err
		}
		return nodeError(cl, err)
	}
	return printJSON(v)
}

func showAddress(fl string, get func(context.Context, *client.Client, common.Address) (any, error)) func(context.Context, *client.Client, string) (any, error) {
	return func(ctx context.Context, cl *client.Client, s string) (any, error) {
		a, err := ledger.ParseAddress(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "glovebox %s: %v\n", fl, err)
			return nil, errUsage
		}
		return get(ctx, cl, a)
	}
}

func runVehicleShow(ctx context.Context, args []string) error {
	return runShow(ctx, "vehicle show", "ID", "Prints the node's view of a vehicle (burned ones too) as JSON: owner, paired devices, grants.", args,
		func(ctx context.Context, cl *client.Client, s string) (any, error) {
			id, err := parseVehicleID(s)
			if err != nil {
				fmt.Fprintf(os.Stderr, "glovebox vehicle show: %v\n", err)
				return nil, errUsage
			}
			return cl.Vehicle(ctx, id)
		})
}

func runDeviceShow(ctx context.Context, args []string) error {
	return runShow(ctx, "device show", "ADDR", "Prints the node's view of a device as JSON: kind, maker, pairings.", args,
		showAddress("device show", func(ctx context.Context, cl *client.Client, a common.Address) (any, error) { return cl.Device(ctx, a) }))
}

func runAppShow(ctx context.Context, args []string) error {
	return runShow(ctx, "app show", "ADDR", "Prints the node's view of an app as JSON: owner, name, redirect URIs.", args,
		showAddress("app show", func(ctx context.Context, cl *client.Client, a common.Address) (any, error) { return cl.App(ctx, a) }))
}

func runAccountShow(ctx context.Context, args []string) error {
	return runShow(ctx, "account show", "ADDR", "Prints what the node knows of an address as JSON: vehicles and apps it owns, grants given and held, and its device or app record.", args,
		showAddress("account show", func(ctx context.Context, cl *client.Client, a common.Address) (any, error) { return cl.Account(ctx, a) }))
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
)

// The transaction commands build one EIP-712 message, sign it locally with keystore keys, submit it to a
// node over HTTP and print the receipt. Keys never leave this process. Every one of them is a row of
// txCommands: its flags, and how it builds the transaction and words the receipt; runTx does the rest.

// txSpec is one transaction command.
type txSpec struct {
	name, args, short string
	help              string    // what the command does, for -h
	signs             string    // who signs with --key, for the flag's help: "the vehicle owner"
	flags             []txFlag  // the flags beyond the common ones
	build             txBuilder // the transaction, from the parsed flags
	say               func(a *txArgs, tx *ledger.Tx, rc *api.Receipt) string
	// made, when set, is what --quiet prints: the id of what the transaction made; without it --quiet
	// prints the entry number.
	made func(tx *ledger.Tx, rc *api.Receipt) string
}

// txBuilder checks the parsed flags and builds the transaction. It calls a.sign (and a.cosign) after its
// checks, so that nobody types a passphrase for a command line that is wrong anyway.
type txBuilder func(a *txArgs) (*ledger.Tx, error)

// txFlag is one flag of a transaction command: its name in txArgs.define, whether it is required, and
// its help when the default one does not fit.
type txFlag struct {
	name     string
	required bool
	help     string
}

func need(name string) txFlag           { return txFlag{name: name, required: true} }
func may(name string) txFlag            { return txFlag{name: name} }
func mayHelp(name, help string) txFlag  { return txFlag{name: name, help: help} }
func needHelp(name, help string) txFlag { return txFlag{name: name, required: true, help: help} }

// usage is the flag's help: its own, or def.
func (f txFlag) usage(def string) string {
	if f.help != "" {
		return f.help
	}
	return def
}

var txCommands = []txSpec{
	{name: "vehicle register", args: "--make M --model X --year Y [--owner ADDR] [common flags]", short: "register a vehicle (signed by its owner)",
		help:  `Registers a vehicle. The owner (by default the address of --key) signs; the node assigns the id.`,
		signs: "the owner",
		flags: []txFlag{need("make"), need("model"), need("year"), mayHelp("owner", "owner address `ADDR` (default: the address of --key, which must be the owner's)")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			if a.year == 0 || a.year > 65535 {
				return nil, a.usage("missing or bad --year")
			}
			s, err := a.sign()
			if err != nil {
				return nil, err
			}
			tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: s.addr, Make: a.make, Model: a.model, Year: uint16(a.year)}
			if a.owner.set {
				tx.Owner = a.owner.a
			}
			return tx, nil
		},
		say: func(_ *txArgs, _ *ledger.Tx, rc *api.Receipt) string {
			return fmt.Sprintf("vehicle %d registered", resultVehicle(rc, 0))
		},
		made: func(_ *ledger.Tx, rc *api.Receipt) string { return strconv.FormatUint(resultVehicle(rc, 0), 10) }},
	{name: "vehicle transfer", args: "--vehicle ID --to ADDR [common flags]", short: "transfer a vehicle to a new owner",
		help:  `Transfers a vehicle to a new owner. The current owner signs. Every grant on the vehicle is cleared.`,
		signs: "the current owner",
		flags: []txFlag{need("vehicle"), need("to")},
		build: signed(func(a *txArgs, _ *signer) *ledger.Tx {
			return &ledger.Tx{Type: ledger.TypeTransferVehicle, VehicleID: a.vehicle.u256(), To: a.to.a}
		}),
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("vehicle %d transferred to %s", a.vehicle.id, tx.To.Hex())
		}},
	{name: "vehicle burn", args: "--vehicle ID [common flags]", short: "retire a vehicle for good",
		help: `Retires a vehicle for good: its devices are unpaired, its grants cleared, and it accepts no more
transactions. The owner signs.`,
		signs: "the owner",
		flags: []txFlag{need("vehicle")},
		build: signed(func(a *txArgs, _ *signer) *ledger.Tx {
			return &ledger.Tx{Type: ledger.TypeBurnVehicle, VehicleID: a.vehicle.u256()}
		}),
		say: func(a *txArgs, _ *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("vehicle %d burned", a.vehicle.id)
		}},
	{name: "vehicle retention", args: "--vehicle ID --days N [common flags]", short: "set how long the node keeps a vehicle's telemetry",
		help: `Sets how many days the node keeps the vehicle's telemetry (raw records, signal values, roll-ups,
events, trips): older data is deleted within the hour. --days 0 keeps everything until it is erased; at
most 3650. The owner signs.`,
		signs: "the owner",
		flags: []txFlag{need("vehicle"), need("days")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			if a.days < 0 || a.days > ledger.MaxRetentionDays {
				return nil, a.usage("--days must be 0 to %d", ledger.MaxRetentionDays)
			}
			if _, err := a.sign(); err != nil {
				return nil, err
			}
			return &ledger.Tx{Type: ledger.TypeSetRetention, VehicleID: a.vehicle.u256(), Days: uint16(a.days)}, nil
		},
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			if tx.Days == 0 {
				return fmt.Sprintf("vehicle %d keeps its telemetry until it is erased", a.vehicle.id)
			}
			return fmt.Sprintf("vehicle %d keeps its telemetry for %d days", a.vehicle.id, tx.Days)
		}},
	{name: "vehicle erase", args: "--vehicle ID [--before TIME] [common flags]", short: "erase your telemetry of a vehicle",
		help: `Erases the vehicle's telemetry recorded while the signer (--key) owned it and before --before (a
time, 2026-01-01T00:00:00Z or 2026-01-01, or a duration ago, 720h or 30d; default now). A former owner
erases only what was recorded during its own ownership. The access log is kept.`,
		signs: "the owner or a former owner, who",
		flags: []txFlag{need("vehicle"), may("before")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			before, err := parseBefore(a.before, time.Now())
			if err != nil {
				return nil, a.usage("%v", err)
			}
			if _, err := a.sign(); err != nil {
				return nil, err
			}
			return &ledger.Tx{Type: ledger.TypeEraseData, VehicleID: a.vehicle.u256(), Before: uint64(before.Unix())}, nil
		},
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("erasure of vehicle %d's telemetry before %s accepted", a.vehicle.id,
				time.Unix(int64(tx.Before), 0).UTC().Format(time.RFC3339))
		}},
	{name: "device register", args: "--kind hardware|software [--maker-key FILE] [common flags]", short: "register a device (signed by the device key)",
		help: `Registers a device. Its own key (--key) signs, proving possession. When a maker registers it, the
maker's key (--maker-key) signs too and the maker is recorded.`,
		signs: "the device, which",
		flags: []txFlag{need("kind"), may("maker-key"), may("maker-passphrase-file")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			if a.kind != ledger.KindHardware && a.kind != ledger.KindSoftware {
				return nil, a.usage("--kind must be %s or %s", ledger.KindHardware, ledger.KindSoftware)
			}
			s, err := a.sign()
			if err != nil {
				return nil, err
			}
			tx := &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: s.addr, Kind: a.kind}
			if a.makerKey != "" {
				m, err := a.cosign("maker-key", a.makerKey, a.makerPass, "maker-passphrase-file")
				if err != nil {
					return nil, err
				}
				tx.Maker = m.addr
			}
			return tx, nil
		},
		say: func(_ *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			head := fmt.Sprintf("%s device %s registered", tx.Kind, tx.Device.Hex())
			if tx.Maker != (common.Address{}) {
				head += " by maker " + tx.Maker.Hex()
			}
			return head
		},
		made: func(tx *ledger.Tx, _ *api.Receipt) string { return tx.Device.Hex() }},
	{name: "device pair", args: "--vehicle ID (--device-key FILE | --device-signature JSON|@FILE) [common flags]", short: "pair a device to a vehicle (owner and device sign)",
		help:  pairHelp,
		signs: "the vehicle owner",
		flags: []txFlag{need("vehicle"), may("device-key"), may("device-passphrase-file"), may("device-signature")},
		build: buildPair,
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("device %s paired to vehicle %d", tx.Device.Hex(), a.vehicle.id)
		}},
	{name: "device unpair", args: "--vehicle ID [--device ADDR] [common flags]", short: "unpair a device (owner or device signs)",
		help: `Unpairs a device from a vehicle. Either the vehicle owner or the device signs (--key). Without
--device, the device is the address of --key (a device unpairing itself).`,
		signs: "the vehicle owner or of the device, who",
		flags: []txFlag{need("vehicle"), may("device")},
		build: signed(func(a *txArgs, s *signer) *ledger.Tx {
			tx := &ledger.Tx{Type: ledger.TypeUnpairDevice, VehicleID: a.vehicle.u256(), Device: s.addr}
			if a.device.set {
				tx.Device = a.device.a
			}
			return tx
		}),
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("device %s unpaired from vehicle %d", tx.Device.Hex(), a.vehicle.id)
		}},
	{name: "app register", args: "--name N [--redirect-uri U]... --app-key FILE [common flags]", short: "register an app (owner and app key sign)",
		help: `Registers an app (an OAuth client whose client id is the app key's address). The app owner (--key)
and the app key (--app-key) both sign. Redirect URIs must be https, or http on a loopback host.`,
		signs: "the app owner",
		flags: []txFlag{needHelp("name", "the app's display name (required)"), may("redirect-uri"), need("app-key"), may("app-passphrase-file")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			owner, err := a.sign()
			if err != nil {
				return nil, err
			}
			app, err := a.cosign("app-key", a.appKey, a.appPass, "app-passphrase-file")
			if err != nil {
				return nil, err
			}
			if app.addr == owner.addr {
				a.signers = a.signers[:1] // one key owning itself signs once
			}
			return &ledger.Tx{Type: ledger.TypeRegisterApp, App: app.addr, Owner: owner.addr, Name: a.name, RedirectURIs: nonNil(a.redirectURIs)}, nil
		},
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("app %s (%q) registered, owned by %s", tx.App.Hex(), tx.Name, tx.Owner.Hex())
		},
		made: func(tx *ledger.Tx, _ *api.Receipt) string { return tx.App.Hex() }},
	{name: "app update", args: "--app ADDR [--name N] [--redirect-uri U]... [common flags]", short: "change an app's name or redirect URIs",
		help: `Changes an app's name and redirect URIs. The app owner signs. What is not given is kept: without
--name the current name, without --redirect-uri the current list; --redirect-uri replaces the whole list.`,
		signs: "the app owner",
		flags: []txFlag{need("app"), mayHelp("name", "the new name (default: keep)"),
			mayHelp("redirect-uri", "a redirect `URI` of the new list (repeatable; default: keep the list)")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			if _, err := a.sign(); err != nil {
				return nil, err
			}
			tx := &ledger.Tx{Type: ledger.TypeUpdateApp, App: a.app.a, Name: a.name, RedirectURIs: nonNil(a.redirectURIs)}
			if a.name == "" || len(a.redirectURIs) == 0 {
				cl := a.client()
				cur, err := cl.App(a.ctx, a.app.a)
				if err != nil {
					return nil, nodeError(cl, err)
				}
				if a.name == "" {
					tx.Name = cur.Name
				}
				if len(a.redirectURIs) == 0 {
					tx.RedirectURIs = nonNil(cur.RedirectURIs)
				}
			}
			return tx, nil
		},
		say: func(_ *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("app %s updated: %q, redirect URIs %s", tx.App.Hex(), tx.Name, strings.Join(tx.RedirectURIs, " "))
		}},
	{name: "grant", args: "--vehicle ID --app ADDR --permissions P,… --expires D|TIME --purpose TEXT [--terms URL] [common flags]",
		short: "grant an app permissions on a vehicle",
		help: `Grants an app permissions on a vehicle until a time, replacing any grant it held. The vehicle owner
signs. Permissions: ` + strings.Join(ledger.Permissions, ", ") + `, or signals:NAME for one non-location signal of
GET /v1/signals (e.g. signals:powertrainTransmissionTravelledDistance).`,
		signs: "the vehicle owner",
		flags: []txFlag{need("vehicle"), need("app"), need("permissions"), need("expires"), need("purpose"), may("terms")},
		build: func(a *txArgs) (*ledger.Tx, error) {
			ps, err := parsePermissions(a.permissions)
			if err != nil {
				return nil, a.usage("%v", err)
			}
			until, err := parseExpires(a.expires, time.Now())
			if err != nil {
				return nil, a.usage("%v", err)
			}
			if until.Unix() <= 0 {
				return nil, a.usage("--expires %s is before 1970", a.expires)
			}
			if _, err := a.sign(); err != nil {
				return nil, err
			}
			tx := &ledger.Tx{Type: ledger.TypeGrant, VehicleID: a.vehicle.u256(), App: a.app.a, Permissions: ps,
				Purpose: a.purpose, TermsURI: a.terms}
			tx.ExpiresAt.SetUint64(uint64(until.Unix()))
			return tx, nil
		},
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("app %s granted %s on vehicle %d until %s", tx.App.Hex(), strings.Join(tx.Permissions, ","), a.vehicle.id,
				time.Unix(int64(tx.ExpiresAt.Uint64()), 0).UTC().Format(time.RFC3339))
		}},
	{name: "revoke", args: "--vehicle ID --app ADDR [common flags]", short: "revoke an app's grant on a vehicle",
		help:  `Revokes the grant an app holds on a vehicle. The vehicle owner signs.`,
		signs: "the vehicle owner",
		flags: []txFlag{need("vehicle"), need("app")},
		build: signed(func(a *txArgs, _ *signer) *ledger.Tx {
			return &ledger.Tx{Type: ledger.TypeRevoke, VehicleID: a.vehicle.u256(), App: a.app.a}
		}),
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("grant of app %s on vehicle %d revoked", tx.App.Hex(), a.vehicle.id)
		}},
	{name: "renounce", args: "--vehicle ID [common flags]", short: "as an app, give up a grant on a vehicle",
		help: `As an app, gives up the grant the app holds on a vehicle. The app key (--key) signs; the app is its
address.`,
		signs: "the app, which",
		flags: []txFlag{need("vehicle")},
		build: signed(func(a *txArgs, s *signer) *ledger.Tx {
			return &ledger.Tx{Type: ledger.TypeRenounce, VehicleID: a.vehicle.u256(), App: s.addr}
		}),
		say: func(a *txArgs, tx *ledger.Tx, _ *api.Receipt) string {
			return fmt.Sprintf("app %s renounced its grant on vehicle %d", tx.App.Hex(), a.vehicle.id)
		}},
}

func init() {
	for _, spec := range txCommands {
		register(command{name: spec.name, args: spec.args, short: spec.short,
			run: func(ctx context.Context, args []string) error { return runTx(ctx, spec, args) }})
	}
}

// signed is the builder of a command with no checks beyond its flags: it decrypts --key and builds.
func signed(f func(a *txArgs, s *signer) *ledger.Tx) txBuilder {
	return func(a *txArgs) (*ledger.Tx, error) {
		s, err := a.sign()
		if err != nil {
			return nil, err
		}
		return f(a, s), nil
	}
}

const commonFlagsHelp = `Common flags: --node URL (env GLOVEBOX_NODE), --key FILE (the signer's keystore file; env GLOVEBOX_KEY),
--passphrase-file FILE (env GLOVEBOX_PASSPHRASE_FILE; without it the passphrase is asked on the
terminal), --json (print the whole receipt, with its checkpoint and inclusion proof), --quiet (print
only the new id, or the entry number).`

// txArgs holds a transaction command's parsed flags and the keys it decrypted, in signing order.
type txArgs struct {
	ctx      context.Context
	fl       *flag.FlagSet
	node     string
	key      string
	passFile string
	json     bool
	quiet    bool
	signers  []*signer

	vehicle                        idFlag
	app, to, device, owner         addrFlag
	year                           uint
	days                           int
	before                         string
	make, model, name, kind, terms string
	permissions, expires, purpose  string
	deviceSig                      string
	redirectURIs                   listFlag
	makerKey, makerPass            string
	deviceKey, devicePass          string
	appKey, appPass                string
}

// define adds flag f to the flag set, bound to its field.
func (a *txArgs) define(f txFlag) {
	fl := a.fl
	req := ""
	if f.required {
		req = " (required)"
	}
	switch f.name {
	case "vehicle":
		fl.Var(&a.vehicle, f.name, f.usage("vehicle `ID`"+req))
	case "app":
		fl.Var(&a.app, f.name, f.usage("the app's address `ADDR`"+req))
	case "to":
		fl.Var(&a.to, f.name, f.usage("the new owner's address `ADDR`"+req))
	case "device":
		fl.Var(&a.device, f.name, f.usage("the device's address `ADDR` (default: the address of --key)"))
	case "owner":
		fl.Var(&a.owner, f.name, f.usage("owner address `ADDR`"))
	case "year":
		fl.UintVar(&a.year, f.name, 0, f.usage("model year"+req))
	case "days":
		fl.IntVar(&a.days, f.name, -1, f.usage("days to keep the telemetry, 0 until erased"+req))
	case "before":
		fl.StringVar(&a.before, f.name, "", f.usage("erase what was recorded before this `TIME` (RFC 3339, a date, or a duration ago: 720h, 30d; default now)"))
	case "make":
		fl.StringVar(&a.make, f.name, "", f.usage("the vehicle's make"+req))
	case "model":
		fl.StringVar(&a.model, f.name, "", f.usage("the vehicle's model"+req))
	case "name":
		fl.StringVar(&a.name, f.name, "", f.usage("the app's name"+req))
	case "kind":
		fl.StringVar(&a.kind, f.name, "", f.usage("hardware or software"+req))
	case "permissions":
		fl.StringVar(&a.permissions, f.name, "", f.usage("comma-separated permission names"+req))
	case "expires":
		fl.StringVar(&a.expires, f.name, "", f.usage("when the grant ends: a duration from now (720h, 30d) or a time (2027-01-01T00:00:00Z)"+req))
	case "purpose":
		fl.StringVar(&a.purpose, f.name, "", f.usage("why the app gets the data, shown to the owner"+req))
	case "terms":
		fl.StringVar(&a.terms, f.name, "", f.usage("URL of the app's terms (optional)"))
	case "redirect-uri":
		fl.Var(&a.redirectURIs, f.name, f.usage("an OAuth redirect `URI` (repeatable)"))
	case "device-signature":
		fl.StringVar(&a.deviceSig, f.name, "", f.usage("the device's signature printed by 'device pair-sign': the `JSON` line, or @FILE"))
	case "maker-key":
		fl.StringVar(&a.makerKey, f.name, "", f.usage("keystore `FILE` of the maker, who signs too (optional)"))
	case "maker-passphrase-file":
		fl.StringVar(&a.makerPass, f.name, "", f.usage("`FILE` holding the passphrase of --maker-key (default: --passphrase-file, else prompt)"))
	case "device-key":
		fl.StringVar(&a.deviceKey, f.name, "", f.usage("keystore `FILE` of the device, when it signs here"))
	case "device-passphrase-file":
		fl.StringVar(&a.devicePass, f.name, "", f.usage("`FILE` holding the passphrase of --device-key (default: --passphrase-file, else prompt)"))
	case "app-key":
		fl.StringVar(&a.appKey, f.name, "", f.usage("keystore `FILE` of the app, which signs too"+req))
	case "app-passphrase-file":
		fl.StringVar(&a.appPass, f.name, "", f.usage("`FILE` holding the passphrase of --app-key (default: --passphrase-file, else prompt)"))
	default:
		panic("txArgs.define: no flag " + f.name)
	}
}

// usage prints what is wrong with the command line and returns errUsage.
func (a *txArgs) usage(format string, args ...any) error { return usageError(a.fl, format, args...) }

// sign decrypts --key and makes it the first signer.
func (a *txArgs) sign() (*signer, error) {
	s, err := loadSigner(a.key, a.passFile, "key", "passphrase-file")
	if err != nil {
		return nil, err
	}
	a.signers = append([]*signer{s}, a.signers...)
	return s, nil
}

// cosign decrypts a second key (flag keyFlag, passphrase file pass of flag passFlag) and adds it as a
// signer. Without its own passphrase file it is tried with --passphrase-file (one person holding both
// keys, as in a demo), then prompted for.
func (a *txArgs) cosign(keyFlag, file, pass, passFlag string) (*signer, error) {
	if pass == "" {
		pass = a.passFile
	}
	s, err := loadSigner(file, pass, keyFlag, passFlag)
	if err != nil {
		return nil, err
	}
	a.signers = append(a.signers, s)
	return s, nil
}

func (a *txArgs) client() *client.Client { return client.New(a.node) }

// runTx is every transaction command: parse the flags, build the transaction, sign it with each key in
// the node's domain, submit it and print the receipt.
func runTx(ctx context.Context, spec txSpec, args []string) error {
	fl := newCommandFlags(spec.name, spec.args, spec.help+"\n\n"+commonFlagsHelp)
	a := &txArgs{ctx: ctx, fl: fl}
	fl.StringVar(&a.node, "node", envDefault("GLOVEBOX_NODE", "http://127.0.0.1:8080"), "the node's base `URL` (env GLOVEBOX_NODE)")
	fl.Var(keyFileValue{&a.key}, "key", "keystore `FILE` of "+spec.signs+" signs (required; env GLOVEBOX_KEY)")
	fl.StringVar(&a.passFile, "passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	fl.BoolVar(&a.json, "json", false, "print the whole receipt as JSON")
	quietHelp := "print only the entry number of the transaction in the log"
	if spec.made != nil {
		quietHelp = "print only the id of what was made (the vehicle id, the device's or the app's address), for a shell variable"
	}
	fl.BoolVar(&a.quiet, "quiet", false, quietHelp)
	names := []string{}
	for _, f := range spec.flags {
		a.define(f)
		if f.required {
			names = append(names, f.name)
		}
	}
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, append(names, "key")...); err != nil {
		return err
	}
	tx, err := spec.build(a)
	if err != nil {
		return err
	}
	cl := a.client()
	d, err := cl.Domain(ctx)
	if err != nil {
		return nodeError(cl, err)
	}
	client.Prepare(tx, client.DefaultTTL) // keeps the nonce and deadline a device signed over
	for _, s := range a.signers {
		if err := d.Sign(tx, s.key); err != nil {
			return err
		}
	}
	rc, err := cl.Submit(ctx, tx)
	if err != nil {
		return refusal(cl, err)
	}
	switch {
	case a.json:
		return printJSON(rc)
	case a.quiet && spec.made != nil:
		_, err := fmt.Fprintln(stdout, spec.made(tx, rc))
		return err
	case a.quiet:
		_, err := fmt.Fprintln(stdout, rc.Index)
		return err
	}
	fmt.Fprintf(stdout, "%s (entry %d)\n", spec.say(a, tx, rc), rc.Index)
	fmt.Fprintf(stdout, "leaf hash %s, tree size %d (--json for the checkpoint and inclusion proof)\n", rc.Hash, rc.TreeSize)
	return nil
}

// buildPair builds a PairDevice signed by the owner and the device: here, with --device-key, or on the
// device beforehand (device pair-sign), with --device-signature.
func buildPair(a *txArgs) (*ledger.Tx, error) {
	switch {
	case a.deviceKey != "" && a.deviceSig != "":
		return nil, a.usage("give --device-key or --device-signature, not both")
	case a.deviceKey == "" && a.deviceSig == "":
		return nil, a.usage("missing --device-key or --device-signature")
	}
	tx := &ledger.Tx{Type: ledger.TypePairDevice, VehicleID: a.vehicle.u256()}
	if a.deviceSig != "" {
		ps, err := readPairSignature(a.deviceSig)
		if err != nil {
			return nil, err
		}
		if err := ps.fill(tx); err != nil {
			return nil, err
		}
		if !tx.VehicleID.IsUint64() || tx.VehicleID.Uint64() != a.vehicle.id {
			return nil, fmt.Errorf("the device signed a pairing to vehicle %s, not %d", tx.VehicleID.Dec(), a.vehicle.id)
		}
		cl := a.client()
		d, err := cl.Domain(a.ctx)
		if err != nil {
			return nil, nodeError(cl, err)
		}
		who, err := ledger.Recover(d.Digest(tx), tx.Signatures[0])
		if err != nil || who != tx.Device {
			return nil, fmt.Errorf("the device signature is not %s's over this pairing on this node's log (signed for another node, or altered?)", tx.Device.Hex())
		}
	}
	if _, err := a.sign(); err != nil {
		return nil, err
	}
	if a.deviceKey != "" {
		dev, err := a.cosign("device-key", a.deviceKey, a.devicePass, "device-passphrase-file")
		if err != nil {
			return nil, err
		}
		tx.Device = dev.addr
	}
	return tx, nil
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

// parseBefore reads --before: empty for now, a duration ago (720h, 30d) or a time (RFC 3339, or a date
// taken as midnight UTC) not after now.
func parseBefore(s string, now time.Time) (time.Time, error) {
	var t time.Time
	switch {
	case s == "":
		return now, nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 {
			return t, fmt.Errorf("--before wants a time or a duration ago, not %q", s)
		}
		t = now.AddDate(0, 0, -n)
	default:
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			t = now.Add(-d)
		} else if p, err := time.Parse(time.RFC3339, s); err == nil {
			t = p
		} else if p, err := time.Parse(time.DateOnly, s); err == nil {
			t = p
		} else {
			return t, fmt.Errorf("--before wants a time (2026-01-01T00:00:00Z, 2026-01-01) or a duration ago (720h, 30d), not %q", s)
		}
	}
	if t.After(now) {
		return t, fmt.Errorf("--before %s is in the future", s)
	}
	if t.Unix() < 0 {
		return t, fmt.Errorf("--before %s is before 1970", s)
	}
	return t, nil
}

// parsePermissions splits a comma-separated list and checks every name.
func parsePermissions(s string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !ledger.GrantablePermission(p) {
			return nil, fmt.Errorf("no permission %q (known: %s, or signals:NAME for a non-location catalogue signal)", p, strings.Join(ledger.Permissions, ", "))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--permissions names no permission (known: %s)", strings.Join(ledger.Permissions, ", "))
	}
	return out, nil
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

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

package main

import (
	"context"
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
)

// The show commands print the node's view of a vehicle, device, app or account as JSON, in one
// vocabulary of time: instants are RFC 3339 strings in UTC (ownedSince, pairedAt, grantedAt,
// expiresAt), log positions are entry numbers named …Entry, and durations would be whole seconds.

// showSpec is one show command: its argument and how it reads and words the node's answer.
type showSpec struct {
	name, arg, short, help string
	get                    func(ctx context.Context, cl *client.Client, arg string) (any, error)
}

var showCommands = []showSpec{
	{name: "vehicle show", arg: "ID", short: "print the node's view of a vehicle",
		help: "Prints the node's view of a vehicle (burned ones too) as JSON: owner, paired devices, grants.",
		get: func(ctx context.Context, cl *client.Client, s string) (any, error) {
			id, err := parseVehicleID(s)
			if err != nil {
				return nil, badArgError{err}
			}
			v, err := cl.Vehicle(ctx, id)
			if err != nil {
				return nil, err
			}
			return vehicleView(v), nil
		}},
	{name: "device show", arg: "ADDR", short: "print the node's view of a device",
		help: "Prints the node's view of a device as JSON: kind, maker, pairings.",
		get: byAddress(func(ctx context.Context, cl *client.Client, a common.Address) (any, error) {
			d, err := cl.Device(ctx, a)
			if err != nil {
				return nil, err
			}
			return deviceView(d), nil
		})},
	{name: "app show", arg: "ADDR", short: "print the node's view of an app",
		help: "Prints the node's view of an app as JSON: owner, name, redirect URIs.",
		get: byAddress(func(ctx context.Context, cl *client.Client, a common.Address) (any, error) {
			p, err := cl.App(ctx, a)
			if err != nil {
				return nil, err
			}
			return appView(p), nil
		})},
	{name: "account show", arg: "ADDR", short: "print what the node knows of an address",
		help: "Prints what the node knows of an address as JSON: vehicles and apps it owns, grants given and held, and its device or app record.",
		get: byAddress(func(ctx context.Context, cl *client.Client, a common.Address) (any, error) {
			acc, err := cl.Account(ctx, a)
			if err != nil {
				return nil, err
			}
			return accountView(acc), nil
		})},
}

func init() {
	for _, spec := range showCommands {
		register(command{name: spec.name, args: "[--node URL] " + spec.arg, short: spec.short,
			run: func(ctx context.Context, args []string) error { return runShow(ctx, spec, args) }})
	}
}

// badArgError is a positional argument that does not parse: a usage error, not the node's.
type badArgError struct{ error }

// runShow parses `[--node URL] ARG` and prints what spec.get returns as indented JSON.
func runShow(ctx context.Context, spec showSpec, args []string) error {
	fl := newCommandFlags(spec.name, "[--node URL] "+spec.arg, spec.help+`

Times are RFC 3339 instants in UTC; positions in the log are entry numbers (…Entry).`)
	node := nodeFlag(fl)
	pos, err := parseArgs(fl, args, 1)
	if err != nil {
		return err
	}
	cl := client.New(*node)
	v, err := spec.get(ctx, cl, pos[0])
	var bad badArgError
	switch {
	case errors.As(err, &bad):
		return usageError(fl, "%v", bad.error)
	case err != nil:
		return nodeError(cl, err)
	}
	return printJSON(v)
}

func byAddress(get func(context.Context, *client.Client, common.Address) (any, error)) func(context.Context, *client.Client, string) (any, error) {
	return func(ctx context.Context, cl *client.Client, s string) (any, error) {
		a, err := ledger.ParseAddress(s)
		if err != nil {
			return nil, badArgError{err}
		}
		return get(ctx, cl, a)
	}
}

// instant formats unix milliseconds as RFC 3339 in UTC, with milliseconds when there are any.
func instant(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.999Z07:00")
}

type showVehicle struct {
	ID              uint64        `json:"id"`
	Owner           string        `json:"owner"`
	Make            string        `json:"make"`
	Model           string        `json:"model"`
	Year            uint16        `json:"year"`
	Burned          bool          `json:"burned"`
	RegisteredEntry int64         `json:"registeredEntry"`
	OwnedSince      string        `json:"ownedSince"` // when the current owner got it: data before is not theirs
	Devices         []showPairing `json:"devices"`
	Grants          []showGrant   `json:"grants"`
	RetentionDays   uint16        `json:"retentionDays"` // 0: kept until erased
	Erasures        int           `json:"erasures,omitempty"`
}

type showPairing struct {
	VehicleID     uint64 `json:"vehicleId"`
	Device        string `json:"device"`
	Kind          string `json:"kind"`
	PairedEntry   int64  `json:"pairedEntry"`
	PairedAt      string `json:"pairedAt"`
	UnpairedEntry *int64 `json:"unpairedEntry,omitempty"` // absent while the pairing is in force
	UnpairedAt    string `json:"unpairedAt,omitempty"`
}

type showGrant struct {
	VehicleID    uint64   `json:"vehicleId"`
	App          string   `json:"app"`
	Permissions  []string `json:"permissions"`
	Purpose      string   `json:"purpose"`
	TermsURI     string   `json:"termsUri,omitempty"`
	GrantedEntry int64    `json:"grantedEntry"`
	GrantedAt    string   `json:"grantedAt"`
	ExpiresAt    string   `json:"expiresAt"`
}

type showDevice struct {
	Address         string        `json:"address"`
	Kind            string        `json:"kind"`
	Maker           string        `json:"maker,omitempty"`
	RegisteredEntry int64         `json:"registeredEntry"`
	VehicleID       uint64        `json:"vehicleId,omitempty"` // absent when not paired
	Pairings        []showPairing `json:"pairings"`
}

type showApp struct {
	Address         string   `json:"address"`
	Owner           string   `json:"owner"`
	Name            string   `json:"name"`
	RedirectURIs    []string `json:"redirectUris"`
	RegisteredEntry int64    `json:"registeredEntry"`
	UpdatedEntry    int64    `json:"updatedEntry"`
}

type showAccount struct {
	Address     string      `json:"address"`
	Vehicles    []uint64    `json:"vehicles"`
	Apps        []string    `json:"apps"`
	Device      *showDevice `json:"device,omitempty"`
	App         *showApp    `json:"app,omitempty"`
	GrantsGiven []showGrant `json:"grantsGiven"`
	GrantsHeld  []showGrant `json:"grantsHeld"`
}

func vehicleView(v *ledger.Vehicle) showVehicle {
	return showVehicle{ID: v.ID, Owner: v.Owner, Make: v.Make, Model: v.Model, Year: v.Year, Burned: v.Burned,
		RegisteredEntry: v.RegisteredAt, OwnedSince: instant(v.OwnedSince), Devices: pairingViews(v.Devices), Grants: grantViews(v.Grants),
		RetentionDays: v.RetentionDays, Erasures: len(v.Erasures)}
}

func pairingViews(ps []ledger.Pairing) []showPairing {
	out := make([]showPairing, 0, len(ps))
	for _, p := range ps {
		sp := showPairing{VehicleID: p.VehicleID, Device: p.Device, Kind: p.Kind, PairedEntry: p.FromIndex, PairedAt: instant(p.FromTime)}
		if p.ToIndex >= 0 {
			to := p.ToIndex
			sp.UnpairedEntry, sp.UnpairedAt = &to, instant(p.ToTime)
		}
		out = append(out, sp)
	}
	return out
}

func grantViews(gs []ledger.Grant) []showGrant {
	out := make([]showGrant, 0, len(gs))
	for _, g := range gs {
		out = append(out, showGrant{VehicleID: g.VehicleID, App: g.App, Permissions: g.Permissions, Purpose: g.Purpose, TermsURI: g.TermsURI,
			GrantedEntry: g.Index, GrantedAt: instant(g.GrantedAt), ExpiresAt: time.Unix(g.ExpiresAt, 0).UTC().Format(time.RFC3339)})
	}
	return out
}

func deviceView(d *ledger.Device) *showDevice {
	return &showDevice{Address: d.Address, Kind: d.Kind, Maker: d.Maker, RegisteredEntry: d.RegisteredAt, VehicleID: d.VehicleID,
		Pairings: pairingViews(d.Pairings)}
}

func appView(p *ledger.App) *showApp {
	return &showApp{Address: p.Address, Owner: p.Owner, Name: p.Name, RedirectURIs: nonNil(p.RedirectURIs),
		RegisteredEntry: p.RegisteredAt, UpdatedEntry: p.UpdatedAt}
}

func accountView(a *ledger.Account) showAccount {
	v := showAccount{Address: a.Address, Vehicles: a.Vehicles, Apps: a.Apps, GrantsGiven: grantViews(a.GrantsGiven), GrantsHeld: grantViews(a.GrantsHeld)}
	if a.Device != nil {
		v.Device = deviceView(a.Device)
	}
	if a.App != nil {
		v.App = appView(a.App)
	}
	return v
}

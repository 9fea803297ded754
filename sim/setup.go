package sim

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
)

// SetupResult says what Setup found on the node and what it submitted.
type SetupResult struct {
	Vehicles   int // vehicles in the fleet
	Reused     int // already registered, with their device paired
	Registered int // vehicles registered now
	Devices    int // devices registered now
	Paired     int // pairings submitted now
}

// Setup makes the node hold every vehicle of specs, its device registered and paired to it, through
// signed transactions submitted in batches: RegisterVehicle (signed by the owner) and RegisterDevice
// (signed by the device), then PairDevice (signed by both). It first checks what the node already has:
// a vehicle id the node does not know, or knows with another owner, is registered again; a device
// already paired to a vehicle of the same owner is adopted. It sets specs[i].VehicleID. save, when not
// nil, is called after each batch so that progress survives a failure.
func Setup(ctx context.Context, c *client.Client, specs []Spec, logger *slog.Logger, save func() error) (SetupResult, error) {
	if logger == nil {
		logger = slog.Default()
	}
	res := SetupResult{Vehicles: len(specs)}
	if save == nil {
		save = func() error { return nil }
	}
	dom, err := c.Domain(ctx)
	if err != nil {
		return res, fmt.Errorf("couldn't fetch the node's EIP-712 domain: %w", err)
	}
	needs := make([]checked, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			needs[i], errs[i] = checkVehicle(ctx, c, &specs[i], logger)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}

	// Round 1: vehicles and devices.
	var txs []*ledger.Tx
	type slot struct {
		spec    int
		vehicle bool
	}
	var slots []slot
	for i, n := range needs {
		s := &specs[i]
		if n.vehicle {
			tx := &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: s.Owner, Make: s.Make, Model: s.Model, Year: s.Year}
			if err := sign(dom, tx, s.OwnerKey); err != nil {
				return res, err
			}
			txs, slots = append(txs, tx), append(slots, slot{i, true})
		}
		if n.device {
			tx := &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: s.Device, Kind: s.DeviceKind}
			if err := sign(dom, tx, s.DeviceKey); err != nil {
				return res, err
			}
			txs, slots = append(txs, tx), append(slots, slot{i, false})
		}
	}
	err = submitAll(ctx, c, txs, func(k int, rc *wire.Receipt) {
		sl := slots[k]
		if sl.vehicle {
			specs[sl.spec].VehicleID = rc.Result.VehicleID
			res.Registered++
		} else {
			res.Devices++
		}
	})
	if serr := save(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return res, err
	}

	// Round 2: pairings.
	txs, slots = txs[:0], slots[:0]
	for i, n := range needs {
		if !n.pair {
			res.Reused++
			continue
		}
		s := &specs[i]
		tx := &ledger.Tx{Type: ledger.TypePairDevice, Device: s.Device}
		tx.VehicleID.SetUint64(s.VehicleID)
		if err := sign(dom, tx, s.OwnerKey, s.DeviceKey); err != nil {
			return res, err
		}
		txs, slots = append(txs, tx), append(slots, slot{i, false})
	}
	err = submitAll(ctx, c, txs, func(int, *wire.Receipt) { res.Paired++ })
	if serr := save(); serr != nil && err == nil {
		err = serr
	}
	return res, err
}

func sign(dom *ledger.Domain, tx *ledger.Tx, keys ...*ecdsa.PrivateKey) error {
	client.Prepare(tx, client.DefaultTTL)
	for _, k := range keys {
		if err := dom.Sign(tx, k); err != nil {
			return err
		}
	}
	return nil
}

// submitAll submits txs in batches of wire.MaxBatch and calls ok for each accepted one; it returns the
// refusals (all of them, after submitting every batch).
func submitAll(ctx context.Context, c *client.Client, txs []*ledger.Tx, ok func(k int, rc *wire.Receipt)) error {
	var refused []string
	for lo := 0; lo < len(txs); lo += wire.MaxBatch {
		hi := min(lo+wire.MaxBatch, len(txs))
		items, err := c.SubmitBatch(ctx, txs[lo:hi])
		if err != nil {
			return fmt.Errorf("couldn't submit the fleet's transactions: %w", err)
		}
		for j, it := range items {
			if it.Error != nil || it.Receipt == nil {
				msg := "no receipt"
				if it.Error != nil {
					msg = it.Error.Code + ": " + it.Error.Message
				}
				refused = append(refused, fmt.Sprintf("%s: %s", txs[lo+j].Type, msg))
				continue
			}
			ok(lo+j, it.Receipt)
		}
	}
	if len(refused) > 0 {
		more := ""
		if len(refused) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(refused)-5)
			refused = refused[:5]
		}
		return fmt.Errorf("the node refused %s%s", strings.Join(refused, "; "), more)
	}
	return nil
}

type checked struct{ vehicle, device, pair bool }

// checkVehicle compares a spec with the node's state and says what must be submitted.
func checkVehicle(ctx context.Context, c *client.Client, s *Spec, logger *slog.Logger) (checked, error) {
	var n checked
	if s.VehicleID != 0 {
		veh, err := c.Vehicle(ctx, s.VehicleID)
		switch {
		case notFound(err):
			s.VehicleID = 0
		case err != nil:
			return n, fmt.Errorf("vehicle %d: %w", s.VehicleID, err)
		case veh.Burned || !strings.EqualFold(veh.Owner, s.Owner.Hex()):
			logger.Warn("the node's vehicle is not this fleet's; registering a new one", "vehicle", s.VehicleID, "owner", veh.Owner)
			s.VehicleID = 0
		}
	}
	dev, err := c.Device(ctx, s.Device)
	switch {
	case notFound(err):
		n.device, n.pair = true, true
	case err != nil:
		return n, fmt.Errorf("device %s: %w", s.Device.Hex(), err)
	case dev.Kind != s.DeviceKind:
		return n, fmt.Errorf("device %s is registered as %s, the keys file says %s", s.Device.Hex(), dev.Kind, s.DeviceKind)
	case dev.VehicleID == 0:
		n.pair = true
	case dev.VehicleID == s.VehicleID:
	case s.VehicleID == 0:
		// Paired to a vehicle of an earlier run whose id was lost: adopt it if it is ours.
		veh, err := c.Vehicle(ctx, dev.VehicleID)
		if err != nil {
			return n, fmt.Errorf("vehicle %d: %w", dev.VehicleID, err)
		}
		if veh.Burned || !strings.EqualFold(veh.Owner, s.Owner.Hex()) {
			return n, fmt.Errorf("device %s is paired to vehicle %d of another owner", s.Device.Hex(), dev.VehicleID)
		}
		s.VehicleID = dev.VehicleID
	default:
		return n, fmt.Errorf("device %s is paired to vehicle %d, not to vehicle %d", s.Device.Hex(), dev.VehicleID, s.VehicleID)
	}
	if s.VehicleID == 0 {
		n.vehicle, n.pair = true, true
	}
	return n, nil
}

func notFound(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

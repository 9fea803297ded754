package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
	"github.com/holiman/uint256"
)

func init() {
	register(command{name: "device pair-sign", args: "--vehicle ID --key DEVICE.json [--node URL | --origin ORIGIN] [--ttl D]",
		short: "device side of an offline pairing: print its signature", run: runDevicePairSign})
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
	key := keyFileFlag(fl, "keystore `FILE` of the device (env GLOVEBOX_KEY)")
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

package sim

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/ledger"
)

// The demo insurer is an app, as any app would be: registered in the log by its owner and its own key,
// granted access to a few cars by their owners (EIP-712 Grant transactions), and reading them now and
// then over GraphQL with a bearer token it gets by signing in with its own key. Its reads go through the
// same access checks as anyone's and are recorded in each car's access log, so a demo node shows real
// sharing: the Sharing tab, the access log, Revoke and the developer console.

// Demo insurer constants: its name, purpose, permissions, how many cars it is granted and the key file
// (in the keys directory, encrypted with DemoPassphrase) that holds its key.
const (
	InsurerName        = "Acme Insurance (demo)"
	InsurerPurpose     = "Pay-as-you-drive quote: distance driven and approximate area"
	InsurerKeyFile     = "acme-insurance.json"
	InsurerGrantedCars = 3
)

// InsurerPermissions are the permissions the demo insurer is granted.
var InsurerPermissions = []string{ledger.PermSignals, ledger.PermLocationApproximate}

// InsurerQuery is what the demo insurer reads of each car it may read.
const InsurerQuery = `query Insurer($id: Int!) {
  signalsLatest(tokenId: $id) {
    lastSeen
    speed { value }
    powertrainTransmissionTravelledDistance { value }
    currentLocationApproximateCoordinates { value { latitude longitude } }
  }
}`

// insurer is the demo app's state.
type insurer struct {
	c      *client.Client
	key    *ecdsa.PrivateKey
	addr   string
	logger *slog.Logger
	token  *client.Token
}

// setupInsurer makes the node hold the demo insurer app: registered (owned by the first vehicle's owner,
// so that the web app's developer console shows it to the demo owner), and, when it registers it now,
// granted access to the first InsurerGrantedCars vehicles by their owners for 30 days. An app that is
// already registered keeps the grants it has: a grant the demo owner revoked stays revoked across
// restarts. Its key is derived from the fleet's seed and kept in keysDir/InsurerKeyFile.
func setupInsurer(ctx context.Context, c *client.Client, seed uint64, specs []Spec, keysDir string, logger *slog.Logger) (*insurer, []uint64, error) {
	key := deriveKey(seed, -1, "insurer")
	ins := &insurer{c: c, key: key, addr: crypto.PubkeyToAddress(key.PublicKey).Hex(), logger: logger}
	if err := writeKeyFile(filepath.Join(keysDir, InsurerKeyFile), key, DemoPassphrase); err != nil {
		return nil, nil, err
	}
	if len(specs) == 0 {
		return ins, nil, nil
	}
	app := crypto.PubkeyToAddress(key.PublicKey)
	_, err := c.App(ctx, app)
	if err == nil {
		return ins, nil, nil
	}
	if !notFound(err) {
		return nil, nil, fmt.Errorf("couldn't look the demo insurer up: %w", err)
	}
	dom, err := c.Domain(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't fetch the node's EIP-712 domain: %w", err)
	}
	reg := &ledger.Tx{Type: ledger.TypeRegisterApp, App: app, Owner: specs[0].Owner, Name: InsurerName, RedirectURIs: []string{}}
	if err := sign(dom, reg, specs[0].OwnerKey, key); err != nil {
		return nil, nil, err
	}
	txs := []*ledger.Tx{reg}
	var cars []uint64
	expires := time.Now().Add(30 * 24 * time.Hour).Unix()
	for _, s := range specs[:min(InsurerGrantedCars, len(specs))] {
		g := &ledger.Tx{Type: ledger.TypeGrant, App: app, Permissions: InsurerPermissions, Purpose: InsurerPurpose}
		g.VehicleID.SetUint64(s.VehicleID)
		g.ExpiresAt.SetUint64(uint64(expires))
		if err := sign(dom, g, s.OwnerKey); err != nil {
			return nil, nil, err
		}
		txs = append(txs, g)
		cars = append(cars, s.VehicleID)
	}
	if err := submitAll(ctx, c, txs, func(int, *api.Receipt) {}); err != nil {
		return nil, nil, fmt.Errorf("couldn't register the demo insurer: %w", err)
	}
	return ins, cars, nil
}

// run reads every car the insurer may read, every interval, until ctx is done.
func (ins *insurer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := ins.readAll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			ins.logger.Warn("the demo insurer couldn't read", "err", err)
		default:
			ins.logger.Debug("the demo insurer read its cars", "cars", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readAll signs in when its token is missing or about to expire, lists the cars it may read and reads
// each one's latest values; it returns how many cars it read.
func (ins *insurer) readAll(ctx context.Context) (int, error) {
	if ins.token == nil || time.Until(ins.token.Expires) < time.Minute {
		tok, err := ins.c.SignIn(ctx, ins.key)
		if err != nil {
			return 0, fmt.Errorf("sign-in: %w", err)
		}
		ins.token = tok
	}
	list, err := ins.c.GraphQL(ctx, ins.token.AccessToken, `{ vehicles(first: 100) { nodes { tokenId } } }`, nil)
	if err != nil {
		return 0, err
	}
	if len(list.Errors) > 0 {
		ins.token = nil // an expired or refused token: sign in again next time
		return 0, errors.New(list.Errors[0].Message)
	}
	var ids struct {
		Vehicles struct {
			Nodes []struct {
				TokenID uint64 `json:"tokenId"`
			} `json:"nodes"`
		} `json:"vehicles"`
	}
	if err := json.Unmarshal(list.Data, &ids); err != nil {
		return 0, err
	}
	for _, v := range ids.Vehicles.Nodes {
		ans, err := ins.c.GraphQL(ctx, ins.token.AccessToken, InsurerQuery, map[string]any{"id": v.TokenID})
		if err != nil {
			return 0, err
		}
		if len(ans.Errors) > 0 {
			ins.logger.Debug("the demo insurer was refused", "vehicle", v.TokenID, "err", ans.Errors[0].Message)
		}
	}
	return len(ids.Vehicles.Nodes), nil
}

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/connect/flowstate"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/web"
)

// newConnect sets up the OpenID Provider the same way for a node and for a cluster's api process: its
// tokens, ID tokens included, are signed by iss (the sign-in key, auth/jwt.key in the data directory,
// which a cluster's processes share like log.key), and its flow state is in store (nil: this process's
// memory).
func newConnect(iss *auth.Issuer, l connect.Ledger, store flowstate.Store, logger *slog.Logger) (*connect.Provider, error) {
	p, err := connect.NewProvider(connect.Config{Issuer: iss, Ledger: l, Store: store, Script: web.ConsentJS, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the OpenID provider: %w", err)
	}
	return p, nil
}

// forwardTimeout bounds a submission forwarded to the sequencer.
const forwardTimeout = 30 * time.Second

// connectLedger is the ledger as a cluster process's OpenID Provider sees it: the followed state, and
// submissions (the grants a driver signs on the consent screen) sequenced here when this process holds
// the lease, else forwarded to the process that does, as POST /v1/transactions would be (naming the
// driver's address, which the sequencer budgets: forwardedfor.go), after which this process catches up
// with the log.
type connectLedger struct {
	c      *Cluster
	client *http.Client
}

var _ connect.Ledger = (*connectLedger)(nil)

func (l *connectLedger) Read(f func(*ledger.State)) { l.c.Ledger.Read(f) }
func (l *connectLedger) Domain() *ledger.Domain     { return l.c.Ledger.Domain() }

// Submit implements connect.Ledger. Without a known, reachable sequencer it answers ledger.ErrStopped,
// which the consent screen shows as "try again".
func (l *connectLedger) Submit(ctx context.Context, txs []*ledger.Tx, signers [][]common.Address) ([]ledger.Outcome, error) {
	if l.c.Ledger.IsLeader() {
		return l.c.Ledger.Submit(ctx, txs, signers)
	}
	_, target, _, err := postgres.Leader(ctx, l.c.pool)
	if err != nil || target == "" || target == l.c.cfg.AdvertiseURL {
		return nil, ledger.ErrStopped
	}
	body, err := json.Marshal(txs)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode transactions to forward: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/v1/transactions", bytes.NewReader(body))
	if err != nil {
		return nil, ledger.ErrStopped
	}
	req.Header.Set("Content-Type", "application/json")
	// The grants count against the budget of the driver's address, not this process's.
	if remote, ok := clientOf(ctx); ok {
		l.c.fwd.sign(req, remote)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.c.logger.Warn("couldn't forward grants to the sequencer", "err", err)
		return nil, ledger.ErrStopped
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		l.c.logger.Warn("the sequencer refused forwarded grants", "status", resp.StatusCode, "code", e.Error.Code)
		return nil, ledger.ErrStopped
	}
	var items []wire.BatchItem
	if err := json.NewDecoder(resp.Body).Decode(&items); err != nil || len(items) != len(txs) {
		return nil, fmt.Errorf("the sequencer's answer to forwarded grants does not decode (%d items for %d): %v", len(items), len(txs), err)
	}
	out := make([]ledger.Outcome, len(items))
	for i, it := range items {
		switch {
		case it.Error != nil:
			out[i].Err = &ledger.Error{Code: ledger.Code(it.Error.Code), Message: it.Error.Message}
		case it.Receipt != nil:
			out[i].Index, out[i].TreeSize = it.Receipt.Index, it.Receipt.TreeSize
			if it.Receipt.Result != nil {
				out[i].Result = *it.Receipt.Result
			}
		default:
			return nil, fmt.Errorf("the sequencer's answer to forwarded grant %d is empty", i)
		}
	}
	// Catch up now, so that this process serves the app its new grants at once (others follow within
	// FollowInterval).
	if err := l.c.follow(ctx); err != nil {
		l.c.logger.Warn("couldn't catch up with the log after forwarding grants", "err", err)
	}
	return out, nil
}

// readRevocations revokes in this process's issuer the access tokens revoked through any process since
// the last call (a reused code or refresh token, or POST /oauth/revoke): Connect's revocations hold in
// every api process within FollowInterval.
func (c *Cluster) readRevocations(ctx context.Context) error {
	for {
		revoked, next, err := c.FlowState.Revocations(ctx, c.revokedAt, c.Auth.Now())
		if err != nil {
			return err
		}
		for _, a := range revoked {
			c.Auth.Revoke(a.ID, a.Expiry)
		}
		if next == c.revokedAt {
			return nil
		}
		c.revokedAt = next
	}
}

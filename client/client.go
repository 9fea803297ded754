// Package client is a Go client for a Glovebox node's HTTP API: it fetches the EIP-712 domain, submits
// signed transactions, reads receipts, state and the public log.
//
// It speaks the API through api/wire and must not import the server (api, api/graphql) or a store: an app
// linking the client links none of the node.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/api/wire"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Client talks to one node.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the node at baseURL (e.g. "http://127.0.0.1:8080").
func New(baseURL string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Timeout: 60 * time.Second}}
}

// WithHTTPClient returns a copy of c that uses hc.
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	cc := *c
	cc.http = hc
	return &cc
}

// URL returns the node's base URL.
func (c *Client) URL() string { return c.base }

// APIError is an error answer of the node, with its stable code.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// Get fetches path and returns the body of a 200 answer, or an *APIError.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req)
}

// Retries of a request the node refused with 429 (rate_limited, RATE_LIMITED): the node stored nothing
// of it, so the client waits the Retry-After seconds it names (at most MaxRetryWait each) and sends it
// again, up to MaxRetries times; then the 429 is the answer.
const (
	MaxRetries   = 5
	MaxRetryWait = time.Minute
)

func (c *Client) do(req *http.Request) ([]byte, error) { return c.doHeader(req, nil) }

// doHeader is do, also storing the answer's headers in *h when h is not nil.
func (c *Client) doHeader(req *http.Request, h *http.Header) ([]byte, error) {
	resp, body, err := c.send(req)
	if err != nil {
		return nil, err
	}
	if h != nil {
		*h = resp.Header
	}
	return answer(resp, body)
}

// send does req, sending it again after a 429 as the node asks, and returns the last answer with its body
// read.
func (c *Client) send(req *http.Request) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't read the answer of %s: %w", req.URL.Path, err)
		}
		if resp.StatusCode != http.StatusTooManyRequests || attempt == MaxRetries || (req.Body != nil && req.GetBody == nil) {
			return resp, body, nil
		}
		wait := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return resp, body, nil
			}
		}
		t := time.NewTimer(min(wait, MaxRetryWait))
		select {
		case <-req.Context().Done():
			t.Stop()
			return resp, body, nil
		case <-t.C:
		}
	}
}

// answer returns body of a 200 answer, or the error the node answered.
func answer(resp *http.Response, body []byte) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		var eb wire.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
			return nil, &APIError{resp.StatusCode, eb.Error.Code, eb.Error.Message}
		}
		return nil, &APIError{resp.StatusCode, "http_" + strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(body))}
	}
	return body, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	body, err := c.Get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("couldn't decode the answer of %s: %w", path, err)
	}
	return nil
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	body, err := c.do(req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("couldn't decode the answer of %s: %w", path, err)
	}
	return nil
}

// Node returns the node's origin, log key and size.
func (c *Client) Node(ctx context.Context) (*wire.NodeInfo, error) {
	var n wire.NodeInfo
	return &n, c.getJSON(ctx, "/v1/node", &n)
}

// Domain fetches the node's EIP-712 domain and checks that its salt matches its origin.
func (c *Client) Domain(ctx context.Context) (*ledger.Domain, error) {
	var info wire.EIP712Info
	if err := c.getJSON(ctx, "/v1/eip712", &info); err != nil {
		return nil, err
	}
	d := ledger.NewDomain(info.Origin)
	if got := fmt.Sprintf("0x%x", d.Salt); got != info.Domain.Salt {
		return nil, fmt.Errorf("node's domain salt %s is not keccak256 of its origin %q", info.Domain.Salt, info.Origin)
	}
	return d, nil
}

// Submit submits one signed transaction and returns its receipt once it is durable.
func (c *Client) Submit(ctx context.Context, tx *ledger.Tx) (*wire.Receipt, error) {
	var rc wire.Receipt
	return &rc, c.postJSON(ctx, "/v1/transactions", tx, &rc)
}

// SubmitBatch submits up to wire.MaxBatch transactions in one request; the answer has one item per
// transaction, in order.
func (c *Client) SubmitBatch(ctx context.Context, txs []*ledger.Tx) ([]wire.BatchItem, error) {
	var items []wire.BatchItem
	if err := c.postJSON(ctx, "/v1/transactions", txs, &items); err != nil {
		return nil, err
	}
	if len(items) != len(txs) {
		return nil, fmt.Errorf("node answered %d items for %d transactions", len(items), len(txs))
	}
	return items, nil
}

// Transaction returns the receipt of log entry index, proved against the latest checkpoint.
func (c *Client) Transaction(ctx context.Context, index int64) (*wire.Receipt, error) {
	var rc wire.Receipt
	return &rc, c.getJSON(ctx, "/v1/transactions/"+strconv.FormatInt(index, 10), &rc)
}

// Vehicle returns the node's view of vehicle id.
func (c *Client) Vehicle(ctx context.Context, id uint64) (*ledger.Vehicle, error) {
	var v ledger.Vehicle
	return &v, c.getJSON(ctx, "/v1/vehicles/"+strconv.FormatUint(id, 10), &v)
}

// Device returns the node's view of a device.
func (c *Client) Device(ctx context.Context, a common.Address) (*ledger.Device, error) {
	var d ledger.Device
	return &d, c.getJSON(ctx, "/v1/devices/"+a.Hex(), &d)
}

// App returns the node's view of an app.
func (c *Client) App(ctx context.Context, a common.Address) (*ledger.App, error) {
	var p ledger.App
	return &p, c.getJSON(ctx, "/v1/apps/"+a.Hex(), &p)
}

// Account returns what the node knows of an address.
func (c *Client) Account(ctx context.Context, a common.Address) (*ledger.Account, error) {
	var acc ledger.Account
	return &acc, c.getJSON(ctx, "/v1/accounts/"+a.Hex(), &acc)
}

// StateDigest returns the node's tree size and state digest.
func (c *Client) StateDigest(ctx context.Context) (*wire.StateDigest, error) {
	var d wire.StateDigest
	return &d, c.getJSON(ctx, "/v1/state/digest", &d)
}

// Checkpoint returns the log's latest signed checkpoint.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.Get(ctx, "/log/checkpoint")
}

// Tile returns a tile or entry bundle by its C2SP path relative to /log/ (e.g. "tile/0/000.p/5").
func (c *Client) Tile(ctx context.Context, path string) ([]byte, error) {
	return c.Get(ctx, "/log/"+path)
}

// DefaultTTL is how long after signing a transaction built by Prepare stays valid.
const DefaultTTL = time.Hour

// Prepare gives tx a random nonce and a deadline ttl from now, when they are zero, so it can be signed.
func Prepare(tx *ledger.Tx, ttl time.Duration) {
	if tx.Nonce.IsZero() {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		tx.Nonce.SetBytes32(b[:])
	}
	if tx.Deadline.IsZero() {
		tx.Deadline.SetUint64(uint64(time.Now().Add(ttl).Unix()))
	}
}

// PostEvents submits signed telemetry records (up to 1,000) and returns one result per record, in order.
// It returns an error only when the whole request failed.
func (c *Client) PostEvents(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error) {
	var out []telemetry.Result
	if err := c.postJSON(ctx, "/v1/events", subs, &out); err != nil {
		return nil, err
	}
	if len(out) != len(subs) {
		return nil, fmt.Errorf("node answered %d results for %d records", len(out), len(subs))
	}
	return out, nil
}

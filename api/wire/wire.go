// Package wire holds the JSON bodies of Glovebox's HTTP API (docs/api.md) and its limits: what the
// server (package api) writes and its clients (client, verify, sim, the CLI) read. It owns these types
// and their encoding only, and must not import the server or anything that links it (api, api/graphql,
// auth, connect, the stores, node): a program that speaks the API links this package, ledger and
// accesslog, not the server. The import-direction test (internal/layers) enforces it.
//
// It imports only ledger and accesslog: never the server, so that a client links none of it.
package wire

import (
	"encoding/json"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/ledger"
)

// Limits of the transaction and telemetry APIs.
const (
	MaxBatch     = 1000    // transactions in one POST /v1/transactions array
	MaxBatchBody = 8 << 20 // bytes of a batch request body

	MaxEventBatch     = 1000     // records in one POST /v1/events
	MaxEventBatchBody = 16 << 20 // bytes of its body
)

// NodeInfo is the answer of GET /v1/node.
type NodeInfo struct {
	Origin   string `json:"origin"`
	LogKey   string `json:"logKey"`
	TreeSize int64  `json:"treeSize"`
	Version  string `json:"version"`
}

// EIP712Info is the answer of GET /v1/eip712: everything a wallet needs to build eth_signTypedData_v4
// requests.
type EIP712Info struct {
	Domain struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Salt    string `json:"salt"`
	} `json:"domain"`
	Origin       string                         `json:"origin"`
	Types        map[string][]ledger.TypedField `json:"types"`
	PrimaryTypes []string                       `json:"primaryTypes"`
}

// Receipt proves that a transaction is in the log: its entry index and leaf hash, a signed checkpoint and
// an inclusion proof of the entry in that checkpoint's tree (RFC 6962 hashes, base64 as in checkpoints).
type Receipt struct {
	Index          int64          `json:"index"`
	Hash           string         `json:"hash"` // 0x-hex RFC 6962 leaf hash of the entry
	TreeSize       int64          `json:"treeSize"`
	Checkpoint     string         `json:"checkpoint"`
	InclusionProof []string       `json:"inclusionProof"`
	Result         *ledger.Result `json:"result,omitempty"`
	// The entry itself, in GET /v1/transactions/{index}.
	Entry      string          `json:"entry,omitempty"` // base64 of the entry bytes
	AcceptTime int64           `json:"acceptTime,omitempty"`
	Type       string          `json:"type,omitempty"`
	Message    json.RawMessage `json:"message,omitempty"`
	Signatures []string        `json:"signatures,omitempty"`
	Signers    []string        `json:"signers,omitempty"`
}

// BatchItem is one element of the answer to a batch submission: a receipt or an error.
type BatchItem struct {
	*Receipt
	Error *ErrorDetail `json:"error,omitempty"`
}

// StateDigest is the answer of GET /v1/state/digest.
type StateDigest struct {
	TreeSize int64  `json:"treeSize"`
	Digest   string `json:"digest"`
}

// ErrorBody is the JSON body of every error answer: {"error":{"code":…,"message":…}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object; Index is the position in a batch submission.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Index   *int   `json:"index,omitempty"`
}

// SignalInfo describes one catalogue signal in GET /v1/signals.
type SignalInfo struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	VSSType    string   `json:"vssType"`
	VSSPath    string   `json:"vssPath"`
	Unit       string   `json:"unit,omitempty"`
	Permission string   `json:"permission"`
	Min        *float64 `json:"min,omitempty"`
	Max        *float64 `json:"max,omitempty"`
}

// AccessPage is the answer of GET /v1/vehicles/{id}/access: entries newest first, and the cursor for the
// next (older) page.
type AccessPage struct {
	Entries []accesslog.Entry `json:"entries"`
	Next    string            `json:"next,omitempty"` // pass as ?before= for older entries
}

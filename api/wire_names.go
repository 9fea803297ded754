package api

import "github.com/glovebox/glovebox/api/wire"

// The API's JSON bodies and limits live in package wire, which clients import without linking the
// server; the server's code names them here.
type (
	NodeInfo    = wire.NodeInfo
	EIP712Info  = wire.EIP712Info
	Receipt     = wire.Receipt
	BatchItem   = wire.BatchItem
	StateDigest = wire.StateDigest
	ErrorBody   = wire.ErrorBody
	ErrorDetail = wire.ErrorDetail
	SignalInfo  = wire.SignalInfo
	AccessPage  = wire.AccessPage
)

// Limits of the API (see package wire).
const (
	MaxBatch          = wire.MaxBatch
	MaxBatchBody      = wire.MaxBatchBody
	MaxEventBatch     = wire.MaxEventBatch
	MaxEventBatchBody = wire.MaxEventBatchBody
)

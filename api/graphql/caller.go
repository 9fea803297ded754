package graphql

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
)

type callerKey struct{}

// WithCaller returns ctx carrying the address of the signed-in caller, for the middleware that checks the
// access token. The zero address, like no address at all, means nobody is signed in.
func WithCaller(ctx context.Context, caller common.Address) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// CallerFrom returns the caller WithCaller put in ctx, or the zero address.
func CallerFrom(ctx context.Context) common.Address {
	a, _ := ctx.Value(callerKey{}).(common.Address)
	return a
}

package graphql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/glovebox/glovebox/access"
)

// The stable values of extensions.code in GraphQL errors.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadRequest      = "BAD_REQUEST"
	CodeTooComplex      = "TOO_COMPLEX"
	CodeInternal        = "INTERNAL"
)

// ErrorCode documents one extensions.code value.
type ErrorCode struct {
	Code        string
	Description string
}

// ErrorCodes is the table of every extensions.code the GraphQL API returns.
var ErrorCodes = []ErrorCode{
	{CodeUnauthenticated, "no or an invalid access token: sign in first"},
	{CodeForbidden, "the caller lacks a permission on the vehicle (extensions.permission names it; other fields still resolve), or is neither its owner nor a grantee (vehicle), or not its owner (accessLog)"},
	{CodeNotFound, "no vehicle with this tokenId"},
	{CodeBadRequest, "the request is not valid GraphQL for this schema, its body is too large, or an argument is out of range"},
	{CodeTooComplex, fmt.Sprintf("the query is deeper than %d levels or its complexity exceeds %d", MaxDepth, MaxComplexity)},
	{"RATE_LIMITED", "too many requests from this caller: wait for the Retry-After header (HTTP 429)"},
	{CodeTooSlow, "an events subscription ended because its client read so slowly that more than 1,000 events waited for it"},
	{CodeTooManySubscriptions, fmt.Sprintf("a WebSocket already carries %d subscriptions; this one is refused (complete one, or open another socket)", MaxSubscriptionsPerConnection)},
	{CodeInternal, "an unexpected server error"},
}

func codedError(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

// accessError turns an error of access.Check into a coded GraphQL error.
func accessError(err error) *gqlerror.Error {
	var d *access.Denied
	switch {
	case errors.Is(err, access.ErrUnauthenticated):
		return codedError(CodeUnauthenticated, "%s", err.Error())
	case errors.Is(err, access.ErrNotFound):
		return codedError(CodeNotFound, "%s", err.Error())
	case errors.As(err, &d):
		e := codedError(CodeForbidden, "%s", d.Error())
		e.Extensions["permission"] = d.Permission
		if d.Signal != "" {
			e.Extensions["signal"] = d.Signal
		}
		return e
	}
	return codedError(CodeInternal, "%s", err.Error())
}

// presentError gives every error a stable code: gqlgen's parse, validation and complexity codes are mapped
// to ours, and an error without a code is an internal one (logged, and answered without its details).
func presentError(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		e := graphql.DefaultErrorPresenter(ctx, err)
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		switch e.Extensions["code"] {
		case errcode.ParseFailed, errcode.ValidationFailed:
			e.Extensions["code"] = CodeBadRequest
			if strings.Contains(e.Message, "introspection depth") { // gqlparser's own introspection limit
				e.Extensions["code"] = CodeTooComplex
			}
		case "COMPLEXITY_LIMIT_EXCEEDED":
			e.Extensions["code"] = CodeTooComplex
		case nil:
			if len(e.Path) == 0 && !graphql.HasOperationContext(ctx) {
				// Raised by the transport before any operation ran: the request itself (e.g. a body
				// that is not JSON) is at fault.
				e.Extensions["code"] = CodeBadRequest
				break
			}
			logger.ErrorContext(ctx, "graphql: internal error", "path", e.Path.String(), "err", err)
			e.Message = "internal error"
			e.Extensions["code"] = CodeInternal
		}
		return e
	}
}

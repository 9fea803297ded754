package graphql

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/ethereum/go-ethereum/common"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/live"
)

// CodeTooSlow ends an events subscription whose client read so slowly that more than
// live.MaxPendingEvents events waited for it.
const CodeTooSlow = "TOO_SLOW"

// CodeTooManySubscriptions refuses a subscription on a WebSocket that already carries
// MaxSubscriptionsPerConnection.
const CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"

// MaxSubscriptionsPerConnection bounds the subscriptions running at once on one WebSocket: each holds
// a goroutine and a hub entry, and one client should open a socket per few vehicles, not per thousand.
const MaxSubscriptionsPerConnection = 100

// The transports of subscriptions.
const (
	// InitTimeout bounds the wait for a WebSocket's connection_init message.
	InitTimeout = 10 * time.Second
	// PingInterval is how often the node pings a WebSocket (graphql-transport-ws ping; a client that
	// answers no pong for two intervals is closed) and writes a comment line to a server-sent events
	// stream.
	PingInterval = 25 * time.Second
)

type streamKey struct{}

// withStreaming marks a request that came as a WebSocket or an event stream, where subscriptions may run.
func withStreaming(ctx context.Context) context.Context {
	return context.WithValue(ctx, streamKey{}, true)
}

func streaming(ctx context.Context) bool { v, _ := ctx.Value(streamKey{}).(bool); return v }

// credential is how a subscription checks, again and again, that the token it started with still holds.
type credential struct {
	check  func() (time.Time, error) // the token's expiry, or why it no longer holds
	expiry time.Time
}

type credentialKey struct{}

func withCredential(ctx context.Context, c credential) context.Context {
	return context.WithValue(ctx, credentialKey{}, c)
}

// ending carries the error a subscription ended with from its goroutine to the response middleware,
// which sends it as the last message.
type ending struct {
	mu   sync.Mutex
	err  *gqlerror.Error
	sent bool
}

type endingKey struct{}

func (e *ending) set(err *gqlerror.Error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

// take returns the error once.
func (e *ending) take() *gqlerror.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil || e.sent {
		return nil
	}
	e.sent = true
	return e.err
}

// streamingHandler prepares requests that may carry subscriptions: WebSocket upgrades and POSTs asking for
// text/event-stream. Their connections live long, so the server's read deadline (meant for request
// bodies) is lifted; the bearer token of the request, if any, is kept to be checked again during the
// subscription.
func (r *resolver) streamingHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ws := req.Header.Get("Upgrade") != ""
		sse := req.Method == http.MethodPost && strings.Contains(req.Header.Get("Accept"), "text/event-stream")
		if !ws && !sse {
			next.ServeHTTP(w, req)
			return
		}
		ctx := withStreaming(req.Context())
		if scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") && r.cfg.Authenticate != nil {
			if caller, exp, err := r.cfg.Authenticate(token); err == nil && caller == CallerFrom(ctx) {
				ctx = withCredential(ctx, credential{expiry: exp, check: func() (time.Time, error) {
					_, exp, err := r.cfg.Authenticate(token)
					return exp, err
				}})
			}
		}
		http.NewResponseController(w).SetReadDeadline(time.Time{})
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// slots counts the subscriptions running on one WebSocket. Shared by the connection's operations.
type slots struct {
	mu sync.Mutex
	n  int
}

type slotsKey struct{}

// take reserves a slot, false when all MaxSubscriptionsPerConnection are taken.
func (s *slots) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= MaxSubscriptionsPerConnection {
		return false
	}
	s.n++
	return true
}

func (s *slots) free() {
	s.mu.Lock()
	s.n--
	s.mu.Unlock()
}

// initWebsocket reads the caller's token from the connection_init payload: {"Authorization": "Bearer
// <token>"} (any case of the key, as graphql-ws clients send connectionParams), {"headers":
// {"Authorization": …}} or {"token": "<token>"}. A payload without one keeps the caller of the upgrade
// request (its Authorization header), or none; a token that does not verify closes the socket with 4403.
func (r *resolver) initWebsocket(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	token, found := "", false
	for k, v := range p {
		s, _ := v.(string)
		switch {
		case strings.EqualFold(k, "authorization"):
			token, found = s, true
		case strings.EqualFold(k, "token"):
			token, found = "Bearer "+s, true
		case strings.EqualFold(k, "headers"):
			if h, ok := v.(map[string]any); ok {
				for hk, hv := range h {
					if strings.EqualFold(hk, "authorization") {
						s, _ := hv.(string)
						token, found = s, true
					}
				}
			}
		}
	}
	ctx = context.WithValue(ctx, slotsKey{}, &slots{})
	if !found {
		return ctx, nil, nil
	}
	scheme, raw, _ := strings.Cut(token, " ")
	var caller common.Address
	var exp time.Time
	err := errors.New("send Authorization: Bearer <token>")
	if strings.EqualFold(scheme, "Bearer") && raw != "" && r.cfg.Authenticate != nil {
		caller, exp, err = r.cfg.Authenticate(raw)
	}
	if err != nil {
		ctx = transport.WithWebsocketCloseCode(ctx, 4403)
		return transport.AppendCloseReason(ctx, "Forbidden"), nil, codedError(CodeUnauthenticated, "the token in connection_init does not verify: %s", err.Error())
	}
	ctx = WithCaller(ctx, caller)
	ctx = withCredential(ctx, credential{expiry: exp, check: func() (time.Time, error) {
		_, exp, err := r.cfg.Authenticate(raw)
		return exp, err
	}})
	return ctx, nil, nil
}

// aroundSubscriptions refuses subscriptions outside a WebSocket or an event stream and gives each one an
// ending.
func aroundSubscriptions(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	if !streaming(ctx) {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{codedError(CodeBadRequest,
			"a subscription needs a WebSocket (graphql-transport-ws) or server-sent events (POST with Accept: text/event-stream)")}})
	}
	if s, _ := ctx.Value(slotsKey{}).(*slots); s != nil {
		if !s.take() {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{codedError(CodeTooManySubscriptions,
				"a WebSocket carries at most %d subscriptions at once: complete one, or open another socket", MaxSubscriptionsPerConnection)}})
		}
		// The operation's context ends when the subscription does (completed by either side, or the socket
		// closed).
		context.AfterFunc(ctx, s.free)
	}
	return next(context.WithValue(ctx, endingKey{}, &ending{}))
}

// aroundResponses sends the error a subscription ended with as its last message: {"data": null,
// "errors": [...]}, before the transport completes it.
func aroundResponses(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		rootPaths(ctx, resp)
		return resp
	}
	if e, _ := ctx.Value(endingKey{}).(*ending); e != nil {
		if err := e.take(); err != nil {
			return &graphql.Response{Errors: gqlerror.List{err}}
		}
	}
	return nil
}

// rootPaths puts the subscription field in front of the paths of a push's errors: gqlgen resolves each push
// outside the field's context, so their paths would start below it.
func rootPaths(ctx context.Context, resp *graphql.Response) {
	if len(resp.Errors) == 0 || !graphql.HasOperationContext(ctx) {
		return
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription || len(oc.Operation.SelectionSet) != 1 {
		return
	}
	f, ok := oc.Operation.SelectionSet[0].(*ast.Field)
	if !ok {
		return
	}
	for _, e := range resp.Errors {
		if len(e.Path) > 0 && e.Path[0] != ast.PathName(f.Alias) {
			e.Path = append(ast.Path{ast.PathName(f.Alias)}, e.Path...)
		}
	}
}

type subscriptionResolver resolver

func (r *resolver) Subscription() exec.SubscriptionResolver { return (*subscriptionResolver)(r) }

// watch is what a subscription waits on besides its records: ledger changes, the grant's and the token's
// expiry.
type watch struct {
	r       *resolver
	vehicle uint64
	perms   []string
	changes <-chan struct{}
	timer   *time.Timer
}

func (r *resolver) newWatch(vehicle uint64, perms ...string) *watch {
	return &watch{r: r, vehicle: vehicle, perms: perms, changes: r.cfg.Live.Changes(), timer: time.NewTimer(time.Hour)}
}

// check decides again whether the subscription may go on, and arms the timer for the earlier of the
// grant's and the token's expiry.
func (w *watch) check(ctx context.Context) *gqlerror.Error {
	w.changes = w.r.cfg.Live.Changes()
	var until time.Time
	if c, ok := ctx.Value(credentialKey{}).(credential); ok {
		exp, err := c.check()
		if err != nil {
			return codedError(CodeUnauthenticated, "the access token no longer holds: %s", err.Error())
		}
		until = exp
	}
	var err error
	caller, now := CallerFrom(ctx), w.r.cfg.Now()
	w.r.cfg.State(func(st *ledger.State) {
		for _, p := range w.perms {
			var d access.Decision
			if d, err = access.Check(st, caller, w.vehicle, p, now); err != nil {
				return
			}
			if d.Grant != nil && d.Grant.ExpiresAt > 0 {
				if exp := time.Unix(d.Grant.ExpiresAt, 0); until.IsZero() || exp.Before(until) {
					until = exp
				}
			}
		}
	})
	if err != nil {
		return accessError(err)
	}
	wait := time.Hour
	if !until.IsZero() {
		wait = min(wait, time.Until(until)+10*time.Millisecond)
	}
	w.timer.Reset(max(wait, time.Millisecond))
	return nil
}

// end records err as the subscription's last message.
func end(ctx context.Context, err *gqlerror.Error) {
	if e, _ := ctx.Value(endingKey{}).(*ending); e != nil {
		e.set(err)
	}
}

func (s *subscriptionResolver) start(tokenID int) (uint64, error) {
	if s.cfg.Live == nil {
		return 0, codedError(CodeBadRequest, "this node serves no subscriptions")
	}
	if tokenID < 0 {
		return 0, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	return uint64(tokenID), nil
}

func (s *subscriptionResolver) SignalsLatest(ctx context.Context, tokenID int, filter *exec.SignalFilter) (<-chan map[string]any, error) {
	vehicle, err := s.start(tokenID)
	if err != nil {
		return nil, err
	}
	if filter != nil && filter.Source != nil {
		return nil, codedError(CodeBadRequest, "filter.source: the signalsLatest subscription takes no source (signalsLatest, availableSignals and signalsSnapshot do)")
	}
	r, q := (*resolver)(s), (*queryResolver)(s)
	w := r.newWatch(vehicle, ledger.PermStream)
	if err := w.check(ctx); err != nil {
		return nil, err
	}
	sub := s.cfg.Live.Subscribe(vehicle)
	out := make(chan map[string]any)
	go func() {
		defer close(out)
		defer sub.Close()
		defer w.timer.Stop()
		fresh := map[string]telemetry.Value{} // values accepted since the subscription began, newest per signal
		var pending map[string]any
		for {
			var send chan map[string]any
			if pending != nil {
				send = out
			}
			select {
			case <-ctx.Done():
				return
			case send <- pending:
				pending = nil
				continue
			case <-w.changes:
			case <-w.timer.C:
			case <-sub.Ready():
				u, _ := sub.Take()
				for _, v := range u.Values {
					if old, ok := fresh[v.Signal.Name]; !ok || v.Time >= old.Time {
						fresh[v.Signal.Name] = v
					}
				}
				if len(u.Values) == 0 {
					continue
				}
				if err := w.check(ctx); err != nil {
					end(ctx, err)
					return
				}
				vs, g, err := q.readableWith(r.decideSignals(ctx, vehicle), tokenID, filter, fresh)
				if err != nil {
					var ge *gqlerror.Error
					if !errors.As(err, &ge) {
						s.cfg.Logger.ErrorContext(ctx, "graphql: a subscription's push failed", "vehicle", vehicle, "err", err)
						ge = codedError(CodeInternal, "internal error")
					}
					end(ctx, ge)
					return
				}
				pending = collection(vs)
				pending[rowVehicle], pending[rowGrants] = vehicle, g
				continue
			}
			if err := w.check(ctx); err != nil {
				end(ctx, err)
				return
			}
		}
	}()
	return out, nil
}

func (s *subscriptionResolver) Events(ctx context.Context, tokenID int, filter *exec.EventFilter) (<-chan *exec.Event, error) {
	vehicle, err := s.start(tokenID)
	if err != nil {
		return nil, err
	}
	if filter != nil {
		if err := checkEventNames(filter.Name, "filter.name"); err != nil {
			return nil, err
		}
	}
	r, q := (*resolver)(s), (*queryResolver)(s)
	w := r.newWatch(vehicle, ledger.PermStream, ledger.PermInsights)
	if err := w.check(ctx); err != nil {
		return nil, err
	}
	sub := s.cfg.Live.Subscribe(vehicle)
	out := make(chan *exec.Event)
	go func() {
		defer close(out)
		defer sub.Close()
		defer w.timer.Stop()
		var pending []*exec.Event
		for {
			var send chan *exec.Event
			var head *exec.Event
			if len(pending) > 0 {
				send, head = out, pending[0]
			}
			select {
			case <-ctx.Done():
				return
			case send <- head:
				pending = pending[1:]
				continue
			case <-w.changes:
			case <-w.timer.C:
			case <-sub.Ready():
				u, overflowed := sub.Take()
				if overflowed || len(pending)+len(u.Events) > live.MaxPendingEvents {
					end(ctx, codedError(CodeTooSlow, "more than %d events waited for this subscription: it ended; query events for what was missed", live.MaxPendingEvents))
					return
				}
				if len(u.Events) == 0 {
					continue
				}
				if err := w.check(ctx); err != nil {
					end(ctx, err)
					return
				}
				g, err := r.grantsOf(ctx, vehicle)
				if err != nil {
					end(ctx, err.(*gqlerror.Error))
					return
				}
				n := 0
				for _, e := range u.Events {
					if e.Time < g.since.UnixMilli() ||
						filter != nil && (!matchString(filter.Name, e.Name) || !matchString(filter.Source, e.Source) || !matchTags(filter.Tags)) {
						continue
					}
					pending = append(pending, eventOf(e))
					n++
				}
				if n > 0 {
					q.recordEntry(ctx, vehicle, g, []string{ledger.PermInsights}, g.since, s.cfg.Now(), n, "ok")
				}
				continue
			}
			if err := w.check(ctx); err != nil {
				end(ctx, err)
				return
			}
		}
	}()
	return out, nil
}

// eventOf is e as the API shows it.
func eventOf(e telemetry.Event) *exec.Event {
	ev := &exec.Event{Timestamp: time.UnixMilli(e.Time).UTC(), Name: e.Name, Source: e.Source, DurationNs: int(e.DurationNs)}
	if e.Metadata != "" {
		m := e.Metadata
		ev.Metadata = &m
	}
	return ev
}

package mqtt

import (
	"context"
	"log/slog"
)

// brokerLog passes the embedded broker's logs to the node's logger one level down: what the broker
// reports at Info (start, stop) or Warn (a client's protocol errors, dropped connections, a refused
// publish) is routine for a node open to devices, so it becomes Debug; the broker's own errors become
// Warn, except the one it logs for every publish acknowledged with an error reason, which is Debug.
type brokerLog struct{ h slog.Handler }

func (b *brokerLog) Enabled(ctx context.Context, l slog.Level) bool { return b.h.Enabled(ctx, l) }

func (b *brokerLog) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelError && r.Message != "publish packet error":
		r.Level = slog.LevelWarn
	default:
		r.Level = slog.LevelDebug
	}
	if !b.h.Enabled(ctx, r.Level) {
		return nil
	}
	r.AddAttrs(slog.String("component", "mqtt"))
	return b.h.Handle(ctx, r)
}

func (b *brokerLog) WithAttrs(as []slog.Attr) slog.Handler { return &brokerLog{b.h.WithAttrs(as)} }
func (b *brokerLog) WithGroup(name string) slog.Handler    { return &brokerLog{b.h.WithGroup(name)} }

package graphql

import (
	"context"
	"strconv"
	"strings"
	"sync"
)

// MaxAccessEntriesPerRequest bounds the access-log entries one GraphQL request writes. Entries that say
// the same thing (the same vehicle, field, permissions and outcome) are written once per request, so a
// thousand aliases of a refused field write one "forbidden" entry, not a thousand; distinct ones past the
// bound are not written (a request that reads that many vehicles' fields is read by its first entries).
const MaxAccessEntriesPerRequest = 200

// accessBudget is the set of entries one request has written; its mutex guards seen (fields resolve
// concurrently).
type accessBudget struct {
	mu   sync.Mutex
	seen map[string]bool
}

type accessBudgetKey struct{}

// withAccessBudget gives the request in ctx a fresh budget of access-log entries.
func withAccessBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, accessBudgetKey{}, &accessBudget{seen: map[string]bool{}})
}

// allowEntry reports whether the request in ctx may write an entry about vehicle, field name, perms and
// outcome: not if it wrote the same one already or has written MaxAccessEntriesPerRequest. A context
// without a budget (a resolver called outside the handler) allows every entry.
func allowEntry(ctx context.Context, vehicle uint64, name string, perms []string, outcome string) bool {
	b, _ := ctx.Value(accessBudgetKey{}).(*accessBudget)
	if b == nil {
		return true
	}
	key := strconv.FormatUint(vehicle, 10) + "\x00" + name + "\x00" + strings.Join(perms, ",") + "\x00" + outcome
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[key] || len(b.seen) >= MaxAccessEntriesPerRequest {
		return false
	}
	b.seen[key] = true
	return true
}

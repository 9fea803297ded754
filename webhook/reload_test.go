package webhook

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// pausingStore keeps webhooks in memory; a listing (Webhooks) reads them and then, while pause is set,
// waits to be released before it returns what it read, as a slow database does. The rest of the
// Store is not used here.
type pausingStore struct {
	Store
	mu      sync.Mutex
	hooks   map[string]*Webhook
	pause   bool
	entered chan struct{}
	release chan struct{}
}

func (s *pausingStore) Webhooks(_ context.Context, _ common.Address) ([]*Webhook, error) {
	s.mu.Lock()
	var out []*Webhook
	for _, w := range s.hooks {
		c := *w
		out = append(out, &c)
	}
	pause := s.pause
	s.mu.Unlock()
	if pause {
		s.entered <- struct{}{}
		<-s.release
	}
	return out, nil
}

func (s *pausingStore) Webhook(_ context.Context, id string) (*Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.hooks[id]
	if !ok {
		return nil, ErrNotFound
	}
	c := *w
	return &c, nil
}

func (s *pausingStore) CreateWebhook(_ context.Context, w *Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *w
	s.hooks[w.ID] = &c
	return nil
}

// A periodic reload that read the store before a webhook was created, and finishes after the
// creation's refresh, must not drop the new webhook: it did, and a connectivity webhook created at that
// moment never saw its vehicle go offline (its trigger state was lost with it).
func TestAReloadThatReadTheStoreBeforeACreationKeepsTheNewWebhook(t *testing.T) {
	store := &pausingStore{hooks: map[string]*Webhook{}, entered: make(chan struct{}), release: make(chan struct{})}
	e := NewEngine(Options{Store: store, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	w := &Webhook{ID: "wh_new", Trigger: Trigger{Kind: KindConnectivity}, Status: StatusActive}
	raceAReload(t, e, store, func() error { // the reload read the store with no webhooks yet
		if err := store.CreateWebhook(ctx, w); err != nil {
			return err
		}
		return e.refresh(ctx, w.ID)
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hooks["wh_new"] == nil {
		t.Fatalf("after the reload and the refresh the engine knows %d webhooks, want wh_new", len(e.hooks))
	}
}

// raceAReload starts a reload of e, lets it read the store and holds it there, runs change (which writes
// the store and refreshes e) beside it, then lets the reload finish and waits for both: the reload's
// read came before the change, its end after the change's refresh unless the engine orders them.
func raceAReload(t *testing.T, e *Engine, store *pausingStore, change func() error) {
	t.Helper()
	store.mu.Lock()
	store.pause = true
	store.mu.Unlock()
	reloaded := make(chan error)
	go func() { reloaded <- e.reload(context.Background()) }()
	<-store.entered
	changed := make(chan error)
	go func() { changed <- change() }()
	select {
	case err := <-changed: // before the fix the refresh went ahead of the reload
		if err != nil {
			t.Fatal(err)
		}
		changed = nil
	case <-time.After(50 * time.Millisecond): // the refresh waits for the reload (the fix)
	}
	store.mu.Lock()
	store.pause = false
	store.mu.Unlock()
	store.release <- struct{}{}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	if changed != nil {
		if err := <-changed; err != nil {
			t.Fatal(err)
		}
	}
}

func (s *pausingStore) UpdateWebhook(_ context.Context, w *Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hooks[w.ID]; !ok {
		return ErrNotFound
	}
	c := *w
	s.hooks[w.ID] = &c
	return nil
}

// The same race with a verification: a periodic reload that read a webhook still pending, and finishes
// after the verification set it active (setStatus: the store, then a refresh), must leave it active.
// Before the reloads and refreshes were ordered, the webhook stayed pending in the engine until the next
// reload (ten ticks, 10 s by default) and its triggers fired nothing meanwhile: a benchmark that started
// its load as soon as the store listed every webhook active lost the ten deliveries of one of them.
func TestAReloadThatReadTheStoreBeforeAVerificationLeavesTheWebhookActive(t *testing.T) {
	w := &Webhook{ID: "wh_1", AllGranted: true, Trigger: Trigger{Kind: KindConnectivity}, Status: StatusPending}
	store := &pausingStore{hooks: map[string]*Webhook{w.ID: w}, entered: make(chan struct{}), release: make(chan struct{})}
	e := NewEngine(Options{Store: store, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := e.reload(ctx); err != nil {
		t.Fatal(err)
	}
	// The reload reads the webhook pending; the verification sets it active beside it.
	raceAReload(t, e, store, func() error { return e.setStatus(ctx, w.ID, StatusActive, "") })
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.hooks[w.ID]; h == nil || h.w.Status != StatusActive {
		t.Fatalf("after the reload and the verification the engine holds %+v, want wh_1 active", h)
	}
	if ts := e.triggers(); len(ts.conn.all)+len(ts.conn.byVehicle) != 1 {
		t.Fatalf("the connectivity triggers hold %d webhooks, want wh_1", len(ts.conn.all)+len(ts.conn.byVehicle))
	}
}

package api

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// TestBodyBudgetBoundsTheBytesWorkedOn: bodies are admitted while their bytes fit, the next one waits
// until an earlier one is answered, a body larger than the bound waits for all of it, and a client that
// leaves while waiting takes nothing.
func TestBodyBudgetBoundsTheBytesWorkedOn(t *testing.T) {
	b := newBodyBudget(100)
	r := httptest.NewRequest("POST", "/v1/events", nil)
	first, ok := b.admit(r, 60)
	if !ok {
		t.Fatal("the first body was not admitted")
	}
	second, ok := b.admit(r, 40)
	if !ok {
		t.Fatal("a body that fits beside the first was not admitted")
	}
	admitted := make(chan func(), 1)
	go func() {
		release, _ := b.admit(r, 1000) // larger than the bound: waits for all of it
		admitted <- release
	}()
	select {
	case <-admitted:
		t.Fatal("a body was admitted over the bound")
	case <-time.After(50 * time.Millisecond):
	}
	first()
	select {
	case <-admitted:
		t.Fatal("a body was admitted over the bound")
	case <-time.After(50 * time.Millisecond):
	}
	second()
	third := <-admitted // now all of it is free
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan bool, 1)
	go func() {
		_, ok := b.admit(r.WithContext(ctx), 1)
		gone <- ok
	}()
	cancel()
	if <-gone {
		t.Fatal("a client that went away was admitted")
	}
	third()
	if release, ok := b.admit(r, 100); !ok {
		t.Fatal("the budget was not all given back")
	} else {
		release()
	}
}

package store

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriteGateServesUrgentFirst(t *testing.T) {
	var g writeGate
	ctx := t.Context()
	if !g.enter(ctx, Routine) {
		t.Fatal("an idle gate was not entered")
	}
	var mu sync.Mutex
	var order []Priority
	var wg sync.WaitGroup
	waiting := func(n int) bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.waiters[Urgent])+len(g.waiters[Routine]) == n
	}
	for i, c := range []Priority{Routine, Routine, Urgent} {
		wg.Go(func() {
			if !g.enter(ctx, c) {
				t.Error("gate not entered")
				return
			}
			mu.Lock()
			order = append(order, c)
			mu.Unlock()
			g.leave()
		})
		waitFor(t, "waiters queued", func() bool { return waiting(i + 1) })
	}
	g.leave()
	wg.Wait()
	if want := []Priority{Urgent, Routine, Routine}; !slices.Equal(order, want) {
		t.Errorf("gate served %v, want %v", order, want)
	}
	if g.held {
		t.Error("gate still held")
	}
}

package idserver

import (
	"context"
	"testing"
	"time"
)

// TestPacerTurns checks the turns a pacer gives: in order, rate apart, with
// a second's worth at once after a lull.
func TestPacerTurns(t *testing.T) {
	p := newPacer(10) // a turn every 100 ms
	t0 := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	for i := range 12 {
		// The first ten are the burst, from a second ago; then one
		// every 100 ms from now.
		want := t0.Add(-time.Second + time.Duration(i)*100*time.Millisecond)
		if got := p.reserve(t0); !got.Equal(want) {
			t.Errorf("turn %d = %v, want %v", i, got.Sub(t0), want.Sub(t0))
		}
	}
	// After a lull the next caller goes at once, with a new burst.
	later := t0.Add(time.Minute)
	if got, want := p.reserve(later), later.Add(-time.Second); !got.Equal(want) {
		t.Errorf("turn after a lull = %v, want %v", got.Sub(later), want.Sub(later))
	}
}

// TestPacerWaitGivesUp checks that a waiter whose context ends does not
// wait for its turn.
func TestPacerWaitGivesUp(t *testing.T) {
	p := newPacer(0.01)   // a turn every 100 s
	p.reserve(time.Now()) // the one that goes at once
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.wait(ctx); err != context.Canceled {
		t.Errorf("wait with a cancelled context = %v, want %v", err, context.Canceled)
	}
}

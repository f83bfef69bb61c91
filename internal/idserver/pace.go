package idserver

import (
	"context"
	"sync"
	"time"
)

// pacer spaces events out to a rate, in the order they are asked for: the
// MSS_StatusQuery requests of all the sessions of a node. After a lull it
// lets a second's worth through at once. It is safe for concurrent use.
type pacer struct {
	every time.Duration // 1 / rate

	mu   sync.Mutex
	next time.Time // the first free turn
}

// pacerBurst is how much unused time a pacer lends to a burst.
const pacerBurst = time.Second

func newPacer(rate float64) *pacer {
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

// reserve returns the time of the next turn, for a caller asking at now.
func (p *pacer) reserve(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	turn := p.next
	if early := now.Add(-pacerBurst); turn.Before(early) {
		turn = early
	}
	p.next = turn.Add(p.every)
	return turn
}

// wait returns when the caller's turn has come, or with ctx's error. A
// caller that gives up leaves its turn unused.
func (p *pacer) wait(ctx context.Context) error {
	now := time.Now()
	d := p.reserve(now).Sub(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

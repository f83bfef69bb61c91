package store

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Priority orders the write transactions waiting for SQLite's single
// writer (see InTxPriority).
type Priority int

// Priorities, highest first.
const (
	// Urgent is for what a remote peer waits on while holding a scarce
	// resource, such as deliver_sm PDUs whose deliver_sm_resp the SMSC's
	// window waits for.
	Urgent Priority = iota
	// Routine is everything else; InTx uses it.
	Routine
	nPriorities
)

// gateWait bounds the wait for the write gate. A transaction started from
// inside another one (a callback that writes on its own while its caller's
// transaction is open) then meets SQLite's busy timeout, as it would without
// the gate, rather than waiting forever.
const gateWait = time.Second

// writeGate is a lock whose waiters are served by priority, then in order.
// On SQLite every write transaction of a DB takes turns at it: SQLite has
// one writer, and a connection that finds the write lock taken sleeps in
// the busy handler for a millisecond or more, which would dominate the
// latency of short transactions. Waiting in Go costs nothing and lets
// urgent transactions go first.
type writeGate struct {
	mu      sync.Mutex
	held    bool
	waiters [nPriorities][]chan struct{}
	commits atomic.Uint64 // transactions that passed the gate
}

// enter waits for the gate, at most gateWait, and reports whether it holds
// it.
func (g *writeGate) enter(ctx context.Context, p Priority) bool {
	if p < 0 || p >= nPriorities {
		p = Routine
	}
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	g.waiters[p] = append(g.waiters[p], ch)
	g.mu.Unlock()
	t := time.NewTimer(gateWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.waiters[p], ch); i >= 0 {
		g.waiters[p] = slices.Delete(g.waiters[p], i, i+1)
		g.mu.Unlock()
		return false
	}
	g.mu.Unlock()
	<-ch // handed the gate meanwhile
	return true
}

// leave passes the gate to the first waiter of the highest priority that
// has one.
func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range g.waiters {
		if w := g.waiters[p]; len(w) > 0 {
			close(w[0])
			g.waiters[p] = w[1:]
			return
		}
	}
	g.held = false
}

// The checkpointer's pace: every checkpointEvery it checkpoints if
// checkpointCommits transactions committed since it last did, and finishes
// the checkpoint under the gate once the WAL holds walRestartFrames pages
// (SQLite's own threshold is 1000; a transaction writes a few to a few
// dozen).
const (
	checkpointEvery   = 10 * time.Millisecond
	checkpointCommits = 24
	walRestartFrames  = 600
)

// checkpointLoop checkpoints the SQLite WAL until ctx is done. Left to
// itself, SQLite checkpoints inside the commit that takes the WAL past 1000
// pages: it copies the pages to the database file and syncs both files,
// which takes milliseconds, all the while holding up that transaction — and,
// since writers take turns at the gate, every other one. Here a PASSIVE
// checkpoint copies what it can beside the writers; when the WAL grows
// long, a second one under the gate copies the last few pages while no
// writer appends more, so that the next transaction starts the WAL over and
// SQLite's own threshold is not reached. It is an optimisation only: the
// data is safe either way.
func (db *DB) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := db.gate.commits.Load()
		if n-last < checkpointCommits {
			continue
		}
		last = n
		frames, err := db.checkpoint(ctx)
		if err == nil && frames >= walRestartFrames && db.gate.enter(ctx, Routine) {
			_, err = db.checkpoint(ctx)
			db.gate.leave()
		}
		// A failed checkpoint is retried on the next tick; SQLite
		// checkpoints by itself meanwhile.
		_ = err
	}
}

// checkpoint runs a PASSIVE checkpoint and returns the pages in the WAL.
func (db *DB) checkpoint(ctx context.Context) (frames int, err error) {
	var busy, done int
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
	return frames, err
}

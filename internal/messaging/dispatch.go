package messaging

import (
	"context"
	"sync"
	"time"
)

// cleanupEvery is how often handed-over messages past the retention are
// deleted.
const cleanupEvery = 10 * time.Minute

// maxHandoff bounds the MOs and outcomes waiting in memory for the
// dispatcher; what does not fit is found by its next read of the inbox.
const maxHandoff = 4096

// maxDispatchBatch bounds the hand-overs of memory in one transaction.
const maxDispatchBatch = 256

// handoff carries the MOs and outcomes that this node stored from the
// workers of the binds (and from refused submit_sm) to the dispatcher, so
// that it hands them over at once without reading the inbox for them.
// They are in the database already; this only spares the look-up.
type handoff struct {
	mu       sync.Mutex
	mos      []*MO
	outcomes []*Receipt
	overflow bool // some were left out: read the inbox
}

// handOff queues a stored MO or a decided outcome for the dispatcher.
func (s *Server) handOff(mo *MO, r *Receipt) {
	h := &s.handoff
	h.mu.Lock()
	switch {
	case len(h.mos)+len(h.outcomes) >= maxHandoff:
		h.overflow = true
	case mo != nil:
		h.mos = append(h.mos, mo)
	case r != nil:
		h.outcomes = append(h.outcomes, r)
	}
	h.mu.Unlock()
	s.wakeDispatcher()
}

// handedOff returns the items for up to maxDispatchBatch of what handOff
// queued, whether more is queued, and whether some were left out.
func (s *Server) handedOff(ctx context.Context) (items []*txItem, more, overflow bool) {
	h := &s.handoff
	h.mu.Lock()
	n := min(len(h.mos), maxDispatchBatch)
	mos := h.mos[:n:n]
	h.mos = h.mos[n:]
	n = min(len(h.outcomes), maxDispatchBatch-n)
	outcomes := h.outcomes[:n:n]
	h.outcomes = h.outcomes[n:]
	more = len(h.mos)+len(h.outcomes) > 0
	overflow, h.overflow = h.overflow, false
	h.mu.Unlock()
	for _, mo := range mos {
		items = append(items, s.moHandOverItem(ctx, *mo, 0))
	}
	for _, r := range outcomes {
		items = append(items, s.outcomeItem(ctx, *r, 0))
	}
	return items, more, overflow
}

// dispatchLoop does the database-side work that follows the SMPP traffic:
// it hands MOs and outcomes to the Handler as soon as a worker stored or
// decided them, and every PollInterval it reads the inbox and outbox for
// what other nodes stored, what was postponed and what is due otherwise:
// receipts that came before their message id, messages whose validity
// ended, incomplete MOs to drop. It also keeps the outbox_depth gauge.
func (s *Server) dispatchLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	var lastCleanup time.Time
	var lastPoll time.Time // wall clock: the poll's pace is not s.now's
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dispatchWake:
		case <-t.C:
		}
		poll := time.Since(lastPoll) >= s.cfg.PollInterval
		if poll {
			lastPoll = time.Now()
		}
		for ctx.Err() == nil && s.dispatchOnce(ctx, poll) {
		}
		if poll && ctx.Err() == nil {
			s.chores(ctx)
			if now := s.now(); now.Sub(lastCleanup) >= cleanupEvery {
				lastCleanup = now
				if err := s.cleanup(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("cannot delete old messages", "err", err)
				}
			}
		}
		t.Reset(max(s.cfg.PollInterval-time.Since(lastPoll), 0))
	}
}

// A lister returns the items of one kind of work that are due now, and
// whether it returned as many as it may (so there may be more).
type lister func(ctx context.Context, now time.Time) (items []*txItem, full bool, err error)

// dispatchOnce runs in one batch transaction what was handed off and,
// when poll is set or the hand-off overflowed, what is due in the
// database. It reports whether there may be more to do at once.
func (s *Server) dispatchOnce(ctx context.Context, poll bool) (more bool) {
	items, more, overflow := s.handedOff(ctx)
	if poll || overflow {
		full := s.list(ctx, &items, s.storedReceiptItems, s.moItems, s.outcomeItems)
		more = more || full
	}
	s.runBatch(ctx, routine, items)
	return more
}

// list appends the due items of the kinds given and reports whether a
// list was full.
func (s *Server) list(ctx context.Context, items *[]*txItem, kinds ...lister) (full bool) {
	now := s.now()
	for _, list := range kinds {
		its, f, err := list(ctx, now)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("dispatcher step failed", "err", err)
			}
			continue
		}
		*items = append(*items, its...)
		full = full || f
	}
	return full
}

// chores runs the periodic steps.
func (s *Server) chores(ctx context.Context) {
	for ctx.Err() == nil {
		var items []*txItem
		more := s.list(ctx, &items, s.expiredItems)
		s.runBatch(ctx, routine, items)
		if !more {
			break
		}
	}
	if err := s.expirePartials(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("dispatcher step failed", "step", "expire partial MOs", "err", err)
	}
	if err := s.updateDepth(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("dispatcher step failed", "step", "outbox depth", "err", err)
	}
}

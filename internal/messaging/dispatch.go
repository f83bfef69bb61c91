package messaging

import (
	"context"
	"time"
)

// cleanupEvery is how often handed-over messages past the retention are
// deleted.
const cleanupEvery = 10 * time.Minute

// dispatchLoop does the database-side work that follows the SMPP traffic:
// matching receipts, deciding expired messages, handing MOs and outcomes
// to the Handler, dropping incomplete MOs, and keeping the outbox_depth
// gauge.
func (s *Server) dispatchLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	var lastCleanup time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dispatchWake:
		case <-t.C:
		}
		for ctx.Err() == nil && s.dispatchOnce(ctx) {
		}
		if now := s.now(); now.Sub(lastCleanup) >= cleanupEvery {
			lastCleanup = now
			if err := s.cleanup(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("cannot delete old messages", "err", err)
			}
		}
		t.Reset(s.cfg.PollInterval)
	}
}

// dispatchOnce runs one pass and reports whether a batch was full, so
// that there may be more to do at once.
func (s *Server) dispatchOnce(ctx context.Context) (more bool) {
	steps := []struct {
		name string
		fn   func(context.Context) (int, error)
	}{
		{"apply receipts", s.applyReceipts},
		{"sweep expired messages", s.sweepExpired},
		{"hand over MOs", s.handOverMOs},
		{"hand over receipts", s.handOverReceipts},
	}
	for _, st := range steps {
		n, err := st.fn(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("dispatcher step failed", "step", st.name, "err", err)
			}
			continue
		}
		more = more || n == listBatch
	}
	if err := s.expirePartials(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("dispatcher step failed", "step", "expire partial MOs", "err", err)
	}
	if err := s.updateDepth(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("dispatcher step failed", "step", "outbox depth", "err", err)
	}
	return more
}

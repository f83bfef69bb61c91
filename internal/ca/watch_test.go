package ca

import (
	"context"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// TestWatchRevocations checks that a revocation committed by another
// process (here another CA on its own connection to the same database,
// as the `mobileid ca revoke` command is) reaches this process's OnRevoke
// callbacks, so that its OCSP responder drops a cached good answer.
func TestWatchRevocations(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		r := newRegistration(t, tc.vendor, newECKey(t), newECKey(t))
		rec, _ := tc.issue(t, r.request(t, ProfileAuthentication))
		seen := make(chan *big.Int, 4)
		tc.OnRevoke(func(s *big.Int) { seen <- s })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go tc.WatchRevocations(ctx, 10*time.Millisecond)
		time.Sleep(50 * time.Millisecond) // the watcher's first look

		other, err := New(Config{BaseURL: testBaseURL}, tc.keys, storetest.Another(t, db), nil, slog.New(&auditLog{}), nil, tc.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Revoke(ctx, rec.Serial, ReasonKeyCompromise, tc.clock.Now()); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-seen:
			if s.Cmp(rec.Serial) != 0 {
				t.Errorf("OnRevoke(%x), want %x", s, rec.Serial)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a revocation by another process did not reach OnRevoke")
		}
	})
}

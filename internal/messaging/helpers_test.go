package messaging

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/store"
)

const (
	testMSISDN  = "37251234567"
	testService = "3725000"
	testNode    = "node-a"
)

// testConfig returns a configuration with short timings, bound to addrs
// with the fake's credentials.
func testConfig(addrs ...string) Config {
	cfg := Config{
		ServiceNumber:   testService,
		NodeID:          testNode,
		Window:          8,
		EnquireLink:     time.Minute,
		ResponseTimeout: 3 * time.Second,
		ReconnectMin:    10 * time.Millisecond,
		ReconnectMax:    50 * time.Millisecond,
		ThrottleBackoff: 20 * time.Millisecond,
		HandlerRetry:    10 * time.Millisecond,
		PollInterval:    20 * time.Millisecond,
	}
	for _, a := range addrs {
		cfg.Binds = append(cfg.Binds, Bind{Addr: a, SystemID: "mid", Password: "secret"})
	}
	return cfg
}

// recorder is a Handler that records what it is given, writes a row per
// call into handled_log with the transaction (so tests can see that a
// refused hand-over left nothing behind), and fails on demand.
type recorder struct {
	mu          sync.Mutex
	mos         []*MO
	receipts    []*Receipt
	failMO      int // calls left to fail
	failReceipt int
	moCalls     int
	rcptCalls   int
	// afterCommit counts the AfterCommit hooks that ran, by kind.
	afterCommit map[string]int
}

// hook registers an AfterCommit hook that counts kind.
func (r *recorder) hook(ctx context.Context, kind string) error {
	if !AfterCommit(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.afterCommit == nil {
			r.afterCommit = map[string]int{}
		}
		r.afterCommit[kind]++
	}) {
		return errors.New("AfterCommit outside a hand-over")
	}
	return nil
}

var errHandlerDown = errors.New("handler down")

func (r *recorder) HandleMO(ctx context.Context, tx *sql.Tx, mo *MO) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO handled_log (kind, ref) VALUES ('mo', $1)`, mo.ID); err != nil {
		return err
	}
	if err := r.hook(ctx, "mo"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moCalls++
	if r.failMO > 0 {
		r.failMO--
		return errHandlerDown
	}
	r.mos = append(r.mos, mo)
	return nil
}

func (r *recorder) HandleReceipt(ctx context.Context, tx *sql.Tx, rc *Receipt) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO handled_log (kind, ref) VALUES ('receipt', $1)`, rc.MessageID); err != nil {
		return err
	}
	if err := r.hook(ctx, "receipt"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rcptCalls++
	if r.failReceipt > 0 {
		r.failReceipt--
		return errHandlerDown
	}
	r.receipts = append(r.receipts, rc)
	return nil
}

func (r *recorder) gotMOs() []*MO {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*MO(nil), r.mos...)
}

func (r *recorder) gotReceipts() []*Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Receipt(nil), r.receipts...)
}

// receiptFor returns the receipt of message id, if handed over.
func (r *recorder) receiptFor(id int64) *Receipt {
	for _, rc := range r.gotReceipts() {
		if rc.MessageID == id {
			return rc
		}
	}
	return nil
}

// testServer is a running Server.
type testServer struct {
	*Server
	t      testing.TB
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t testing.TB, db *store.DB, cfg Config, h Handler, now func() time.Time) *testServer {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE IF NOT EXISTS handled_log (kind TEXT NOT NULL, ref BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, db, h, logger, reg, now)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, t: t, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop ends Run and waits for it, as a process shutdown would.
func (ts *testServer) stop() {
	ts.once.Do(func() {
		ts.cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				ts.t.Errorf("Run() = %v", err)
			}
		case <-time.After(20 * time.Second):
			ts.t.Error("Run did not return after cancel")
		}
	})
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// smscID waits until segment seq of message id is accepted and returns
// the SMSC's message id for it.
func smscID(t testing.TB, db *store.DB, id int64, seq int) string {
	t.Helper()
	var smsc sql.NullString
	waitFor(t, "segment accepted", func() bool {
		err := db.QueryRowContext(t.Context(), `SELECT smsc_id FROM messaging_segment WHERE message_id = $1 AND seq = $2`,
			id, seq).Scan(&smsc)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		return smsc.Valid
	})
	return smsc.String
}

// count runs a COUNT(*) query.
func count(t testing.TB, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// clock is a settable clock for the tests of time-outs.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// packet returns n octets of recognisable test data.
func packet(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

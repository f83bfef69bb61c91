package messaging

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mobileid/internal/smpp"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// idle returns a Server that does not run: its Send methods and batches
// work, nothing is sent or handed over unless the test says so.
func idle(t *testing.T, db *store.DB, h Handler, now func() time.Time) *Server {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE IF NOT EXISTS handled_log (kind TEXT NOT NULL, ref BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	s, err := New(testConfig(), db, h, nil, nil, now)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return s
}

// insertWaitingMO writes a complete MO from sender, waiting for the
// Handler, and returns its id.
func insertWaitingMO(t *testing.T, db *store.DB, sender string, at time.Time) int64 {
	t.Helper()
	var id int64
	err := db.QueryRowContext(t.Context(), `INSERT INTO messaging_mo (sender, recipient, secured, packet, text, segments, received_at, next_at)
		VALUES ($1, $2, 1, $3, '', 1, $4, $4) RETURNING id`, sender, testService, packet(12), micros(at)).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// insertDecided writes a message to msisdn whose outcome waits for the
// Handler, and returns its id.
func insertDecided(t *testing.T, db *store.DB, msisdn string, at time.Time) int64 {
	t.Helper()
	var id int64
	err := db.QueryRowContext(t.Context(), `INSERT INTO messaging_outbox (msisdn, esm_class, protocol_id, data_coding,
		registered_delivery, segments, created_at, valid_until, outcome, outcome_at, next_at)
		VALUES ($1, 64, 127, 246, 1, 1, $2, $3, $4, $2, $2) RETURNING id`,
		msisdn, micros(at), micros(at.Add(time.Minute)), int(Delivered)).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// picky is a Handler that writes a handled_log row for every offer, as
// recorder does, and refuses the items of the senders (MOs) and MSISDNs
// (receipts) named in refuse, as many times as given.
type picky struct {
	mu      sync.Mutex
	refuse  map[string]int
	offered map[string]int // by sender or MSISDN
	taken   []string
}

func newPicky(refuse map[string]int) *picky {
	return &picky{refuse: refuse, offered: map[string]int{}}
}

func (p *picky) handle(ctx context.Context, tx *sql.Tx, kind, who string, ref int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO handled_log (kind, ref) VALUES ($1, $2)`, kind, ref); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offered[who]++
	if p.refuse[who] > 0 {
		p.refuse[who]--
		return errHandlerDown
	}
	p.taken = append(p.taken, who)
	return nil
}

func (p *picky) HandleMO(ctx context.Context, tx *sql.Tx, mo *MO) error {
	return p.handle(ctx, tx, "mo", mo.From, mo.ID)
}

func (p *picky) HandleReceipt(ctx context.Context, tx *sql.Tx, r *Receipt) error {
	return p.handle(ctx, tx, "receipt", r.MSISDN, r.MessageID)
}

func (p *picky) offers(who string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offered[who]
}

func TestBatchHandlerErrorRollsBackOnlyThatItem(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		h := newPicky(map[string]int{"37250000002": 1, "37260000002": 1})
		s := idle(t, db, h, clk.Now)
		ctx := t.Context()
		mos := map[string]int64{}
		outcomes := map[string]int64{}
		for _, n := range []string{"1", "2", "3"} {
			mos["3725000000"+n] = insertWaitingMO(t, db, "3725000000"+n, clk.Now())
			outcomes["3726000000"+n] = insertDecided(t, db, "3726000000"+n, clk.Now())
		}

		// One pass: all six items in one transaction, the second MO and
		// the second outcome refused by the Handler.
		commits := s.commits.Load()
		var items []*txItem
		if more := s.list(ctx, &items, s.moItems, s.outcomeItems); more || len(items) != 6 {
			t.Fatalf("listed %d items (more %v), want 6", len(items), more)
		}
		s.runBatch(ctx, routine, items)
		if n := s.commits.Load() - commits; n != 1 {
			t.Errorf("transactions for one batch = %d, want 1", n)
		}
		// The others are handed over; the refused ones wait for their
		// back-off, and what the Handler wrote for them is gone.
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_mo`); n != 1 {
			t.Errorf("MOs left = %d, want 1", n)
		}
		var attempts int
		var nextAt int64
		if err := db.QueryRowContext(ctx, `SELECT attempts, next_at FROM messaging_mo WHERE id = $1`, mos["37250000002"]).
			Scan(&attempts, &nextAt); err != nil {
			t.Fatalf("the refused MO: %v", err)
		}
		if attempts != 1 || !fromMicros(nextAt).After(clk.Now()) {
			t.Errorf("refused MO: attempts %d, next_at %v; want 1 and after %v", attempts, fromMicros(nextAt), clk.Now())
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_outbox WHERE handled_at IS NULL`); n != 1 {
			t.Errorf("outcomes not handed over = %d, want 1", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_outbox WHERE handled_at IS NULL AND id = $1 AND attempts = 1`,
			outcomes["37260000002"]); n != 1 {
			t.Error("the refused outcome is not the one left, postponed")
		}
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log`); n != 4 {
			t.Errorf("handled_log rows = %d, want 4: the refused items' rows rolled back", n)
		}
		for _, ref := range []int64{mos["37250000002"], outcomes["37260000002"]} {
			if n := count(t, db, `SELECT COUNT(*) FROM handled_log WHERE ref = $1`, ref); n != 0 {
				t.Errorf("handled_log keeps %d rows of refused item %d", n, ref)
			}
		}

		// Nothing is due before the back-off ends.
		items = nil
		s.list(ctx, &items, s.moItems, s.outcomeItems)
		if len(items) != 0 {
			t.Errorf("%d items due during the back-off", len(items))
		}
		// Then the refused items are offered again, and taken.
		clk.Advance(time.Second)
		items = nil
		s.list(ctx, &items, s.moItems, s.outcomeItems)
		s.runBatch(ctx, routine, items)
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_mo`) + count(t, db, `SELECT COUNT(*) FROM messaging_outbox WHERE handled_at IS NULL`); n != 0 {
			t.Errorf("items left after the retry = %d", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log`); n != 6 {
			t.Errorf("handled_log rows = %d, want 6", n)
		}
		for who, want := range map[string]int{"37250000001": 1, "37250000002": 2, "37260000001": 1, "37260000002": 2, "37260000003": 1} {
			if got := h.offers(who); got != want {
				t.Errorf("%s offered %d times, want %d", who, got, want)
			}
		}
	})
}

// holdWrites keeps other transactions from writing the outbox until the
// returned function is called.
func holdWrites(t *testing.T, db *store.DB) (release func()) {
	t.Helper()
	other := storetest.Another(t, db)
	tx, err := other.BeginTx(t.Context(), nil) // SQLite: BEGIN IMMEDIATE takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	if db.Dialect() == store.Postgres {
		if _, err := tx.ExecContext(t.Context(), `LOCK TABLE messaging_outbox IN EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
	}
	return func() { tx.Rollback() }
}

// queued returns how many SendPacket calls wait for the group commit.
func (s *Server) queued() int {
	s.sendQ.mu.Lock()
	defer s.sendQ.mu.Unlock()
	return len(s.sendQ.pending)
}

type sendResult struct {
	id  int64
	err error
}

// sendConcurrently calls SendPacket for each MSISDN while a commit is held
// up, so that all but the first queue behind it, and returns the results
// and the number of transactions that wrote the queued calls.
func sendConcurrently(t *testing.T, db *store.DB, s *Server, msisdns []string) ([]sendResult, uint64) {
	t.Helper()
	release := holdWrites(t, db)
	res := make([]sendResult, len(msisdns))
	var wg sync.WaitGroup
	for i, m := range msisdns {
		wg.Go(func() {
			id, err := s.SendPacket(context.Background(), m, packet(20+i), time.Minute)
			res[i] = sendResult{id, err}
		})
		if i == 0 {
			// The first caller commits at once, and waits for the lock.
			waitFor(t, "the first commit under way", func() bool { return s.queued() == 0 && s.commits.Load() > 0 })
		}
	}
	waitFor(t, "the callers queued", func() bool { return s.queued() == len(msisdns)-1 })
	commits := s.commits.Load()
	release()
	wg.Wait()
	return res, s.commits.Load() - commits
}

func TestGroupCommitGivesEachCallerItsID(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := idle(t, db, &recorder{}, nil)
		msisdns := make([]string, 12)
		for i := range msisdns {
			msisdns[i] = testMSISDN
		}
		res, txs := sendConcurrently(t, db, s, msisdns)
		if txs != 1 {
			t.Errorf("transactions for %d queued calls = %d, want 1", len(msisdns)-1, txs)
		}
		seen := map[int64]bool{}
		for i, r := range res {
			if r.err != nil {
				t.Fatalf("caller %d: %v", i, r.err)
			}
			if seen[r.id] {
				t.Fatalf("id %d returned twice", r.id)
			}
			seen[r.id] = true
			// The id is that of the caller's own message.
			var ud []byte
			if err := db.QueryRowContext(t.Context(), `SELECT ud FROM messaging_segment WHERE message_id = $1 AND seq = 1`, r.id).Scan(&ud); err != nil {
				t.Fatalf("caller %d, message %d: %v", i, r.id, err)
			}
			if want := packet(20 + i); len(ud) != 3+len(want) || string(ud[3:]) != string(want) {
				t.Errorf("caller %d got message %d, which holds % x", i, r.id, ud)
			}
		}
	})
}

func TestGroupCommitIsolatesAFailingMessage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := idle(t, db, &recorder{}, nil)
		const bad = "37259999999"
		// The database refuses messages to one number.
		refuse := []string{`CREATE TRIGGER refuse_bad BEFORE INSERT ON messaging_outbox WHEN NEW.msisdn = '` + bad + `'
			BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
		if db.Dialect() == store.Postgres {
			refuse = []string{`CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN IF NEW.msisdn = '` + bad + `' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`,
				`CREATE TRIGGER refuse_bad BEFORE INSERT ON messaging_outbox FOR EACH ROW EXECUTE FUNCTION refuse_bad()`}
		}
		for _, q := range refuse {
			if _, err := db.ExecContext(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		msisdns := []string{testMSISDN, testMSISDN, testMSISDN, bad, testMSISDN, testMSISDN}
		res, _ := sendConcurrently(t, db, s, msisdns)
		for i, r := range res {
			switch {
			case msisdns[i] == bad && r.err == nil:
				t.Errorf("the refused message was queued as %d", r.id)
			case msisdns[i] != bad && r.err != nil:
				t.Errorf("caller %d failed with the refused message: %v", i, r.err)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_outbox`); n != len(msisdns)-1 {
			t.Errorf("messages queued = %d, want %d", n, len(msisdns)-1)
		}
	})
}

// crashChildDSN, in the environment of the test binary run again as a
// child process, makes TestCrashChildProcess a node on that database that
// dies in the middle of a batch hand-over.
const crashChildDSN = "MESSAGING_TEST_CRASH_DSN"

// crashExit is the exit status of the child that died as planned.
const crashExit = 3

func TestCrashChildProcess(t *testing.T) {
	dsn := os.Getenv(crashChildDSN)
	if dsn == "" {
		t.Skip("run by TestCrashDuringBatchHandOver")
	}
	db, err := store.Open(context.Background(), store.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	// The second MO of the batch brings the node down: the first was
	// handed over in the same transaction, which never commits.
	var calls int
	h := handlerFuncs{mo: func(ctx context.Context, tx *sql.Tx, mo *MO) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO handled_log (kind, ref) VALUES ('mo', $1)`, mo.ID); err != nil {
			return err
		}
		if calls++; calls == 2 {
			os.Exit(crashExit)
		}
		return nil
	}}
	s, err := New(testConfig(), db, h, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Run(context.Background())
	t.Fatal("Run returned")
}

// handlerFuncs is a Handler made of functions.
type handlerFuncs struct {
	mo func(ctx context.Context, tx *sql.Tx, mo *MO) error
}

func (h handlerFuncs) HandleMO(ctx context.Context, tx *sql.Tx, mo *MO) error {
	return h.mo(ctx, tx, mo)
}
func (h handlerFuncs) HandleReceipt(context.Context, *sql.Tx, *Receipt) error { return nil }

func TestCrashDuringBatchHandOver(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		idle(t, db, &recorder{}, nil)
		var ids []int64
		for _, from := range []string{"37250000001", "37250000002", "37250000003"} {
			ids = append(ids, insertWaitingMO(t, db, from, time.Now()))
		}
		// A node takes the three MOs in one batch and dies before its
		// commit.
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildDSN+"="+db.Config().DSN)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != crashExit {
			t.Fatalf("child node: %v, want exit status %d\n%s", err, crashExit, out)
		}
		// Nothing of the batch committed.
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_mo`); n != 3 {
			t.Errorf("MOs waiting after the crash = %d, want 3", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log`); n != 0 {
			t.Errorf("handled_log rows after the crash = %d, want 0", n)
		}

		// The restarted node hands each over exactly once.
		db = storetest.Reopen(t, db)
		h := &recorder{}
		start(t, db, testConfig(), h, nil)
		waitFor(t, "three MOs handed over", func() bool { return len(h.gotMOs()) == 3 })
		// The recorder sees a hand-over before its commit.
		waitFor(t, "hand-overs committed", func() bool { return count(t, db, `SELECT COUNT(*) FROM handled_log`) >= 3 })
		time.Sleep(100 * time.Millisecond)
		var got []int64
		for _, mo := range h.gotMOs() {
			got = append(got, mo.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Errorf("MOs handed over: %v, want %v once each", got, ids)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log`); n != 3 {
			t.Errorf("handled_log rows = %d, want 3", n)
		}
	})
}

func TestWorkerBatchFailureAnswersOnlyTheFailedPDU(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		h := &recorder{}
		ts := start(t, db, testConfig(f.addr()), h, nil)
		fc := f.bound()
		// Receipts whose message id is not known go to a table that is
		// gone; MOs do not.
		if _, err := db.ExecContext(t.Context(), `ALTER TABLE messaging_receipt_in RENAME TO messaging_receipt_away`); err != nil {
			t.Fatal(err)
		}
		var pdus []*smpp.PDU
		for i := range 6 {
			if i%3 == 1 {
				pdus = append(pdus, receiptPDU("unknown", smpp.StateDelivered, nil))
			} else {
				pdus = append(pdus, moPDU(testMSISDN, false, 0x00, []byte{byte('a' + i)}))
			}
		}
		// Sent back to back, so that the worker finds several waiting.
		chs := make([]chan *smpp.PDU, len(pdus))
		for i, p := range pdus {
			chs[i] = fc.expect(p)
		}
		for _, p := range pdus {
			if err := fc.c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		for i, ch := range chs {
			want := smpp.StatusOK
			if pdus[i].ESMClass == smpp.ESMClassReceipt {
				want = smpp.StatusSystemError
			}
			if p := wait(t, ch); p.Status != want {
				t.Errorf("deliver_sm %d answered %v, want %v", i, p.Status, want)
			}
		}
		waitFor(t, "four MOs handed over", func() bool { return len(h.gotMOs()) == 4 })
		if got := testutil.ToFloat64(ts.m.mo); got != 4 {
			t.Errorf("mo_total = %v, want 4", got)
		}
	})
}

func TestExpiredLeaseIsSentByAnotherNode(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := idle(t, db, &recorder{}, nil)
		dead, err := s.SendPacket(t.Context(), testMSISDN, packet(31), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		alive, err := s.SendPacket(t.Context(), testMSISDN, packet(32), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Two nodes claimed a message each; one died, its lease ran out.
		for id, lease := range map[int64]time.Duration{dead: -time.Second, alive: time.Hour} {
			if _, err := db.ExecContext(t.Context(), `UPDATE messaging_segment SET state = 'inflight', owner = 'node-x', lease_until = $1
				WHERE message_id = $2`, micros(time.Now().Add(lease)), id); err != nil {
				t.Fatal(err)
			}
		}
		f := newFakeSMSC(t)
		start(t, db, testConfig(f.addr()), &recorder{}, nil)
		smscID(t, db, dead, 1)
		time.Sleep(100 * time.Millisecond) // five poll intervals
		if subs := f.submits(); len(subs) != 1 || len(subs[0].ShortMessage) != 3+31 {
			t.Errorf("submit_sm = %d, want only the message whose lease ran out", len(subs))
		}
	})
}

func TestGroupCommitCallerGivesUpWhileQueued(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := idle(t, db, &recorder{}, nil)
		release := holdWrites(t, db)
		first := make(chan error, 1)
		go func() {
			_, err := s.SendPacket(context.Background(), testMSISDN, packet(20), time.Minute)
			first <- err
		}()
		waitFor(t, "the first commit under way", func() bool { return s.queued() == 0 && s.commits.Load() > 0 })
		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan error, 1)
		go func() {
			_, err := s.SendPacket(ctx, testMSISDN, packet(21), time.Minute)
			second <- err
		}()
		waitFor(t, "the second caller queued", func() bool { return s.queued() == 1 })
		cancel()
		if err := <-second; !errors.Is(err, context.Canceled) {
			t.Errorf("SendPacket after its context ended while queued = %v, want context.Canceled", err)
		}
		release()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_outbox`); n != 1 {
			t.Errorf("messages queued = %d, want only the first", n)
		}
	})
}

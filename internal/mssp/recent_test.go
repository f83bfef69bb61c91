package mssp

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/etsi"
	"mobileid/internal/messaging"
	"mobileid/internal/ota"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
	"mobileid/internal/vmac"
)

// recordingSender stands in for the Messaging Server: every command gets
// the next message id.
type recordingSender struct{ next int64 }

func (s *recordingSender) SendPacketTx(ctx context.Context, tx *sql.Tx, msisdn string, packet []byte, validity time.Duration) (int64, error) {
	s.next++
	return s.next, nil
}

func (s *recordingSender) Committed() {}

func TestRecent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		clock := newAPClock()
		recs := testRecords(t, 2)
		sims := imported(t, db, recs)
		users, err := NewUsers(db, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		aps := newTestAPs(t, db, clock)
		cfg := APConfig{AP: AP{ID: "http://desk.example/ra", Name: "Desk", Profiles: []string{RegistrationProfile}}, Password: "desk-secret-1"}
		if err := aps.Add(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		ap, err := aps.Get(ctx, cfg.ID)
		if err != nil {
			t.Fatal(err)
		}
		quiet := slog.New(slog.DiscardHandler)
		e, err := NewEngine(Config{Validator: &Validator{}}, db, sims, users, quiet, quiet, nil, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		e.SetSender(&recordingSender{})

		info := func(apTransID, msisdn string) *Transaction {
			t.Helper()
			tx, err := e.Register(ctx, aps, &RegistrationRequest{AP: ap, APTransID: apTransID, Instant: clock.Now(), MSISDN: msisdn,
				Mode: etsi.AsynchClientServer, Operation: OpInfo, TimeOut: time.Minute})
			if err != nil {
				t.Fatalf("Register(Info) = %v", err)
			}
			return tx
		}
		created := clock.Now()
		first := info("A1", recs[0].MSISDN)
		clock.Advance(time.Second)
		second := info("A2", recs[1].MSISDN)

		// The first one: the SMSC's receipt, then the card's answer.
		clock.Advance(time.Second)
		delivered := clock.Now()
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			return e.HandleReceipt(ctx, tx, &messaging.Receipt{MessageID: 1, MSISDN: recs[0].MSISDN, Outcome: messaging.Delivered})
		})
		if err != nil {
			t.Fatalf("HandleReceipt = %v", err)
		}
		r, err := e.TransactionRecord(ctx, first.TransID)
		if err != nil {
			t.Fatalf("TransactionRecord = %v", err)
		}
		tar, _ := ota.ParseTAR(r.TAR)
		var ref int64
		if err := db.QueryRowContext(ctx, `SELECT tx_ref FROM mssp_tx WHERE trans_id = $1`, first.TransID).Scan(&ref); err != nil {
			t.Fatal(err)
		}
		data, err := vmac.MarshalResponse(&vmac.InfoResponse{Ref: uint32(ref), Result: vmac.StatusOK, VersionMajor: 1, ICCID: recs[0].ICCID, State: vmac.StatePersonalised,
			PIN1TriesLeft: 3, PIN2TriesLeft: 3, PUKTriesLeft: 10})
		if err != nil {
			t.Fatal(err)
		}
		cmd := &ota.Command{SPI: commandSPI, KIc: recs[0].KIc, KID: recs[0].KID, TAR: tar, Counter: r.Counter}
		pkt, err := ota.WrapResponse(&ota.Response{TAR: tar, Counter: r.Counter, Data: data}, cmd, keysOf(recs[0]))
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		finished := clock.Now()
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			return e.HandleMO(ctx, tx, &messaging.MO{From: recs[0].MSISDN, Packet: pkt, Secured: true})
		})
		if err != nil {
			t.Fatalf("HandleMO = %v", err)
		}

		got, err := e.Recent(ctx, 10)
		if err != nil {
			t.Fatalf("Recent = %v", err)
		}
		if len(got) != 2 || got[0].TransID != second.TransID || got[1].TransID != first.TransID {
			t.Fatalf("Recent = %d transactions, want the second then the first", len(got))
		}
		done := got[1]
		want := TxRecord{
			TransID: first.TransID, APID: ap.ID, APTransID: "A1", Kind: kindRegister, Operation: OpInfo, MSISDN: recs[0].MSISDN,
			Mode: etsi.AsynchClientServer, Profile: RegistrationProfile, State: StateValidated, Status: etsi.CodeRequestOK,
			Message: "card information read", Counter: 1, TAR: recs[0].TAR.String(),
			Created: created, Delivered: delivered, Finished: finished, Deadline: created.Add(time.Minute),
		}
		if diff := cmp.Diff(want, *done); diff != "" {
			t.Errorf("Recent()[1] (-want +got):\n%s", diff)
		}
		if p := got[0]; p.State != StateSent || p.Status != etsi.CodeOutstandingTransaction || !p.Delivered.IsZero() || !p.Finished.IsZero() || p.Counter != 1 {
			t.Errorf("Recent()[0] = %+v, want a sent transaction with only its creation time", *p)
		}
		if got, err := e.Recent(ctx, 1); err != nil || len(got) != 1 || got[0].TransID != second.TransID {
			t.Errorf("Recent(1) = %d transactions, %v; want the newest", len(got), err)
		}

		// The worker's step, answered, is read back as well.
		answered := created.Add(2500 * time.Millisecond)
		if _, err := db.ExecContext(ctx, `UPDATE mssp_tx SET answered_at = $1 WHERE trans_id = $2`, answered.UnixMicro(), first.TransID); err != nil {
			t.Fatal(err)
		}
		if r, err := e.TransactionRecord(ctx, first.TransID); err != nil || !r.Answered.Equal(answered) {
			t.Errorf("TransactionRecord = %+v, %v; want answered at %v", r, err, answered)
		}
		if _, err := e.TransactionRecord(ctx, "Tnosuchtransaction00"); !errors.Is(err, ErrUnknownTransaction) {
			t.Errorf("TransactionRecord(unknown) = %v, want ErrUnknownTransaction", err)
		}
	})
}

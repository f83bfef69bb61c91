package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mobileid/internal/smpp"
	"mobileid/internal/store"
)

// Segment states in messaging_segment.state.
const (
	segQueued    = "queued"
	segInflight  = "inflight"
	segAccepted  = "accepted"
	segDelivered = "delivered"
	segFailed    = "failed"
)

const (
	// claimBatch bounds the segments claimed in one transaction.
	claimBatch = 256
	// listBatch bounds the items one dispatcher pass takes per kind.
	listBatch = 100
	// receiptGrace is how long after the end of validity a message whose
	// segments reached the SMSC waits for a receipt before it is swept to
	// Expired (or to Delivered, with failure-only receipts).
	receiptGrace = 30 * time.Second
	// receiptMatchWindow is how long a receipt whose SMSC message id is
	// not known yet is kept: it may overtake the submit_sm_resp that
	// carries the id when it comes on another bind.
	receiptMatchWindow = time.Minute
	receiptMatchRetry  = time.Second
	// retention is how long a finished, handed-over message stays in the
	// outbox, so that late receipts still find it.
	retention = 24 * time.Hour
	// maxHandlerRetry caps the back-off of refused hand-overs.
	maxHandlerRetry = time.Minute
	// absentSubscriber is network_error_code 03 00 1B: GSM, absent
	// subscriber.
	absentSubscriber = 0x03<<16 | 0x001B
)

// mtParams are the submit_sm fields that depend on the kind of message.
type mtParams struct {
	esmClass, protocolID, dataCoding byte
}

// outSeg is a claimed segment with what its submit_sm needs.
type outSeg struct {
	id, messageID      int64
	seq                int
	ud                 []byte
	msisdn             string
	mt                 mtParams
	registeredDelivery byte
	validUntil         time.Time
}

// enqueue writes a message and its segments to the outbox. split returns
// the TP-UD of each segment for a concatenation reference.
func (s *Server) enqueue(ctx context.Context, tx *sql.Tx, msisdn string, p mtParams, validity time.Duration, split func(ref uint16) ([][]byte, error)) (int64, error) {
	if !validAddress(msisdn) {
		return 0, fmt.Errorf("queue message for %q: %w", msisdn, ErrBadAddress)
	}
	if validity <= 0 {
		return 0, ErrBadValidity
	}
	uds, err := split(0)
	if err != nil {
		return 0, fmt.Errorf("split message: %w", err)
	}
	now := s.now()
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO messaging_outbox
		(msisdn, esm_class, protocol_id, data_coding, registered_delivery, segments, created_at, valid_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		msisdn, int(p.esmClass), int(p.protocolID), int(p.dataCoding), int(s.cfg.RegisteredDelivery), len(uds),
		micros(now), micros(now)+validity.Microseconds()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert outbox message: %w", err)
	}
	if len(uds) > 1 {
		// Deriving the reference from the id keeps consecutive long
		// messages to one handset apart.
		if uds, err = split(uint16(id % 256)); err != nil {
			return 0, fmt.Errorf("split message: %w", err)
		}
	}
	for i, ud := range uds {
		if _, err := tx.ExecContext(ctx, `INSERT INTO messaging_segment (message_id, seq, ud, state, next_at)
			VALUES ($1, $2, $3, $4, $5)`, id, i+1, ud, segQueued, micros(now)); err != nil {
			return 0, fmt.Errorf("insert outbox segment: %w", err)
		}
	}
	s.log.Debug("message queued", "id", id, "to", msisdn, "segments", len(uds), "dcs", p.dataCoding)
	return id, nil
}

// leaseFor is how long a claimed segment belongs to this node: long
// enough for the submit_sm and its response, after which the bind would
// have been dropped and the segment released anyway.
func (s *Server) leaseFor() time.Duration { return 3 * s.cfg.ResponseTimeout }

// sendLoop claims segments while the binds have free window and hands
// them to the sessions.
func (s *Server) sendLoop(ctx context.Context) {
	t := time.NewTimer(s.cfg.PollInterval)
	defer t.Stop()
	for {
		for ctx.Err() == nil && s.sendOnce(ctx) {
		}
		t.Reset(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-s.senderWake:
		case <-t.C:
		}
	}
}

// sendOnce claims as many segments as the binds can take and submits
// them. It reports whether there may be more to send right away.
func (s *Server) sendOnce(ctx context.Context) bool {
	free := 0
	for _, ss := range s.sessions {
		free += ss.free()
	}
	if free == 0 {
		return false
	}
	n := min(free, claimBatch)
	segs, err := s.claim(ctx, n)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("cannot claim outbox segments", "err", err)
		}
		return false
	}
	var back []*outSeg
	for _, seg := range segs {
		if !s.submit(seg) {
			back = append(back, seg)
		}
	}
	if len(back) > 0 {
		s.release(context.WithoutCancel(ctx), back)
	}
	return len(segs) == n && len(back) == 0
}

// submit gives seg to the next bind, round robin, that takes it.
func (s *Server) submit(seg *outSeg) bool {
	for i := range s.sessions {
		ss := s.sessions[(s.rr+i)%len(s.sessions)]
		if ss.submit(seg) {
			s.rr = (s.rr + i + 1) % len(s.sessions)
			return true
		}
	}
	return false
}

// claim leases up to n ready segments to this node, oldest first.
func (s *Server) claim(ctx context.Context, n int) ([]*outSeg, error) {
	now := s.now()
	lock := ""
	if s.db.Dialect() == store.Postgres {
		lock = " FOR UPDATE OF s SKIP LOCKED"
	}
	q := `UPDATE messaging_segment SET state = 'inflight', owner = $1, lease_until = $2, attempts = attempts + 1
		WHERE id IN (SELECT s.id FROM messaging_segment s JOIN messaging_outbox m ON m.id = s.message_id
			WHERE s.state IN ('queued', 'inflight') AND (s.state = 'queued' OR s.lease_until < $3)
			AND s.next_at <= $3 AND m.outcome IS NULL AND m.valid_until > $3
			ORDER BY s.id LIMIT $4` + lock + `)
		RETURNING id`
	var segs []*outSeg
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		segs = nil
		ids, err := queryIDs(ctx, tx, q, s.cfg.NodeID, micros(now.Add(s.leaseFor())), micros(now), n)
		if err != nil || len(ids) == 0 {
			return err
		}
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, `SELECT s.id, s.message_id, s.seq, s.ud, m.msisdn, m.esm_class, m.protocol_id,
			m.data_coding, m.registered_delivery, m.valid_until
			FROM messaging_segment s JOIN messaging_outbox m ON m.id = s.message_id
			WHERE s.id IN (`+placeholders(1, len(ids))+`) ORDER BY s.id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seg outSeg
			var esm, pid, dcs, rd int
			var valid int64
			if err := rows.Scan(&seg.id, &seg.messageID, &seg.seq, &seg.ud, &seg.msisdn, &esm, &pid, &dcs, &rd, &valid); err != nil {
				return err
			}
			seg.mt = mtParams{esmClass: byte(esm), protocolID: byte(pid), dataCoding: byte(dcs)}
			seg.registeredDelivery = byte(rd)
			seg.validUntil = fromMicros(valid)
			segs = append(segs, &seg)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim segments: %w", err)
	}
	return segs, nil
}

// submitPDU builds the submit_sm of seg. The validity period is what
// remains of the message's validity, rounded up to whole seconds so that
// a segment sent at once carries exactly the validity asked for.
func (s *Server) submitPDU(seg *outSeg) *smpp.PDU {
	rem := seg.validUntil.Sub(s.now())
	secs := max((rem+time.Second-1)/time.Second, 1)
	return &smpp.PDU{
		ID:                 smpp.SubmitSM,
		Source:             smpp.Address{TON: smpp.TONInternational, NPI: smpp.NPIISDN, Addr: s.cfg.ServiceNumber},
		Dest:               smpp.Address{TON: smpp.TONInternational, NPI: smpp.NPIISDN, Addr: seg.msisdn},
		ESMClass:           seg.mt.esmClass,
		ProtocolID:         seg.mt.protocolID,
		ValidityPeriod:     smpp.FormatRelative(secs * time.Second),
		RegisteredDelivery: seg.registeredDelivery,
		DataCoding:         seg.mt.dataCoding,
		ShortMessage:       seg.ud,
	}
}

// release puts claimed segments back in the queue, for this node or
// another to send.
func (s *Server) release(ctx context.Context, segs []*outSeg) {
	args := []any{micros(s.now()), s.cfg.NodeID}
	for _, seg := range segs {
		args = append(args, seg.id)
	}
	_, err := s.db.ExecContext(ctx, `UPDATE messaging_segment SET state = 'queued', owner = NULL, lease_until = NULL, next_at = $1
		WHERE owner = $2 AND state = 'inflight' AND id IN (`+placeholders(3, len(segs))+`)`, args...)
	if err != nil {
		// The lease runs out and the segments are claimed again.
		s.log.Error("cannot release segments", "count", len(segs), "err", err)
	}
	s.wakeSender()
}

// releaseOwn takes back what this node had in flight when it stopped.
func (s *Server) releaseOwn(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE messaging_segment SET state = 'queued', owner = NULL, lease_until = NULL
		WHERE state = 'inflight' AND owner = $1`, s.cfg.NodeID)
	return err
}

// accepted records the SMSC's message id of a segment.
func (s *Server) accepted(ctx context.Context, ss *session, seg *outSeg, smscID string) {
	_, err := s.db.ExecContext(ctx, `UPDATE messaging_segment SET state = 'accepted', owner = NULL, lease_until = NULL,
		bind = $1, smsc = $2, smsc_id = $3, submitted_at = $4 WHERE id = $5 AND state IN ('queued', 'inflight')`,
		ss.bind.Name, ss.bind.Addr, smscID, micros(s.now()), seg.id)
	if err != nil {
		// The segment stays in flight and is sent again when its lease
		// ends: a duplicate rather than a loss.
		s.log.Error("cannot record accepted segment", "message", seg.messageID, "seq", seg.seq, "err", err)
		return
	}
	s.m.sent.Inc()
}

// refused records a submit_sm refused for good: the message is
// Undeliverable.
func (s *Server) refused(ctx context.Context, seg *outSeg, st smpp.Status) {
	now := s.now()
	var decided bool
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockMessage(ctx, tx, seg.messageID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messaging_segment SET state = 'failed', owner = NULL, lease_until = NULL,
			submit_status = $1, done_at = $2 WHERE id = $3`, int64(st), micros(now), seg.id); err != nil {
			return err
		}
		var err error
		decided, err = s.decide(ctx, tx, seg.messageID, Undeliverable, now)
		return err
	})
	if err != nil {
		s.log.Error("cannot record refused segment", "message", seg.messageID, "seq", seg.seq, "err", err)
		return
	}
	s.decided(seg.messageID, Undeliverable, decided)
}

// decided counts a decided outcome and wakes the dispatcher to hand it over.
func (s *Server) decided(id int64, o Outcome, ok bool) {
	if !ok {
		return
	}
	s.m.receipts.WithLabelValues(o.String()).Inc()
	s.log.Info("message finished", "message", id, "outcome", o.String())
	s.wakeDispatcher()
}

// lockMessage serialises the transactions that decide a message's
// outcome, so that two receipts for two segments, handled at once by two
// nodes, cannot both miss the other. On SQLite a write takes the database
// lock at once, which also avoids a failing lock upgrade later.
func (s *Server) lockMessage(ctx context.Context, tx *sql.Tx, id int64) error {
	q := `UPDATE messaging_outbox SET next_at = next_at WHERE id = $1`
	if s.db.Dialect() == store.Postgres {
		q = `SELECT id FROM messaging_outbox WHERE id = $1 FOR UPDATE`
	}
	_, err := tx.ExecContext(ctx, q, id)
	return err
}

// decide sets the outcome of a message unless it has one.
func (s *Server) decide(ctx context.Context, tx *sql.Tx, id int64, o Outcome, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE messaging_outbox SET outcome = $1, outcome_at = $2, next_at = $2
		WHERE id = $3 AND outcome IS NULL`, int(o), micros(now), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// receiptOutcome maps a receipt's message_state to what it means for the
// message; final is false for intermediate states.
func receiptOutcome(st smpp.MessageState, netErr sql.NullInt64) (o Outcome, final bool) {
	switch st {
	case smpp.StateDelivered:
		return Delivered, true
	case smpp.StateExpired:
		if netErr.Valid && netErr.Int64 == absentSubscriber {
			return PhoneAbsent, true
		}
		return Expired, true
	case smpp.StateUndeliverable, smpp.StateRejected, smpp.StateDeleted:
		return Undeliverable, true
	}
	return 0, false
}

// applyReceipts matches stored receipts to segments.
func (s *Server) applyReceipts(ctx context.Context) (int, error) {
	ids, err := queryIDs(ctx, s.db, `SELECT id FROM messaging_receipt_in WHERE next_at <= $1 ORDER BY id LIMIT $2`,
		micros(s.now()), listBatch)
	if err != nil {
		return 0, fmt.Errorf("list receipts: %w", err)
	}
	for _, id := range ids {
		if err := s.applyReceipt(ctx, id); err != nil {
			return 0, fmt.Errorf("apply receipt %d: %w", id, err)
		}
	}
	return len(ids), nil
}

func (s *Server) applyReceipt(ctx context.Context, id int64) error {
	now := s.now()
	var (
		msgID   int64
		outcome Outcome
		decided bool
	)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		msgID, outcome, decided = 0, 0, false
		var (
			smsc, smscID string
			state        int
			netErr       sql.NullInt64
			receivedAt   int64
		)
		err := tx.QueryRowContext(ctx, `SELECT smsc, smsc_id, state, net_err, received_at FROM messaging_receipt_in
			WHERE id = $1`+s.skipLocked(), id).Scan(&smsc, &smscID, &state, &netErr, &receivedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // taken by another node
		} else if err != nil {
			return err
		}
		var segID int64
		err = tx.QueryRowContext(ctx, `SELECT id, message_id FROM messaging_segment WHERE smsc_id = $1
			ORDER BY CASE WHEN smsc = $2 THEN 0 ELSE 1 END, id DESC LIMIT 1`, smscID, smsc).Scan(&segID, &msgID)
		if errors.Is(err, sql.ErrNoRows) {
			if now.Sub(fromMicros(receivedAt)) < receiptMatchWindow {
				_, err := tx.ExecContext(ctx, `UPDATE messaging_receipt_in SET attempts = attempts + 1, next_at = $1 WHERE id = $2`,
					micros(now.Add(receiptMatchRetry)), id)
				return err
			}
			s.log.Warn("receipt for an unknown message id dropped", "smsc", smsc, "smsc_id", smscID,
				"state", smpp.MessageState(state).Stat())
			_, err := tx.ExecContext(ctx, `DELETE FROM messaging_receipt_in WHERE id = $1`, id)
			return err
		} else if err != nil {
			return err
		}
		if err := s.lockMessage(ctx, tx, msgID); err != nil {
			return err
		}
		o, final := receiptOutcome(smpp.MessageState(state), netErr)
		switch {
		case !final:
		case o == Delivered:
			if _, err := tx.ExecContext(ctx, `UPDATE messaging_segment SET state = 'delivered', owner = NULL, lease_until = NULL,
				receipt_state = $1, done_at = $2 WHERE id = $3 AND state <> 'failed'`, state, micros(now), segID); err != nil {
				return err
			}
			var open int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM messaging_segment WHERE message_id = $1 AND state <> 'delivered'`,
				msgID).Scan(&open); err != nil {
				return err
			}
			if open == 0 {
				outcome = Delivered
				if decided, err = s.decide(ctx, tx, msgID, Delivered, now); err != nil {
					return err
				}
			}
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE messaging_segment SET state = 'failed', owner = NULL, lease_until = NULL,
				receipt_state = $1, net_err = $2, done_at = $3 WHERE id = $4`, state, netErr, micros(now), segID); err != nil {
				return err
			}
			outcome = o
			if decided, err = s.decide(ctx, tx, msgID, o, now); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM messaging_receipt_in WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return err
	}
	s.decided(msgID, outcome, decided)
	return nil
}

// handOverReceipts offers decided outcomes to the Handler.
func (s *Server) handOverReceipts(ctx context.Context) (int, error) {
	ids, err := queryIDs(ctx, s.db, `SELECT id FROM messaging_outbox
		WHERE outcome IS NOT NULL AND handled_at IS NULL AND next_at <= $1 ORDER BY next_at, id LIMIT $2`,
		micros(s.now()), listBatch)
	if err != nil {
		return 0, fmt.Errorf("list outcomes: %w", err)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			var (
				r         = Receipt{MessageID: id}
				o         int
				outcomeAt int64
			)
			err := tx.QueryRowContext(ctx, `SELECT msisdn, outcome, outcome_at FROM messaging_outbox
				WHERE id = $1 AND outcome IS NOT NULL AND handled_at IS NULL`+s.skipLocked(), id).Scan(&r.MSISDN, &o, &outcomeAt)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			} else if err != nil {
				return err
			}
			if ok, err := execOne(ctx, tx, `UPDATE messaging_outbox SET handled_at = $1 WHERE id = $2 AND handled_at IS NULL`,
				micros(s.now()), id); err != nil || !ok {
				return err
			}
			r.Outcome, r.At = Outcome(o), fromMicros(outcomeAt)
			if err := s.h.HandleReceipt(ctx, tx, &r); err != nil {
				return &handlerError{err}
			}
			return nil
		})
		if err != nil {
			s.retryLater(ctx, "messaging_outbox", id, err)
		}
	}
	return len(ids), nil
}

// sweepExpired ends the messages whose validity has passed without an
// outcome.
func (s *Server) sweepExpired(ctx context.Context) (int, error) {
	now := s.now()
	ids, err := queryIDs(ctx, s.db, `SELECT m.id FROM messaging_outbox m
		WHERE m.outcome IS NULL AND m.valid_until <= $1 AND (m.valid_until <= $2 OR NOT EXISTS
			(SELECT 1 FROM messaging_segment s WHERE s.message_id = m.id AND s.state IN ('accepted', 'delivered')))
		ORDER BY m.valid_until LIMIT $3`, micros(now), micros(now.Add(-receiptGrace)), listBatch)
	if err != nil {
		return 0, fmt.Errorf("list expired messages: %w", err)
	}
	for _, id := range ids {
		var (
			o       Outcome
			decided bool
		)
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			if err := s.lockMessage(ctx, tx, id); err != nil {
				return err
			}
			var rd, open int
			if err := tx.QueryRowContext(ctx, `SELECT m.registered_delivery, (SELECT COUNT(*) FROM messaging_segment s
				WHERE s.message_id = m.id AND s.state NOT IN ('accepted', 'delivered')) FROM messaging_outbox m WHERE m.id = $1`,
				id).Scan(&rd, &open); err != nil {
				return err
			}
			// With failure-only receipts, silence means success.
			o = Expired
			if rd&0x03 == 0x02 && open == 0 {
				o = Delivered
			}
			var err error
			decided, err = s.decide(ctx, tx, id, o, now)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("expire message %d: %w", id, err)
		}
		s.decided(id, o, decided)
	}
	return len(ids), nil
}

// cleanup deletes messages handed over more than the retention ago.
func (s *Server) cleanup(ctx context.Context) error {
	cut := micros(s.now().Add(-retention))
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM messaging_segment WHERE message_id IN
			(SELECT id FROM messaging_outbox WHERE handled_at IS NOT NULL AND handled_at < $1)`, cut); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM messaging_outbox WHERE handled_at IS NOT NULL AND handled_at < $1`, cut)
		return err
	})
}

// updateDepth sets the outbox_depth gauge.
func (s *Server) updateDepth(ctx context.Context) error {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messaging_segment s JOIN messaging_outbox m ON m.id = s.message_id
		WHERE s.state IN ('queued', 'inflight') AND m.outcome IS NULL`).Scan(&n)
	if err != nil {
		return err
	}
	s.m.outboxDepth.Set(float64(n))
	return nil
}

// handlerError marks an error returned by the Handler.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return "handler: " + e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// retryLater postpones an item whose hand-over failed, doubling the pause
// with each failure.
func (s *Server) retryLater(ctx context.Context, table string, id int64, cause error) {
	if ctx.Err() != nil {
		return
	}
	var attempts int
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT attempts FROM `+table+` WHERE id = $1`, id).Scan(&attempts); err != nil {
			return err
		}
		d := s.cfg.HandlerRetry << min(attempts, 20)
		if d <= 0 || d > maxHandlerRetry {
			d = maxHandlerRetry
		}
		_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET attempts = attempts + 1, next_at = $1 WHERE id = $2`,
			micros(s.now().Add(d)), id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return
	}
	if err != nil {
		s.log.Error("cannot postpone hand-over", "table", table, "id", id, "err", err)
	}
	s.log.Warn("hand-over failed; will retry", "table", table, "id", id, "attempt", attempts+1, "err", cause)
}

// skipLocked makes a row lock on PostgreSQL that another node's pass
// skips instead of waiting for.
func (s *Server) skipLocked() string {
	if s.db.Dialect() == store.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// queryIDs runs a query that returns one BIGINT column.
func queryIDs(ctx context.Context, db querier, q string, args ...any) ([]int64, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// execOne runs a guarded update and reports whether it changed one row.
func execOne(ctx context.Context, tx *sql.Tx, q string, args ...any) (bool, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// placeholders returns "$from, …" for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

package messaging

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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

// mtMessage is a message to queue: checked, and split for reference 0.
type mtMessage struct {
	msisdn   string
	mt       mtParams
	validity time.Duration
	uds      [][]byte
	// validUntil is set when the message is written (unix µs).
	validUntil int64
	// split splits the message again for the concatenation reference of
	// a long message, which depends on its id.
	split func(ref uint16) ([][]byte, error)
}

// newMessage checks a message and splits it. split returns the TP-UD of
// each segment for a concatenation reference.
func newMessage(msisdn string, p mtParams, validity time.Duration, split func(ref uint16) ([][]byte, error)) (*mtMessage, error) {
	if !validAddress(msisdn) {
		return nil, fmt.Errorf("queue message for %q: %w", msisdn, ErrBadAddress)
	}
	if validity <= 0 {
		return nil, ErrBadValidity
	}
	uds, err := split(0)
	if err != nil {
		return nil, fmt.Errorf("split message: %w", err)
	}
	return &mtMessage{msisdn: msisdn, mt: p, validity: validity, uds: uds, split: split}, nil
}

// insertMessage writes a message and its segments to the outbox.
func (s *Server) insertMessage(b *batch, m *mtMessage) (int64, error) {
	now := s.now()
	p := m.mt
	m.validUntil = micros(now) + m.validity.Microseconds()
	id, err := b.insert(s.q.insertMessage, m.msisdn, int(p.esmClass), int(p.protocolID), int(p.dataCoding),
		int(s.cfg.RegisteredDelivery), len(m.uds), micros(now), m.validUntil)
	if err != nil {
		return 0, fmt.Errorf("insert outbox message: %w", err)
	}
	if b.inserted == nil {
		b.inserted = make(map[int64]*mtMessage)
	}
	b.inserted[id] = m
	uds := m.uds
	if len(uds) > 1 {
		// Deriving the reference from the id keeps consecutive long
		// messages to one handset apart.
		if uds, err = m.split(uint16(id % 256)); err != nil {
			return 0, fmt.Errorf("split message: %w", err)
		}
	}
	for i, ud := range uds {
		if _, err := b.exec(s.q.insertSegment, id, i+1, ud, micros(now)); err != nil {
			return 0, fmt.Errorf("insert outbox segment: %w", err)
		}
	}
	s.log.Debug("message queued", "id", id, "to", m.msisdn, "segments", len(uds), "dcs", p.dataCoding)
	return id, nil
}

// leaseFor is how long a claimed segment belongs to this node: long
// enough for the submit_sm and its response, after which the bind would
// have been dropped and the segment released anyway.
func (s *Server) leaseFor() time.Duration { return 3 * s.cfg.ResponseTimeout }

// sendLoop claims segments while the binds have free window and hands
// them to the sessions. Most segments are claimed by the group commit
// that writes them (see claimItem); the sender claims what that leaves:
// what waited for room in the windows, what other nodes or SendPacketTx
// wrote, what was put back. Every PollInterval it also puts back in the
// queue the segments whose lease ran out.
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
			if err := s.requeueExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("cannot requeue segments whose lease ran out", "err", err)
			}
		}
	}
}

// requeueExpired puts back in the queue the segments in flight whose
// lease ran out: their node died, or lost its bind, before the answer.
func (s *Server) requeueExpired(ctx context.Context) error {
	now := micros(s.now())
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM messaging_segment WHERE state = 'inflight' AND lease_until < $1 LIMIT 1`,
		now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	return s.inBatchTx(ctx, func(b *batch) error {
		_, err := b.tx.ExecContext(b.ctx, `UPDATE messaging_segment SET state = 'queued', owner = NULL, lease_until = NULL
			WHERE state = 'inflight' AND lease_until < $1`, now)
		return err
	})
}

// sendOnce claims as many segments as the binds can take and submits
// them. It reports whether there may be more to send right away.
func (s *Server) sendOnce(ctx context.Context) bool {
	s.claiming <- struct{}{}
	defer func() { <-s.claiming }()
	n := s.freeWindow()
	if n == 0 {
		return false
	}
	var segs []*outSeg
	err := s.inBatchTx(ctx, func(b *batch) error {
		var err error
		segs, err = s.claimIn(b, n)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("cannot claim outbox segments", "err", err)
		}
		return false
	}
	return s.submitClaimed(ctx, segs, n)
}

// freeWindow returns how many segments the binds take now, at most
// claimBatch. It is called by whoever holds claiming.
func (s *Server) freeWindow() int {
	// Set before the windows are looked at: a submit_sm_resp that frees
	// room from here on wakes the sender again (see session.process).
	s.starved.Store(true)
	free := 0
	for _, ss := range s.sessions {
		free += ss.free()
	}
	return min(free, claimBatch)
}

// submitClaimed submits the segments claimed for a window of n and puts
// back those no bind took. It reports whether there may be more to send.
func (s *Server) submitClaimed(ctx context.Context, segs []*outSeg, n int) bool {
	if len(segs) < n {
		// Nothing left behind; new messages wake the sender themselves.
		s.starved.Store(false)
	}
	back := s.submitAll(segs)
	if len(back) > 0 {
		s.release(context.WithoutCancel(ctx), back)
	}
	return len(segs) == n && len(back) == 0
}

// claimItem claims, in the group commit's transaction, what the binds can
// take — the messages just written, when nothing older waits — and
// submits it after the commit, which saves the sender a transaction. The
// caller holds claiming, which done releases.
func (s *Server) claimItem() *txItem {
	var (
		segs []*outSeg
		n    int
	)
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			segs = nil
			if n = s.freeWindow(); n == 0 {
				return nil
			}
			var err error
			segs, err = s.claimIn(b, n)
			return err
		},
		done: func(err error) {
			defer func() { <-s.claiming }()
			if err != nil {
				s.log.Error("cannot claim outbox segments", "err", err)
				s.wakeSender()
				return
			}
			if n > 0 && s.submitClaimed(context.Background(), segs, n) {
				s.wakeSender()
			}
		},
	}
}

// submitAll deals segs out to the binds in turn and sends each bind its
// share in one write; a share a bind cannot take goes to the others. It
// returns the segments no bind took.
func (s *Server) submitAll(segs []*outSeg) []*outSeg {
	n := len(s.sessions)
	if n == 0 || len(segs) == 0 {
		return segs
	}
	hands := make([][]*outSeg, n)
	for i, seg := range segs {
		k := (s.rr + i) % n
		hands[k] = append(hands[k], seg)
	}
	s.rr = (s.rr + len(segs)) % n
	var left []*outSeg
	for k, hand := range hands {
		if len(hand) > 0 {
			left = append(left, s.sessions[k].submitAll(hand)...)
		}
	}
	for _, ss := range s.sessions {
		if len(left) == 0 {
			break
		}
		left = ss.submitAll(left)
	}
	return left
}

// claimIn leases up to n ready segments to this node, oldest first, in one
// statement.
func (s *Server) claimIn(b *batch, n int) ([]*outSeg, error) {
	now := s.now()
	rows, err := b.query(s.q.claim, s.cfg.NodeID, micros(now.Add(s.leaseFor())), micros(now), n)
	if err != nil {
		return nil, fmt.Errorf("claim segments: %w", err)
	}
	var segs []*outSeg
	for rows.Next() {
		var seg outSeg
		if err := rows.Scan(&seg.id, &seg.messageID, &seg.seq, &seg.ud); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim segments: %w", err)
		}
		segs = append(segs, &seg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim segments: %w", err)
	}
	slices.SortFunc(segs, func(a, b *outSeg) int { return cmp.Compare(a.id, b.id) })
	// The message's fields, once per message; those of a message written
	// in this transaction are known.
	var last *outSeg
	for _, seg := range segs {
		if last != nil && last.messageID == seg.messageID {
			seg.msisdn, seg.mt, seg.registeredDelivery, seg.validUntil = last.msisdn, last.mt, last.registeredDelivery, last.validUntil
			continue
		}
		last = seg
		if m := b.inserted[seg.messageID]; m != nil {
			seg.msisdn, seg.mt, seg.registeredDelivery = m.msisdn, m.mt, s.cfg.RegisteredDelivery
			seg.validUntil = fromMicros(m.validUntil)
			continue
		}
		var esm, pid, dcs, rd int
		var valid int64
		if err := b.queryRow(s.q.messageParams, seg.messageID).Scan(&seg.msisdn, &esm, &pid, &dcs, &rd, &valid); err != nil {
			return nil, fmt.Errorf("claim segments: message %d: %w", seg.messageID, err)
		}
		seg.mt = mtParams{esmClass: byte(esm), protocolID: byte(pid), dataCoding: byte(dcs)}
		seg.registeredDelivery = byte(rd)
		seg.validUntil = fromMicros(valid)
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
	err := s.inBatchTx(ctx, func(b *batch) error { return s.releaseIn(b, segs) })
	if err != nil {
		// The lease runs out and the segments are claimed again.
		s.log.Error("cannot release segments", "count", len(segs), "err", err)
	}
	s.wakeSender()
}

func (s *Server) releaseIn(b *batch, segs []*outSeg) error {
	args := []any{micros(s.now()), s.cfg.NodeID}
	for _, seg := range segs {
		args = append(args, seg.id)
	}
	_, err := b.tx.ExecContext(b.ctx, `UPDATE messaging_segment SET state = 'queued', owner = NULL, lease_until = NULL, next_at = $1
		WHERE owner = $2 AND state = 'inflight' AND id IN (`+placeholders(3, len(segs))+`)`, args...)
	return err
}

// releaseOwn takes back what this node had in flight when it stopped.
func (s *Server) releaseOwn(ctx context.Context) error {
	return s.inBatchTx(ctx, func(b *batch) error {
		_, err := b.tx.ExecContext(b.ctx, `UPDATE messaging_segment SET state = 'queued', owner = NULL, lease_until = NULL
			WHERE state = 'inflight' AND owner = $1`, s.cfg.NodeID)
		return err
	})
}

// The results of submit_sm, recorded by the worker of the bind in batches
// (see session.process).

// acceptedItem records the SMSC's message id of a segment.
func (s *Server) acceptedItem(ss *session, seg *outSeg, smscID string) *txItem {
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			_, err := b.exec(s.q.accepted, ss.bind.Name, ss.bind.Addr, smscID, micros(s.now()), seg.id)
			return err
		},
		done: func(err error) {
			if err != nil {
				// The segment stays in flight and is sent again when its
				// lease ends: a duplicate rather than a loss.
				s.log.Error("cannot record accepted segment", "message", seg.messageID, "seq", seg.seq, "err", err)
				return
			}
			s.m.sent.Inc()
		},
	}
}

// releaseItem puts segments the SMSC throttled back in the queue.
func (s *Server) releaseItem(segs []*outSeg) *txItem {
	return &txItem{
		do: func(_ context.Context, b *batch) error { return s.releaseIn(b, segs) },
		done: func(err error) {
			if err != nil {
				s.log.Error("cannot release segments", "count", len(segs), "err", err)
			}
			s.wakeSender()
		},
	}
}

// refusedItem records a submit_sm refused for good: the message is
// Undeliverable.
func (s *Server) refusedItem(seg *outSeg, st smpp.Status) *txItem {
	var decided *Receipt
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			decided = nil
			now := s.now()
			if err := s.lockMessage(b, seg.messageID); err != nil {
				return err
			}
			if _, err := b.tx.ExecContext(b.ctx, `UPDATE messaging_segment SET state = 'failed', owner = NULL, lease_until = NULL,
				submit_status = $1, done_at = $2 WHERE id = $3`, int64(st), micros(now), seg.id); err != nil {
				return err
			}
			msisdn, ok, err := s.decide(b, seg.messageID, Undeliverable, now)
			if ok {
				decided = &Receipt{MessageID: seg.messageID, MSISDN: msisdn, Outcome: Undeliverable, At: fromMicros(micros(now))}
			}
			return err
		},
		done: func(err error) {
			if err != nil {
				s.log.Error("cannot record refused segment", "message", seg.messageID, "seq", seg.seq, "err", err)
				return
			}
			if decided != nil {
				s.decided(seg.messageID, Undeliverable, true)
				s.handOff(nil, decided)
			}
		},
	}
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
// nodes, cannot both miss the other: on PostgreSQL it locks the message's
// row, and the statements that follow see what the other transaction
// committed. On SQLite the transaction holds the database's only write
// lock from its BEGIN IMMEDIATE on, which serialises it already.
func (s *Server) lockMessage(b *batch, id int64) error {
	if s.db.Dialect() != store.Postgres {
		return nil
	}
	_, err := b.exec(s.q.lockMessage, id)
	return err
}

// decide sets the outcome of a message unless it has one, and returns the
// message's MSISDN when it did.
func (s *Server) decide(b *batch, id int64, o Outcome, now time.Time) (msisdn string, ok bool, err error) {
	return s.decideWith(b, s.q.decide, id, o, now)
}

func (s *Server) decideWith(b *batch, q *query, id int64, o Outcome, now time.Time) (msisdn string, ok bool, err error) {
	err = b.queryRow(q, int(o), micros(now), id).Scan(&msisdn)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return msisdn, err == nil, err
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

// receiptIn is a delivery receipt: as read from a deliver_sm, or stored
// because its SMSC message id was not known yet (then id is its row).
type receiptIn struct {
	id           int64
	smsc, smscID string
	state        int
	netErr       sql.NullInt64
	receivedAt   int64
	attempts     int
}

// applyReceipt applies a final receipt to its segment and decides the
// message when the receipt is the last DELIVRD or the first failure.
// matched reports that the segment is known, whether or not the receipt
// changed it (a DELIVRD after a failure does not, nor does an intermediate
// state, which only older versions stored); decided is the outcome it
// decided, if any.
func (s *Server) applyReceipt(b *batch, r receiptIn, now time.Time) (matched bool, decided *Receipt, err error) {
	o, final := receiptOutcome(smpp.MessageState(r.state), r.netErr)
	var msgID int64
	switch {
	case !final:
		err = sql.ErrNoRows
	case o == Delivered:
		err = b.queryRow(s.q.segmentDelivered, r.state, micros(now), r.smscID, r.smsc).Scan(&msgID)
	default:
		err = b.queryRow(s.q.segmentFailed, r.state, r.netErr, micros(now), r.smscID, r.smsc).Scan(&msgID)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Nothing changed: an intermediate state, a DELIVRD for a segment
		// that failed already, or a message id not known.
		var seg int64
		err := b.tx.QueryRowContext(b.ctx, `SELECT id FROM messaging_segment WHERE smsc_id = $1 LIMIT 1`, r.smscID).Scan(&seg)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil, nil
		}
		return err == nil, nil, err
	} else if err != nil {
		return false, nil, err
	}
	if err := s.lockMessage(b, msgID); err != nil {
		return true, nil, err
	}
	q := s.q.decide
	if o == Delivered {
		q = s.q.decideDelivered // when it was the last segment
	}
	msisdn, ok, err := s.decideWith(b, q, msgID, o, now)
	if err != nil || !ok {
		return true, nil, err
	}
	return true, &Receipt{MessageID: msgID, MSISDN: msisdn, Outcome: o, At: fromMicros(micros(now))}, nil
}

// storedReceiptItems lists the stored receipts due for matching.
func (s *Server) storedReceiptItems(ctx context.Context, now time.Time) ([]*txItem, bool, error) {
	rows, err := s.read(ctx, s.q.listReceipts, micros(now), listBatch)
	if err != nil {
		return nil, false, fmt.Errorf("list receipts: %w", err)
	}
	defer rows.Close()
	var items []*txItem
	for rows.Next() {
		var r receiptIn
		if err := rows.Scan(&r.id, &r.smsc, &r.smscID, &r.state, &r.netErr, &r.receivedAt, &r.attempts); err != nil {
			return nil, false, fmt.Errorf("list receipts: %w", err)
		}
		items = append(items, s.storedReceiptItem(ctx, r))
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list receipts: %w", err)
	}
	return items, len(items) == listBatch, nil
}

// storedReceiptItem tries again to match a stored receipt. An outcome it
// decides is handed over in the same transaction.
func (s *Server) storedReceiptItem(ctx context.Context, r receiptIn) *txItem {
	var decided *Receipt
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			decided = nil
			var id int64
			if err := b.queryRow(s.q.takeReceipt, r.id).Scan(&id); errors.Is(err, sql.ErrNoRows) {
				return nil // taken by another node
			} else if err != nil {
				return err
			}
			now := s.now()
			matched, d, err := s.applyReceipt(b, r, now)
			if err != nil {
				return err
			}
			if !matched {
				return s.unmatchedReceipt(b, r, now)
			}
			if decided = d; d != nil {
				b.add(s.outcomeItem(ctx, *d, 0))
			}
			_, err = b.exec(s.q.deleteReceipt, r.id)
			return err
		},
		done: func(err error) {
			if err != nil {
				s.log.Error("cannot apply receipt", "id", r.id, "smsc_id", r.smscID, "err", err)
				s.retryLater(ctx, "messaging_receipt_in", r.id, err)
				return
			}
			if decided != nil {
				s.decided(decided.MessageID, decided.Outcome, true)
			}
		},
	}
}

// unmatchedReceipt keeps a stored receipt whose SMSC message id is not
// known: it may have overtaken the submit_sm_resp that carries the id on
// another bind. After receiptMatchWindow it is dropped.
func (s *Server) unmatchedReceipt(b *batch, r receiptIn, now time.Time) error {
	if now.Sub(fromMicros(r.receivedAt)) < receiptMatchWindow {
		_, err := b.tx.ExecContext(b.ctx, `UPDATE messaging_receipt_in SET attempts = attempts + 1, next_at = $1 WHERE id = $2`,
			micros(now.Add(receiptMatchRetry)), r.id)
		return err
	}
	s.log.Warn("receipt for an unknown message id dropped", "smsc", r.smsc, "smsc_id", r.smscID,
		"state", smpp.MessageState(r.state).Stat())
	_, err := b.exec(s.q.deleteReceipt, r.id)
	return err
}

// outcomeItems lists the decided outcomes due for the Handler.
func (s *Server) outcomeItems(ctx context.Context, now time.Time) ([]*txItem, bool, error) {
	rows, err := s.read(ctx, s.q.listOutcomes, micros(now), listBatch)
	if err != nil {
		return nil, false, fmt.Errorf("list outcomes: %w", err)
	}
	defer rows.Close()
	var items []*txItem
	for rows.Next() {
		var (
			r           Receipt
			o, attempts int
			outcomeAt   int64
		)
		if err := rows.Scan(&r.MessageID, &r.MSISDN, &o, &outcomeAt, &attempts); err != nil {
			return nil, false, fmt.Errorf("list outcomes: %w", err)
		}
		r.Outcome, r.At = Outcome(o), fromMicros(outcomeAt)
		items = append(items, s.outcomeItem(ctx, r, attempts))
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list outcomes: %w", err)
	}
	return items, len(items) == listBatch, nil
}

// outcomeItem offers a decided outcome to the Handler; setting handled_at
// in the same transaction is the mark that it was handed over.
func (s *Server) outcomeItem(ctx context.Context, r Receipt, attempts int) *txItem {
	var hooks *commitHooks
	return &txItem{
		savepoint: true,
		do: func(ctx context.Context, b *batch) error {
			hooks = nil
			if ok, err := b.execOne(s.q.takeOutcome, micros(s.now()), r.MessageID); err != nil || !ok {
				return err // !ok: handed over by another node
			}
			rc := r
			var hctx context.Context
			hctx, hooks = withCommitHooks(ctx)
			if err := s.h.HandleReceipt(hctx, b.tx, &rc); err != nil {
				return &handlerError{err}
			}
			return nil
		},
		onFail: func(b *batch, _ error) error {
			_, err := b.exec(s.q.postponeOutcome, micros(s.now().Add(s.retryDelay(attempts))), r.MessageID)
			return err
		},
		done: func(err error) {
			s.handedOver(ctx, "messaging_outbox", r.MessageID, attempts, err)
			if err == nil {
				hooks.run()
			}
		},
	}
}

// expiredItems lists the messages whose validity has passed without an
// outcome.
func (s *Server) expiredItems(ctx context.Context, now time.Time) ([]*txItem, bool, error) {
	rows, err := s.read(ctx, s.q.listExpired, micros(now), micros(now.Add(-receiptGrace)), listBatch)
	if err != nil {
		return nil, false, fmt.Errorf("list expired messages: %w", err)
	}
	defer rows.Close()
	var items []*txItem
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, false, fmt.Errorf("list expired messages: %w", err)
		}
		items = append(items, s.expiredItem(ctx, id, now))
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list expired messages: %w", err)
	}
	return items, len(items) == listBatch, nil
}

// expiredItem ends a message whose validity has passed: Expired, or
// Delivered when only failures are reported and none came.
func (s *Server) expiredItem(ctx context.Context, id int64, now time.Time) *txItem {
	var (
		o       Outcome
		decided bool
	)
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			decided = false
			if err := s.lockMessage(b, id); err != nil {
				return err
			}
			var rd, open int
			if err := b.queryRow(s.q.expiryInfo, id).Scan(&rd, &open); err != nil {
				return err
			}
			// With failure-only receipts, silence means success.
			o = Expired
			if rd&0x03 == 0x02 && open == 0 {
				o = Delivered
			}
			msisdn, ok, err := s.decide(b, id, o, now)
			if err != nil {
				return err
			}
			if decided = ok; ok {
				b.add(s.outcomeItem(ctx, Receipt{MessageID: id, MSISDN: msisdn, Outcome: o, At: fromMicros(micros(now))}, 0))
			}
			return nil
		},
		done: func(err error) {
			if err != nil {
				s.log.Error("cannot expire message", "message", id, "err", err)
				return
			}
			s.decided(id, o, decided)
		},
	}
}

// cleanup deletes messages handed over more than the retention ago.
func (s *Server) cleanup(ctx context.Context) error {
	cut := micros(s.now().Add(-retention))
	return s.inBatchTx(ctx, func(b *batch) error {
		if _, err := b.tx.ExecContext(b.ctx, `DELETE FROM messaging_segment WHERE message_id IN
			(SELECT id FROM messaging_outbox WHERE handled_at IS NOT NULL AND handled_at < $1)`, cut); err != nil {
			return err
		}
		_, err := b.tx.ExecContext(b.ctx, `DELETE FROM messaging_outbox WHERE handled_at IS NOT NULL AND handled_at < $1`, cut)
		return err
	})
}

// updateDepth sets the outbox_depth gauge.
func (s *Server) updateDepth(ctx context.Context) error {
	var n int
	const count = `(SELECT COUNT(*) FROM messaging_segment s JOIN messaging_outbox m ON m.id = s.message_id
		WHERE s.state = '%s' AND m.outcome IS NULL)`
	err := s.db.QueryRowContext(ctx, `SELECT `+fmt.Sprintf(count, segQueued)+` + `+fmt.Sprintf(count, segInflight)).Scan(&n)
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

// retryDelay is the pause before an item is offered again after its
// attempts-th failure (counting from 0): HandlerRetry, doubling with each
// failure up to maxHandlerRetry.
func (s *Server) retryDelay(attempts int) time.Duration {
	d := s.cfg.HandlerRetry << min(attempts, 20)
	if d <= 0 || d > maxHandlerRetry {
		d = maxHandlerRetry
	}
	return d
}

// handedOver finishes the hand-over of an item of table: err is nil when
// the Handler took it, *postponed when it refused it and the item was
// postponed in the batch, and otherwise the failure of the transaction.
func (s *Server) handedOver(ctx context.Context, table string, id int64, attempts int, err error) {
	var p *postponed
	switch {
	case err == nil:
	case errors.As(err, &p):
		s.log.Warn("hand-over failed; will retry", "table", table, "id", id, "attempt", attempts+1, "err", p.err)
	default:
		s.retryLater(ctx, table, id, err)
	}
}

// retryLater postpones, in a transaction of its own, an item whose batch
// failed, doubling the pause with each failure.
func (s *Server) retryLater(ctx context.Context, table string, id int64, cause error) {
	if ctx.Err() != nil {
		return
	}
	var attempts int
	err := s.inBatchTx(ctx, func(b *batch) error {
		if err := b.tx.QueryRowContext(b.ctx, `SELECT attempts FROM `+table+` WHERE id = $1`, id).Scan(&attempts); err != nil {
			return err
		}
		_, err := b.tx.ExecContext(b.ctx, `UPDATE `+table+` SET attempts = attempts + 1, next_at = $1 WHERE id = $2`,
			micros(s.now().Add(s.retryDelay(attempts))), id)
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

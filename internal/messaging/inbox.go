package messaging

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
)

// esmTypeMask selects the message type bits (2–5) of a deliver_sm's
// esm_class: 0 for an MO, 0x04 for an SMSC delivery receipt, others for
// acknowledgements and intermediate notifications.
const esmTypeMask = 0x3C

// deliverItem returns the item that stores a deliver_sm, or nil when
// there is nothing to store. reply sends the deliver_sm_resp: OK once the
// batch holding the item committed, ESME_RSYSERR when the database failed,
// so that the SMSC tries again. Content that can never be stored (no
// receipt id, a broken header) is acknowledged at once and dropped, as a
// retry would not fix it.
func (s *Server) deliverItem(ss *session, p *smpp.PDU, reply func(smpp.Status)) *txItem {
	var it *txItem
	switch p.ESMClass & esmTypeMask {
	case 0:
		it = s.moItem(ss, p)
	case smpp.ESMClassReceipt:
		it = s.receiptInItem(ss, p)
	default:
		ss.log.Debug("deliver_sm of another type ignored", "esm_class", p.ESMClass)
	}
	if it == nil {
		reply(smpp.StatusOK)
		return nil
	}
	stored := it.done
	it.done = func(err error) {
		if err != nil {
			ss.log.Error("cannot store deliver_sm", "from", p.Source.Addr, "err", err)
			reply(smpp.StatusSystemError)
			return
		}
		stored(nil)
		reply(smpp.StatusOK)
	}
	return it
}

// receiptInItem applies a final delivery receipt to its segment, which
// may decide the message's outcome, or stores it in the inbox when its
// SMSC message id is not known yet. An intermediate receipt changes
// nothing and is only acknowledged. The TLVs are preferred; the receipt
// text fills in what they lack.
func (s *Server) receiptInItem(ss *session, p *smpp.PDU) *txItem {
	var (
		id    string
		state smpp.MessageState
	)
	if v, ok := p.TLV(smpp.TagReceiptedMessageID); ok {
		id = strings.TrimRight(string(v), "\x00")
	}
	if v, ok := p.TLV(smpp.TagMessageState); ok && len(v) == 1 {
		state = smpp.MessageState(v[0])
	}
	if id == "" || state == 0 {
		r, err := smpp.ParseReceipt(string(p.ShortMessage))
		if err != nil {
			ss.log.Warn("unreadable delivery receipt dropped", "from", p.Source.Addr, "len", len(p.ShortMessage), "err", err)
			return nil
		}
		if id == "" {
			id = r.ID
		}
		if state == 0 {
			state = r.State
		}
	}
	var netErr sql.NullInt64
	if v, ok := p.TLV(smpp.TagNetworkErrorCode); ok && len(v) == 3 {
		netErr = sql.NullInt64{Int64: int64(v[0])<<16 | int64(v[1])<<8 | int64(v[2]), Valid: true}
	}
	if _, final := receiptOutcome(state, netErr); !final {
		ss.log.Debug("intermediate receipt ignored", "smsc_id", id, "state", state.Stat())
		return nil
	}
	r := receiptIn{smsc: ss.bind.Addr, smscID: id, state: int(state), netErr: netErr}
	var (
		matched bool
		decided *Receipt
	)
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			now := s.now()
			var err error
			if matched, decided, err = s.applyReceipt(b, r, now); err != nil || matched {
				return err
			}
			if _, err := b.exec(s.q.insertReceipt, r.smsc, r.smscID, r.state, r.netErr, micros(now)); err != nil {
				return fmt.Errorf("insert receipt: %w", err)
			}
			return nil
		},
		done: func(error) {
			if !matched {
				ss.log.Debug("receipt for a message id not known yet stored", "smsc_id", id, "state", state.Stat())
			}
			if decided != nil {
				s.decided(decided.MessageID, decided.Outcome, true)
				s.handOff(nil, decided)
			}
		},
	}
}

// moSegment is an MO short message as stored.
type moSegment struct {
	seq        int
	recipient  string
	dataCoding byte
	ud         []byte
}

// moItem stores an MO segment in the inbox; the transaction that stores
// the last missing segment of a concatenated message also builds the MO.
func (s *Server) moItem(ss *session, p *smpp.PDU) *txItem {
	ud := p.ShortMessage
	if v, ok := p.TLV(smpp.TagMessagePayload); ok && len(ud) == 0 {
		ud = v
	}
	from := p.Source.Addr
	var ies []sms.IE
	if p.ESMClass&smpp.ESMClassUDHI != 0 {
		var err error
		if ies, _, err = sms.ParseUDH(ud); err != nil {
			ss.log.Warn("MO with a broken user data header dropped", "from", from, "len", len(ud), "err", err)
			return nil
		}
	} else {
		// Without UDHI the whole short_message is data; give it an empty
		// header so every stored segment has the same shape.
		ud = append([]byte{0}, ud...)
	}
	seg := moSegment{seq: 1, recipient: p.Dest.Addr, dataCoding: p.DataCoding, ud: ud}
	ref, total, ok := concat(ies)
	if ok && total > 1 {
		seg.seq = concatSeq(ies)
	}
	var (
		mo  *MO
		dup bool
	)
	return &txItem{
		do: func(_ context.Context, b *batch) error {
			mo, dup = nil, false
			now := s.now()
			if !ok || total == 1 {
				var err error
				mo, err = s.insertMO(b, from, []moSegment{seg}, now)
				return err
			}
			var (
				partial int64
				firstAt int64
			)
			// The upsert locks the partial row, which serialises the
			// segments of one message across binds and nodes, so exactly
			// one transaction sees the set complete.
			err := b.queryRow(s.q.upsertPartial, from, ref, total, micros(now)).Scan(&partial, &firstAt)
			if err != nil {
				return fmt.Errorf("upsert partial MO: %w", err)
			}
			if now.Sub(fromMicros(firstAt)) >= s.cfg.ReassemblyTimeout {
				// A stale set must not absorb the parts of a new message
				// that reuses the reference.
				if _, err := b.exec(s.q.deleteMOSegments, partial); err != nil {
					return err
				}
				if _, err := b.tx.ExecContext(b.ctx, `UPDATE messaging_mo_partial SET first_at = $1 WHERE id = $2`, micros(now), partial); err != nil {
					return err
				}
			}
			res, err := b.exec(s.q.insertMOSegment, partial, seg.seq, seg.recipient, int(seg.dataCoding), seg.ud, micros(now))
			if err != nil {
				return fmt.Errorf("insert MO segment: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				dup = true
				return nil
			}
			parts, err := s.loadParts(b, partial)
			if err != nil {
				return err
			}
			if len(parts) < total {
				return nil
			}
			if _, err := b.exec(s.q.deleteMOSegments, partial); err != nil {
				return err
			}
			if _, err := b.exec(s.q.deletePartial, partial); err != nil {
				return err
			}
			mo, err = s.insertMO(b, from, parts, now)
			return err
		},
		done: func(error) {
			s.m.received.Inc()
			switch {
			case dup:
				ss.log.Debug("duplicate MO segment ignored", "from", from, "ref", ref, "seq", seg.seq, "total", total)
			case mo != nil:
				s.m.mo.Inc()
				ss.log.Debug("MO stored", "id", mo.ID, "from", from, "segments", mo.Segments)
				s.handOff(mo, nil)
			}
		},
	}
}

// concat returns the reference and count of a concatenation IE; a 16-bit
// reference is offset by 65536 to keep it apart from an 8-bit one.
func concat(ies []sms.IE) (ref, total int, ok bool) {
	for _, ie := range ies {
		switch ie.ID {
		case sms.IEConcat8:
			return int(ie.Data[0]), int(ie.Data[1]), true
		case sms.IEConcat16:
			return 1<<16 | int(ie.Data[0])<<8 | int(ie.Data[1]), int(ie.Data[2]), true
		}
	}
	return 0, 0, false
}

// concatSeq returns the sequence number of a concatenation IE.
func concatSeq(ies []sms.IE) int {
	for _, ie := range ies {
		if ie.ID == sms.IEConcat8 || ie.ID == sms.IEConcat16 {
			return int(ie.Data[len(ie.Data)-1])
		}
	}
	return 1
}

func (s *Server) loadParts(b *batch, partial int64) ([]moSegment, error) {
	rows, err := b.query(s.q.loadParts, partial)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var parts []moSegment
	for rows.Next() {
		var p moSegment
		var dcs int
		if err := rows.Scan(&p.seq, &p.recipient, &dcs, &p.ud); err != nil {
			return nil, err
		}
		p.dataCoding = byte(dcs)
		parts = append(parts, p)
	}
	return parts, rows.Err()
}

// insertMO assembles the parts of a message, decodes it and writes it to
// the inbox for the Handler. A message that cannot be decoded is logged
// and dropped (nil): it is stored nowhere, and a retry would not help.
func (s *Server) insertMO(b *batch, from string, parts []moSegment, now time.Time) (*MO, error) {
	var (
		data  []byte
		first []sms.IE
	)
	for i, p := range parts {
		ies, d, err := sms.ParseUDH(p.ud) // checked when stored
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = ies
		}
		data = append(data, d...)
	}
	mo, err := decodeMO(parts[0].dataCoding, first, data)
	if err != nil {
		s.log.Warn("undecodable MO dropped", "from", from, "segments", len(parts), "dcs", parts[0].dataCoding, "err", err)
		return nil, nil
	}
	secured := 0
	if mo.Secured {
		secured = 1
	}
	mo.From, mo.To, mo.Segments, mo.ReceivedAt = from, parts[0].recipient, len(parts), fromMicros(micros(now))
	mo.ID, err = b.insert(s.q.insertMO, from, mo.To, secured, mo.Packet, mo.Text, len(parts), micros(now))
	if err != nil {
		return nil, fmt.Errorf("insert MO: %w", err)
	}
	return mo, nil
}

// decodeMO interprets the user data by data_coding, whose values 0x01 to
// 0x07 mean SMPP character sets rather than TS 23.038 groups (SMPP 3.4
// §5.2.19). Text in the SMSC default alphabet is taken as unpacked GSM
// 7-bit septets, as we send it.
func decodeMO(dcs byte, udh []sms.IE, data []byte) (*MO, error) {
	mo := &MO{}
	switch dcs {
	case 0x00:
		return decodeGSM7(mo, data)
	case 0x01: // IA5 (ASCII)
		mo.Text = string(bytes.ToValidUTF8(data, []byte("\uFFFD")))
		return mo, nil
	case 0x03: // ISO-8859-1
		r := make([]rune, len(data))
		for i, c := range data {
			r[i] = rune(c)
		}
		mo.Text = string(r)
		return mo, nil
	case 0x02, 0x04:
		return binaryMO(mo, udh, data), nil
	}
	switch sms.DCS(dcs).Alphabet() {
	case sms.AlphabetUCS2:
		t, err := sms.DecodeUCS2(data)
		mo.Text = t
		return mo, err
	case sms.Alphabet8Bit:
		return binaryMO(mo, udh, data), nil
	}
	return decodeGSM7(mo, data)
}

func decodeGSM7(mo *MO, data []byte) (*MO, error) {
	t, err := sms.DecodeGSM7(data)
	mo.Text = t
	return mo, err
}

func binaryMO(mo *MO, udh []sms.IE, data []byte) *MO {
	mo.Packet = append([]byte{}, data...)
	m := sms.Message{UDH: udh}
	mo.Secured = m.SecurityIEI() == sms.IEResponsePacket
	return mo
}

// moItems lists the complete MOs due for the Handler.
func (s *Server) moItems(ctx context.Context, now time.Time) ([]*txItem, bool, error) {
	rows, err := s.read(ctx, s.q.listMOs, micros(now), listBatch)
	if err != nil {
		return nil, false, fmt.Errorf("list MOs: %w", err)
	}
	defer rows.Close()
	var items []*txItem
	for rows.Next() {
		var (
			mo         MO
			secured    int
			text       sql.NullString
			receivedAt int64
			attempts   int
		)
		if err := rows.Scan(&mo.ID, &mo.From, &mo.To, &secured, &mo.Packet, &text, &mo.Segments, &receivedAt, &attempts); err != nil {
			return nil, false, fmt.Errorf("list MOs: %w", err)
		}
		mo.Secured, mo.Text, mo.ReceivedAt = secured != 0, text.String, fromMicros(receivedAt)
		items = append(items, s.moHandOverItem(ctx, mo, attempts))
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list MOs: %w", err)
	}
	return items, len(items) == listBatch, nil
}

// moHandOverItem offers a complete MO to the Handler; deleting the row in
// the same transaction is the mark that it was handed over.
func (s *Server) moHandOverItem(ctx context.Context, mo MO, attempts int) *txItem {
	var hooks *commitHooks
	return &txItem{
		savepoint: true,
		do: func(ctx context.Context, b *batch) error {
			hooks = nil
			if ok, err := b.execOne(s.q.takeMO, mo.ID); err != nil || !ok {
				return err // !ok: handed over by another node
			}
			m := mo
			var hctx context.Context
			hctx, hooks = withCommitHooks(ctx)
			if err := s.h.HandleMO(hctx, b.tx, &m); err != nil {
				return &handlerError{err}
			}
			return nil
		},
		onFail: func(b *batch, _ error) error {
			_, err := b.exec(s.q.postponeMO, micros(s.now().Add(s.retryDelay(attempts))), mo.ID)
			return err
		},
		done: func(err error) {
			s.handedOver(ctx, "messaging_mo", mo.ID, attempts, err)
			if err == nil {
				hooks.run()
			}
		},
	}
}

// expirePartials drops the incomplete MOs older than the reassembly
// timeout.
func (s *Server) expirePartials(ctx context.Context) error {
	cut := micros(s.now().Add(-s.cfg.ReassemblyTimeout))
	type expired struct {
		id          int64
		sender      string
		ref, total  int
		got         int
		firstAtUnix int64
	}
	var any int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM messaging_mo_partial WHERE first_at <= $1 LIMIT 1`, cut).Scan(&any)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // the usual case: no write transaction
	} else if err != nil {
		return fmt.Errorf("expire partial MOs: %w", err)
	}
	var gone []expired
	err = s.inBatchTx(ctx, func(b *batch) error {
		tx, ctx := b.tx, b.ctx
		gone = gone[:0]
		rows, err := tx.QueryContext(ctx, `SELECT p.id, p.sender, p.ref, p.total, p.first_at,
			(SELECT COUNT(*) FROM messaging_mo_segment s WHERE s.partial_id = p.id)
			FROM messaging_mo_partial p WHERE p.first_at <= $1 ORDER BY p.first_at LIMIT $2`, cut, listBatch)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e expired
			if err := rows.Scan(&e.id, &e.sender, &e.ref, &e.total, &e.firstAtUnix, &e.got); err != nil {
				rows.Close()
				return err
			}
			gone = append(gone, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM messaging_mo_segment WHERE partial_id = $1`, e.id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM messaging_mo_partial WHERE id = $1`, e.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("expire partial MOs: %w", err)
	}
	for _, e := range gone {
		s.log.Warn("incomplete MO expired", "from", e.sender, "ref", e.ref&0xFFFF, "received", e.got, "total", e.total,
			"first_seen", fromMicros(e.firstAtUnix))
	}
	return nil
}

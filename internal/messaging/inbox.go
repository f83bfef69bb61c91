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

// onDeliver stores a deliver_sm and returns the status of its
// deliver_sm_resp: OK once stored, ESME_RSYSERR when the database failed,
// so that the SMSC tries again. Content that can never be stored (no
// receipt id, a broken header) is acknowledged and dropped, as a retry
// would not fix it.
func (s *Server) onDeliver(ctx context.Context, ss *session, p *smpp.PDU) smpp.Status {
	var err error
	switch p.ESMClass & esmTypeMask {
	case 0:
		err = s.storeMO(ctx, ss, p)
	case smpp.ESMClassReceipt:
		err = s.storeReceipt(ctx, ss, p)
	default:
		ss.log.Debug("deliver_sm of another type ignored", "esm_class", p.ESMClass)
	}
	if err != nil {
		ss.log.Error("cannot store deliver_sm", "from", p.Source.Addr, "err", err)
		return smpp.StatusSystemError
	}
	return smpp.StatusOK
}

// storeReceipt writes a delivery receipt to the inbox. The TLVs are
// preferred; the receipt text fills in what they lack.
func (s *Server) storeReceipt(ctx context.Context, ss *session, p *smpp.PDU) error {
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
	now := micros(s.now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO messaging_receipt_in (smsc, smsc_id, state, net_err, received_at, next_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, ss.bind.Addr, id, int(state), netErr, now)
	if err != nil {
		return fmt.Errorf("insert receipt: %w", err)
	}
	ss.log.Debug("receipt stored", "smsc_id", id, "state", state.Stat())
	s.wakeDispatcher()
	return nil
}

// moSegment is an MO short message as stored.
type moSegment struct {
	seq        int
	recipient  string
	dataCoding byte
	ud         []byte
}

// storeMO writes an MO segment to the inbox; the transaction that stores
// the last missing segment of a concatenated message also builds the MO.
func (s *Server) storeMO(ctx context.Context, ss *session, p *smpp.PDU) error {
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
	now := s.now()
	seg := moSegment{seq: 1, recipient: p.Dest.Addr, dataCoding: p.DataCoding, ud: ud}
	ref, total, ok := concat(ies)
	var (
		moID     int64
		segments int
		dup      bool
	)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		moID, segments, dup = 0, 0, false
		if !ok || total == 1 {
			var err error
			moID, err = s.insertMO(ctx, tx, from, []moSegment{seg}, now)
			segments = 1
			return err
		}
		seg.seq = concatSeq(ies)
		var (
			partial int64
			firstAt int64
		)
		// The upsert locks the partial row, which serialises the segments
		// of one message across binds and nodes, so exactly one
		// transaction sees the set complete.
		err := tx.QueryRowContext(ctx, `INSERT INTO messaging_mo_partial (sender, ref, total, first_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sender, ref, total) DO UPDATE SET total = excluded.total RETURNING id, first_at`,
			from, ref, total, micros(now)).Scan(&partial, &firstAt)
		if err != nil {
			return fmt.Errorf("upsert partial MO: %w", err)
		}
		if now.Sub(fromMicros(firstAt)) >= s.cfg.ReassemblyTimeout {
			// A stale set must not absorb the parts of a new message that
			// reuses the reference.
			if _, err := tx.ExecContext(ctx, `DELETE FROM messaging_mo_segment WHERE partial_id = $1`, partial); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE messaging_mo_partial SET first_at = $1 WHERE id = $2`, micros(now), partial); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO messaging_mo_segment (partial_id, seq, recipient, data_coding, ud, received_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partial_id, seq) DO NOTHING`,
			partial, seg.seq, seg.recipient, int(seg.dataCoding), seg.ud, micros(now))
		if err != nil {
			return fmt.Errorf("insert MO segment: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			dup = true
			return nil
		}
		parts, err := loadParts(ctx, tx, partial)
		if err != nil {
			return err
		}
		if len(parts) < total {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM messaging_mo_segment WHERE partial_id = $1`, partial); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM messaging_mo_partial WHERE id = $1`, partial); err != nil {
			return err
		}
		segments = total
		moID, err = s.insertMO(ctx, tx, from, parts, now)
		return err
	})
	if err != nil {
		return err
	}
	s.m.received.Inc()
	switch {
	case dup:
		ss.log.Debug("duplicate MO segment ignored", "from", from, "ref", ref, "seq", seg.seq, "total", total)
	case moID != 0:
		s.m.mo.Inc()
		ss.log.Debug("MO stored", "id", moID, "from", from, "segments", segments)
		s.wakeDispatcher()
	}
	return nil
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

func loadParts(ctx context.Context, tx *sql.Tx, partial int64) ([]moSegment, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, recipient, data_coding, ud FROM messaging_mo_segment
		WHERE partial_id = $1 ORDER BY seq`, partial)
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
// and dropped: it is stored nowhere, and a retry would not help.
func (s *Server) insertMO(ctx context.Context, tx *sql.Tx, from string, parts []moSegment, now time.Time) (int64, error) {
	var (
		data  []byte
		first []sms.IE
	)
	for i, p := range parts {
		ies, d, err := sms.ParseUDH(p.ud) // checked when stored
		if err != nil {
			return 0, err
		}
		if i == 0 {
			first = ies
		}
		data = append(data, d...)
	}
	mo, err := decodeMO(parts[0].dataCoding, first, data)
	if err != nil {
		s.log.Warn("undecodable MO dropped", "from", from, "segments", len(parts), "dcs", parts[0].dataCoding, "err", err)
		return 0, nil
	}
	secured := 0
	if mo.Secured {
		secured = 1
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO messaging_mo (sender, recipient, secured, packet, text, segments, received_at, next_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
		from, parts[0].recipient, secured, mo.Packet, mo.Text, len(parts), micros(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert MO: %w", err)
	}
	return id, nil
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

// handOverMOs offers complete MOs to the Handler; deleting the row in the
// same transaction is the mark that it was handed over.
func (s *Server) handOverMOs(ctx context.Context) (int, error) {
	ids, err := queryIDs(ctx, s.db, `SELECT id FROM messaging_mo WHERE next_at <= $1 ORDER BY next_at, id LIMIT $2`,
		micros(s.now()), listBatch)
	if err != nil {
		return 0, fmt.Errorf("list MOs: %w", err)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			mo := MO{ID: id}
			var (
				secured    int
				text       sql.NullString
				receivedAt int64
			)
			err := tx.QueryRowContext(ctx, `SELECT sender, recipient, secured, packet, text, segments, received_at
				FROM messaging_mo WHERE id = $1`+s.skipLocked(), id).
				Scan(&mo.From, &mo.To, &secured, &mo.Packet, &text, &mo.Segments, &receivedAt)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			} else if err != nil {
				return err
			}
			if ok, err := execOne(ctx, tx, `DELETE FROM messaging_mo WHERE id = $1`, id); err != nil || !ok {
				return err
			}
			mo.Secured, mo.Text, mo.ReceivedAt = secured != 0, text.String, fromMicros(receivedAt)
			if err := s.h.HandleMO(ctx, tx, &mo); err != nil {
				return &handlerError{err}
			}
			return nil
		})
		if err != nil {
			s.retryLater(ctx, "messaging_mo", id, err)
		}
	}
	return len(ids), nil
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
	var gone []expired
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
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

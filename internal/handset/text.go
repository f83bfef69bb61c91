package handset

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"mobileid/internal/sms"
)

// receiveText puts a text message, or its last missing part, in the inbox.
func (p *Phone) receiveText(r *textReassembler, d *sms.Deliver, now time.Time) error {
	if d.PID == pidType0 {
		// TS 23.040 §9.2.3.9: acknowledged and discarded, used to page a
		// phone without bothering its user.
		return nil
	}
	text := decodeText(d)
	from := addrText(d.OA)
	parts := 1
	if c, ok := concatOf(d.UDH); ok && c.total > 1 {
		var done bool
		if text, done = r.add(from, c, text, now); !done {
			return nil
		}
		parts = c.total
	}
	msg := TextMessage{From: from, Text: text, Sent: d.SCTS, Received: now, Parts: parts}
	p.mu.Lock()
	p.inbox = append([]TextMessage{msg}, p.inbox...)
	if len(p.inbox) > p.n.cfg.InboxSize {
		p.inbox = p.inbox[:p.n.cfg.InboxSize]
	}
	p.mu.Unlock()
	return nil
}

// decodeText renders the user data of a text message. sms.ParseDeliver
// has already taken the header off and unpacked 7-bit text from the
// septet boundary after it. A phone shows what it can rather than refuse
// a message, so undecodable text is marked, not rejected.
func decodeText(d *sms.Deliver) string {
	var s string
	var err error
	switch d.DCS.Alphabet() {
	case sms.AlphabetGSM7:
		s, err = sms.DecodeGSM7(d.Data)
	case sms.AlphabetUCS2:
		s, err = sms.DecodeUCS2(d.Data)
	default:
		return fmt.Sprintf("[data message, %d octets]", len(d.Data))
	}
	if err != nil {
		return "[text that cannot be decoded]"
	}
	return s
}

// addrText writes an address as a phone shows it.
func addrText(a sms.Address) string {
	if a.TON == 1 {
		return "+" + a.Digits
	}
	return a.Digits
}

// concat is a message's place in a concatenated text.
type concat struct {
	ref        uint16
	wide       bool
	total, seq int
}

// concatOf finds the concatenation element; sms.ParseDeliver has
// validated its length and numbering.
func concatOf(udh []sms.IE) (concat, bool) {
	for _, ie := range udh {
		switch ie.ID {
		case sms.IEConcat8:
			return concat{ref: uint16(ie.Data[0]), total: int(ie.Data[1]), seq: int(ie.Data[2])}, true
		case sms.IEConcat16:
			return concat{ref: uint16(ie.Data[0])<<8 | uint16(ie.Data[1]), wide: true, total: int(ie.Data[2]), seq: int(ie.Data[3])}, true
		}
	}
	return concat{}, false
}

// textReassembler joins the parts of concatenated texts. Unlike
// sms.Reassembler it keeps decoded text, because 153 unpacked septets and
// their header do not fit the 140 octets that one holds.
type textReassembler struct {
	mu         sync.Mutex
	timeout    time.Duration
	maxPending int
	pending    map[textKey]*textPartial
}

type textKey struct {
	from  string
	ref   uint16
	wide  bool
	total int
}

type textPartial struct {
	first time.Time
	parts []string
	have  []bool
	got   int
}

func newTextReassembler(timeout time.Duration, maxPending int) *textReassembler {
	return &textReassembler{timeout: timeout, maxPending: maxPending, pending: make(map[textKey]*textPartial)}
}

// add files one part; it returns the whole text once every part is in.
// When too many texts are incomplete the oldest is given up, as a phone
// with full memory would.
func (r *textReassembler) add(from string, c concat, text string, now time.Time) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.pending {
		if now.Sub(p.first) >= r.timeout {
			delete(r.pending, k)
		}
	}
	k := textKey{from: from, ref: c.ref, wide: c.wide, total: c.total}
	p := r.pending[k]
	if p == nil {
		if len(r.pending) >= r.maxPending {
			var oldest textKey
			var t time.Time
			for k, p := range r.pending {
				if t.IsZero() || p.first.Before(t) {
					oldest, t = k, p.first
				}
			}
			delete(r.pending, oldest)
		}
		p = &textPartial{first: now, parts: make([]string, c.total), have: make([]bool, c.total)}
		r.pending[k] = p
	}
	if p.have[c.seq-1] {
		return "", false // a repeated part
	}
	p.parts[c.seq-1], p.have[c.seq-1] = text, true
	if p.got++; p.got < c.total {
		return "", false
	}
	delete(r.pending, k)
	return strings.Join(p.parts, ""), true
}

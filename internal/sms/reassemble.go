package sms

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Message is user data reassembled from one or more short messages.
type Message struct {
	// UDH holds the information elements of the first message other than
	// concatenation, e.g. the 0x70 command packet identifier.
	UDH      []IE
	Data     []byte // the data of all messages, in sequence order
	Segments int
}

// SecurityIEI returns IECommandPacket or IEResponsePacket when the message
// carries a secured packet, and 0 otherwise.
func (m *Message) SecurityIEI() byte {
	for _, ie := range m.UDH {
		if ie.ID == IECommandPacket || ie.ID == IEResponsePacket {
			return ie.ID
		}
	}
	return 0
}

// Expired describes an incomplete message dropped by Expire.
type Expired struct {
	Sender    string
	Ref       uint16
	Total     int
	Received  int
	FirstSeen time.Time
}

// Reassembler collects concatenated short messages until all parts are
// present. Messages are told apart by sender, reference (8- or 16-bit) and
// total count. It never reads the clock: callers pass the time, so that
// expiry is deterministic. It is safe for concurrent use.
type Reassembler struct {
	mu         sync.Mutex
	timeout    time.Duration
	maxPending int
	pending    map[reassemblyKey]*partial
	duplicates int
}

type reassemblyKey struct {
	sender string
	ref    uint16
	wide   bool
	total  int
}

type partial struct {
	firstSeen time.Time
	parts     [][]byte // TP-UD of each part by seq-1; nil while missing
	received  int
}

// NewReassembler returns a Reassembler that drops incomplete messages
// older than timeout (see Expire) and holds at most maxPending of them,
// which bounds memory to about maxPending × 255 × 140 octets. A maxPending
// below 1 is treated as 1.
func NewReassembler(timeout time.Duration, maxPending int) *Reassembler {
	return &Reassembler{timeout: timeout, maxPending: max(maxPending, 1), pending: make(map[reassemblyKey]*partial)}
}

// Add takes the TP-UD (header and data, 8-bit user data as carried by
// secured packets) of one short message from sender, received at now. It
// returns the complete message once its last part arrives, and nil while
// parts are missing. A message without a concatenation IE is returned at
// once. A repeated part identical to one already held is ignored and
// counted (see Duplicates); a repeated part with different content is an
// error and the part first received is kept.
func (r *Reassembler) Add(sender string, ud []byte, now time.Time) (*Message, error) {
	if len(ud) > maxUDOctets {
		return nil, fmt.Errorf("sms: user data length %d exceeds %d octets", len(ud), maxUDOctets)
	}
	ies, data, err := ParseUDH(ud)
	if err != nil {
		return nil, err
	}
	c, ok := findConcat(ies)
	if !ok || c.total == 1 {
		return &Message{UDH: withoutConcat(ies), Data: append([]byte(nil), data...), Segments: 1}, nil
	}
	key := reassemblyKey{sender: sender, ref: c.ref, wide: c.wide, total: c.total}

	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[key]
	if p != nil && r.expired(p, now) {
		// A stale partial must not absorb parts of a new message that
		// reuses the reference.
		delete(r.pending, key)
		p = nil
	}
	if p == nil {
		if len(r.pending) >= r.maxPending {
			return nil, fmt.Errorf("sms: %d incomplete messages pending, limit reached", len(r.pending))
		}
		p = &partial{firstSeen: now, parts: make([][]byte, c.total)}
		r.pending[key] = p
	}
	if old := p.parts[c.seq-1]; old != nil {
		if !bytes.Equal(old, ud) {
			return nil, fmt.Errorf("sms: part %d of %d from %q ref %d conflicts with the part already received", c.seq, c.total, sender, c.ref)
		}
		r.duplicates++
		return nil, nil
	}
	p.parts[c.seq-1] = append([]byte(nil), ud...)
	p.received++
	if p.received < c.total {
		return nil, nil
	}
	delete(r.pending, key)
	m := &Message{Segments: c.total}
	for i, part := range p.parts {
		ies, data, _ := ParseUDH(part) // validated when added
		if i == 0 {
			m.UDH = withoutConcat(ies)
		}
		m.Data = append(m.Data, data...)
	}
	return m, nil
}

// Expire drops the incomplete messages whose first part arrived at least
// the timeout before now and reports them, oldest first.
func (r *Reassembler) Expire(now time.Time) []Expired {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Expired
	for k, p := range r.pending {
		if r.expired(p, now) {
			out = append(out, Expired{Sender: k.sender, Ref: k.ref, Total: k.total, Received: p.received, FirstSeen: p.firstSeen})
			delete(r.pending, k)
		}
	}
	slices.SortFunc(out, func(a, b Expired) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.Sender, b.Sender),
			cmp.Compare(a.Ref, b.Ref), cmp.Compare(a.Total, b.Total))
	})
	return out
}

// Pending returns the number of incomplete messages held.
func (r *Reassembler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Duplicates returns how many repeated identical parts Add has ignored.
func (r *Reassembler) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.duplicates
}

func (r *Reassembler) expired(p *partial, now time.Time) bool {
	return now.Sub(p.firstSeen) >= r.timeout
}

func withoutConcat(ies []IE) []IE {
	var out []IE
	for _, ie := range ies {
		if ie.ID != IEConcat8 && ie.ID != IEConcat16 {
			out = append(out, ie)
		}
	}
	return out
}

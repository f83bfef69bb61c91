package ops

import (
	"context"
	"sync"
	"sync/atomic"

	"mobileid/internal/ota"
)

// DefaultRecorderSize is how many segments a Recorder keeps by default.
const DefaultRecorderSize = 500

// Recorder keeps the latest SMS segments the SMSC's tap reports, decoded.
// Record never blocks: records wait in a buffered channel for Run, which
// decodes them, and are dropped and counted when Run lags or does not run.
// The other methods are safe for concurrent use.
type Recorder struct {
	in      chan Traffic
	dropped atomic.Uint64

	mu   sync.RWMutex
	ring []entry
	next uint64 // Seq of the next segment; the ring holds the ones before
}

// entry is a decoded segment with, for a command, its parsed SPI, which
// decodes the responses to it.
type entry struct {
	sms SMS
	spi *ota.SPI
}

// NewRecorder returns a recorder that keeps the last size segments
// (DefaultRecorderSize when size is not positive) and buffers as many
// records for Run.
func NewRecorder(size int) *Recorder {
	if size <= 0 {
		size = DefaultRecorderSize
	}
	return &Recorder{in: make(chan Traffic, size), ring: make([]entry, size), next: 1}
}

// Record hands a segment to the recorder without waiting; it is the tap.
// UserData must not change afterwards.
func (r *Recorder) Record(t Traffic) {
	select {
	case r.in <- t:
	default:
		r.dropped.Add(1)
	}
}

// Run decodes recorded segments into the ring until ctx is done, and then
// returns nil.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case t := <-r.in:
			r.add(t)
		}
	}
}

// Dropped returns how many segments were dropped because Run lagged.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// add decodes t and stores it. Only Run calls it, so the ring changes in
// one goroutine and the look-ups of add need only the read lock.
func (r *Recorder) add(t Traffic) {
	s := Decode(t, r.commandSPI)
	e := entry{sms: s}
	if s.Kind == KindCommand && s.Packet != nil {
		// Decode parsed the header already; the SPI it spelt out is
		// parsed again here in its typed form for later responses.
		if h, err := ota.ParseCommandHeader(dataOf(t)); err == nil {
			e.spi = &h.SPI
		}
	}
	r.mu.Lock()
	e.sms.Seq = r.next
	r.ring[r.next%uint64(len(r.ring))] = e
	r.next++
	r.mu.Unlock()
}

// dataOf returns the user data after the user data header.
func dataOf(t Traffic) []byte {
	ud := t.UserData
	if t.ESMClass&0x40 != 0 && len(ud) > 0 && int(ud[0]) < len(ud) {
		return ud[1+int(ud[0]):]
	}
	return ud
}

// commandSPI finds the SPI of the latest command sent to msisdn for tar.
func (r *Recorder) commandSPI(msisdn string, tar ota.TAR) *ota.SPI {
	r.mu.RLock()
	defer r.mu.RUnlock()
	want := tar.String()
	for seq := r.next - 1; seq > 0 && r.next-seq <= uint64(len(r.ring)); seq-- {
		e := &r.ring[seq%uint64(len(r.ring))]
		if e.spi != nil && e.sms.MSISDN == msisdn && e.sms.Packet.TAR == want {
			return e.spi
		}
	}
	return nil
}

// Recent returns at most limit segments, newest first; all it holds
// when limit is not positive.
func (r *Recorder) Recent(limit int) []SMS {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := min(int(r.next-1), len(r.ring))
	if limit > 0 {
		n = min(n, limit)
	}
	out := make([]SMS, 0, n)
	for seq := r.next - 1; len(out) < n; seq-- {
		out = append(out, r.ring[seq%uint64(len(r.ring))].sms)
	}
	return out
}

// Get returns the segment numbered seq while the ring still holds it.
func (r *Recorder) Get(seq uint64) (SMS, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if seq == 0 || seq >= r.next || r.next-seq > uint64(len(r.ring)) {
		return SMS{}, false
	}
	return r.ring[seq%uint64(len(r.ring))].sms, true
}

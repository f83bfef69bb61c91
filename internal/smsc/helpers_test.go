package smsc

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/smpp"
)

// t0 is the fake clock's start, a time TP-SCTS can encode.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// failsafe bounds every wait for an asynchronous event; tests never
// assert on how long something took.
const failsafe = 10 * time.Second

// fakeClock is a Clock that moves only when Advance is called.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *fakeTimer) bool { return x == t })
	return true
}

// Advance moves the clock by d, running the timers that fall due in
// order, including those they set themselves.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		i := -1
		for j, t := range c.timers {
			if !t.at.After(end) && (i < 0 || t.at.Before(c.timers[i].at)) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		t := c.timers[i]
		c.timers = slices.Delete(c.timers, i, i+1)
		t.done = true
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// absentErr is what a radio returns for a phone it cannot reach.
type absentErr struct{}

func (absentErr) Error() string { return "test radio: phone absent" }
func (absentErr) Absent() bool  { return true }

// codeErr is a permanent radio error with its own GSM code.
type codeErr uint16

func (e codeErr) Error() string            { return "test radio: rejected" }
func (e codeErr) NetworkErrorCode() uint16 { return uint16(e) }

type delivery struct {
	msisdn string
	tpdu   []byte
}

// fakeRadio records what it delivers; per-number errors script failures.
type fakeRadio struct {
	mu   sync.Mutex
	fail map[string]error
	got  []delivery
	ch   chan delivery
}

func newFakeRadio() *fakeRadio {
	return &fakeRadio{fail: make(map[string]error), ch: make(chan delivery, 1<<14)}
}

func (r *fakeRadio) DeliverSMS(ctx context.Context, msisdn string, tpdu []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail[msisdn]; err != nil {
		return err
	}
	d := delivery{msisdn: msisdn, tpdu: slices.Clone(tpdu)}
	r.got = append(r.got, d)
	select {
	case r.ch <- d:
	default:
	}
	return nil
}

func (r *fakeRadio) setFail(msisdn string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.fail, msisdn)
	} else {
		r.fail[msisdn] = err
	}
}

func (r *fakeRadio) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *fakeRadio) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.ch:
		return d
	case <-time.After(failsafe):
		t.Fatal("radio received nothing")
		return delivery{}
	}
}

// env is an SMSC on a loopback port with a fake clock and radio.
type env struct {
	s     *SMSC
	addr  string
	clock *fakeClock
	radio *fakeRadio
	reg   *prometheus.Registry
}

const (
	sys1, pass1 = "msg1", "secret1"
	sys2, pass2 = "msg2", "secret2"
	phone       = "358401234567"
)

func testConfig() Config {
	return Config{
		Accounts: []Account{
			{SystemID: sys1, Password: pass1, Addresses: []string{"16000", "+3584000001"}},
			{SystemID: sys2, Password: pass2, Addresses: []string{"16001"}},
		},
		Rand: rand.NewPCG(1, 2),
	}
}

func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	fc := newFakeClock()
	if cfg.Clock == nil {
		cfg.Clock = fc
	}
	radio := newFakeRadio()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, radio, logger, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve = %v, want ErrClosed", err)
		}
	})
	return &env{s: s, addr: ln.Addr().String(), clock: fc, radio: radio, reg: reg}
}

// eventually polls cond, advancing the fake clock by step each time,
// until it holds.
func (e *env) eventually(t *testing.T, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failsafe)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		e.clock.Advance(step)
		time.Sleep(time.Millisecond)
	}
}

// esme is a minimal test client. Raw methods read and write PDUs
// directly; after start, a reader goroutine matches responses to calls,
// answers deliver_sm and queues them.
type esme struct {
	t    *testing.T
	nc   net.Conn
	c    *smpp.Conn
	seqs uint32

	mu      sync.Mutex
	waiting map[uint32]chan *smpp.PDU
	ack     func(*smpp.PDU) (smpp.Status, bool) // status to answer deliver_sm with; false: no answer
	inbox   chan *smpp.PDU                      // deliver_sm and unbind received
	done    chan struct{}
}

func dial(t *testing.T, addr string) *esme {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	e := &esme{t: t, nc: nc, c: smpp.NewConn(nc), inbox: make(chan *smpp.PDU, 1024), waiting: make(map[uint32]chan *smpp.PDU)}
	t.Cleanup(func() { nc.Close() })
	return e
}

func (e *esme) nextSeq() uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seqs++
	return e.seqs
}

func (e *esme) write(p *smpp.PDU) {
	e.t.Helper()
	if p.Seq == 0 {
		p.Seq = e.nextSeq()
	}
	if err := e.c.Write(p); err != nil {
		e.t.Fatalf("write %v: %v", p.ID, err)
	}
}

func (e *esme) writeRaw(b []byte) {
	e.t.Helper()
	if _, err := e.nc.Write(b); err != nil {
		e.t.Fatalf("write: %v", err)
	}
}

func (e *esme) readErr() (*smpp.PDU, error) {
	e.nc.SetReadDeadline(time.Now().Add(failsafe))
	return e.c.Read()
}

func (e *esme) read() *smpp.PDU {
	e.t.Helper()
	p, err := e.readErr()
	if err != nil {
		e.t.Fatalf("read: %v", err)
	}
	return p
}

// expectClosed checks that the SMSC closed the connection.
func (e *esme) expectClosed() {
	e.t.Helper()
	for {
		p, err := e.readErr()
		if err == nil {
			e.t.Fatalf("read %v (status %v), want the connection closed", p.ID, p.Status)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			e.t.Fatal("connection still open")
		}
		return
	}
}

func (e *esme) bindRaw(id smpp.CommandID, sys, pass string) *smpp.PDU {
	e.t.Helper()
	e.write(&smpp.PDU{ID: id, SystemID: sys, Password: pass, InterfaceVersion: 0x34})
	return e.read()
}

// bindESME connects, binds and starts the background reader.
func bindESME(t *testing.T, addr string, id smpp.CommandID, sys, pass string) *esme {
	t.Helper()
	e := dial(t, addr)
	if r := e.bindRaw(id, sys, pass); r.Status != smpp.StatusOK {
		t.Fatalf("%v as %s: status %v", id, sys, r.Status)
	}
	e.start()
	// The SMSC registers a receiver after it sends bind_resp; a round trip
	// on the same connection makes sure it has.
	if r := e.call(&smpp.PDU{ID: smpp.EnquireLink}); r.Status != smpp.StatusOK {
		t.Fatalf("enquire_link after bind: %v", r.Status)
	}
	return e
}

func (e *esme) start() {
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		for {
			e.nc.SetReadDeadline(time.Time{})
			p, err := e.c.Read()
			if err != nil {
				return
			}
			switch {
			case p.ID.IsResponse():
				e.mu.Lock()
				ch := e.waiting[p.Seq]
				delete(e.waiting, p.Seq)
				e.mu.Unlock()
				if ch != nil {
					ch <- p
				}
			case p.ID == smpp.DeliverSM:
				st, answer := smpp.StatusOK, true
				e.mu.Lock()
				ack := e.ack
				e.mu.Unlock()
				if ack != nil {
					st, answer = ack(p)
				}
				if answer {
					r := p.Response(st)
					r.MessageID = ""
					if err := e.c.Write(r); err != nil {
						return
					}
				}
				e.inbox <- p
			case p.ID == smpp.EnquireLink:
				e.c.Write(p.Response(smpp.StatusOK))
			case p.ID == smpp.Unbind:
				e.c.Write(p.Response(smpp.StatusOK))
				e.inbox <- p
			}
		}
	}()
}

func (e *esme) setAck(f func(*smpp.PDU) (smpp.Status, bool)) {
	e.mu.Lock()
	e.ack = f
	e.mu.Unlock()
}

// call sends a request and waits for its response.
func (e *esme) call(p *smpp.PDU) *smpp.PDU {
	e.t.Helper()
	p.Seq = e.nextSeq()
	ch := make(chan *smpp.PDU, 1)
	e.mu.Lock()
	e.waiting[p.Seq] = ch
	e.mu.Unlock()
	e.write(p)
	select {
	case r := <-ch:
		return r
	case <-time.After(failsafe):
		e.t.Fatalf("no response to %v", p.ID)
		return nil
	}
}

// submit sends submit_sm and returns the message_id, failing unless it
// was accepted.
func (e *esme) submit(p *smpp.PDU) string {
	e.t.Helper()
	r := e.call(p)
	if r.ID != smpp.SubmitSMResp || r.Status != smpp.StatusOK {
		e.t.Fatalf("submit_sm: %v status %v", r.ID, r.Status)
	}
	return r.MessageID
}

// next returns the next deliver_sm (or unbind) the SMSC sent.
func (e *esme) next() *smpp.PDU {
	e.t.Helper()
	select {
	case p := <-e.inbox:
		return p
	case <-time.After(failsafe):
		e.t.Fatal("no deliver_sm received")
		return nil
	}
}

// poll returns a deliver_sm if one has arrived.
func (e *esme) poll() (*smpp.PDU, bool) {
	select {
	case p := <-e.inbox:
		return p, true
	default:
		return nil, false
	}
}

// otaUD is an OTA command as the Messaging Server sends it: UDH 02 70 00
// (command packet identifier), then a secured packet.
var otaUD = append([]byte{0x02, 0x70, 0x00}, []byte{
	0x00, 0x1A, 0x15, 0x16, 0x39, 0x12, 0x12, 0xB0, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x80, 0x81, 0xFF, 0x00,
}...)

// otaSubmit is a binary MT as in DESIGN.md §3.
func otaSubmit(dest string, ud []byte) *smpp.PDU {
	return &smpp.PDU{
		ID:                 smpp.SubmitSM,
		Source:             smpp.Address{TON: smpp.TONInternational, NPI: smpp.NPIISDN, Addr: "3584000001"},
		Dest:               smpp.Address{TON: smpp.TONInternational, NPI: smpp.NPIISDN, Addr: dest},
		ESMClass:           smpp.ESMClassUDHI,
		ProtocolID:         0x7F,
		DataCoding:         0xF6,
		RegisteredDelivery: 1,
		ShortMessage:       ud,
	}
}

// tlv returns the value of tag in p.
func tlv(t *testing.T, p *smpp.PDU, tag uint16) []byte {
	t.Helper()
	v, ok := p.TLV(tag)
	if !ok {
		t.Fatalf("%v lacks TLV %04x", p.ID, tag)
	}
	return v
}

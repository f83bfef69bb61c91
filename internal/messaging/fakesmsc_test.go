package messaging

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"mobileid/internal/smpp"
)

// fakeSMSC is a scriptable SMPP server for the tests: it records every PDU
// the ESME sends, answers submit_sm as the script says, and lets a test
// push deliver_sm, drop links and send broken PDUs. It is not an SMSC
// simulator (that is internal/smsc): it exists to produce the failures the
// Messaging Server must survive, on demand.
type fakeSMSC struct {
	t     testing.TB
	ln    net.Listener
	creds map[string]string // system_id → password

	mu       sync.Mutex
	conns    []*fakeConn
	received []*smpp.PDU // every PDU from the ESME, in order
	binds    int         // successful binds
	nextID   int
	nSubmits int
	// script answers the n-th submit_sm (from 0); nil answers OK at once.
	script         func(n int, p *smpp.PDU) reply
	silentEnquire  bool // do not answer enquire_link
	outstanding    map[*fakeConn]int
	maxOutstanding int
	wg             sync.WaitGroup
}

// reply is how the fake answers one submit_sm.
type reply struct {
	status smpp.Status
	delay  time.Duration
	omit   bool // never answer
}

type fakeConn struct {
	f  *fakeSMSC
	c  *smpp.Conn
	mu sync.Mutex
	// seq numbers the fake's own requests; waits gets their responses.
	seq   uint32
	waits map[uint32]chan *smpp.PDU
	bound bool
}

func newFakeSMSC(t testing.TB) *fakeSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMSC{t: t, ln: ln, creds: map[string]string{"mid": "secret"}, outstanding: make(map[*fakeConn]int)}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeSMSC) addr() string { return f.ln.Addr().String() }

func (f *fakeSMSC) close() {
	f.ln.Close()
	f.dropAll()
	f.wg.Wait()
}

func (f *fakeSMSC) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		fc := &fakeConn{f: f, c: smpp.NewConn(nc), waits: make(map[uint32]chan *smpp.PDU)}
		f.mu.Lock()
		f.conns = append(f.conns, fc)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			fc.serve()
		}()
	}
}

// dropAll closes every connection, as an SMSC restart would.
func (f *fakeSMSC) dropAll() {
	f.mu.Lock()
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for _, fc := range conns {
		fc.c.Close()
	}
}

func (fc *fakeConn) serve() {
	f := fc.f
	defer fc.c.Close()
	for {
		p, err := fc.c.Read()
		if err != nil {
			var pe *smpp.Error
			if errors.As(err, &pe) && p != nil {
				continue
			}
			f.mu.Lock()
			delete(f.outstanding, fc)
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		f.received = append(f.received, p)
		f.mu.Unlock()
		switch p.ID {
		case smpp.BindTransceiver:
			st := smpp.StatusOK
			if pw, ok := f.creds[p.SystemID]; !ok || pw != p.Password || p.InterfaceVersion != 0x34 {
				st = smpp.StatusInvalidPassword
			}
			r := p.Response(st)
			r.SystemID = "fake"
			fc.c.Write(r)
			if st == smpp.StatusOK {
				f.mu.Lock()
				f.binds++
				fc.bound = true
				f.mu.Unlock()
			}
		case smpp.SubmitSM:
			f.mu.Lock()
			n := f.nSubmits
			f.nSubmits++
			script := f.script
			f.outstanding[fc]++
			f.maxOutstanding = max(f.maxOutstanding, f.outstanding[fc])
			f.mu.Unlock()
			r := reply{}
			if script != nil {
				r = script(n, p)
			}
			if r.omit {
				continue
			}
			answer := func() {
				f.mu.Lock()
				f.outstanding[fc]--
				f.nextID++
				id := "m" + strconv.Itoa(f.nextID)
				f.mu.Unlock()
				resp := p.Response(r.status)
				if r.status == smpp.StatusOK {
					resp.MessageID = id
				}
				fc.c.Write(resp)
			}
			if r.delay > 0 {
				time.AfterFunc(r.delay, answer)
			} else {
				answer()
			}
		case smpp.EnquireLink:
			f.mu.Lock()
			silent := f.silentEnquire
			f.mu.Unlock()
			if !silent {
				fc.c.Write(p.Response(smpp.StatusOK))
			}
		case smpp.Unbind:
			fc.c.Write(p.Response(smpp.StatusOK))
			return
		default:
			if p.ID.IsResponse() {
				fc.mu.Lock()
				ch := fc.waits[p.Seq]
				delete(fc.waits, p.Seq)
				fc.mu.Unlock()
				if ch != nil {
					ch <- p
				}
			}
		}
	}
}

// bound returns the most recent bound connection, waiting for one.
func (f *fakeSMSC) bound() *fakeConn {
	f.t.Helper()
	var fc *fakeConn
	waitFor(f.t, "a bound connection", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := len(f.conns) - 1; i >= 0; i-- {
			if f.conns[i].bound {
				fc = f.conns[i]
				return true
			}
		}
		return false
	})
	return fc
}

// request sends one of the fake's requests on the latest bound link and
// waits for the ESME's response.
func (f *fakeSMSC) request(p *smpp.PDU) *smpp.PDU {
	f.t.Helper()
	fc := f.bound()
	ch := fc.expect(p)
	if err := fc.c.Write(p); err != nil {
		f.t.Fatalf("write %v: %v", p.ID, err)
	}
	return wait(f.t, ch)
}

// expect assigns p a sequence number and registers a wait for its
// response.
func (fc *fakeConn) expect(p *smpp.PDU) chan *smpp.PDU {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.seq++
	p.Seq = fc.seq
	ch := make(chan *smpp.PDU, 1)
	fc.waits[p.Seq] = ch
	return ch
}

func wait(t testing.TB, ch chan *smpp.PDU) *smpp.PDU {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no response from the ESME")
		return nil
	}
}

// submits returns the submit_sm received so far.
func (f *fakeSMSC) submits() []*smpp.PDU {
	return f.pdus(smpp.SubmitSM)
}

func (f *fakeSMSC) pdus(id smpp.CommandID) []*smpp.PDU {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*smpp.PDU
	for _, p := range f.received {
		if p.ID == id {
			out = append(out, p)
		}
	}
	return out
}

func (f *fakeSMSC) bindCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.binds
}

func (f *fakeSMSC) setScript(s func(n int, p *smpp.PDU) reply) {
	f.mu.Lock()
	f.script = s
	f.mu.Unlock()
}

// receipt returns a delivery receipt deliver_sm for SMSC message id, with
// both the TLVs and the Appendix B text.
func receiptPDU(id string, st smpp.MessageState, netErr []byte) *smpp.PDU {
	r := smpp.Receipt{ID: id, Submitted: 1, State: st, SubmitDate: time.Now(), DoneDate: time.Now()}
	p := &smpp.PDU{
		ID:           smpp.DeliverSM,
		Source:       smpp.Address{TON: 1, NPI: 1, Addr: testMSISDN},
		Dest:         smpp.Address{TON: 1, NPI: 1, Addr: testService},
		ESMClass:     smpp.ESMClassReceipt,
		ShortMessage: []byte(r.Format()),
		TLVs: []smpp.TLV{
			{Tag: smpp.TagReceiptedMessageID, Value: append([]byte(id), 0)},
			{Tag: smpp.TagMessageState, Value: []byte{byte(st)}},
		},
	}
	if netErr != nil {
		p.TLVs = append(p.TLVs, smpp.TLV{Tag: smpp.TagNetworkErrorCode, Value: netErr})
	}
	return p
}

// moPDU returns an MO deliver_sm carrying ud (header included when udhi).
func moPDU(from string, udhi bool, dcs byte, ud []byte) *smpp.PDU {
	p := &smpp.PDU{
		ID:           smpp.DeliverSM,
		Source:       smpp.Address{TON: 1, NPI: 1, Addr: from},
		Dest:         smpp.Address{TON: 1, NPI: 1, Addr: testService},
		ProtocolID:   0x7F,
		DataCoding:   dcs,
		ShortMessage: ud,
	}
	if udhi {
		p.ESMClass = smpp.ESMClassUDHI
	}
	return p
}

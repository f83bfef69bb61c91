package smsc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"mobileid/internal/smpp"
)

// errSessionClosed means a PDU was not queued because the connection is
// closing.
var errSessionClosed = errors.New("smsc: connection closing")

// session is one ESME connection: a reader goroutine that parses and
// answers PDUs, and a writer goroutine that sends whatever has been queued
// since its last write in one system call.
type session struct {
	s      *SMSC
	nc     net.Conn
	conn   *smpp.Conn
	remote string

	// Set by the reader goroutine when the bind succeeds.
	acct   *account
	bindID smpp.CommandID
	bound  atomic.Bool

	seq      atomic.Uint32 // our requests: deliver_sm and unbind
	dead     atomic.Bool   // closed: nothing more is written
	draining atomic.Bool   // closing after the queued PDUs are written

	wmu        sync.Mutex
	wbuf       []byte // encoded PDUs not yet handed to the writer
	wsig       chan struct{}
	writerDone chan struct{}

	// outstanding maps the sequence numbers of deliver_sm awaiting a
	// response; guarded by acct.mu, nil unless the bind can receive.
	outstanding map[uint32]*outItem

	// Submit throttle, used by the reader goroutine only.
	tokens float64
	tokAt  time.Time
}

func newSession(s *SMSC, nc net.Conn) *session {
	remote := "unknown"
	if ra := nc.RemoteAddr(); ra != nil {
		remote = ra.String()
	}
	return &session{
		s:          s,
		nc:         nc,
		conn:       smpp.NewConn(nc),
		remote:     remote,
		wsig:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
}

func (c *session) nextSeq() uint32 {
	for {
		if v := c.seq.Add(1) & 0x7FFFFFFF; v != 0 {
			return v
		}
	}
}

// send queues p for the writer. A peer that lets too much pile up is not
// reading: the connection is closed rather than allowed to hold memory
// or anyone's progress.
func (c *session) send(p *smpp.PDU) error {
	c.wmu.Lock()
	if c.dead.Load() || c.draining.Load() {
		c.wmu.Unlock()
		return errSessionClosed
	}
	b, err := p.AppendBinary(c.wbuf)
	if err != nil {
		c.wmu.Unlock()
		return fmt.Errorf("encode %v: %w", p.ID, err)
	}
	c.wbuf = b
	over := len(b) > maxPendingWrite
	c.wmu.Unlock()
	if over {
		c.s.log.Warn("esme not reading, closing connection", "remote", c.remote, "pending", len(b))
		c.kill()
		return nil
	}
	c.signal()
	return nil
}

func (c *session) signal() {
	select {
	case c.wsig <- struct{}{}:
	default:
	}
}

// kill closes the connection at once.
func (c *session) kill() {
	if c.dead.CompareAndSwap(false, true) {
		c.nc.Close()
	}
	c.signal()
}

// closeAfterFlush lets the writer send what is queued and then close the
// connection; later PDUs are refused.
func (c *session) closeAfterFlush() {
	c.wmu.Lock()
	c.draining.Store(true)
	c.wmu.Unlock()
	c.signal()
}

// shutdown unbinds a bound ESME and closes the connection.
func (c *session) shutdown() {
	if c.bound.Load() {
		c.send(&smpp.PDU{ID: smpp.Unbind, Seq: c.nextSeq()})
	}
	c.closeAfterFlush()
	// A write already stuck on a peer that does not read must not hold
	// Close for the whole WriteTimeout.
	c.nc.SetWriteDeadline(time.Now().Add(closeGrace))
}

func (c *session) writeLoop() {
	defer c.s.wg.Done()
	defer close(c.writerDone)
	var out []byte
	for range c.wsig {
		c.wmu.Lock()
		out, c.wbuf = c.wbuf, out[:0]
		// Read under wmu: every PDU queued before draining began is in out.
		draining := c.draining.Load()
		c.wmu.Unlock()
		if c.dead.Load() {
			return
		}
		if len(out) > 0 {
			timeout := c.s.cfg.WriteTimeout
			if draining {
				timeout = min(timeout, closeGrace)
			}
			c.nc.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := c.nc.Write(out); err != nil {
				if !c.dead.Load() {
					c.s.log.Warn("write to esme failed, closing connection", "remote", c.remote, "err", err)
				}
				c.kill()
				return
			}
		}
		if draining {
			c.kill()
			return
		}
		if cap(out) > maxPendingWrite {
			out = nil // do not keep a burst's buffer for the life of the connection
		}
	}
}

func (c *session) readLoop() {
	defer c.s.wg.Done()
	defer c.finish()
	c.nc.SetReadDeadline(time.Now().Add(bindTimeout))
	for {
		p, err := c.conn.Read()
		if err != nil {
			if !c.readError(p, err) {
				return
			}
			continue
		}
		if !c.handle(p) {
			return
		}
	}
}

// finish runs when the reader stops: it waits for the writer and hands
// the bind's unanswered deliver_sm back to its account.
func (c *session) finish() {
	if !c.draining.Load() {
		c.kill()
	}
	<-c.writerDone
	c.kill()
	if c.acct != nil {
		c.acct.detach(c)
		c.s.log.Info("esme unbound", "system_id", c.acct.cfg.SystemID, "remote", c.remote)
	}
	c.s.removeSession(c)
}

// readError handles a PDU that could not be read; it reports whether the
// connection can go on.
func (c *session) readError(p *smpp.PDU, err error) bool {
	var fe *smpp.FramingError
	if errors.As(err, &fe) {
		// The stream cannot be split into PDUs any more.
		c.s.log.Warn("smpp framing error, closing connection", "remote", c.remote, "command_length", fe.Length)
		c.send(&smpp.PDU{ID: smpp.GenericNack, Status: smpp.StatusInvalidCommandLength})
		c.closeAfterFlush()
		return false
	}
	var pe *smpp.Error
	if !errors.As(err, &pe) || p == nil {
		if !errors.Is(err, io.EOF) && !c.dead.Load() && !c.draining.Load() {
			c.s.log.Debug("esme connection read failed", "remote", c.remote, "err", err)
		}
		return false
	}
	c.s.log.Warn("malformed smpp pdu", "remote", c.remote, "command", p.ID, "seq", p.Seq, "status", pe.Status)
	switch {
	case !smpp.Known(p.ID):
		c.send(&smpp.PDU{ID: smpp.GenericNack, Status: smpp.StatusInvalidCommandID, Seq: p.Seq})
	case p.ID == smpp.DeliverSMResp && c.acct != nil:
		// The header's status is what counts; a body we cannot read
		// does not change it.
		c.acct.deliverResp(c, p.Seq, p.Status)
	default:
		c.reject(p, pe.Status)
	}
	return true
}

// reject answers p with status st: its own response, or generic_nack for
// a PDU that has none.
func (c *session) reject(p *smpp.PDU, st smpp.Status) {
	r := p.Response(st)
	if r == nil || !smpp.Known(r.ID) {
		r = &smpp.PDU{ID: smpp.GenericNack, Status: st, Seq: p.Seq}
	}
	c.send(r)
}

// handle processes one well-formed PDU; it reports whether the
// connection goes on.
func (c *session) handle(p *smpp.PDU) bool {
	if c.acct == nil {
		switch {
		case p.ID.IsBind():
			return c.bind(p)
		case p.ID == smpp.GenericNack:
			// Answering a nack with a nack could ping-pong forever.
			c.s.log.Warn("generic_nack before bind", "remote", c.remote, "status", p.Status)
		default:
			c.s.log.Warn("command before bind", "remote", c.remote, "command", p.ID)
			c.reject(p, smpp.StatusInvalidBindStatus)
		}
		return true
	}
	switch p.ID {
	case smpp.SubmitSM:
		c.submit(p)
	case smpp.DeliverSMResp:
		if !c.acct.deliverResp(c, p.Seq, p.Status) {
			c.s.log.Debug("deliver_sm_resp for nothing outstanding", "remote", c.remote, "seq", p.Seq)
		}
	case smpp.EnquireLink:
		c.send(p.Response(smpp.StatusOK))
	case smpp.Unbind:
		c.send(p.Response(smpp.StatusOK))
		c.closeAfterFlush()
		return false
	case smpp.BindReceiver, smpp.BindTransmitter, smpp.BindTransceiver:
		c.s.log.Warn("bind on a bound connection", "remote", c.remote, "system_id", p.SystemID)
		c.reject(p, smpp.StatusAlreadyBound)
	case smpp.DeliverSM:
		// deliver_sm flows from the SMSC to the ESME only.
		c.s.log.Warn("deliver_sm from an esme", "remote", c.remote)
		c.reject(p, smpp.StatusInvalidBindStatus)
	case smpp.GenericNack:
		st := p.Status
		if st == smpp.StatusOK {
			st = smpp.StatusSystemError
		}
		c.s.log.Warn("generic_nack from esme", "remote", c.remote, "seq", p.Seq, "status", p.Status)
		c.acct.deliverResp(c, p.Seq, st)
	default:
		// Responses to requests we did not send (or unbind_resp after
		// our unbind): nothing to do.
		c.s.log.Debug("unexpected response ignored", "remote", c.remote, "command", p.ID)
	}
	return true
}

// bind authenticates the first bind of the connection.
func (c *session) bind(p *smpp.PDU) bool {
	resp := &smpp.PDU{ID: p.ID.Response(), Seq: p.Seq, SystemID: SystemID}
	a := c.s.accounts[p.SystemID]
	switch {
	case a == nil:
		resp.Status = smpp.StatusInvalidSystemID
	case subtle.ConstantTimeCompare([]byte(p.Password), []byte(a.cfg.Password)) != 1:
		resp.Status = smpp.StatusInvalidPassword
	case !a.reserveBind():
		resp.Status = smpp.StatusBindFailed
	}
	if resp.Status != smpp.StatusOK {
		c.s.log.Warn("bind refused", "remote", c.remote, "system_id", p.SystemID, "command", p.ID, "status", resp.Status)
		c.send(resp)
		c.closeAfterFlush()
		return false
	}
	c.acct, c.bindID = a, p.ID
	c.bound.Store(true)
	c.nc.SetReadDeadline(time.Time{})
	resp.TLVs = []smpp.TLV{{Tag: smpp.TagSCInterfaceVersion, Value: []byte{0x34}}}
	c.send(resp)
	c.s.log.Info("esme bound", "remote", c.remote, "system_id", p.SystemID, "command", p.ID)
	if p.ID != smpp.BindTransmitter {
		// After the response, so that held deliver_sm follow it.
		a.addReceiver(c)
	}
	return true
}

// submit handles submit_sm: validate, store, answer at once.
func (c *session) submit(p *smpp.PDU) {
	s := c.s
	if c.bindID == smpp.BindReceiver {
		c.reject(p, smpp.StatusInvalidBindStatus)
		return
	}
	now := s.clock.Now()
	st := smpp.StatusOK
	var m *mtMessage
	if s.cfg.ThrottlePerSecond > 0 && !c.allow(now) {
		st = smpp.StatusThrottled
	} else {
		m, st = s.acceptSubmit(c.acct, p, now)
	}
	if s.cfg.Tap != nil {
		s.tapSubmit(c.acct, p, m, st, now)
	}
	if st != smpp.StatusOK {
		s.st.rejected.Add(1)
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("submit_sm refused", "remote", c.remote, "seq", p.Seq, "src", p.Source.Addr, "dst", p.Dest.Addr, "status", st)
		}
		c.reject(p, st)
		return
	}
	s.st.submitted.Add(1)
	s.m.submit.Inc()
	// The response goes first, so that a receipt can never reach the ESME
	// before the message_id it refers to.
	c.send(&smpp.PDU{ID: smpp.SubmitSMResp, Seq: p.Seq, MessageID: m.id})
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("submit_sm accepted", "id", m.id, "src", p.Source.Addr, "dst", m.msisdn, "len", len(m.tpdu))
	}
	s.enqueueMT(m)
}

// allow is a token bucket of ThrottlePerSecond tokens per second with a
// burst of one second.
func (c *session) allow(now time.Time) bool {
	rate := float64(c.s.cfg.ThrottlePerSecond)
	if c.tokAt.IsZero() {
		c.tokens = rate
	} else if dt := now.Sub(c.tokAt).Seconds(); dt > 0 {
		c.tokens = min(rate, c.tokens+dt*rate)
	}
	c.tokAt = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/smpp"
)

// interfaceVersion is SMPP 3.4.
const interfaceVersion = 0x34

var (
	errUnbound         = errors.New("messaging: SMSC unbound")
	errResponseTimeout = errors.New("messaging: SMSC did not answer in time")
)

// session is one SMPP bind: it connects, binds as a transceiver, keeps
// the link alive and reconnects with back-off. It knows nothing of the
// database: results go to the Server through a per-connection worker, so
// that a slow database never delays reading the SMSC's responses (which
// would look like a dead link).
type session struct {
	srv    *Server
	bind   Bind
	log    *slog.Logger
	window prometheus.Gauge

	mu          sync.Mutex
	conn        *smpp.Conn // nil unless bound
	closing     bool       // unbinding: no new submit_sm
	seq         uint32
	pending     map[uint32]*request
	inflight    int // outstanding submit_sm
	pausedUntil time.Time
	pause       time.Duration // current throttle pause; 0 when not throttled
}

// request is one of our PDUs awaiting its response.
type request struct {
	cmd      smpp.CommandID
	seg      *outSeg // submit_sm
	deadline time.Time
	done     chan *smpp.PDU // enquire_link and unbind: the response, if anyone waits
}

func newSession(s *Server, b Bind) *session {
	ss := &session{srv: s, bind: b, log: s.log.With("bind", b.Name), window: s.m.windowInUse.WithLabelValues(b.Name)}
	ss.window.Set(0)
	return ss
}

// run keeps the bind up until ctx is done.
func (ss *session) run(ctx context.Context) {
	for attempt := 0; ; {
		if attempt > 0 {
			ss.srv.m.reconnects.Inc()
			d := ss.backoff(attempt)
			ss.log.Info("reconnecting", "in", d, "attempt", attempt)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		bound, err := ss.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		ss.log.Warn("bind lost", "err", err)
		if bound {
			attempt = 1
		} else {
			attempt++
		}
	}
}

// backoff is the jittered exponential pause before connection attempt n
// (n ≥ 1): a random point in the upper half of min(ReconnectMin·2ⁿ⁻¹,
// ReconnectMax), so that binds that fell together do not return together.
func (ss *session) backoff(n int) time.Duration {
	c := ss.srv.cfg
	d := c.ReconnectMax
	if n-1 < 30 && c.ReconnectMin<<(n-1) < c.ReconnectMax {
		d = c.ReconnectMin << (n - 1)
	}
	return d/2 + rand.N(d/2+1)
}

// connect dials, binds and serves one connection. bound reports whether
// the bind succeeded, which resets the back-off.
func (ss *session) connect(ctx context.Context) (bound bool, err error) {
	rt := ss.srv.cfg.ResponseTimeout
	d := net.Dialer{Timeout: rt}
	nc, err := d.DialContext(ctx, "tcp", ss.bind.Addr)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", ss.bind.Addr, err)
	}
	c := smpp.NewConn(nc)
	c.WriteTimeout = rt
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	if err := ss.bindTransceiver(c); err != nil {
		stop()
		nc.Close()
		return false, err
	}
	// From here on, shutdown unbinds cleanly instead of cutting the line.
	if !stop() {
		nc.Close()
		return true, ctx.Err()
	}
	ss.log.Info("bound", "addr", ss.bind.Addr, "system_id", ss.bind.SystemID)
	return true, ss.serve(ctx, c)
}

// bindTransceiver sends bind_transceiver and waits for its response,
// answering an enquire_link that an SMSC may send first.
func (ss *session) bindTransceiver(c *smpp.Conn) error {
	rt := ss.srv.cfg.ResponseTimeout
	err := c.Write(&smpp.PDU{ID: smpp.BindTransceiver, Seq: 1, SystemID: ss.bind.SystemID, Password: ss.bind.Password,
		InterfaceVersion: interfaceVersion})
	if err != nil {
		return fmt.Errorf("send bind_transceiver: %w", err)
	}
	c.NetConn().SetReadDeadline(time.Now().Add(rt))
	defer c.NetConn().SetReadDeadline(time.Time{})
	for {
		p, err := c.Read()
		if err != nil {
			return fmt.Errorf("read bind_transceiver_resp: %w", err)
		}
		switch {
		case p.ID == smpp.BindTransceiverResp && p.Seq == 1:
			if p.Status != smpp.StatusOK {
				return fmt.Errorf("bind_transceiver refused: %v", p.Status)
			}
			return nil
		case p.ID == smpp.GenericNack:
			return fmt.Errorf("bind_transceiver refused: generic_nack %v", p.Status)
		case p.ID == smpp.EnquireLink:
			c.Write(p.Response(smpp.StatusOK))
		}
	}
}

// work is what the reader hands to the worker goroutine: a deliver_sm to
// store and answer, or the answer to one of our submit_sm.
type work struct {
	deliver *smpp.PDU
	seg     *outSeg
	resp    *smpp.PDU // submit_sm_resp or generic_nack
	// holdsWindow: the response refused the segment, and its window slot
	// is freed only once the refusal is recorded (see complete).
	holdsWindow bool
}

// serve runs a bound connection until it fails or ctx is done.
func (ss *session) serve(ctx context.Context, c *smpp.Conn) error {
	cfg := ss.srv.cfg
	ss.mu.Lock()
	ss.conn, ss.closing, ss.seq, ss.inflight = c, false, 1, 0
	ss.pending = make(map[uint32]*request)
	ss.mu.Unlock()
	ss.window.Set(0)
	ss.srv.wakeSender()

	// The worker stores in arrival order, so a receipt that follows the
	// submit_sm_resp of its segment on this bind finds the segment's id.
	// It takes all the PDUs that queued up while it was busy (up to
	// maxWorkBatch) and stores them in one transaction.
	jobs := make(chan work, cfg.Window+64)
	workerDone := make(chan struct{})
	dbctx := context.WithoutCancel(ctx)
	go func() {
		defer close(workerDone)
		var ws []work
		for w := range jobs {
			ws = append(ws[:0], w)
		drain:
			for len(ws) < maxWorkBatch {
				select {
				case w, ok := <-jobs:
					if !ok {
						break drain
					}
					ws = append(ws, w)
				default:
					break drain
				}
			}
			ss.process(dbctx, c, ws)
			clear(ws)
		}
	}()
	readErr := make(chan error, 1)
	go func() {
		readErr <- ss.readLoop(c, jobs)
		close(jobs)
	}()

	tick := time.NewTicker(max(min(cfg.ResponseTimeout, cfg.EnquireLink)/4, time.Millisecond))
	defer tick.Stop()
	lastEnquire := time.Now()
	var err error
loop:
	for {
		select {
		case err = <-readErr:
			break loop
		case <-ctx.Done():
			err = ss.unbind(c, readErr)
			break loop
		case now := <-tick.C:
			if ss.overdue(now) {
				ss.log.Warn("no response within the response timeout; dropping the bind", "timeout", cfg.ResponseTimeout)
				c.Close()
				<-readErr
				err = errResponseTimeout
				break loop
			}
			if now.Sub(lastEnquire) >= cfg.EnquireLink {
				lastEnquire = now
				if err := ss.send(&smpp.PDU{ID: smpp.EnquireLink}, nil); err != nil {
					c.Close()
				}
			}
		}
	}
	c.Close()
	<-workerDone
	ss.teardown(dbctx)
	return err
}

// unbind ends the session cleanly: it lets outstanding submit_sm be
// answered, so their results are recorded rather than resent, then
// exchanges unbind and unbind_resp. It returns after the reader stopped.
func (ss *session) unbind(c *smpp.Conn, readErr <-chan error) error {
	rt := ss.srv.cfg.ResponseTimeout
	ss.mu.Lock()
	ss.closing = true
	ss.mu.Unlock()
	deadline := time.Now().Add(rt)
	for ss.outstanding() > 0 && time.Now().Before(deadline) {
		select {
		case err := <-readErr:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	done := make(chan *smpp.PDU, 1)
	if err := ss.send(&smpp.PDU{ID: smpp.Unbind}, done); err == nil {
		t := time.NewTimer(rt)
		select {
		case <-done:
			ss.log.Info("unbound")
		case <-t.C:
			ss.log.Warn("no unbind_resp")
		case err := <-readErr:
			t.Stop()
			return err
		}
		t.Stop()
	}
	c.Close()
	<-readErr
	return nil
}

// teardown forgets the connection and puts the segments that were never
// answered back in the queue.
func (ss *session) teardown(ctx context.Context) {
	ss.mu.Lock()
	var segs []*outSeg
	for _, r := range ss.pending {
		if r.seg != nil {
			segs = append(segs, r.seg)
		}
	}
	ss.conn, ss.pending, ss.inflight = nil, nil, 0
	ss.mu.Unlock()
	ss.window.Set(0)
	if len(segs) > 0 {
		ss.log.Info("requeueing unanswered segments", "count", len(segs))
		ss.srv.release(ctx, segs)
	}
}

// readLoop reads PDUs until the connection fails. It answers what needs
// no database at once and passes the rest to the worker.
func (ss *session) readLoop(c *smpp.Conn, jobs chan<- work) error {
	for {
		p, err := c.Read()
		if err != nil {
			var fe *smpp.FramingError
			var pe *smpp.Error
			switch {
			case errors.As(err, &fe):
				// The stream cannot be split into PDUs any more.
				c.Write(&smpp.PDU{ID: smpp.GenericNack, Status: smpp.StatusInvalidCommandLength})
				return fmt.Errorf("read PDU: %w", err)
			case errors.As(err, &pe) && p != nil:
				ss.log.Warn("bad PDU from the SMSC", "command", p.ID, "seq", p.Seq, "err", err)
				ss.answerBad(c, p, pe, jobs)
				continue
			}
			return fmt.Errorf("read PDU: %w", err)
		}
		switch p.ID {
		case smpp.EnquireLink:
			c.Write(p.Response(smpp.StatusOK))
		case smpp.DeliverSM:
			jobs <- work{deliver: p}
		case smpp.Unbind:
			c.Write(p.Response(smpp.StatusOK))
			return errUnbound
		case smpp.SubmitSMResp, smpp.EnquireLinkResp, smpp.UnbindResp, smpp.GenericNack:
			ss.complete(p, jobs)
		default:
			if p.ID.IsResponse() {
				ss.log.Debug("unexpected response ignored", "command", p.ID, "seq", p.Seq)
			} else {
				// A request an ESME does not take, such as submit_sm.
				c.Write(p.Response(smpp.StatusInvalidBindStatus))
			}
		}
	}
}

// answerBad answers a PDU that did not decode but whose header did: a
// request gets its response with the error status (generic_nack when the
// command is unknown), a response still ends the wait for it.
func (ss *session) answerBad(c *smpp.Conn, p *smpp.PDU, pe *smpp.Error, jobs chan<- work) {
	switch {
	case !smpp.Known(p.ID) || p.ID == smpp.GenericNack:
		if p.ID != smpp.GenericNack {
			c.Write(&smpp.PDU{ID: smpp.GenericNack, Status: pe.Status, Seq: p.Seq})
		}
	case p.ID.IsResponse():
		ss.complete(p, jobs)
	default:
		c.Write(p.Response(pe.Status))
	}
}

// complete matches a response to our request.
func (ss *session) complete(p *smpp.PDU, jobs chan<- work) {
	ss.mu.Lock()
	r := ss.pending[p.Seq]
	hold := false
	if r != nil && (p.ID == r.cmd.Response() || p.ID == smpp.GenericNack) {
		delete(ss.pending, p.Seq)
		// A refused segment may decide its message, whose remaining
		// segments must then not be sent: until the refusal is recorded
		// the slot stays taken, so that the sender cannot claim one of
		// them meanwhile.
		hold = r.seg != nil && (p.Status != smpp.StatusOK || p.ID == smpp.GenericNack)
		if r.seg != nil && !hold {
			ss.inflight--
			ss.window.Set(float64(ss.inflight))
		}
	} else {
		r = nil
	}
	ss.mu.Unlock()
	if r == nil {
		ss.log.Debug("response to no request of ours", "command", p.ID, "seq", p.Seq, "status", p.Status)
		return
	}
	if r.done != nil {
		r.done <- p
	}
	if r.seg != nil {
		jobs <- work{seg: r.seg, resp: p, holdsWindow: hold}
	}
}

// maxWorkBatch bounds the PDUs the worker stores in one transaction.
const maxWorkBatch = 128

// process does the database work of PDUs in the worker goroutine, in one
// transaction, then answers the deliver_sm: each answer goes out once what
// it acknowledges has committed.
func (ss *session) process(ctx context.Context, c *smpp.Conn, ws []work) {
	s := ss.srv
	items := make([]*txItem, 0, len(ws))
	var resps []*smpp.PDU // to send once the batch committed
	results := false
	for _, w := range ws {
		if p := w.deliver; p != nil {
			reply := func(st smpp.Status) { resps = append(resps, p.Response(st)) }
			if it := s.deliverItem(ss, p, reply); it != nil {
				items = append(items, it)
			} else {
				ss.answer(c, resps) // nothing to store: answered at once
				resps = resps[:0]
			}
			continue
		}
		results = true
		st := w.resp.Status
		if w.resp.ID == smpp.GenericNack && st == smpp.StatusOK {
			st = smpp.StatusUnknownError
		}
		switch st {
		case smpp.StatusOK:
			ss.mu.Lock()
			ss.pause = 0
			ss.mu.Unlock()
			items = append(items, s.acceptedItem(ss, w.seg, w.resp.MessageID))
		case smpp.StatusThrottled, smpp.StatusMessageQueueFull:
			ss.throttled(st)
			items = append(items, s.releaseItem([]*outSeg{w.seg}))
		default:
			ss.log.Warn("submit_sm refused", "message", w.seg.messageID, "seq", w.seg.seq, "status", st)
			items = append(items, s.refusedItem(w.seg, st))
		}
	}
	s.runBatch(ctx, urgent, items)
	ss.mu.Lock()
	for _, w := range ws {
		// A connection that was torn down meanwhile reset its window.
		if w.holdsWindow && ss.conn == c && ss.inflight > 0 {
			ss.inflight--
			ss.window.Set(float64(ss.inflight))
		}
	}
	ss.mu.Unlock()
	ss.answer(c, resps)
	// The window has room again; the sender looks for more if it left
	// segments behind for want of it. (Only now: a refused segment has
	// decided its message, whose remaining segments are not sent.)
	if results && s.starved.Load() {
		s.wakeSender()
	}
}

// answer sends the responses to deliver_sm. A failed write closes the
// connection, which the reader notices.
func (ss *session) answer(c *smpp.Conn, resps []*smpp.PDU) {
	if err := c.WriteAll(resps...); err != nil {
		c.Close()
	}
}

// throttled pauses the bind. Refusals that arrive during a pause belong to
// the same burst; one after the pause means the SMSC still refuses, so the
// pause doubles.
func (ss *session) throttled(st smpp.Status) {
	base := ss.srv.cfg.ThrottleBackoff
	ss.mu.Lock()
	now := time.Now()
	if now.Before(ss.pausedUntil) {
		ss.mu.Unlock()
		return
	}
	if ss.pause == 0 {
		ss.pause = base
	} else {
		ss.pause = min(2*ss.pause, 32*base)
	}
	d := ss.pause
	ss.pausedUntil = now.Add(d)
	ss.mu.Unlock()
	ss.log.Info("SMSC throttles; pausing the bind", "status", st, "pause", d)
	time.AfterFunc(d, ss.srv.wakeSender)
}

// free returns how many more submit_sm the bind takes now.
func (ss *session) free() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn == nil || ss.closing || time.Now().Before(ss.pausedUntil) {
		return 0
	}
	return max(ss.srv.cfg.Window-ss.inflight, 0)
}

func (ss *session) outstanding() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.inflight
}

// submitAll sends the submit_sm of as many of segs as the bind has room
// for, in one write, and returns the segments it did not send.
func (ss *session) submitAll(segs []*outSeg) (back []*outSeg) {
	s := ss.srv
	ss.mu.Lock()
	c := ss.conn
	n := 0
	if c != nil && !ss.closing && !time.Now().Before(ss.pausedUntil) {
		n = min(len(segs), s.cfg.Window-ss.inflight)
	}
	if n <= 0 {
		ss.mu.Unlock()
		return segs
	}
	deadline := time.Now().Add(s.cfg.ResponseTimeout)
	pdus := make([]*smpp.PDU, n)
	for i, seg := range segs[:n] {
		p := s.submitPDU(seg)
		ss.seq++
		if ss.seq > 0x7FFFFFFF {
			ss.seq = 1
		}
		p.Seq = ss.seq
		ss.pending[p.Seq] = &request{cmd: p.ID, seg: seg, deadline: deadline}
		pdus[i] = p
	}
	ss.inflight += n
	ss.window.Set(float64(ss.inflight))
	ss.mu.Unlock()
	back = segs[n:len(segs):len(segs)] // appending below copies
	if err := c.WriteAll(pdus...); err != nil {
		// Those still waiting for an answer were not sent, or not whole;
		// the link is dead: take no more submit_sm until the reader has
		// noticed and a new connection is bound.
		ss.mu.Lock()
		for i, p := range pdus {
			if ss.pending[p.Seq] != nil {
				delete(ss.pending, p.Seq)
				ss.inflight--
				back = append(back, segs[i])
			}
		}
		ss.window.Set(float64(ss.inflight))
		if ss.conn == c {
			ss.closing = true
		}
		ss.mu.Unlock()
		c.Close()
	}
	return back
}

// send registers p, which is not a submit_sm (see submitAll), as a
// pending request with the next sequence number and writes it. A failed
// write closes the connection, which the reader notices.
func (ss *session) send(p *smpp.PDU, done chan *smpp.PDU) error {
	ss.mu.Lock()
	c := ss.conn
	if c == nil {
		ss.mu.Unlock()
		return errors.New("messaging: bind not available")
	}
	ss.seq++
	if ss.seq > 0x7FFFFFFF {
		ss.seq = 1
	}
	p.Seq = ss.seq
	ss.pending[p.Seq] = &request{cmd: p.ID, deadline: time.Now().Add(ss.srv.cfg.ResponseTimeout), done: done}
	ss.mu.Unlock()
	if err := c.Write(p); err != nil {
		ss.mu.Lock()
		delete(ss.pending, p.Seq)
		// The link is dead: take no more submit_sm until the reader has
		// noticed and a new connection is bound.
		if ss.conn == c {
			ss.closing = true
		}
		ss.mu.Unlock()
		c.Close()
		return fmt.Errorf("write %v: %w", p.ID, err)
	}
	return nil
}

// overdue reports whether a request has waited past its deadline.
func (ss *session) overdue(now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, r := range ss.pending {
		if now.After(r.deadline) {
			return true
		}
	}
	return false
}

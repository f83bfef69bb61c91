package smsc

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"time"

	"mobileid/internal/smpp"
)

// outItem is a deliver_sm (MO message or receipt) on its way to an ESME.
type outItem struct {
	pdu      smpp.PDU // Seq is set each time it is sent
	expires  time.Time
	taken    time.Time // when the SMSC took the MO in or knew the outcome
	sentAt   time.Time
	attempts int
	receipt  bool
}

// account is an ESME account with the deliver_sm traffic waiting for it
// and its binds that can take deliver_sm.
type account struct {
	s   *SMSC
	cfg Account

	mu        sync.Mutex // guards the fields below and the receivers' outstanding maps
	queue     []*outItem
	binds     int        // binds of any type
	receivers []*session // receiver and transceiver binds
	rr        int        // round-robin position in receivers
}

// reserveBind counts a new bind unless the account has its maximum.
func (a *account) reserveBind() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.binds >= a.s.cfg.MaxBindsPerAccount {
		return false
	}
	a.binds++
	a.s.st.binds.Add(1)
	return true
}

// addReceiver lets c take deliver_sm; held messages start flowing.
func (a *account) addReceiver(c *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.outstanding = make(map[uint32]*outItem, a.s.cfg.Window)
	a.receivers = append(a.receivers, c)
	a.pumpLocked(a.s.clock.Now())
}

// detach forgets a closed bind. Its unanswered deliver_sm go back to the
// front of the queue, in the order they were sent, for the other binds.
func (a *account) detach(c *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.binds--
	a.s.st.binds.Add(-1)
	if i := slices.Index(a.receivers, c); i >= 0 {
		a.receivers = slices.Delete(a.receivers, i, i+1)
	}
	if len(c.outstanding) > 0 {
		back := make([]*outItem, 0, len(c.outstanding)+len(a.queue))
		for _, it := range c.outstanding {
			back = append(back, it)
		}
		slices.SortFunc(back, func(x, y *outItem) int { return cmp.Compare(x.pdu.Seq, y.pdu.Seq) })
		a.s.st.window.Add(-int64(len(back)))
		a.s.st.esmeRetried.Add(uint64(len(back)))
		a.queue = append(back, a.queue...)
	}
	c.outstanding = nil
	a.pumpLocked(a.s.clock.Now())
}

// enqueue adds a deliver_sm for the account and sends what the windows
// allow.
func (a *account) enqueue(it *outItem) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(a.queue, it)
	a.pumpLocked(a.s.clock.Now())
}

// pumpLocked sends queued deliver_sm round-robin over the binds that have
// room in their window.
func (a *account) pumpLocked(now time.Time) {
	for len(a.queue) > 0 {
		c := a.pickLocked()
		if c == nil {
			return
		}
		it := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		if !now.Before(it.expires) {
			a.dropLocked(it)
			continue
		}
		it.pdu.Seq = c.nextSeq()
		it.sentAt = now
		if err := c.send(&it.pdu); errors.Is(err, errSessionClosed) {
			// The bind closed since pickLocked looked; another may take it.
			a.queue = slices.Insert(a.queue, 0, it)
			continue
		} else if err != nil {
			// An address the codec cannot carry: it never will.
			a.s.log.Warn("deliver_sm not encodable, dropped", "system_id", a.cfg.SystemID, "err", err)
			a.dropLocked(it)
			continue
		}
		c.outstanding[it.pdu.Seq] = it
		a.s.st.window.Add(1)
	}
	if len(a.queue) == 0 {
		a.queue = nil // let a drained backlog's array go
	}
}

func (a *account) pickLocked() *session {
	n := len(a.receivers)
	for i := range n {
		c := a.receivers[(a.rr+i)%n]
		if !c.dead.Load() && !c.draining.Load() && len(c.outstanding) < a.s.cfg.Window {
			a.rr = (a.rr + i + 1) % n
			return c
		}
	}
	return nil
}

// deliverResp settles the deliver_sm with sequence number seq on c; it
// reports false if none was outstanding.
func (a *account) deliverResp(c *session, seq uint32, st smpp.Status) bool {
	a.mu.Lock()
	it := c.outstanding[seq]
	if it == nil {
		a.mu.Unlock()
		return false
	}
	var tapped Traffic
	if a.s.cfg.Tap != nil {
		tapped = deliverTraffic(a, it, st)
	}
	defer func() {
		// Deferred before the unlock, so it runs after it: the tap never
		// holds up the account.
		if a.s.cfg.Tap != nil {
			a.s.cfg.Tap(tapped)
		}
	}()
	defer a.mu.Unlock()
	delete(c.outstanding, seq)
	a.s.st.window.Add(-1)
	now := a.s.clock.Now()
	if st == smpp.StatusOK {
		a.s.st.esmeDelivered.Add(1)
		a.s.unreserve()
	} else {
		a.s.log.Debug("deliver_sm refused", "system_id", a.cfg.SystemID, "status", st, "receipt", it.receipt)
		a.retryLocked(it, now)
	}
	a.pumpLocked(now)
	return true
}

// retryLocked sends it again after a back-off, or drops it if it would
// expire first.
func (a *account) retryLocked(it *outItem, now time.Time) {
	it.attempts++
	d := a.s.backoff(it.attempts)
	if !now.Add(d).Before(it.expires) {
		a.dropLocked(it)
		return
	}
	a.s.st.esmeRetried.Add(1)
	a.s.clock.AfterFunc(d, func() { a.enqueue(it) })
}

func (a *account) dropLocked(it *outItem) {
	a.s.st.dropped.Add(1)
	a.s.unreserve()
	a.s.log.Debug("deliver_sm expired undelivered", "system_id", a.cfg.SystemID, "receipt", it.receipt,
		"src", it.pdu.Source.Addr, "dst", it.pdu.Dest.Addr)
}

// housekeep re-sends deliver_sm whose response is overdue and drops held
// messages that expired while no bind could take them.
func (a *account) housekeep(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.receivers {
		for seq, it := range c.outstanding {
			if now.Sub(it.sentAt) < a.s.cfg.ResponseTimeout {
				continue
			}
			delete(c.outstanding, seq)
			a.s.st.window.Add(-1)
			a.s.log.Warn("deliver_sm unanswered, retrying", "system_id", a.cfg.SystemID, "remote", c.remote, "seq", seq)
			a.retryLocked(it, now)
		}
	}
	keep := a.queue[:0]
	for _, it := range a.queue {
		if now.Before(it.expires) {
			keep = append(keep, it)
		} else {
			a.dropLocked(it)
		}
	}
	clear(a.queue[len(keep):])
	a.queue = keep
	a.pumpLocked(now)
}

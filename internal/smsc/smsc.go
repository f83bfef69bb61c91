package smsc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SystemID is the system_id the SMSC gives in its bind responses.
const SystemID = "mobileid-smsc"

// Defaults for the zero values of Config.
const (
	DefaultMaxBindsPerAccount = 4
	DefaultWindow             = 32
	DefaultValidity           = time.Hour
	DefaultRetryMin           = time.Second
	DefaultRetryMax           = 30 * time.Second
	DefaultMaxQueued          = 100000
	DefaultResponseTimeout    = 30 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
)

// MaxValidity caps the validity period an ESME or a phone may ask for.
const MaxValidity = 24 * time.Hour

const (
	// bindTimeout bounds how long a connection may stay open without
	// binding, so idle sockets cannot pile up.
	bindTimeout = 30 * time.Second
	// maxPendingWrite bounds the encoded PDUs waiting for one connection's
	// writer. A well-behaved ESME never comes close (its window limits the
	// responses in flight); one that stops reading is cut off here.
	maxPendingWrite = 256 << 10
	// housekeepingPeriod is how often unanswered deliver_sm and expired
	// held messages are looked for.
	housekeepingPeriod = time.Second
	// closeGrace bounds the last write (unbind or an error response) to a
	// connection that is being closed.
	closeGrace = time.Second
	// defaultReorderSpread is the extra random delay per message of a
	// handset with Reorder but no jitter.
	defaultReorderSpread = 50 * time.Millisecond
)

// GSM network error codes carried in network_error_code (MAP error values).
const (
	netErrUnknownSubscriber uint16 = 0x0001
	netErrAbsentSubscriber  uint16 = 0x001B
	netErrTypeGSM           byte   = 0x03
)

// Sentinel errors.
var (
	// ErrClosed is returned by Serve and SubmitMO once Close was called.
	ErrClosed = errors.New("smsc: closed")
	// ErrNoRoute means no account serves the TP-DA of an MO message.
	ErrNoRoute = errors.New("smsc: no account serves the destination")
	// ErrQueueFull means the SMSC holds MaxQueued messages already.
	ErrQueueFull = errors.New("smsc: message queue full")
	// ErrLost means the fault model lost an MO message on the radio leg;
	// the phone should try again.
	ErrLost = errors.New("smsc: message lost on the radio")
	// ErrUnreachable means the phone is switched off or out of coverage
	// in the fault model and cannot send.
	ErrUnreachable = errors.New("smsc: phone switched off or out of coverage")
	// ErrBadMSISDN means the phone number of an MO message is not
	// international digits.
	ErrBadMSISDN = errors.New("smsc: invalid MSISDN")
)

// Radio reaches handsets. DeliverSMS hands a complete SMS-DELIVER TPDU to
// the phone with that MSISDN (international digits, without '+'). It
// returns nil when the phone acknowledged it (RP-ACK); an error e for
// which errors.As(e, &a) finds an a with an Absent() bool method that
// reports true when the phone is switched off, out of coverage or unknown
// to the network (the SMSC keeps the message and retries until it
// expires); and any other error when the message is undeliverable. An
// error may also carry a NetworkErrorCode() uint16 method, whose GSM error
// value then goes into the receipt. DeliverSMS must return quickly.
type Radio interface {
	DeliverSMS(ctx context.Context, msisdn string, tpdu []byte) error
}

// Account is an ESME's credentials and the service numbers or short codes
// whose MO traffic it receives.
type Account struct {
	SystemID  string
	Password  string
	Addresses []string
}

// Faults is the radio fault model of a handset.
type Faults struct {
	// Latency and Jitter delay each radio leg (MT and MO) by Latency plus
	// a uniform random duration in [0, Jitter).
	Latency, Jitter time.Duration
	// LossPercent is the chance that an attempt is lost: an MT attempt
	// then counts as unacknowledged and is retried later, like a missing
	// RP-ACK; SubmitMO returns ErrLost and the phone retries.
	LossPercent float64
	// DuplicatePercent is the chance that a delivered SMS is delivered a
	// second time a moment later.
	DuplicatePercent float64
	// Reorder lets a phone's messages overtake each other: they are no
	// longer sent one at a time and each gets an extra random delay of up
	// to 3×Jitter (50 ms without jitter).
	Reorder bool
	// SwitchedOff and OutOfCoverage make the phone unreachable: MT
	// attempts fail as absent without calling the Radio and SubmitMO
	// returns ErrUnreachable.
	SwitchedOff, OutOfCoverage bool
}

func (f Faults) reachable() bool { return !f.SwitchedOff && !f.OutOfCoverage }

// Clock is the SMSC's time source. Timers drive retries, fault delays,
// expiry and response time-outs, so a test clock controls all of them.
// Network deadlines on sockets always use the system clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a test clock, from
	// whoever advances it) once d has passed. It must not call f before
	// returning.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started and reports whether it
	// did so.
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Config configures an SMSC. Zero values take the defaults named.
type Config struct {
	// Accounts are the ESMEs that may bind.
	Accounts []Account
	// MaxBindsPerAccount limits an account's simultaneous binds of any
	// type (DefaultMaxBindsPerAccount).
	MaxBindsPerAccount int
	// Window is the number of deliver_sm per bind that may await their
	// deliver_sm_resp (DefaultWindow).
	Window int
	// DefaultValidity applies to a submit_sm without validity_period and
	// an SMS-SUBMIT without a relative TP-VP (DefaultValidity); requested
	// periods are capped at MaxValidity.
	DefaultValidity time.Duration
	// RetryMin and RetryMax bound the store-and-forward back-off
	// (DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	// MaxQueued caps the messages held at once; beyond it submit_sm gets
	// ESME_RMSGQFUL and SubmitMO ErrQueueFull (DefaultMaxQueued).
	MaxQueued int
	// ThrottlePerSecond is the submit_sm rate allowed per bind, with a
	// burst of one second's worth; beyond it submit_sm gets
	// ESME_RTHROTTLED. Zero disables throttling.
	ThrottlePerSecond int
	// ResponseTimeout is how long a deliver_sm may wait for its response
	// before it is sent again (DefaultResponseTimeout).
	ResponseTimeout time.Duration
	// WriteTimeout bounds each socket write; a peer that does not read
	// for that long is disconnected (DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Faults is the fault model of every handset without its own.
	Faults Faults
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Rand is the random source of the fault model and the back-off
	// jitter; nil means a randomly seeded one. Tests pass a seeded source.
	Rand rand.Source
	// Tap, when set, sees every submit_sm with its answer and every
	// deliver_sm (MO or receipt) once its ESME answered it, segment by
	// segment. It is called on the SMSC's own goroutines, so it must
	// return at once: hand the record over without blocking and drop it
	// when the consumer lags.
	Tap func(Traffic)
}

// Stats are the SMSC's counters since New.
type Stats struct {
	Submitted     uint64 // submit_sm accepted
	Rejected      uint64 // submit_sm refused with an error status
	Attempts      uint64 // MT delivery attempts, lost and absent ones included
	Retried       uint64 // MT attempts after the first one of a message
	Delivered     uint64 // MT messages acknowledged by the phone
	Absent        uint64 // MT attempts that found the phone absent
	Lost          uint64 // MT attempts and MO submissions lost by the fault model
	Duplicated    uint64 // extra copies sent by the fault model (MT and MO)
	Expired       uint64 // MT messages whose validity ended undelivered
	Undeliverable uint64 // MT messages the Radio failed permanently
	MO            uint64 // MO messages accepted from phones
	Receipts      uint64 // delivery receipts generated
	ESMEDelivered uint64 // deliver_sm (MO or receipt) acknowledged by an ESME
	ESMERetried   uint64 // deliver_sm sent again after an error, time-out or lost bind
	Dropped       uint64 // MO messages and receipts that expired before an ESME took them
	Queued        int64  // messages held now
	Binds         int64  // bound ESME connections now
	WindowInUse   int64  // deliver_sm awaiting a response now
}

type counters struct {
	submitted, rejected, attempts, retried, delivered, absent, lost, duplicated,
	expired, undeliverable, mo, receipts, esmeDelivered, esmeRetried, dropped atomic.Uint64
	held, binds, window atomic.Int64
}

// faultTable is replaced as a whole on every change, so the delivery path
// reads it without a lock.
type faultTable struct {
	def Faults
	per map[string]Faults
}

// SMSC is the service centre. Its methods are safe for concurrent use.
type SMSC struct {
	cfg   Config
	radio Radio
	log   *slog.Logger
	clock Clock
	m     *metrics
	st    counters

	rngMu sync.Mutex
	rng   *rand.Rand

	accounts map[string]*account // by system_id
	acctList []*account
	routes   map[string]*account // by service address digits

	faultMu sync.Mutex // serialises writers of faults
	faults  atomic.Pointer[faultTable]

	nextID atomic.Uint64

	// mtMu guards the handsets and the run queue of the delivery workers.
	mtMu     sync.Mutex
	mtCond   sync.Cond
	mtClosed bool
	handsets map[string]*handset
	runq     []job
	runHead  int

	ctx    context.Context // cancelled by Close; passed to the Radio
	cancel context.CancelFunc

	mu        sync.Mutex // guards the fields below
	closed    bool
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	hk        Timer

	wg sync.WaitGroup // workers and connection goroutines
}

// New returns an SMSC that delivers through radio. Its metrics are
// registered with reg unless reg is nil; logger may be nil. The delivery
// workers start at once; Serve accepts ESMEs.
func New(cfg Config, radio Radio, logger *slog.Logger, reg prometheus.Registerer) (*SMSC, error) {
	if radio == nil {
		return nil, errors.New("smsc: nil radio")
	}
	if err := applyDefaults(&cfg); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &SMSC{
		cfg:       cfg,
		radio:     radio,
		log:       logger,
		clock:     cfg.Clock,
		accounts:  make(map[string]*account),
		routes:    make(map[string]*account),
		handsets:  make(map[string]*handset),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
	}
	s.mtCond.L = &s.mtMu
	if cfg.Rand != nil {
		s.rng = rand.New(cfg.Rand)
	} else {
		s.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	for _, a := range cfg.Accounts {
		if a.SystemID == "" || len(a.SystemID) > 15 {
			return nil, fmt.Errorf("smsc: system_id %q must have 1 to 15 characters", a.SystemID)
		}
		if len(a.Password) > 8 {
			return nil, fmt.Errorf("smsc: password of %q longer than the 8 characters SMPP carries", a.SystemID)
		}
		if _, dup := s.accounts[a.SystemID]; dup {
			return nil, fmt.Errorf("smsc: account %q configured twice", a.SystemID)
		}
		acct := &account{s: s, cfg: a}
		acct.cfg.Addresses = append([]string(nil), a.Addresses...)
		s.accounts[a.SystemID] = acct
		s.acctList = append(s.acctList, acct)
		for _, addr := range a.Addresses {
			key := strings.TrimPrefix(addr, "+")
			if key == "" {
				return nil, fmt.Errorf("smsc: empty address for account %q", a.SystemID)
			}
			if other, dup := s.routes[key]; dup {
				return nil, fmt.Errorf("smsc: address %s belongs to both %q and %q", addr, other.cfg.SystemID, a.SystemID)
			}
			s.routes[key] = acct
		}
	}
	s.faults.Store(&faultTable{def: cfg.Faults})
	m, err := newMetrics(reg, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.ctx, s.cancel = context.WithCancel(context.Background())
	workers := max(4, 2*runtime.GOMAXPROCS(0))
	s.wg.Add(workers)
	for range workers {
		go s.worker()
	}
	s.hk = s.clock.AfterFunc(housekeepingPeriod, s.housekeep)
	return s, nil
}

func applyDefaults(cfg *Config) error {
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&cfg.MaxBindsPerAccount, DefaultMaxBindsPerAccount)
	set(&cfg.Window, DefaultWindow)
	set(&cfg.MaxQueued, DefaultMaxQueued)
	setD(&cfg.DefaultValidity, DefaultValidity)
	setD(&cfg.RetryMin, DefaultRetryMin)
	setD(&cfg.RetryMax, DefaultRetryMax)
	setD(&cfg.ResponseTimeout, DefaultResponseTimeout)
	setD(&cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	switch {
	case cfg.MaxBindsPerAccount < 0, cfg.Window < 0, cfg.MaxQueued < 0, cfg.ThrottlePerSecond < 0:
		return errors.New("smsc: negative limit in config")
	case cfg.DefaultValidity < 0, cfg.RetryMin < 0, cfg.RetryMax < 0, cfg.ResponseTimeout < 0, cfg.WriteTimeout < 0:
		return errors.New("smsc: negative duration in config")
	case cfg.RetryMax < cfg.RetryMin:
		return fmt.Errorf("smsc: RetryMax %v below RetryMin %v", cfg.RetryMax, cfg.RetryMin)
	}
	cfg.DefaultValidity = min(cfg.DefaultValidity, MaxValidity)
	return nil
}

// Serve accepts ESME connections on ln until Close, and then returns
// ErrClosed. It may be called for several listeners.
func (s *SMSC) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept connection: %w", err)
		}
		backoff = 0
		s.serveConn(nc)
	}
}

// serveConn runs the SMPP server on one connection; it reports false if
// the SMSC is closed.
func (s *SMSC) serveConn(nc net.Conn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	c := newSession(s, nc)
	s.sessions[c] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go c.writeLoop()
	go c.readLoop()
	return true
}

func (s *SMSC) removeSession(c *session) {
	s.mu.Lock()
	delete(s.sessions, c)
	s.mu.Unlock()
}

func (s *SMSC) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting connections, sends unbind to every bound ESME and
// closes the connections, stops the delivery workers and waits for them.
// Messages still held are discarded: the simulator keeps no store.
func (s *SMSC) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for c := range s.sessions {
		sessions = append(sessions, c)
	}
	if s.hk != nil {
		s.hk.Stop()
	}
	s.mu.Unlock()

	s.cancel()
	for _, c := range sessions {
		c.shutdown()
	}
	s.mtMu.Lock()
	s.mtClosed = true
	s.mtCond.Broadcast()
	s.mtMu.Unlock()
	s.wg.Wait()
	return nil
}

// SetFaults sets the fault model of one handset, replacing the default
// one for it. A phone that becomes reachable gets its held messages at
// once.
func (s *SMSC) SetFaults(msisdn string, f Faults) {
	msisdn = strings.TrimPrefix(msisdn, "+")
	s.faultMu.Lock()
	old := s.faults.Load()
	t := &faultTable{def: old.def, per: make(map[string]Faults, len(old.per)+1)}
	for k, v := range old.per {
		t.per[k] = v
	}
	t.per[msisdn] = f
	s.faults.Store(t)
	s.faultMu.Unlock()
	if f.reachable() {
		s.alert(func(m string) bool { return m == msisdn })
	}
}

// ClearFaults makes a handset use the default fault model again.
func (s *SMSC) ClearFaults(msisdn string) {
	msisdn = strings.TrimPrefix(msisdn, "+")
	s.faultMu.Lock()
	old := s.faults.Load()
	t := &faultTable{def: old.def, per: make(map[string]Faults, len(old.per))}
	for k, v := range old.per {
		if k != msisdn {
			t.per[k] = v
		}
	}
	s.faults.Store(t)
	s.faultMu.Unlock()
	if t.def.reachable() {
		s.alert(func(m string) bool { return m == msisdn })
	}
}

// SetDefaultFaults sets the fault model of every handset without its own.
func (s *SMSC) SetDefaultFaults(f Faults) {
	s.faultMu.Lock()
	old := s.faults.Load()
	t := &faultTable{def: f, per: old.per}
	s.faults.Store(t)
	s.faultMu.Unlock()
	if f.reachable() {
		s.alert(func(m string) bool { _, own := t.per[m]; return !own })
	}
}

func (s *SMSC) faultsFor(msisdn string) Faults {
	t := s.faults.Load()
	if f, ok := t.per[msisdn]; ok {
		return f
	}
	return t.def
}

// Stats returns a snapshot of the counters.
func (s *SMSC) Stats() Stats {
	c := &s.st
	return Stats{
		Submitted: c.submitted.Load(), Rejected: c.rejected.Load(), Attempts: c.attempts.Load(),
		Retried: c.retried.Load(), Delivered: c.delivered.Load(), Absent: c.absent.Load(),
		Lost: c.lost.Load(), Duplicated: c.duplicated.Load(), Expired: c.expired.Load(),
		Undeliverable: c.undeliverable.Load(), MO: c.mo.Load(), Receipts: c.receipts.Load(),
		ESMEDelivered: c.esmeDelivered.Load(), ESMERetried: c.esmeRetried.Load(), Dropped: c.dropped.Load(),
		Queued: c.held.Load(), Binds: c.binds.Load(), WindowInUse: c.window.Load(),
	}
}

// reserve takes one of the MaxQueued slots.
func (s *SMSC) reserve() bool {
	if s.st.held.Add(1) > int64(s.cfg.MaxQueued) {
		s.st.held.Add(-1)
		return false
	}
	return true
}

func (s *SMSC) unreserve() { s.st.held.Add(-1) }

func (s *SMSC) randFloat() float64 {
	s.rngMu.Lock()
	v := s.rng.Float64()
	s.rngMu.Unlock()
	return v
}

// chance reports true with the given probability in percent.
func (s *SMSC) chance(pct float64) bool {
	switch {
	case pct <= 0:
		return false
	case pct >= 100:
		return true
	}
	return s.randFloat()*100 < pct
}

// legDelay is the radio delay of one leg under f.
func (s *SMSC) legDelay(f Faults) time.Duration {
	d := max(f.Latency, 0)
	if f.Jitter > 0 {
		d += time.Duration(s.randFloat() * float64(f.Jitter))
	}
	if f.Reorder {
		spread := 3 * f.Jitter
		if spread <= 0 {
			spread = defaultReorderSpread
		}
		d += time.Duration(s.randFloat() * float64(spread))
	}
	return d
}

// backoff returns the wait before retry number attempt (1 for the first
// retry): doubling from RetryMin up to RetryMax, drawn from the upper half
// of that interval so that many phones retrying together spread out.
func (s *SMSC) backoff(attempt int) time.Duration {
	d := s.cfg.RetryMin
	for i := 1; i < attempt && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.RetryMax)
	j := d/2 + time.Duration(s.randFloat()*float64(d/2))
	return min(max(j, s.cfg.RetryMin), s.cfg.RetryMax)
}

// housekeep re-sends unanswered deliver_sm and drops expired held
// messages, then schedules itself again.
func (s *SMSC) housekeep() {
	now := s.clock.Now()
	for _, a := range s.acctList {
		a.housekeep(now)
	}
	s.mu.Lock()
	if !s.closed {
		s.hk = s.clock.AfterFunc(housekeepingPeriod, s.housekeep)
	}
	s.mu.Unlock()
}

// normaliseMSISDN strips a leading '+' and checks for 1 to 15 digits
// (E.164).
func normaliseMSISDN(v string) (string, bool) {
	v = strings.TrimPrefix(v, "+")
	if len(v) == 0 || len(v) > 15 {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return "", false
		}
	}
	return v, true
}

package messaging

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/sms"
	"mobileid/internal/store"
)

//go:embed migrations
var migrationsFS embed.FS

// component is the name under which the store records our migrations.
const component = "messaging"

// Outcome is the final fate of an MT message.
type Outcome int

// Outcomes of an MT message. A message of several segments is Delivered
// only when every segment is; otherwise its first failing segment decides.
const (
	// Delivered: the SMSC reported every segment delivered to the handset.
	Delivered Outcome = iota + 1
	// PhoneAbsent: the validity ran out while the subscriber was absent
	// (receipt EXPIRED with GSM network error 0x001B).
	PhoneAbsent
	// Expired: the validity ran out, per receipt or because no receipt
	// came (the message may never have reached an SMSC).
	Expired
	// Undeliverable: the SMSC refused the message or reported it
	// undeliverable, rejected or deleted.
	Undeliverable
)

// String returns the outcome's name as used in metric labels.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case PhoneAbsent:
		return "phone_absent"
	case Expired:
		return "expired"
	case Undeliverable:
		return "undeliverable"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MO is a complete mobile-originated message, reassembled when it came in
// several segments.
type MO struct {
	ID       int64  // inbox id, unique per MO
	From, To string // originator (the MSISDN) and recipient (our service number)
	// Packet holds the user data of an 8-bit MO without its header. When
	// Secured is set it is a TS 31.115 response packet from RPL onward.
	Packet []byte
	// Secured reports that the first segment's header carried IEI 0x71.
	Secured bool
	// Text is the decoded text of a GSM 7-bit or UCS-2 MO.
	Text       string
	Segments   int
	ReceivedAt time.Time // when the last segment was stored
}

// Receipt is the outcome of an MT message.
type Receipt struct {
	MessageID int64 // our outbox id, as returned by SendPacket or SendText
	MSISDN    string
	Outcome   Outcome
	At        time.Time // when the outcome became known
}

// Handler receives each MO and each receipt exactly once: inside the
// transaction that marks it handled, so what the handler writes with tx
// and the "handled" mark commit together. An error rolls both back (tx
// then carries other items, which commit) and the item is offered again
// later, after a back-off. The transaction may be run more than once when
// the store retries it, or a batch is tried again item by item, so a
// Handler must not act outside tx.
type Handler interface {
	HandleMO(ctx context.Context, tx *sql.Tx, mo *MO) error
	HandleReceipt(ctx context.Context, tx *sql.Tx, r *Receipt) error
}

// Errors returned for bad arguments.
var (
	ErrBadAddress  = errors.New("messaging: bad MSISDN")
	ErrBadValidity = errors.New("messaging: validity must be positive")
	ErrRunning     = errors.New("messaging: server already running")
)

// Server is the Messaging Server. Its Send methods may be used whether or
// not Run is running: they only write the outbox.
type Server struct {
	cfg      Config
	db       *store.DB
	h        Handler
	log      *slog.Logger
	m        *metrics
	now      func() time.Time
	sessions []*session

	q       *queries
	sendQ   sendQueue // group commit of SendPacket and SendText
	handoff handoff   // from the workers to the dispatcher

	senderWake   chan struct{}
	dispatchWake chan struct{}
	running      atomic.Bool
	// commits counts this Server's write transactions.
	commits atomic.Uint64
	// starved is set when the sender left ready segments behind because
	// the windows were full, so that the next submit_sm_resp wakes it.
	starved atomic.Bool

	// claiming is held (a token in it) by whoever claims segments and
	// submits them — the sender, or the group commit — so that the free
	// window each sees is not claimed twice. rr spreads segments over the
	// binds.
	claiming chan struct{}
	rr       int
}

// New returns a Server and migrates its tables. A nil registerer leaves
// the metrics unregistered; a nil now uses time.Now.
func New(cfg Config, db *store.DB, h Handler, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if !validAddress(cfg.ServiceNumber) {
		return nil, fmt.Errorf("messaging: service number %q: %w", cfg.ServiceNumber, ErrBadAddress)
	}
	if db == nil || h == nil {
		return nil, errors.New("messaging: a database and a handler are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open migrations: %w", err)
	}
	if err := db.Migrate(context.Background(), component, sub); err != nil {
		return nil, fmt.Errorf("migrate messaging tables: %w", err)
	}
	s := &Server{
		cfg: cfg, db: db, h: h, log: logger.With("component", component), m: m, now: now,
		q:          newQueries(db.Dialect()),
		senderWake: make(chan struct{}, 1), dispatchWake: make(chan struct{}, 1),
		claiming: make(chan struct{}, 1),
	}
	s.sendQ.wake = make(chan struct{}, 1)
	if err := s.prepareQueries(context.Background()); err != nil {
		return nil, fmt.Errorf("prepare messaging statements: %w", err)
	}
	for _, b := range cfg.Binds {
		s.sessions = append(s.sessions, newSession(s, b))
	}
	return s, nil
}

// Run keeps the binds up and runs the sender and the dispatcher until ctx
// is done; then it lets outstanding submit_sm be answered, unbinds cleanly
// and returns nil.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	// Segments this node had in flight when it stopped were never
	// answered; take them back now rather than after their lease.
	if err := s.releaseOwn(ctx); err != nil {
		s.log.Warn("cannot take back in-flight segments", "err", err)
	}
	var wg sync.WaitGroup
	for _, ss := range s.sessions {
		wg.Go(func() { ss.run(ctx) })
	}
	wg.Go(func() { s.sendLoop(ctx) })
	wg.Go(func() { s.dispatchLoop(ctx) })
	wg.Wait()
	return nil
}

// SendPacket queues a TS 102 225 secured command packet (from CPL onward)
// for msisdn as binary SMS: segments split the TS 31.115 way, each a
// submit_sm with esm_class 0x40, protocol_id 0x7F, data_coding 0xF6, the
// user data header built here, a relative validity_period of what remains
// of validity, and the configured registered_delivery. The message is
// durable once SendPacket returns; the id identifies its Receipt.
// Concurrent calls are committed together (see sendQueue).
func (s *Server) SendPacket(ctx context.Context, msisdn string, packet []byte, validity time.Duration) (int64, error) {
	m, err := packetMessage(msisdn, packet, validity)
	if err != nil {
		return 0, err
	}
	return s.queue(ctx, m)
}

// SendPacketTx is SendPacket inside the caller's transaction, so that the
// caller's own state and the SMS commit together. The sender notices the
// message within Config.PollInterval of the commit.
func (s *Server) SendPacketTx(ctx context.Context, tx *sql.Tx, msisdn string, packet []byte, validity time.Duration) (int64, error) {
	m, err := packetMessage(msisdn, packet, validity)
	if err != nil {
		return 0, err
	}
	id, err := s.insertMessage(&batch{s: s, ctx: ctx, tx: tx}, m)
	if err != nil {
		return 0, err
	}
	s.wakeSoon()
	return id, nil
}

// Committed tells the sender that transactions with SendPacketTx
// messages have committed, so that it sends them now rather than at its
// next poll.
func (s *Server) Committed() { s.wakeSender() }

// SendText queues a text SMS for msisdn: GSM 7-bit (data_coding 0x00, one
// unpacked septet per octet of short_message) when the text allows it,
// UCS-2 (0x08) otherwise, concatenated when long.
func (s *Server) SendText(ctx context.Context, msisdn, text string, validity time.Duration) (int64, error) {
	m, err := textMessage(msisdn, text, validity)
	if err != nil {
		return 0, err
	}
	return s.queue(ctx, m)
}

func packetMessage(msisdn string, packet []byte, validity time.Duration) (*mtMessage, error) {
	if len(packet) == 0 {
		return nil, errors.New("messaging: empty packet")
	}
	split := func(ref uint16) ([][]byte, error) { return sms.SplitCommandPacket(packet, ref, false) }
	return newMessage(msisdn, mtParams{esmClass: 0x40, protocolID: 0x7F, dataCoding: 0xF6}, validity, split)
}

func textMessage(msisdn, text string, validity time.Duration) (*mtMessage, error) {
	var dcs byte
	split := func(ref uint16) ([][]byte, error) {
		parts, d, err := sms.SplitText(text, ref)
		if err != nil {
			return nil, err
		}
		dcs = d
		uds := make([][]byte, len(parts))
		for i, p := range parts {
			uds[i] = append(sms.MarshalUDH(p.UDH), p.Data...)
		}
		return uds, nil
	}
	// The split decides data_coding and whether there is a header, so run
	// it once before the parameters are fixed.
	uds, err := split(0)
	if err != nil {
		return nil, fmt.Errorf("split text: %w", err)
	}
	p := mtParams{dataCoding: dcs}
	if len(uds) > 1 {
		p.esmClass = 0x40
	}
	return newMessage(msisdn, p, validity, func(ref uint16) ([][]byte, error) {
		if ref == 0 {
			return uds, nil
		}
		return split(ref)
	})
}

// wakeSender tells the sender goroutine to look for work now.
func (s *Server) wakeSender() { signal(s.senderWake) }

// wakeDispatcher tells the dispatcher goroutine to look for work now.
func (s *Server) wakeDispatcher() { signal(s.dispatchWake) }

// wakeSoon wakes the sender shortly after a caller's transaction has
// probably committed; there is no commit hook to do better, and polling
// catches whatever this misses.
func (s *Server) wakeSoon() {
	s.wakeSender()
	for _, d := range []time.Duration{2 * time.Millisecond, 20 * time.Millisecond} {
		time.AfterFunc(d, s.wakeSender)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// validAddress accepts what fits an SMPP address field of an
// international number: 1 to 20 digits, without a '+'.
func validAddress(a string) bool {
	if len(a) == 0 || len(a) > 20 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return false
		}
	}
	return true
}

// micros and fromMicros convert the stored BIGINT unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v) }

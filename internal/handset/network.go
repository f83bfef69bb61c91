package handset

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mobileid/internal/sim"
)

// Files of a personalisation batch directory, as `mobileid sim issue`
// writes it.
const (
	cardsDir       = "cards"
	cardExt        = ".card"
	factoryKeyFile = "factory.key"
	mailerFile     = "puk-mailers.csv"
)

// Defaults of Config.
const (
	DefaultInboxSize         = 50
	DefaultReassemblyTimeout = 5 * time.Minute
	DefaultSubmitAttempts    = 4
	DefaultSubmitBackoff     = time.Second
	DefaultSubmitTimeout     = 30 * time.Second
	// maxBackoff caps the doubling back-off between MO attempts.
	maxBackoff = time.Minute
	// maxPendingPackets bounds a phone's incomplete concatenated messages
	// of each kind, so a sender cannot fill its memory with first parts.
	maxPendingPackets = 16
)

// Sentinel errors.
var (
	ErrNoUplink     = errors.New("handset: no uplink to the SMSC")
	ErrNoPrompt     = errors.New("handset: the phone is not asking for that")
	ErrPINLength    = errors.New("handset: the PIN has the wrong number of digits")
	ErrNoPUK        = errors.New("handset: no PUK known for this card")
	ErrBadBehaviour = errors.New("handset: unknown behaviour")
	ErrClosed       = errors.New("handset: network closed")
	ErrPoweredOff   = errors.New("handset: phone switched off")
	ErrNoCoverage   = errors.New("handset: phone out of coverage")
)

// Uplink carries mobile-originated messages from the phones to the SMSC.
// The wiring implements it with the SMSC's MO entry point.
type Uplink interface {
	// SubmitMO hands the SMSC an SMS-SUBMIT TPDU sent by the phone whose
	// number is from. A nil error means the network accepted it (RP-ACK);
	// the phone retries a few times after an error.
	SubmitMO(ctx context.Context, from string, tpdu []byte) error
}

// UplinkFunc adapts a function to Uplink.
type UplinkFunc func(ctx context.Context, from string, tpdu []byte) error

// SubmitMO calls f.
func (f UplinkFunc) SubmitMO(ctx context.Context, from string, tpdu []byte) error {
	return f(ctx, from, tpdu)
}

// AbsentReason says why a phone could not be reached.
type AbsentReason int

// Reasons for an AbsentError.
const (
	ReasonUnknown     AbsentReason = iota + 1 // no phone has that number
	ReasonPoweredOff                          // the phone is switched off
	ReasonNoCoverage                          // the phone is out of coverage
	ReasonNetworkDown                         // the Network has been closed
)

// String describes the reason.
func (r AbsentReason) String() string {
	switch r {
	case ReasonUnknown:
		return "unknown subscriber"
	case ReasonPoweredOff:
		return "switched off"
	case ReasonNoCoverage:
		return "out of coverage"
	case ReasonNetworkDown:
		return "radio network down"
	}
	return fmt.Sprintf("AbsentReason(%d)", int(r))
}

// AbsentError is the error DeliverSMS returns when the phone cannot take
// the message now. The SMSC keeps such a message and tries again later
// (store and forward); it tells it apart by the Absent method.
type AbsentError struct {
	MSISDN string
	Reason AbsentReason
}

// Error describes the failure.
func (e *AbsentError) Error() string {
	return "handset: " + e.MSISDN + " absent: " + e.Reason.String()
}

// Absent reports true: the subscriber is absent, so the message should
// be kept and retried.
//
// An unknown number is not absent but permanently unreachable, so the SMSC
// gives up at once instead of retrying until the message expires.
func (e *AbsentError) Absent() bool { return e.Reason != ReasonUnknown }

// NetworkErrorCode returns the GSM MAP error the SMSC puts into a delivery
// receipt: 27 (absent subscriber) for a phone that is off or out of
// coverage, 1 (unknown subscriber) for a number no phone has.
func (e *AbsentError) NetworkErrorCode() uint16 {
	if e.Reason == ReasonUnknown {
		return 0x0001
	}
	return 0x001B
}

// Config tunes a Network. The zero value works once an Uplink is set.
type Config struct {
	// Uplink carries the phones' SMS-SUBMITs; it may also be set later
	// with SetUplink, as the SMSC usually needs the Network first.
	Uplink Uplink
	// Logger receives operational events; nil discards them.
	Logger *slog.Logger
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Card is passed to sim.Open for every card, e.g. for a shorter user
	// time-out.
	Card sim.Options
	// Default is the behaviour of every phone that has none of its own;
	// its zero value (Inherit) means Approve.
	Default Behaviour
	// PINs returns the PIN1 and PIN2 a scripted user chooses at
	// registration and enters later; nil means the last four and last
	// five digits of the number.
	PINs func(msisdn string) (pin1, pin2 string)
	// InboxSize bounds each phone's text inbox (DefaultInboxSize if zero).
	InboxSize int
	// ReassemblyTimeout drops the parts of a concatenated message whose
	// other parts did not follow (DefaultReassemblyTimeout if zero).
	ReassemblyTimeout time.Duration
	// SubmitAttempts is how often a phone tries to send one SMS-SUBMIT
	// before it gives up (DefaultSubmitAttempts if zero).
	SubmitAttempts int
	// SubmitBackoff is the wait after the first failed attempt, doubled
	// after each further one (DefaultSubmitBackoff if zero).
	SubmitBackoff time.Duration
	// SubmitTimeout bounds one call of Uplink.SubmitMO
	// (DefaultSubmitTimeout if zero).
	SubmitTimeout time.Duration
	// SyncWrites makes every card state write reach the disk (fsync)
	// before the card's answer leaves the phone. Without it a write lands
	// in the page cache and survives a crash of the process, but not a
	// power cut: the trade SQLite's synchronous=NORMAL makes too. A
	// simulated handset rarely needs more, and fsync per command would
	// bound the network's throughput by the disk.
	SyncWrites bool
}

// Network is the radio network with its phones, reachable by MSISDN. Its
// methods are safe for concurrent use.
type Network struct {
	cfg    Config
	log    *slog.Logger
	clock  Clock
	dir    string
	uplink atomic.Pointer[Uplink]

	phones   []*Phone // sorted by MSISDN
	byMSISDN map[string]*Phone
	byID     map[string]*Phone

	defMu sync.RWMutex
	def   Behaviour

	ctx    context.Context // cancelled by Close; parent of every session
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup

	hub  hub
	tmpl *template.Template
}

// LoadNetwork creates a network with one phone for every card image in
// dir/cards, opened with the factory key in dir/factory.key. The PUKs in
// dir/puk-mailers.csv, if present, are kept for unblocking PINs from a
// phone's menu. A card's new state is stored back into its file in dir
// whenever the card changes.
func LoadNetwork(dir string, cfg Config) (*Network, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.PINs == nil {
		cfg.PINs = defaultPINs
	}
	if cfg.InboxSize <= 0 {
		cfg.InboxSize = DefaultInboxSize
	}
	if cfg.ReassemblyTimeout <= 0 {
		cfg.ReassemblyTimeout = DefaultReassemblyTimeout
	}
	if cfg.SubmitAttempts <= 0 {
		cfg.SubmitAttempts = DefaultSubmitAttempts
	}
	if cfg.SubmitBackoff <= 0 {
		cfg.SubmitBackoff = DefaultSubmitBackoff
	}
	if cfg.SubmitTimeout <= 0 {
		cfg.SubmitTimeout = DefaultSubmitTimeout
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	key, err := readFactoryKey(filepath.Join(dir, factoryKeyFile))
	if err != nil {
		return nil, err
	}
	defer clear(key)
	puks, err := readPUKs(filepath.Join(dir, mailerFile))
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, cardsDir, "*"+cardExt))
	if err != nil {
		return nil, fmt.Errorf("list card images: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("handset: no card images in %s", filepath.Join(dir, cardsDir))
	}
	cards, states, err := openCards(paths, key, cfg.Card)
	if err != nil {
		return nil, err
	}

	n := &Network{
		cfg: cfg, log: cfg.Logger, clock: cfg.Clock, dir: dir,
		byMSISDN: make(map[string]*Phone, len(cards)),
		byID:     make(map[string]*Phone, len(cards)),
		def:      cfg.Default,
		tmpl:     tmpl,
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.hub.subs = make(map[*subscriber]struct{})
	if cfg.Uplink != nil {
		n.SetUplink(cfg.Uplink)
	}
	for i, c := range cards {
		p := newPhone(n, c, states[i], puks[c.ICCID()])
		if old := n.byMSISDN[p.msisdn]; old != nil {
			return nil, fmt.Errorf("handset: cards %s and %s have the same MSISDN %s", old.card.ICCID(), c.ICCID(), p.msisdn)
		}
		n.byMSISDN[p.msisdn] = p
		n.byID[p.id] = p
		n.phones = append(n.phones, p)
	}
	clear(puks)
	slices.SortFunc(n.phones, func(a, b *Phone) int { return strings.Compare(a.msisdn, b.msisdn) })
	n.log.Info("handset: network loaded", "dir", dir, "phones", len(n.phones))
	return n, nil
}

func readFactoryKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read factory key: %w", err)
	}
	defer clear(b)
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 16 {
		// The decoder's message would quote the file's content.
		return nil, fmt.Errorf("handset: %s is not a hex key of at least 16 bytes", path)
	}
	return key, nil
}

// readPUKs reads the mailer file into a map by ICCID. A batch without
// the file simply has no PUKs.
func readPUKs(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("open PUK mailers: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	puks := make(map[string]string)
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			return puks, nil
		}
		if err != nil {
			// csv errors name the line and column, not the content.
			return nil, fmt.Errorf("read PUK mailers: %w", err)
		}
		if first && rec[0] == "iccid" {
			continue
		}
		puks[rec[0]] = rec[2]
	}
}

// openCards opens the cards in parallel (a national batch has many), each
// from its newest intact state, and returns the state files to continue.
func openCards(paths []string, key []byte, opts sim.Options) ([]*sim.Card, []*stateFile, error) {
	cards := make([]*sim.Card, len(paths))
	states := make([]*stateFile, len(paths))
	errs := make([]error, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(paths)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(paths) {
					return
				}
				imgs, seq, err := readImages(paths[i])
				if err != nil {
					errs[i] = err
					continue
				}
				for _, img := range imgs {
					if cards[i], err = sim.Open(img, key, opts); err == nil {
						break
					}
				}
				if err != nil {
					errs[i] = fmt.Errorf("open card image %s: %w", filepath.Base(paths[i]), err)
					continue
				}
				states[i] = &stateFile{path: statePath(paths[i]), seq: seq}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return cards, states, nil
}

// SetUplink sets or replaces the uplink to the SMSC.
func (n *Network) SetUplink(u Uplink) {
	if u == nil {
		n.uplink.Store(nil)
		return
	}
	n.uplink.Store(&u)
}

// DeliverSMS hands a phone an SMS-DELIVER TPDU, as the radio network
// does for the SMSC. It returns at once: the SIM and the user are not
// waited for. A nil error is the phone's acknowledgement (RP-ACK); an
// error with an Absent method that returns true means the phone is
// switched off, out of coverage or unknown, and the SMSC should keep the
// message and try again; any other error means the phone rejected the
// message (RP-ERROR).
func (n *Network) DeliverSMS(ctx context.Context, msisdn string, tpdu []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := n.byMSISDN[normalMSISDN(msisdn)]
	if p == nil {
		return &AbsentError{MSISDN: msisdn, Reason: ReasonUnknown}
	}
	return p.deliver(tpdu)
}

// normalMSISDN writes a number the way the phones are keyed: with a
// leading +, as SMPP peers often leave it out.
func normalMSISDN(s string) string {
	if s != "" && s[0] != '+' {
		return "+" + s
	}
	return s
}

// Phone returns the phone with the given number (with or without +).
func (n *Network) Phone(msisdn string) (*Phone, bool) {
	p, ok := n.byMSISDN[normalMSISDN(msisdn)]
	return p, ok
}

// Phones returns every phone, ordered by MSISDN.
func (n *Network) Phones() []*Phone { return slices.Clone(n.phones) }

// SetDefaultBehaviour sets the behaviour of every phone that has none of
// its own. It applies from the next command a card receives.
func (n *Network) SetDefaultBehaviour(b Behaviour) {
	n.defMu.Lock()
	n.def = b
	n.defMu.Unlock()
	for _, p := range n.phones {
		n.hub.changed(p)
	}
}

// DefaultBehaviour returns the behaviour of phones that have none of
// their own.
func (n *Network) DefaultBehaviour() Behaviour {
	n.defMu.RLock()
	defer n.defMu.RUnlock()
	return n.def
}

// effective resolves Inherit.
func (n *Network) effective(b Behaviour) Behaviour {
	if b.Action == Inherit {
		b = n.DefaultBehaviour()
	}
	if b.Action == Inherit {
		b.Action = Approve
	}
	return b
}

// Close ends every running SIM session (the users see their phones go
// dark), waits for them, and makes DeliverSMS report every phone absent.
// Card state is already on disk: it is stored after every change.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	for _, p := range n.phones {
		p.state.close()
	}
	return nil
}

// goSession runs f in a goroutine that Close waits for; it reports false
// when the network is closed.
func (n *Network) goSession(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Go(f)
	return true
}

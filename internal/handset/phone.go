package handset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mobileid/internal/sim"
	"mobileid/internal/sms"
)

// Protocol values of SIM data download (TS 23.040, TS 31.111).
const (
	pidSIMDownload = 0x7F // TP-PID: (U)SIM data download
	pidType0       = 0x40 // TP-PID: short message type 0, acknowledged and discarded
	dcsSIMData     = 0xF6 // class 2, 8-bit data
)

// ScreenMode says what the phone's screen is doing.
type ScreenMode int

// Screen modes.
const (
	ScreenIdle    ScreenMode = iota // nothing from the SIM
	ScreenMessage                   // a text the SIM showed
	ScreenConfirm                   // a question waiting for OK or Cancel
	ScreenPIN                       // a PIN prompt
)

// String returns the mode's name.
func (m ScreenMode) String() string {
	switch m {
	case ScreenIdle:
		return "idle"
	case ScreenMessage:
		return "message"
	case ScreenConfirm:
		return "confirm"
	case ScreenPIN:
		return "pin"
	}
	return fmt.Sprintf("ScreenMode(%d)", int(m))
}

// Screen is what the phone shows. It never holds a PIN: only the number
// of digits typed.
type Screen struct {
	Mode ScreenMode
	// Text is what the SIM shows: for a signature the relying party's
	// name, the transaction text and the verification code. On the idle
	// screen it is the last message the SIM showed, if any.
	Text string
	// Prompt is the PIN prompt, with the tries left after a wrong PIN.
	Prompt string
	// Digits is how many digits have been typed at the prompt.
	Digits int
	// MinLen and MaxLen are the PIN lengths the prompt accepts.
	MinLen, MaxLen int
	// Waiting is true when the question waits for the console's keys.
	Waiting bool
}

// TextMessage is a text SMS in a phone's inbox.
type TextMessage struct {
	From string
	Text string
	// Sent is the service centre time stamp; Received is the phone's
	// clock when the last part arrived.
	Sent, Received time.Time
	// Parts is the number of short messages the text came in.
	Parts int
}

// Counters count a phone's traffic.
type Counters struct {
	Received   int // SMS-DELIVERs accepted
	Sent       int // SMS-SUBMITs the network accepted
	SendFailed int // SMS-SUBMITs given up after every attempt
	Dropped    int // responses not sent because the phone was switched off
	Errors     int // commands that ended without a response for another reason
}

// PhoneState is a snapshot of a phone for display and tests.
type PhoneState struct {
	MSISDN, ICCID         string
	PoweredOn, InCoverage bool
	// Behaviour is the phone's own behaviour (Inherit when it follows the
	// network's default); Effective is the one in force.
	Behaviour, Effective Behaviour
	Screen               Screen
	Inbox                []TextMessage
	Card                 sim.Status
	// Sessions is the number of commands the card is working on.
	Sessions  int
	Counters  Counters
	LastError string
	HasPUK    bool
	// Note is what the operator of the simulation wrote on the phone,
	// e.g. whose it is in a demo.
	Note string
}

// Phone is one handset: a number, a SIM, a screen with keys, a text
// inbox, a power switch and radio coverage. Its methods are safe for
// concurrent use.
type Phone struct {
	n      *Network
	msisdn string
	id     string // the number's digits, for URLs and element ids
	card   *sim.Card
	state  *stateFile // the card's live state, written after every change
	puk    string     // from the subscriber's mailer; never logged or rendered unasked

	saveMu  sync.Mutex // serialises image writes so that they land in order
	unsaved bool       // an earlier write failed; guarded by saveMu

	mu          sync.Mutex
	power       bool
	coverage    bool
	radioCtx    context.Context // cancelled when the phone is switched off
	radioCancel context.CancelFunc
	behaviour   Behaviour
	pins        [2]string
	screen      Screen
	lastShow    bool    // the screen's text came from Show, not from a question
	prompt      *prompt // the console question waiting for a key
	digits      []byte  // typed at the console's PIN pad
	sessions    int     // commands the card is working on
	packets     *sms.Reassembler
	texts       *textReassembler
	inbox       []TextMessage
	mr          byte // TP-MR of the next SMS-SUBMIT
	concatRef   byte // reference of the next concatenated response
	counters    Counters
	lastErr     string
	note        string
}

func newPhone(n *Network, c *sim.Card, state *stateFile, puk string) *Phone {
	p := &Phone{
		n: n, msisdn: c.MSISDN(), card: c, state: state, puk: puk,
		power: true, coverage: true,
	}
	p.id = strings.TrimPrefix(p.msisdn, "+")
	p.pins[0], p.pins[1] = n.cfg.PINs(p.msisdn)
	p.radioCtx, p.radioCancel = context.WithCancel(n.ctx)
	p.resetMemory()
	return p
}

// resetMemory empties what a phone loses when switched off. p.mu must be
// held or p not yet shared.
func (p *Phone) resetMemory() {
	p.packets = sms.NewReassembler(p.n.cfg.ReassemblyTimeout, maxPendingPackets)
	p.texts = newTextReassembler(p.n.cfg.ReassemblyTimeout, maxPendingPackets)
}

// MSISDN returns the phone's number.
func (p *Phone) MSISDN() string { return p.msisdn }

// ICCID returns the ICCID of the phone's SIM.
func (p *Phone) ICCID() string {
	c, _ := p.sim()
	return c.ICCID()
}

// sim returns the card in the phone and its PUK; SwapSIM may change them.
func (p *Phone) sim() (*sim.Card, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.card, p.puk
}

// String identifies the phone by its number.
func (p *Phone) String() string { return "handset.Phone(" + p.msisdn + ")" }

// SetPower switches the phone on or off. Switching it off ends the
// card's running command (the user's time-out), drops any response not
// yet sent and forgets the parts of concatenated messages received.
func (p *Phone) SetPower(on bool) {
	p.mu.Lock()
	if p.power == on {
		p.mu.Unlock()
		return
	}
	p.power = on
	if on {
		p.radioCtx, p.radioCancel = context.WithCancel(p.n.ctx)
	} else {
		p.radioCancel()
		p.resetMemory()
		p.dropPrompt()
		p.screen, p.lastShow = Screen{}, false
	}
	p.mu.Unlock()
	p.n.log.Info("handset: power", "msisdn", p.msisdn, "on", on)
	p.changed()
}

// SetCoverage puts the phone in or out of radio coverage. Out of
// coverage it cannot receive, and what it sends is retried until it
// gives up; the SIM and the user carry on.
func (p *Phone) SetCoverage(in bool) {
	p.mu.Lock()
	p.coverage = in
	p.mu.Unlock()
	p.changed()
}

// SetBehaviour sets how the person holding the phone answers; Inherit
// follows the network's default. It applies from the next command.
func (p *Phone) SetBehaviour(b Behaviour) {
	p.mu.Lock()
	p.behaviour = b
	p.mu.Unlock()
	p.changed()
}

// Behaviour returns the phone's own behaviour, Inherit when it follows
// the network's default.
func (p *Phone) Behaviour() Behaviour {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.behaviour
}

// SetNote writes a note on the phone that the console shows, such as
// whose phone it is in a demo. It is not kept across restarts.
func (p *Phone) SetNote(note string) {
	p.mu.Lock()
	p.note = note
	p.mu.Unlock()
	p.changed()
}

// SetPINs sets the PINs the scripted user chooses at registration and
// enters afterwards. They must be what the card accepts: 4–8 digits for
// PIN1, 5–8 for PIN2.
func (p *Phone) SetPINs(pin1, pin2 string) error {
	if !validPIN(pin1, sim.PIN1MinLen, sim.PIN1MaxLen) || !validPIN(pin2, sim.PIN2MinLen, sim.PIN2MaxLen) {
		return ErrPINLength
	}
	p.mu.Lock()
	p.pins = [2]string{pin1, pin2}
	p.mu.Unlock()
	return nil
}

func validPIN(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

// State returns a snapshot of the phone.
func (p *Phone) State() PhoneState {
	card, _ := p.sim()
	st := card.Status()
	p.mu.Lock()
	defer p.mu.Unlock()
	return PhoneState{
		MSISDN: p.msisdn, ICCID: card.ICCID(),
		PoweredOn: p.power, InCoverage: p.coverage,
		Behaviour: p.behaviour, Effective: p.n.effective(p.behaviour),
		Screen: p.screen, Inbox: append([]TextMessage(nil), p.inbox...),
		Card: st, Sessions: p.sessions, Counters: p.counters, LastError: p.lastErr,
		HasPUK: p.puk != "", Note: p.note,
	}
}

// Inbox returns the text messages received, newest first.
func (p *Phone) Inbox() []TextMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]TextMessage(nil), p.inbox...)
}

// Screen returns what the phone shows.
func (p *Phone) Screen() Screen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.screen
}

// changed tells the console that the phone looks different.
func (p *Phone) changed() { p.n.hub.changed(p) }

// fail records a problem for the console.
func (p *Phone) fail(count *int, msg string) {
	p.mu.Lock()
	*count++
	p.lastErr = p.n.clock.Now().Format("15:04:05") + " " + msg
	p.mu.Unlock()
	p.changed()
}

// deliver takes one SMS-DELIVER from the radio network.
func (p *Phone) deliver(tpdu []byte) error {
	p.mu.Lock()
	switch {
	case !p.power:
		p.mu.Unlock()
		return &AbsentError{MSISDN: p.msisdn, Reason: ReasonPoweredOff}
	case !p.coverage:
		p.mu.Unlock()
		return &AbsentError{MSISDN: p.msisdn, Reason: ReasonNoCoverage}
	case p.n.ctx.Err() != nil:
		p.mu.Unlock()
		return &AbsentError{MSISDN: p.msisdn, Reason: ReasonNetworkDown}
	}
	packets, texts := p.packets, p.texts
	p.mu.Unlock()

	d, err := sms.ParseDeliver(tpdu)
	if err != nil {
		return fmt.Errorf("parse SMS-DELIVER: %w", err)
	}
	now := p.n.clock.Now()
	if class, ok := d.DCS.Class(); ok && class == 2 && d.PID == pidSIMDownload {
		err = p.simDownload(packets, d, now)
	} else {
		err = p.receiveText(texts, d, now)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.counters.Received++
	p.mu.Unlock()
	p.changed()
	return nil
}

// simDownload passes a data download to the SIM once the whole secured
// packet is there.
func (p *Phone) simDownload(r *sms.Reassembler, d *sms.Deliver, now time.Time) error {
	if d.DCS.Alphabet() != sms.Alphabet8Bit {
		return fmt.Errorf("handset: SIM data download with %v user data", d.DCS.Alphabet())
	}
	if len(d.UDH) == 0 {
		// Without a command packet identifier it is not a secured packet;
		// a real SIM would reject it, so the phone drops it after the ack.
		p.n.log.Warn("handset: SIM data download without a user data header dropped", "msisdn", p.msisdn)
		return nil
	}
	ud := append(sms.MarshalUDH(d.UDH), d.Data...)
	for _, e := range r.Expire(now) {
		p.n.log.Warn("handset: incomplete secured packet dropped", "msisdn", p.msisdn,
			"from", e.Sender, "ref", e.Ref, "parts", e.Received, "of", e.Total)
	}
	m, err := r.Add(addrKey(d.OA), ud, now)
	if err != nil {
		return fmt.Errorf("reassemble secured packet: %w", err)
	}
	if m == nil {
		return nil
	}
	if m.SecurityIEI() != sms.IECommandPacket {
		p.n.log.Warn("handset: SIM data download without a command packet dropped", "msisdn", p.msisdn)
		return nil
	}
	p.mu.Lock()
	ctx := p.radioCtx
	p.mu.Unlock()
	if !p.n.goSession(func() { p.runSession(ctx, d.OA, m.Data) }) {
		return &AbsentError{MSISDN: p.msisdn, Reason: ReasonNetworkDown}
	}
	return nil
}

// addrKey tells senders apart for reassembly.
func addrKey(a sms.Address) string { return fmt.Sprintf("%d/%d/%s", a.TON, a.NPI, a.Digits) }

// runSession gives the card one command packet and sends its answer to
// the sender.
func (p *Phone) runSession(ctx context.Context, oa sms.Address, pkt []byte) {
	u := p.newUser()
	p.mu.Lock()
	p.sessions++
	p.mu.Unlock()
	p.changed()

	rsp, err := p.card.Process(ctx, pkt, u)

	p.mu.Lock()
	p.sessions--
	if p.sessions == 0 {
		// Back to the idle screen; a message the SIM showed last (a PIN
		// blocked, a DISPLAY) stays there as a note until the next one.
		p.dropPrompt()
		note := ""
		if p.lastShow {
			note = p.screen.Text
		}
		p.screen = Screen{Text: note}
	}
	p.mu.Unlock()
	p.changed()

	if err != nil {
		p.n.log.Error("handset: card failed", "msisdn", p.msisdn, "err", err)
		p.fail(&p.counters.Errors, "card error")
	}
	// The new state must be on disk before the answer leaves: after a
	// crash the card must not accept the same counter again.
	if err := p.persist(); err != nil {
		p.n.log.Error("handset: card state not stored, response withheld", "msisdn", p.msisdn, "err", err)
		p.fail(&p.counters.Errors, "card state not stored")
		return
	}
	if rsp == nil {
		return
	}
	if ctx.Err() != nil {
		p.n.log.Info("handset: response dropped, phone switched off", "msisdn", p.msisdn)
		p.fail(&p.counters.Dropped, "response dropped: switched off")
		return
	}
	p.mu.Lock()
	ref := p.concatRef
	p.concatRef++
	p.mu.Unlock()
	segs, err := sms.SplitResponsePacket(rsp, uint16(ref), false)
	if err != nil {
		p.n.log.Error("handset: split response", "msisdn", p.msisdn, "err", err)
		p.fail(&p.counters.Errors, "response too long")
		return
	}
	for i, seg := range segs {
		udh, data, err := sms.ParseUDH(seg)
		if err != nil {
			p.n.log.Error("handset: split response", "msisdn", p.msisdn, "err", err)
			p.fail(&p.counters.Errors, "response malformed")
			return
		}
		p.mu.Lock()
		mr := p.mr
		p.mr++
		p.mu.Unlock()
		s := sms.Submit{MR: mr, DA: oa, PID: pidSIMDownload, DCS: dcsSIMData, UDH: udh, Data: data}
		tpdu, err := s.MarshalBinary()
		if err != nil {
			p.n.log.Error("handset: encode SMS-SUBMIT", "msisdn", p.msisdn, "err", err)
			p.fail(&p.counters.Errors, "response malformed")
			return
		}
		if err := p.sendMO(ctx, tpdu); err != nil {
			if errors.Is(err, ErrPoweredOff) || ctx.Err() != nil {
				p.fail(&p.counters.Dropped, "response dropped: switched off")
				return
			}
			p.n.log.Warn("handset: response not sent", "msisdn", p.msisdn, "to", oa.Digits,
				"segment", i+1, "of", len(segs), "err", err)
			p.fail(&p.counters.SendFailed, fmt.Sprintf("response to %s not sent: %v", oa.Digits, err))
			return
		}
		p.mu.Lock()
		p.counters.Sent++
		p.mu.Unlock()
	}
	p.changed()
}

// persist stores the card's image when it changed.
func (p *Phone) persist() error {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	if !p.card.Changed() && !p.unsaved {
		return nil
	}
	img, err := p.card.Image()
	if err != nil {
		p.unsaved = true
		return fmt.Errorf("seal card image: %w", err)
	}
	if err := p.state.write(img, p.n.cfg.SyncWrites); err != nil {
		p.unsaved = true
		return fmt.Errorf("store card image: %w", err)
	}
	p.unsaved = false
	return nil
}

// sendMO sends one SMS-SUBMIT, retrying with a doubling back-off.
func (p *Phone) sendMO(ctx context.Context, tpdu []byte) error {
	backoff := p.n.cfg.SubmitBackoff
	for attempt := 1; ; attempt++ {
		err := p.trySubmit(ctx, tpdu)
		if err == nil || errors.Is(err, ErrPoweredOff) || ctx.Err() != nil {
			return err
		}
		if attempt >= p.n.cfg.SubmitAttempts {
			return fmt.Errorf("submit after %d attempts: %w", attempt, err)
		}
		p.n.log.Debug("handset: SMS-SUBMIT refused, will retry", "msisdn", p.msisdn, "attempt", attempt, "err", err)
		if err := sleep(ctx, p.n.clock, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (p *Phone) trySubmit(ctx context.Context, tpdu []byte) error {
	p.mu.Lock()
	on, in := p.power, p.coverage
	p.mu.Unlock()
	switch {
	case !on:
		return ErrPoweredOff
	case !in:
		return ErrNoCoverage
	}
	up := p.n.uplink.Load()
	if up == nil {
		return ErrNoUplink
	}
	ctx, cancel := context.WithTimeout(ctx, p.n.cfg.SubmitTimeout)
	defer cancel()
	return (*up).SubmitMO(ctx, p.msisdn, tpdu)
}

// Unblock unblocks a PIN with the PUK from the subscriber's mailer and
// sets it to the scripted user's PIN, as the person would from the
// phone's menu. A wrong PUK is impossible here, so no PUK try is lost.
func (p *Phone) Unblock(which sim.PINRef) error {
	card, puk := p.sim()
	if puk == "" {
		return ErrNoPUK
	}
	p.mu.Lock()
	pin := p.pins[0]
	if which == sim.PIN2 {
		pin = p.pins[1]
	}
	p.mu.Unlock()
	err := card.Unblock(which, puk, pin)
	if perr := p.persist(); perr != nil {
		p.n.log.Error("handset: card state not stored", "msisdn", p.msisdn, "err", perr)
		err = errors.Join(err, perr)
	}
	p.changed()
	if err != nil {
		return fmt.Errorf("unblock %v: %w", which, err)
	}
	p.n.log.Info("handset: PIN unblocked with the PUK", "msisdn", p.msisdn, "pin", which.String())
	return nil
}

// mailerPUK returns the card's PUK from the subscriber's mailer, for the
// phone's own console when the person asks to see it.
func (p *Phone) mailerPUK() (string, error) {
	_, puk := p.sim()
	if puk == "" {
		return "", ErrNoPUK
	}
	return puk, nil
}

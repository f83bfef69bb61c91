package handset

import (
	"context"
	"strings"

	"mobileid/internal/sim"
)

// prompt is a question of the card waiting for the console's keys.
type prompt struct {
	mode     ScreenMode
	min, max int
	reply    chan reply // buffered: the key press never waits for the card
}

type reply struct {
	ok  bool
	pin string
}

// phoneUser is the person holding the phone as the card sees them: the
// phone's screen plus either a script or a human at the console.
type phoneUser struct {
	p    *Phone
	b    Behaviour
	pins [2]string
}

// newUser captures the behaviour and PINs in force when a command
// arrives, so that a change in the console applies from the next one.
func (p *Phone) newUser() *phoneUser {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &phoneUser{p: p, b: p.n.effective(p.behaviour), pins: p.pins}
}

var _ sim.User = (*phoneUser)(nil)

// Show puts text on the screen.
func (u *phoneUser) Show(text string) {
	p := u.p
	p.mu.Lock()
	p.screen = Screen{Mode: ScreenMessage, Text: text}
	p.lastShow = true
	p.mu.Unlock()
	p.changed()
}

// Confirm shows text and waits for OK or Cancel.
func (u *phoneUser) Confirm(ctx context.Context, text string) (bool, error) {
	p := u.p
	if u.b.Action == Console {
		r, err := p.ask(ctx, &prompt{mode: ScreenConfirm}, text, "")
		return r.ok, err
	}
	p.mu.Lock()
	p.screen = Screen{Mode: ScreenConfirm, Text: text}
	p.lastShow = false
	p.mu.Unlock()
	p.changed()
	if err := u.think(ctx); err != nil {
		return false, err
	}
	p.answered()
	return u.b.Action != Cancel, nil
}

// AskPIN reads a PIN.
func (u *phoneUser) AskPIN(ctx context.Context, text string, minLen, maxLen int) (string, bool, error) {
	p := u.p
	if u.b.Action == Console {
		r, err := p.ask(ctx, &prompt{mode: ScreenPIN, min: minLen, max: maxLen}, "", text)
		return r.pin, r.ok, err
	}
	p.mu.Lock()
	p.screen.Mode, p.screen.Prompt, p.screen.Digits = ScreenPIN, text, 0
	p.screen.MinLen, p.screen.MaxLen = minLen, maxLen
	p.lastShow = false
	p.mu.Unlock()
	p.changed()
	if err := u.think(ctx); err != nil {
		return "", false, err
	}
	p.answered()
	if u.b.Action == Cancel {
		return "", false, nil
	}
	pin := u.pins[0]
	if strings.Contains(text, "PIN2") || minLen >= sim.PIN2MinLen && !strings.Contains(text, "PIN1") {
		pin = u.pins[1]
	}
	// An unregistered card is asking the person to choose the PIN, which
	// nobody gets wrong; afterwards the card is checking it.
	if card, _ := p.sim(); u.b.Action == WrongPIN && card.Status().Registered {
		pin = wrongPIN(pin)
	}
	return pin, true, nil
}

// think waits as long as the scripted person takes, forever for one who
// never answers.
func (u *phoneUser) think(ctx context.Context) error {
	if u.b.Action == NeverAnswer {
		<-ctx.Done()
		return ctx.Err()
	}
	return sleep(ctx, u.p.n.clock, u.b.Think)
}

// answered leaves the question's text on the screen without the keys.
func (p *Phone) answered() {
	p.mu.Lock()
	p.screen.Mode, p.screen.Prompt, p.screen.Digits = ScreenMessage, "", 0
	p.mu.Unlock()
	p.changed()
}

// ask publishes a question to the console and waits for its keys. A
// Confirm replaces the screen's text; a PIN prompt keeps it, so the person
// still sees what they are signing.
func (p *Phone) ask(ctx context.Context, pr *prompt, text, promptText string) (reply, error) {
	pr.reply = make(chan reply, 1)
	p.mu.Lock()
	p.dropPrompt()
	p.prompt = pr
	if pr.mode == ScreenConfirm {
		p.screen = Screen{Text: text}
	}
	p.screen.Mode, p.screen.Prompt, p.screen.Digits = pr.mode, promptText, 0
	p.screen.MinLen, p.screen.MaxLen, p.screen.Waiting = pr.min, pr.max, true
	p.lastShow = false
	p.mu.Unlock()
	p.changed()
	select {
	case r := <-pr.reply:
		return r, nil
	case <-ctx.Done():
		p.mu.Lock()
		if p.prompt == pr {
			p.dropPrompt()
			p.screen.Mode, p.screen.Prompt = ScreenMessage, ""
		}
		p.mu.Unlock()
		p.changed()
		return reply{}, ctx.Err()
	}
}

// dropPrompt forgets the console question and wipes the digits typed.
// p.mu must be held.
func (p *Phone) dropPrompt() {
	p.prompt = nil
	clear(p.digits)
	p.digits = p.digits[:0]
	p.screen.Digits, p.screen.Waiting = 0, false
}

// answer sends the console's answer to the waiting question.
func (p *Phone) answer(r reply) {
	pr := p.prompt
	p.dropPrompt()
	p.screen.Mode, p.screen.Prompt = ScreenMessage, ""
	pr.reply <- r
}

// PressOK presses OK: it approves the question on the screen or submits
// the PIN typed. It fails with ErrNoPrompt when the phone asks nothing
// of the console, and with ErrPINLength when too few digits were typed.
func (p *Phone) PressOK() error {
	p.mu.Lock()
	defer p.changed()
	defer p.mu.Unlock()
	pr := p.prompt
	switch {
	case pr == nil:
		return ErrNoPrompt
	case pr.mode == ScreenPIN && len(p.digits) < pr.min:
		return ErrPINLength
	case pr.mode == ScreenPIN:
		p.answer(reply{ok: true, pin: string(p.digits)})
	default:
		p.answer(reply{ok: true})
	}
	return nil
}

// PressCancel presses Cancel: it declines the question or the PIN
// prompt on the screen.
func (p *Phone) PressCancel() error {
	p.mu.Lock()
	defer p.changed()
	defer p.mu.Unlock()
	if p.prompt == nil {
		return ErrNoPrompt
	}
	p.answer(reply{})
	return nil
}

// PressDigit types one digit (0–9) at the PIN prompt. Digits beyond the
// PIN's maximum length are ignored, as on a phone.
func (p *Phone) PressDigit(d int) error {
	if d < 0 || d > 9 {
		return ErrPINLength
	}
	p.mu.Lock()
	defer p.changed()
	defer p.mu.Unlock()
	if p.prompt == nil || p.prompt.mode != ScreenPIN {
		return ErrNoPrompt
	}
	if len(p.digits) < p.prompt.max {
		p.digits = append(p.digits, byte('0'+d))
		p.screen.Digits = len(p.digits)
	}
	return nil
}

// ClearPIN erases the digits typed at the PIN prompt.
func (p *Phone) ClearPIN() error {
	p.mu.Lock()
	defer p.changed()
	defer p.mu.Unlock()
	if p.prompt == nil || p.prompt.mode != ScreenPIN {
		return ErrNoPrompt
	}
	clear(p.digits)
	p.digits = p.digits[:0]
	p.screen.Digits = 0
	return nil
}

// EnterPIN types a whole PIN at the prompt and presses OK.
func (p *Phone) EnterPIN(pin string) error {
	p.mu.Lock()
	defer p.changed()
	defer p.mu.Unlock()
	pr := p.prompt
	if pr == nil || pr.mode != ScreenPIN {
		return ErrNoPrompt
	}
	if !validPIN(pin, pr.min, pr.max) {
		return ErrPINLength
	}
	p.answer(reply{ok: true, pin: pin})
	return nil
}

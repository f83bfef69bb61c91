package handset

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Action is what the person holding a phone does when the SIM asks them
// something.
type Action int

// The actions. Inherit, the zero value, makes a phone follow the network's
// default behaviour.
const (
	// Inherit uses the network's default behaviour.
	Inherit Action = iota
	// Approve presses OK and enters the right PIN; at registration it
	// chooses the phone's scripted PINs.
	Approve
	// WrongPIN presses OK and enters a wrong PIN every time it is asked,
	// so the third attempt blocks the PIN. At registration it chooses the
	// scripted PINs like Approve, since there is nothing to get wrong yet.
	WrongPIN
	// Cancel presses Cancel at the first question.
	Cancel
	// NeverAnswer leaves the phone in the pocket: the card's user time-out
	// ends the command.
	NeverAnswer
	// Console leaves the decision to a human at the web console.
	Console
)

// String returns the action's name as ParseBehaviour accepts it.
func (a Action) String() string {
	switch a {
	case Inherit:
		return "default"
	case Approve:
		return "approve"
	case WrongPIN:
		return "wrong-pin"
	case Cancel:
		return "cancel"
	case NeverAnswer:
		return "never"
	case Console:
		return "console"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Behaviour is how the person holding a phone answers the SIM: an action,
// taken after Think has passed at every question. The zero value inherits
// the network's default.
type Behaviour struct {
	Action Action
	// Think is how long the person takes before each answer (each OK,
	// Cancel or PIN). It does not apply to Console, where a human takes
	// their own time, nor to NeverAnswer.
	Think time.Duration
}

// ThinkTime returns a behaviour that approves after thinking for d at
// every question.
func ThinkTime(d time.Duration) Behaviour { return Behaviour{Action: Approve, Think: d} }

// String returns b in the form ParseBehaviour reads: "approve",
// "wrong-pin", "cancel", "never", "console", "default", or for an approval
// with a think time "think:2s".
func (b Behaviour) String() string {
	if b.Think > 0 && b.Action != Console && b.Action != NeverAnswer {
		if b.Action == Approve {
			return "think:" + b.Think.String()
		}
		return b.Action.String() + "+think:" + b.Think.String()
	}
	return b.Action.String()
}

// ParseBehaviour reads a behaviour written as String writes it. The empty
// string is the default (Inherit).
func ParseBehaviour(s string) (Behaviour, error) {
	s = strings.TrimSpace(s)
	name, think, hasThink := strings.Cut(s, "+think:")
	if rest, ok := strings.CutPrefix(s, "think:"); ok {
		name, think, hasThink = "approve", rest, true
	}
	var b Behaviour
	if hasThink {
		d, err := time.ParseDuration(think)
		if err != nil || d < 0 {
			return Behaviour{}, fmt.Errorf("%w: think time %q", ErrBadBehaviour, think)
		}
		b.Think = d
	}
	if name == "" {
		name = "default"
	}
	for a := Inherit; a <= Console; a++ {
		if a.String() == name {
			b.Action = a
			return b, nil
		}
	}
	return Behaviour{}, fmt.Errorf("%w: %q", ErrBadBehaviour, s)
}

// Clock is the time source of a Network: think times, retry back-off and
// reassembly time-outs all read it, so tests can control time.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleep waits for d on c, or until ctx is done.
func sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-c.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// defaultPINs derives a scripted user's PINs from the phone number: the
// last four digits for PIN1 and the last five for PIN2, so that a person
// trying the console on a phone registered by a scripted user can guess
// them from the number on the phone.
func defaultPINs(msisdn string) (pin1, pin2 string) {
	d := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, msisdn)
	d = strings.Repeat("0", max(0, 5-len(d))) + d
	return d[len(d)-4:], d[len(d)-5:]
}

// wrongPIN returns a PIN of the same length that differs from pin in
// every digit.
func wrongPIN(pin string) string {
	b := []byte(pin)
	for i, c := range b {
		b[i] = '0' + (c-'0'+1)%10
	}
	return string(b)
}

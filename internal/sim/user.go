package sim

import (
	"context"
)

// User is the person holding the handset, as the applet sees them through
// the phone's screen and keypad (the proactive commands DISPLAY TEXT and
// GET INPUT of a real SIM toolkit applet). A handset implements it with a
// web console or a scripted user. Every call that waits must return when
// ctx is done, with ctx's error.
type User interface {
	// Show puts text on the screen and returns at once.
	Show(text string)
	// Confirm shows text and waits for OK (true) or Cancel (false).
	Confirm(ctx context.Context, text string) (bool, error)
	// AskPIN shows prompt and reads a PIN of minLen to maxLen digits with
	// the digits hidden. ok is false when the user pressed Cancel.
	AskPIN(ctx context.Context, prompt string, minLen, maxLen int) (pin string, ok bool, err error)
}

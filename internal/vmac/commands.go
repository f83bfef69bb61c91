package vmac

import (
	"bytes"
	"fmt"
)

// Limits on command fields.
const (
	minChallenge = 16
	maxChallenge = 32
	maxSignData  = 1024
)

// Command is one of *Register, *Sign, *Display, *Info and *Reset. The
// unexported method keeps the set closed, because the wire format has no
// room for commands this package cannot encode.
type Command interface {
	// TxRef returns the transaction reference, which the card echoes in
	// its response so that the MSSP can match the two.
	TxRef() uint32
	commandTag() byte
}

// Register (tag A1) asks the card to let the user choose PIN1 and PIN2,
// generate the authentication and signing keys and prove possession of
// both, bound to Challenge.
type Register struct {
	// Ref is the transaction reference (TxRef).
	Ref uint32
	// AuthAlg and SignAlg are the algorithms of the keys to generate.
	AuthAlg, SignAlg KeyAlg
	// Challenge is the MSSP's fresh nonce, 16 to 32 bytes, which the
	// proofs of possession and the attestation cover.
	Challenge []byte
	// DisplayText is shown before the user chooses the PINs; empty means
	// none.
	DisplayText string
}

// Sign (tag A2) asks the card to sign with one of the user keys after the
// user entered the key's PIN.
type Sign struct {
	// Ref is the transaction reference (TxRef).
	Ref uint32
	// Key selects the key, and therefore the PIN the user must enter.
	Key KeyRef
	// Hash is the hash of Digest, or the hash the card applies to Data.
	Hash HashAlg
	// Digest is the precomputed hash to sign; exactly one of Digest and
	// Data is set.
	Digest []byte
	// Data is 1 to 1024 bytes the card hashes with Hash before signing;
	// it suits short statements that the card should see in full.
	Data []byte
	// DisplayText describes the transaction to the user; empty means none.
	DisplayText string
	// VerificationCode is four digits that the user compares with the
	// code shown by the relying party, or empty for none.
	VerificationCode string
	// RPName is the relying party's name as shown to the user, or empty.
	RPName string
}

// Display (tag A3) shows a message on the handset, for example to confirm
// a completed registration.
type Display struct {
	// Ref is the transaction reference (TxRef).
	Ref uint32
	// Text is the message; it is mandatory.
	Text string
	// WaitForOK makes the card wait for the user's acknowledgement and
	// report USER_CANCEL or TIMEOUT instead of answering at once.
	WaitForOK bool
}

// Info (tag A4) asks for the applet version, the ICCID, the life-cycle
// state, the PIN counters and the algorithms of the keys present.
type Info struct {
	// Ref is the transaction reference (TxRef).
	Ref uint32
}

// Reset (tag A5) erases state on the card, for example before a user
// registers again after losing the PINs.
type Reset struct {
	// Ref is the transaction reference (TxRef).
	Ref uint32
	// Scope says what to erase; version 1.0 knows only ResetKeysAndPINs.
	Scope ResetScope
}

// TxRef returns the transaction reference.
func (c *Register) TxRef() uint32 { return c.Ref }

// TxRef returns the transaction reference.
func (c *Sign) TxRef() uint32 { return c.Ref }

// TxRef returns the transaction reference.
func (c *Display) TxRef() uint32 { return c.Ref }

// TxRef returns the transaction reference.
func (c *Info) TxRef() uint32 { return c.Ref }

// TxRef returns the transaction reference.
func (c *Reset) TxRef() uint32 { return c.Ref }

func (*Register) commandTag() byte { return tagRegister }
func (*Sign) commandTag() byte     { return tagSign }
func (*Display) commandTag() byte  { return tagDisplay }
func (*Info) commandTag() byte     { return tagInfo }
func (*Reset) commandTag() byte    { return tagReset }

// MarshalCommand encodes c. It validates every field against the limits of
// the specification and returns an error rather than produce a command the
// card would reject.
func MarshalCommand(c Command) ([]byte, error) {
	switch c := c.(type) {
	case *Register:
		if c != nil {
			return c.marshal()
		}
	case *Sign:
		if c != nil {
			return c.marshal()
		}
	case *Display:
		if c != nil {
			return c.marshal()
		}
	case *Info:
		if c != nil {
			return finishMessage(tagInfo, appendTxRef(nil, c.Ref))
		}
	case *Reset:
		if c != nil {
			return c.marshal()
		}
	}
	return nil, fmt.Errorf("vmac: cannot marshal a nil command (%T)", c)
}

func (c *Register) marshal() ([]byte, error) {
	if !c.AuthAlg.valid() {
		return nil, fmt.Errorf("vmac: REGISTER authentication key algorithm %v: %w", c.AuthAlg, ErrUnsupported)
	}
	if !c.SignAlg.valid() {
		return nil, fmt.Errorf("vmac: REGISTER signing key algorithm %v: %w", c.SignAlg, ErrUnsupported)
	}
	if n := len(c.Challenge); n < minChallenge || n > maxChallenge {
		return nil, fmt.Errorf("vmac: REGISTER challenge length %d, want %d–%d", n, minChallenge, maxChallenge)
	}
	b := appendTxRef(nil, c.Ref)
	b = appendTLV(b, tagAlgs, []byte{byte(c.AuthAlg)<<4 | byte(c.SignAlg)})
	b = appendTLV(b, tagChallenge, c.Challenge)
	b, err := appendText(b, c.DisplayText, displayTextField())
	if err != nil {
		return nil, err
	}
	return finishMessage(tagRegister, b)
}

func (c *Sign) marshal() ([]byte, error) {
	if !c.Key.valid() {
		return nil, fmt.Errorf("vmac: SIGN key %v, want 1 or 2", c.Key)
	}
	if c.Hash.Size() == 0 {
		return nil, fmt.Errorf("vmac: SIGN hash %v: %w", c.Hash, ErrUnsupported)
	}
	b := appendTxRef(nil, c.Ref)
	b = appendTLV(b, tagParams, []byte{byte(c.Key)<<4 | byte(c.Hash)})
	switch {
	case len(c.Digest) > 0 && len(c.Data) > 0:
		return nil, fmt.Errorf("vmac: SIGN has both Digest and Data")
	case len(c.Digest) > 0:
		if len(c.Digest) != c.Hash.Size() {
			return nil, fmt.Errorf("vmac: SIGN digest length %d, want %d for %v", len(c.Digest), c.Hash.Size(), c.Hash)
		}
		b = appendTLV(b, tagDigest, c.Digest)
	case len(c.Data) > 0:
		if len(c.Data) > maxSignData {
			return nil, fmt.Errorf("vmac: SIGN data length %d, want 1–%d", len(c.Data), maxSignData)
		}
		b = appendTLV(b, tagData, c.Data)
	default:
		return nil, fmt.Errorf("vmac: SIGN needs Digest or Data")
	}
	b, err := appendText(b, c.DisplayText, displayTextField())
	if err != nil {
		return nil, err
	}
	if b, err = appendText(b, c.RPName, rpNameField()); err != nil {
		return nil, err
	}
	if c.VerificationCode != "" {
		v, err := encodeVerificationCode(c.VerificationCode)
		if err != nil {
			return nil, err
		}
		b = appendTLV(b, tagVerCode, v)
	}
	return finishMessage(tagSign, b)
}

func (c *Display) marshal() ([]byte, error) {
	if c.Text == "" {
		return nil, fmt.Errorf("vmac: DISPLAY needs a text")
	}
	b, err := appendText(appendTxRef(nil, c.Ref), c.Text, displayTextField())
	if err != nil {
		return nil, err
	}
	if c.WaitForOK {
		b = appendTLV(b, tagFlags, []byte{flagWaitForOK})
	}
	return finishMessage(tagDisplay, b)
}

// flagWaitForOK is bit 0 of the DISPLAY flags; the other bits are reserved.
const flagWaitForOK = 0x01

func (c *Reset) marshal() ([]byte, error) {
	if c.Scope != ResetKeysAndPINs {
		return nil, fmt.Errorf("vmac: RESET scope %d: %w", c.Scope, ErrUnsupported)
	}
	b := appendTLV(appendTxRef(nil, c.Ref), tagScope, []byte{byte(c.Scope)})
	return finishMessage(tagReset, b)
}

// ParseCommand decodes one command. Its errors start with "vmac: " and wrap
// ErrUnsupported when the card should answer UNSUPPORTED rather than
// BAD_REQUEST. Byte slices in the result do not alias b.
func ParseCommand(b []byte) (Command, error) {
	tag, v, err := readMessage(b)
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagRegister:
		return parseRegister(v)
	case tagSign:
		return parseSign(v)
	case tagDisplay:
		return parseDisplay(v)
	case tagInfo:
		f, err := parseFields(tagInfo, v, tagTxRef)
		if err != nil {
			return nil, err
		}
		ref, err := f.txRef()
		if err != nil {
			return nil, err
		}
		return &Info{Ref: ref}, nil
	case tagReset:
		return parseReset(v)
	}
	if tag&0xF0 == 0xA0 {
		return nil, fmt.Errorf("vmac: command tag %02X: %w", tag, ErrUnsupported)
	}
	return nil, fmt.Errorf("vmac: tag %02X is not a command", tag)
}

func parseRegister(v []byte) (Command, error) {
	f, err := parseFields(tagRegister, v, tagTxRef, tagAlgs, tagChallenge, tagTextGSM, tagTextUCS2)
	if err != nil {
		return nil, err
	}
	c := new(Register)
	if c.Ref, err = f.txRef(); err != nil {
		return nil, err
	}
	algs, err := f.byteField(tagAlgs, "algorithms")
	if err != nil {
		return nil, err
	}
	c.AuthAlg, c.SignAlg = KeyAlg(algs>>4), KeyAlg(algs&0x0F)
	if !c.AuthAlg.valid() {
		return nil, fmt.Errorf("vmac: tag %02X authentication key algorithm %d: %w", tagAlgs, c.AuthAlg, ErrUnsupported)
	}
	if !c.SignAlg.valid() {
		return nil, fmt.Errorf("vmac: tag %02X signing key algorithm %d: %w", tagAlgs, c.SignAlg, ErrUnsupported)
	}
	ch, err := f.need(tagChallenge, "challenge")
	if err != nil {
		return nil, err
	}
	if len(ch) < minChallenge || len(ch) > maxChallenge {
		return nil, fmt.Errorf("vmac: tag %02X challenge length %d, want %d–%d", tagChallenge, len(ch), minChallenge, maxChallenge)
	}
	c.Challenge = bytes.Clone(ch)
	if c.DisplayText, err = parseText(f, displayTextField()); err != nil {
		return nil, err
	}
	return c, nil
}

func parseSign(v []byte) (Command, error) {
	f, err := parseFields(tagSign, v, tagTxRef, tagParams, tagDigest, tagData,
		tagTextGSM, tagTextUCS2, tagRPGSM, tagRPUCS2, tagVerCode)
	if err != nil {
		return nil, err
	}
	c := new(Sign)
	if c.Ref, err = f.txRef(); err != nil {
		return nil, err
	}
	p, err := f.byteField(tagParams, "parameters")
	if err != nil {
		return nil, err
	}
	c.Key, c.Hash = KeyRef(p>>4), HashAlg(p&0x0F)
	if !c.Key.valid() {
		return nil, fmt.Errorf("vmac: tag %02X key reference %d, want 1 or 2", tagParams, c.Key)
	}
	if c.Hash.Size() == 0 {
		return nil, fmt.Errorf("vmac: tag %02X hash algorithm %d: %w", tagParams, c.Hash, ErrUnsupported)
	}
	digest, hasDigest := f.get(tagDigest)
	data, hasData := f.get(tagData)
	switch {
	case hasDigest && hasData:
		return nil, fmt.Errorf("vmac: tags %02X (digest) and %02X (data) are mutually exclusive", tagDigest, tagData)
	case hasDigest:
		if len(digest) != c.Hash.Size() {
			return nil, fmt.Errorf("vmac: tag %02X digest length %d, want %d for %v", tagDigest, len(digest), c.Hash.Size(), c.Hash)
		}
		c.Digest = bytes.Clone(digest)
	case hasData:
		if len(data) == 0 || len(data) > maxSignData {
			return nil, fmt.Errorf("vmac: tag %02X data length %d, want 1–%d", tagData, len(data), maxSignData)
		}
		c.Data = bytes.Clone(data)
	default:
		return nil, fmt.Errorf("vmac: %02X needs tag %02X (digest) or %02X (data)", tagSign, tagDigest, tagData)
	}
	if c.DisplayText, err = parseText(f, displayTextField()); err != nil {
		return nil, err
	}
	if c.RPName, err = parseText(f, rpNameField()); err != nil {
		return nil, err
	}
	if code, ok := f.get(tagVerCode); ok {
		if c.VerificationCode, err = decodeVerificationCode(code); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func parseDisplay(v []byte) (Command, error) {
	f, err := parseFields(tagDisplay, v, tagTxRef, tagTextGSM, tagTextUCS2, tagFlags)
	if err != nil {
		return nil, err
	}
	c := new(Display)
	if c.Ref, err = f.txRef(); err != nil {
		return nil, err
	}
	if c.Text, err = parseText(f, displayTextField()); err != nil {
		return nil, err
	}
	if c.Text == "" {
		return nil, fmt.Errorf("vmac: %02X lacks mandatory tag %02X or %02X (display text)", tagDisplay, tagTextGSM, tagTextUCS2)
	}
	flags, ok, err := f.optByte(tagFlags, "flags")
	switch {
	case err != nil:
		return nil, err
	case !ok:
	case flags&^flagWaitForOK != 0:
		return nil, fmt.Errorf("vmac: tag %02X flags %02X set reserved bits: %w", tagFlags, flags, ErrUnsupported)
	case flags == 0:
		return nil, fmt.Errorf("vmac: tag %02X flags 00 must be omitted", tagFlags)
	default:
		c.WaitForOK = true
	}
	return c, nil
}

func parseReset(v []byte) (Command, error) {
	f, err := parseFields(tagReset, v, tagTxRef, tagScope)
	if err != nil {
		return nil, err
	}
	c := new(Reset)
	if c.Ref, err = f.txRef(); err != nil {
		return nil, err
	}
	scope, err := f.byteField(tagScope, "scope")
	if err != nil {
		return nil, err
	}
	c.Scope = ResetScope(scope)
	if c.Scope != ResetKeysAndPINs {
		return nil, fmt.Errorf("vmac: tag %02X scope %d: %w", tagScope, scope, ErrUnsupported)
	}
	return c, nil
}

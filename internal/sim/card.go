package sim

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"mobileid/internal/ota"
	"mobileid/internal/vmac"
)

// DefaultUserTimeout is how long the applet waits for the user in one
// command, about what a person gets on a real phone before the SIM toolkit
// session ends.
const DefaultUserTimeout = 2 * time.Minute

// Options tune a Card. The zero value is ready to use.
type Options struct {
	// Rand is the card's random source; nil means crypto/rand.
	Rand io.Reader
	// UserTimeout bounds the user interaction of one command; zero means
	// DefaultUserTimeout.
	UserTimeout time.Duration
}

// cardData is everything a card keeps, as sealed in its image.
type cardData struct {
	ICCID  string  `json:"iccid"`
	IMSI   string  `json:"imsi"`
	MSISDN string  `json:"msisdn"`
	TAR    ota.TAR `json:"tar"`
	KIc    byte    `json:"kic"`
	KID    byte    `json:"kid"`
	KIcKey []byte  `json:"kic_key"`
	KIDKey []byte  `json:"kid_key"`
	// Counter is the last counter value accepted (TS 102 225 replay
	// protection).
	Counter uint64 `json:"counter"`

	AttestationKey  []byte `json:"attestation_key"` // PKCS #8
	AttestationCert []byte `json:"attestation_cert"`

	PUK  *secret `json:"puk"`
	PIN1 *secret `json:"pin1,omitempty"`
	PIN2 *secret `json:"pin2,omitempty"`
	// AuthKey and SignKey are PKCS #8 private keys, absent until REGISTER.
	AuthKey []byte      `json:"auth_key,omitempty"`
	SignKey []byte      `json:"sign_key,omitempty"`
	AuthAlg vmac.KeyAlg `json:"auth_alg,omitempty"`
	SignAlg vmac.KeyAlg `json:"sign_alg,omitempty"`
}

// Card is one virtual SIM with the VMAC applet. Its methods are safe for
// concurrent use; the applet runs one command at a time and answers BUSY
// to a command that arrives meanwhile, as the SIM toolkit allows only one
// proactive session.
type Card struct {
	sealKey     []byte
	rand        io.Reader
	userTimeout time.Duration

	mu      sync.Mutex // guards d, the parsed keys and changed
	d       cardData
	attKey  crypto.Signer
	authKey crypto.Signer
	signKey crypto.Signer
	changed bool

	session sync.Mutex // held while the applet runs a command
}

func newCard(d cardData, sealKey []byte, opts Options) (*Card, error) {
	c := &Card{d: d, sealKey: sealKey, rand: opts.Rand, userTimeout: opts.UserTimeout}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.userTimeout == 0 {
		c.userTimeout = DefaultUserTimeout
	}
	var err error
	if c.attKey, err = parseSigner(d.AttestationKey); err != nil {
		return nil, fmt.Errorf("sim: attestation key: %w", err)
	}
	if d.AuthKey != nil {
		if c.authKey, err = parseSigner(d.AuthKey); err != nil {
			return nil, fmt.Errorf("sim: authentication key: %w", err)
		}
		if c.signKey, err = parseSigner(d.SignKey); err != nil {
			return nil, fmt.Errorf("sim: signing key: %w", err)
		}
	}
	return c, nil
}

func parseSigner(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// The parser's message does not contain key material.
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}

// ICCID returns the card's ICCID.
func (c *Card) ICCID() string { return c.d.ICCID }

// IMSI returns the subscriber identity.
func (c *Card) IMSI() string { return c.d.IMSI }

// MSISDN returns the phone number the card was issued for.
func (c *Card) MSISDN() string { return c.d.MSISDN }

// Status is what the phone may show about the card: nothing secret.
type Status struct {
	Registered    bool
	Blocked       bool
	PIN1TriesLeft int
	PIN2TriesLeft int
	PUKTriesLeft  int
	AuthAlg       vmac.KeyAlg
	SignAlg       vmac.KeyAlg
	Counter       uint64
}

// Status reports the applet state and try counters.
func (c *Card) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{
		Registered:   c.authKey != nil,
		Blocked:      c.d.PUK.Tries <= 0,
		PUKTriesLeft: c.d.PUK.Tries,
		AuthAlg:      c.d.AuthAlg,
		SignAlg:      c.d.SignAlg,
		Counter:      c.d.Counter,
	}
	if c.d.PIN1 != nil {
		s.PIN1TriesLeft, s.PIN2TriesLeft = c.d.PIN1.Tries, c.d.PIN2.Tries
	}
	return s
}

// Changed reports whether the card's state changed since the last Image,
// so that a handset knows it must store a new image. A handset must store
// it before it sends the response of the command that changed it, or a
// restart could let a replayed command through.
func (c *Card) Changed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Image magic and version: "MIDC", 1.
var imageMagic = []byte{'M', 'I', 'D', 'C', 1}

// imageKey derives the per-card sealing key from the factory key, the
// secret that a real secure element keeps in hardware.
func imageKey(factoryKey []byte, iccid string) ([]byte, error) {
	if len(factoryKey) < 16 {
		return nil, errors.New("sim: factory key shorter than 16 bytes")
	}
	return hkdf.Key(sha256.New, factoryKey, nil, "mobileid card image "+iccid, 32)
}

// Image seals the card's complete state with AES-256-GCM under the
// per-card key. The ICCID stays readable in the header so that a loader
// can derive the key; everything else is encrypted and authenticated.
func (c *Card) Image() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt, err := json.Marshal(&c.d)
	if err != nil {
		return nil, fmt.Errorf("sim: marshal card state: %w", err)
	}
	defer clear(pt)
	hdr := append(append([]byte{}, imageMagic...), byte(len(c.d.ICCID)))
	hdr = append(hdr, c.d.ICCID...)
	aead, err := newAEAD(c.sealKey)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(c.rand, nonce); err != nil {
		return nil, fmt.Errorf("sim: nonce: %w", err)
	}
	out := append(hdr, nonce...)
	out = aead.Seal(out, nonce, pt, hdr)
	c.changed = false
	return out, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sim: sealing key: %w", err)
	}
	return cipher.NewGCM(b)
}

// ImageICCID returns the ICCID in a card image's header without opening
// it.
func ImageICCID(image []byte) (string, error) {
	if len(image) < len(imageMagic)+1 || string(image[:len(imageMagic)]) != string(imageMagic) {
		return "", errors.New("sim: not a card image")
	}
	n := int(image[len(imageMagic)])
	if len(image) < len(imageMagic)+1+n {
		return "", errors.New("sim: card image truncated")
	}
	return string(image[len(imageMagic)+1 : len(imageMagic)+1+n]), nil
}

// Open unseals a card image made by Image or by a Factory.
func Open(image, factoryKey []byte, opts Options) (*Card, error) {
	iccid, err := ImageICCID(image)
	if err != nil {
		return nil, err
	}
	key, err := imageKey(factoryKey, iccid)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	hl := len(imageMagic) + 1 + len(iccid)
	if len(image) < hl+aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sim: card image truncated")
	}
	nonce := image[hl : hl+aead.NonceSize()]
	pt, err := aead.Open(nil, nonce, image[hl+aead.NonceSize():], image[:hl])
	if err != nil {
		return nil, errors.New("sim: card image does not authenticate under this factory key")
	}
	defer clear(pt)
	var d cardData
	if err := json.Unmarshal(pt, &d); err != nil {
		return nil, fmt.Errorf("sim: card image content: %w", err)
	}
	if d.ICCID != iccid || d.PUK == nil || (d.PIN1 == nil) != (d.AuthKey == nil) || (d.PIN2 == nil) != (d.SignKey == nil) {
		return nil, errors.New("sim: card image content is inconsistent")
	}
	return newCard(d, key, opts)
}

// Process handles one secured command packet (from CPL onward, reassembled
// if it came in several SMS) and returns the secured response packet (from
// RPL onward; the handset sends it after the 02 71 00 header in an
// SMS-SUBMIT), or nil when the command's SPI asks for no PoR. It blocks
// while the applet talks to the user.
//
// The OTA layer enforces the applet's minimum security level: ciphering,
// an AES-CMAC checksum, a counter that must be higher, and a ciphered PoR
// with a checksum by SMS-SUBMIT. Failures of the command's security are
// answered with an unsecured PoR carrying the TS 102 225 status, as cards
// do; they change no state.
func (c *Card) Process(ctx context.Context, pkt []byte, u User) ([]byte, error) {
	cmd, keys, st := c.openCommand(pkt)
	if st != ota.StatusOK {
		if cmd == nil || cmd.SPI.PoR == ota.NoPoR {
			return nil, nil
		}
		return ota.WrapUnsecuredResponse(&ota.Response{TAR: cmd.TAR, Counter: cmd.Counter, Status: st}), nil
	}
	var out []byte
	if !c.session.TryLock() {
		out = c.busy(cmd.Data)
	} else {
		out = c.runApplet(ctx, cmd.Data, u)
		c.session.Unlock()
	}
	if cmd.SPI.PoR == ota.NoPoR {
		return nil, nil
	}
	rsp, err := ota.WrapResponse(&ota.Response{TAR: cmd.TAR, Counter: cmd.Counter, Status: ota.StatusOK, Data: out}, cmd, keys)
	if err != nil {
		return nil, fmt.Errorf("sim: wrap response: %w", err)
	}
	return rsp, nil
}

// openCommand runs the OTA checks. On failure it returns the command
// header it could read (for the unsecured PoR) and the status.
func (c *Card) openCommand(pkt []byte) (*ota.Command, ota.Keys, ota.Status) {
	p, err := ota.ParseCommandPacket(pkt)
	if err != nil {
		// Answer what can be answered: a packet too short to carry an SPI
		// gets no PoR.
		if len(pkt) >= 10 {
			if spi, serr := ota.ParseSPI(pkt[3], pkt[4]); serr == nil {
				h := &ota.Command{SPI: spi, TAR: ota.TAR(pkt[7:10])}
				return h, ota.Keys{}, statusOf(err)
			}
		}
		return nil, ota.Keys{}, statusOf(err)
	}
	hdr := &ota.Command{SPI: p.SPI, KIc: p.KIc, KID: p.KID, TAR: p.TAR}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.TAR != c.d.TAR {
		return hdr, ota.Keys{}, ota.StatusTARUnknown
	}
	s := p.SPI
	if !s.Ciphered || s.Integrity != ota.CC || s.Counter != ota.CounterHigher && s.Counter != ota.CounterNext ||
		s.PoR != ota.PoRAlways || s.PoRIntegrity != ota.CC || !s.PoRCiphered || !s.PoRSubmit {
		return hdr, ota.Keys{}, ota.StatusInsufficientSecurity
	}
	if p.KIc != c.d.KIc || p.KID != c.d.KID {
		return hdr, ota.Keys{}, ota.StatusSecurityError
	}
	keys := ota.Keys{KIc: c.d.KIcKey, KID: c.d.KIDKey}
	cmd, err := p.Open(keys)
	if err != nil {
		return hdr, ota.Keys{}, statusOf(err)
	}
	hdr.Counter = cmd.Counter
	if st := ota.CheckCounter(s.Counter, c.d.Counter, cmd.Counter); st != ota.StatusOK {
		return hdr, ota.Keys{}, st
	}
	c.d.Counter = cmd.Counter
	c.changed = true
	return cmd, keys, ota.StatusOK
}

func statusOf(err error) ota.Status {
	var e *ota.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return ota.StatusSecurityError
}

// busy answers a command that arrived while another one runs.
func (c *Card) busy(data []byte) []byte {
	ref, has := vmac.PeekTxRef(data)
	out, err := vmac.MarshalResponse(&vmac.GenericResponse{Ref: ref, HasRef: has, Result: vmac.StatusBusy})
	if err != nil {
		return nil
	}
	return out
}

// ChangePIN replaces a PIN after checking the old one, from the phone's
// menu. A wrong old PIN counts as a try.
func (c *Card) ChangePIN(which PINRef, oldPIN, newPIN string) error {
	return c.replacePIN(which, newPIN, func(s *secret) error {
		switch ok, blocked := s.verify(oldPIN); {
		case ok:
			return nil
		case blocked:
			return ErrPINBlocked
		}
		return ErrWrongPIN
	})
}

// Unblock sets a new PIN with the PUK, from the phone's menu. Ten wrong
// PUKs block the card: its keys can no longer be used and only a new
// registration helps.
func (c *Card) Unblock(which PINRef, puk, newPIN string) error {
	return c.replacePIN(which, newPIN, func(*secret) error {
		switch ok, blocked := c.d.PUK.verify(puk); {
		case ok:
			return nil
		case blocked:
			return ErrCardBlocked
		}
		return ErrWrongPUK
	})
}

// replacePIN sets a new value for a PIN once check, which may count a
// try, has passed.
func (c *Card) replacePIN(which PINRef, newPIN string, check func(*secret) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.pin(which)
	if err != nil {
		return err
	}
	if min, max := which.lengths(); !validPIN(newPIN, min, max) {
		return ErrPINFormat
	}
	c.changed = true
	if err := check(s); err != nil {
		return err
	}
	ns, err := newSecret(c.rand, newPIN, PINTries)
	if err != nil {
		return err
	}
	*s = *ns
	return nil
}

func (c *Card) pin(which PINRef) (*secret, error) {
	if c.d.PUK.Tries <= 0 {
		return nil, ErrCardBlocked
	}
	var s *secret
	switch which {
	case PIN1:
		s = c.d.PIN1
	case PIN2:
		s = c.d.PIN2
	default:
		return nil, fmt.Errorf("sim: no PIN %d", int(which))
	}
	if s == nil {
		return nil, ErrNotRegistered
	}
	return s, nil
}

// String identifies the card without showing any of its state, so that a
// card printed by mistake leaks nothing.
func (c *Card) String() string { return "sim.Card(" + c.d.ICCID + ")" }

// GoString is String, for %#v.
func (c *Card) GoString() string { return c.String() }

package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/ota"
	"mobileid/internal/vmac"
)

// scriptUser answers the card from a script. It records what was shown so
// tests can check the screens.
type scriptUser struct {
	mu      sync.Mutex
	pins    []string // answers to AskPIN in order; "" means Cancel
	cancel  bool     // answer Cancel to Confirm
	silent  bool     // never answer
	shown   []string
	prompts []string
	release chan struct{} // when set, Confirm waits for it
}

func (u *scriptUser) Show(text string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.shown = append(u.shown, text)
}

func (u *scriptUser) Confirm(ctx context.Context, text string) (bool, error) {
	u.Show(text)
	if u.release != nil {
		select {
		case <-u.release:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if u.silent {
		<-ctx.Done()
		return false, ctx.Err()
	}
	return !u.cancel, nil
}

func (u *scriptUser) AskPIN(ctx context.Context, prompt string, min, max int) (string, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prompts = append(u.prompts, prompt)
	if len(u.pins) == 0 {
		return "", false, errors.New("script exhausted")
	}
	p := u.pins[0]
	u.pins = u.pins[1:]
	return p, p != "", nil
}

// testOperator plays the MSSP: it wraps VMAC commands with the card's OTA
// keys and a rising counter, and opens the responses.
type testOperator struct {
	t       *testing.T
	rec     *Issued
	counter uint64
	spi     ota.SPI
}

var vmacSPI = ota.SPI{Integrity: ota.CC, Ciphered: true, Counter: ota.CounterHigher,
	PoR: ota.PoRAlways, PoRIntegrity: ota.CC, PoRCiphered: true, PoRSubmit: true}

func (o *testOperator) keys() ota.Keys {
	return ota.Keys{KIc: o.rec.Record.KIcKey, KID: o.rec.Record.KIDKey}
}

func (o *testOperator) wrap(c vmac.Command) (*ota.Command, []byte) {
	o.t.Helper()
	data, err := vmac.MarshalCommand(c)
	if err != nil {
		o.t.Fatalf("MarshalCommand: %v", err)
	}
	o.counter++
	cmd := &ota.Command{SPI: o.spi, KIc: o.rec.Record.KIc, KID: o.rec.Record.KID, TAR: o.rec.Record.TAR, Counter: o.counter, Data: data}
	pkt, err := ota.WrapCommand(cmd, o.keys())
	if err != nil {
		o.t.Fatalf("WrapCommand: %v", err)
	}
	return cmd, pkt
}

// send runs a VMAC command through the card and returns its response.
func (o *testOperator) send(card *Card, u User, c vmac.Command) vmac.Response {
	o.t.Helper()
	cmd, pkt := o.wrap(c)
	rsp, err := card.Process(context.Background(), pkt, u)
	if err != nil {
		o.t.Fatalf("Process: %v", err)
	}
	r, err := ota.OpenResponse(rsp, cmd, o.keys())
	if err != nil {
		o.t.Fatalf("OpenResponse(%x): %v", rsp, err)
	}
	if r.Status != ota.StatusOK || r.Counter != cmd.Counter || !r.Secured {
		o.t.Fatalf("PoR status %v counter %d secured %v", r.Status, r.Counter, r.Secured)
	}
	vr, err := vmac.ParseResponse(r.Data)
	if err != nil {
		o.t.Fatalf("ParseResponse(%x): %v", r.Data, err)
	}
	if vr.TxRef() != c.TxRef() {
		o.t.Fatalf("response TxRef %d, want %d", vr.TxRef(), c.TxRef())
	}
	return vr
}

var (
	testFactoryOnce sync.Once
	testFactory     *Factory
)

func factory(t testing.TB) *Factory {
	t.Helper()
	testFactoryOnce.Do(func() {
		ca, err := NewVendorCA("Test SIM vendor CA", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		testFactory = &Factory{CA: ca, FactoryKey: bytes.Repeat([]byte{7}, 32)}
	})
	return testFactory
}

// newTestCard issues a card and opens its image, as a handset does.
func newTestCard(t testing.TB, opts Options) (*Card, *Issued) {
	t.Helper()
	f := factory(t)
	is, err := f.Issue("8999901000000000013", "001010000000001", "+37200000001")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	c, err := Open(is.Image, f.FactoryKey, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c, is
}

var challenge = bytes.Repeat([]byte{0xC4}, 16)

func register(t *testing.T, op *testOperator, card *Card) *vmac.RegisterResponse {
	t.Helper()
	u := &scriptUser{pins: []string{"1234", "1234", "12345", "12345"}}
	r := op.send(card, u, &vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge})
	rr, ok := r.(*vmac.RegisterResponse)
	if !ok || rr.Result != vmac.StatusOK {
		t.Fatalf("REGISTER = %#v", r)
	}
	return rr
}

func TestRegisterAndSign(t *testing.T) {
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}

	info := op.send(card, &scriptUser{}, &vmac.Info{Ref: 7}).(*vmac.InfoResponse)
	if info.State != vmac.StatePersonalised || info.PUKTriesLeft != PUKTries || info.ICCID != is.Record.ICCID {
		t.Errorf("INFO before registration = %+v", info)
	}

	rr := register(t, op, card)
	pool := x509.NewCertPool()
	pool.AddCert(factory(t).CA.Cert)
	if err := vmac.VerifyRegistration(rr, challenge, pool, time.Now()); err != nil {
		t.Fatalf("VerifyRegistration: %v", err)
	}
	if err := vmac.VerifyRegistration(rr, bytes.Repeat([]byte{1}, 16), pool, time.Now()); err == nil {
		t.Error("VerifyRegistration accepted another challenge")
	}

	// Registering again is refused until RESET.
	again := op.send(card, &scriptUser{}, &vmac.Register{Ref: 2, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge})
	if again.Status() != vmac.StatusAlreadyRegistered {
		t.Errorf("second REGISTER status = %v, want ALREADY_REGISTERED", again.Status())
	}

	// The state survives a handset restart through the sealed image.
	img, err := card.Image()
	if err != nil {
		t.Fatal(err)
	}
	card, err = Open(img, factory(t).FactoryKey, Options{})
	if err != nil {
		t.Fatalf("Open after registration: %v", err)
	}

	for _, tt := range []struct {
		key  vmac.KeyRef
		pin  string
		spki []byte
	}{
		{vmac.KeyAuth, "1234", rr.AuthKey.SPKI},
		{vmac.KeySign, "12345", rr.SignKey.SPKI},
	} {
		t.Run(tt.key.String(), func(t *testing.T) {
			digest := sha256.Sum256([]byte("pay 100 EUR to ACME"))
			u := &scriptUser{pins: []string{tt.pin}}
			r := op.send(card, u, &vmac.Sign{Ref: 9, Key: tt.key, Hash: vmac.HashSHA256, Digest: digest[:],
				DisplayText: "Pay 100 EUR", VerificationCode: "1462", RPName: "Demo Bank"}).(*vmac.SignResponse)
			if r.Result != vmac.StatusOK {
				t.Fatalf("SIGN status = %v", r.Result)
			}
			pub, err := x509.ParsePKIXPublicKey(tt.spki)
			if err != nil {
				t.Fatal(err)
			}
			if err := vmac.VerifyDigest(pub, crypto256, digest[:], r.Signature); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			screen := strings.Join(u.shown, "\n")
			for _, want := range []string{"Demo Bank", "Pay 100 EUR", "1462"} {
				if !strings.Contains(screen, want) {
					t.Errorf("screen %q lacks %q", screen, want)
				}
			}
		})
	}

	// SIGN over data: the card hashes it.
	data := []byte("I agree to the terms")
	r := op.send(card, &scriptUser{pins: []string{"1234"}}, &vmac.Sign{Ref: 10, Key: vmac.KeyAuth, Hash: vmac.HashSHA384, Data: data}).(*vmac.SignResponse)
	pub, _ := x509.ParsePKIXPublicKey(rr.AuthKey.SPKI)
	d384 := sha384(data)
	if err := vmac.VerifyDigest(pub, crypto384, d384, r.Signature); err != nil {
		t.Errorf("SIGN over data: %v", err)
	}
}

func TestSignFailures(t *testing.T) {
	card, is := newTestCard(t, Options{UserTimeout: 50 * time.Millisecond})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	digest := make([]byte, 32)
	sign := func(ref uint32, u *scriptUser) *vmac.SignResponse {
		return op.send(card, u, &vmac.Sign{Ref: ref, Key: vmac.KeyAuth, Hash: vmac.HashSHA256, Digest: digest}).(*vmac.SignResponse)
	}
	if r := sign(1, &scriptUser{}); r.Result != vmac.StatusNoKey {
		t.Errorf("SIGN before REGISTER = %v, want NO_KEY", r.Result)
	}
	register(t, op, card)

	if r := sign(2, &scriptUser{cancel: true}); r.Result != vmac.StatusUserCancel {
		t.Errorf("SIGN cancelled = %v, want USER_CANCEL", r.Result)
	}
	if r := sign(3, &scriptUser{pins: []string{""}}); r.Result != vmac.StatusUserCancel {
		t.Errorf("SIGN cancelled at PIN = %v, want USER_CANCEL", r.Result)
	}
	if r := sign(4, &scriptUser{silent: true}); r.Result != vmac.StatusTimeout {
		t.Errorf("SIGN unanswered = %v, want TIMEOUT", r.Result)
	}
	// One wrong PIN then the right one: signed, and the tries are restored.
	u := &scriptUser{pins: []string{"9999", "1234"}}
	if r := sign(5, u); r.Result != vmac.StatusOK {
		t.Errorf("SIGN after one wrong PIN = %v, want OK", r.Result)
	}
	if !strings.Contains(u.prompts[1], "2 tries left") {
		t.Errorf("second prompt = %q, want tries left", u.prompts[1])
	}
	if s := card.Status(); s.PIN1TriesLeft != PINTries {
		t.Errorf("PIN1 tries after success = %d", s.PIN1TriesLeft)
	}
	// Three wrong PINs block PIN1.
	r := sign(6, &scriptUser{pins: []string{"0000", "1111", "2222"}})
	if r.Result != vmac.StatusPINBlocked || r.TriesLeft == nil || *r.TriesLeft != 0 {
		t.Fatalf("SIGN with three wrong PINs = %+v, want PIN_BLOCKED, 0 tries", r)
	}
	u = &scriptUser{pins: []string{"1234"}}
	if r := sign(7, u); r.Result != vmac.StatusPINBlocked || len(u.prompts) != 0 {
		t.Errorf("SIGN with blocked PIN = %v after %d prompts, want PIN_BLOCKED without asking", r.Result, len(u.prompts))
	}
	// PIN2 is independent.
	if r := op.send(card, &scriptUser{pins: []string{"12345"}}, &vmac.Sign{Ref: 8, Key: vmac.KeySign, Hash: vmac.HashSHA256, Digest: digest}); r.Status() != vmac.StatusOK {
		t.Errorf("SIGN with PIN2 while PIN1 blocked = %v", r.Status())
	}
	// Unblock with the PUK.
	if err := card.Unblock(PIN1, "00000000", "4321"); !errors.Is(err, ErrWrongPUK) && is.PUK != "00000000" {
		t.Errorf("Unblock with a wrong PUK = %v", err)
	}
	if err := card.Unblock(PIN1, is.PUK, "12"); !errors.Is(err, ErrPINFormat) {
		t.Errorf("Unblock with a short PIN = %v", err)
	}
	if err := card.Unblock(PIN1, is.PUK, "4321"); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	if r := sign(9, &scriptUser{pins: []string{"4321"}}); r.Result != vmac.StatusOK {
		t.Errorf("SIGN after unblock = %v", r.Result)
	}
	if err := card.ChangePIN(PIN1, "0000", "5555"); !errors.Is(err, ErrWrongPIN) {
		t.Errorf("ChangePIN with a wrong PIN = %v", err)
	}
	if err := card.ChangePIN(PIN1, "4321", "5555"); err != nil {
		t.Errorf("ChangePIN: %v", err)
	}
}

func TestPUKBlockAndReset(t *testing.T) {
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	register(t, op, card)
	wrong := "00000000"
	if is.PUK == wrong {
		wrong = "11111111"
	}
	for i := 1; i < PUKTries; i++ {
		if err := card.Unblock(PIN2, wrong, "55555"); !errors.Is(err, ErrWrongPUK) {
			t.Fatalf("Unblock try %d = %v, want ErrWrongPUK", i, err)
		}
	}
	if err := card.Unblock(PIN2, wrong, "55555"); !errors.Is(err, ErrCardBlocked) {
		t.Fatalf("tenth wrong PUK = %v, want ErrCardBlocked", err)
	}
	if err := card.Unblock(PIN2, is.PUK, "55555"); !errors.Is(err, ErrCardBlocked) {
		t.Fatalf("right PUK after blocking = %v, want ErrCardBlocked", err)
	}
	digest := make([]byte, 32)
	if r := op.send(card, &scriptUser{pins: []string{"12345"}}, &vmac.Sign{Ref: 3, Key: vmac.KeySign, Hash: vmac.HashSHA256, Digest: digest}); r.Status() != vmac.StatusCardBlocked {
		t.Errorf("SIGN on a blocked card = %v, want CARD_BLOCKED", r.Status())
	}
	info := op.send(card, &scriptUser{}, &vmac.Info{Ref: 4}).(*vmac.InfoResponse)
	if info.State != vmac.StateBlocked {
		t.Errorf("INFO state = %v, want BLOCKED", info.State)
	}
	if r := op.send(card, &scriptUser{}, &vmac.Reset{Ref: 5, Scope: vmac.ResetKeysAndPINs}); r.Status() != vmac.StatusOK {
		t.Fatalf("RESET = %v", r.Status())
	}
	register(t, op, card)
}

func TestDisplay(t *testing.T) {
	card, is := newTestCard(t, Options{UserTimeout: 30 * time.Millisecond})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	u := &scriptUser{}
	if r := op.send(card, u, &vmac.Display{Ref: 1, Text: "Your Mobile ID is ready"}); r.Status() != vmac.StatusOK || u.shown[0] != "Your Mobile ID is ready" {
		t.Errorf("DISPLAY = %v, shown %q", r.Status(), u.shown)
	}
	if r := op.send(card, &scriptUser{cancel: true}, &vmac.Display{Ref: 2, Text: "OK?", WaitForOK: true}); r.Status() != vmac.StatusUserCancel {
		t.Errorf("DISPLAY cancelled = %v", r.Status())
	}
	if r := op.send(card, &scriptUser{silent: true}, &vmac.Display{Ref: 3, Text: "OK?", WaitForOK: true}); r.Status() != vmac.StatusTimeout {
		t.Errorf("DISPLAY unanswered = %v", r.Status())
	}
}

func TestRegisterFailures(t *testing.T) {
	tests := []struct {
		name string
		u    *scriptUser
		want vmac.Status
	}{
		{"cancel at PIN1", &scriptUser{pins: []string{""}}, vmac.StatusUserCancel},
		{"three mismatches", &scriptUser{pins: []string{"1234", "4321", "1234", "4321", "1234", "4321"}}, vmac.StatusUserCancel},
		{"cancel at PIN2", &scriptUser{pins: []string{"1234", "1234", ""}}, vmac.StatusUserCancel},
		{"cancel the text", &scriptUser{cancel: true}, vmac.StatusUserCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card, is := newTestCard(t, Options{})
			op := &testOperator{t: t, rec: is, spi: vmacSPI}
			r := op.send(card, tt.u, &vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge, DisplayText: "Register Mobile ID?"})
			if r.Status() != tt.want {
				t.Errorf("REGISTER = %v, want %v", r.Status(), tt.want)
			}
			if card.Status().Registered {
				t.Error("card registered after a failed REGISTER")
			}
		})
	}
	// A PIN that is too short is asked again.
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	u := &scriptUser{pins: []string{"12", "1234", "1234", "12345", "12345"}}
	if r := op.send(card, u, &vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge}); r.Status() != vmac.StatusOK {
		t.Errorf("REGISTER after a short PIN = %v", r.Status())
	}
}

func TestRegisterRSA(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA key generation is slow")
	}
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	u := &scriptUser{pins: []string{"1234", "1234", "12345", "12345"}}
	rr := op.send(card, u, &vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgRSA2048, Challenge: challenge}).(*vmac.RegisterResponse)
	pool := x509.NewCertPool()
	pool.AddCert(factory(t).CA.Cert)
	if err := vmac.VerifyRegistration(rr, challenge, pool, time.Now()); err != nil {
		t.Fatalf("VerifyRegistration: %v", err)
	}
	digest := sha256.Sum256([]byte("contract"))
	r := op.send(card, &scriptUser{pins: []string{"12345"}}, &vmac.Sign{Ref: 2, Key: vmac.KeySign, Hash: vmac.HashSHA256, Digest: digest[:]}).(*vmac.SignResponse)
	pub, _ := x509.ParsePKIXPublicKey(rr.SignKey.SPKI)
	if err := vmac.VerifyDigest(pub, crypto256, digest[:], r.Signature); err != nil || len(r.Signature) != 256 {
		t.Errorf("RSA signature (%d bytes): %v", len(r.Signature), err)
	}
}

// TestOTASecurity checks the card's OTA layer: every failure is answered
// with an unsecured PoR carrying the TS 102 225 status, and none changes
// the card's counter.
func TestOTASecurity(t *testing.T) {
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	op.send(card, &scriptUser{}, &vmac.Info{Ref: 1}) // counter 1 accepted
	_, replay := op.wrap(&vmac.Info{Ref: 2})         // counter 2
	if _, err := card.Process(context.Background(), replay, &scriptUser{}); err != nil {
		t.Fatal(err)
	}

	keys := op.keys()
	mk := func(mod func(c *ota.Command, k *ota.Keys)) []byte {
		data, _ := vmac.MarshalCommand(&vmac.Info{Ref: 3})
		c := &ota.Command{SPI: vmacSPI, KIc: is.Record.KIc, KID: is.Record.KID, TAR: is.Record.TAR, Counter: 10, Data: data}
		k := keys
		mod(c, &k)
		pkt, err := ota.WrapCommand(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	tests := []struct {
		name string
		pkt  []byte
		want ota.Status
	}{
		{"replayed counter", replay, ota.StatusCounterLow},
		{"old counter", mk(func(c *ota.Command, k *ota.Keys) { c.Counter = 1 }), ota.StatusCounterLow},
		{"wrong CC key", mk(func(c *ota.Command, k *ota.Keys) { k.KID = make([]byte, 16) }), ota.StatusIntegrityFailed},
		{"unknown TAR", mk(func(c *ota.Command, k *ota.Keys) { c.TAR = ota.TAR{0xb0, 0, 0x10} }), ota.StatusTARUnknown},
		{"not ciphered", mk(func(c *ota.Command, k *ota.Keys) { c.SPI.Ciphered = false }), ota.StatusInsufficientSecurity},
		{"no counter", mk(func(c *ota.Command, k *ota.Keys) { c.SPI.Counter = ota.CounterNoCheck }), ota.StatusInsufficientSecurity},
		{"PoR by deliver report", mk(func(c *ota.Command, k *ota.Keys) { c.SPI.PoRSubmit = false }), ota.StatusInsufficientSecurity},
		{"other key set", mk(func(c *ota.Command, k *ota.Keys) { c.KIc, c.KID = 0x22, 0x22 }), ota.StatusSecurityError},
		{"truncated", replay[:len(replay)-3], ota.StatusSecurityError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := card.Status().Counter
			rsp, err := card.Process(context.Background(), tt.pkt, &scriptUser{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := ota.OpenResponse(rsp, &ota.Command{SPI: vmacSPI, KIc: is.Record.KIc, KID: is.Record.KID}, keys)
			if err != nil {
				t.Fatalf("OpenResponse(%x): %v", rsp, err)
			}
			if r.Status != tt.want || r.Secured {
				t.Errorf("PoR = status %v secured %v, want %v unsecured", r.Status, r.Secured, tt.want)
			}
			if after := card.Status().Counter; after != before {
				t.Errorf("counter moved from %d to %d", before, after)
			}
		})
	}
	// Garbage inside a valid secured packet is a BAD_REQUEST of the applet.
	op.counter = 100
	cmd := &ota.Command{SPI: vmacSPI, KIc: is.Record.KIc, KID: is.Record.KID, TAR: is.Record.TAR, Counter: 101, Data: []byte{0xA4, 0x06, 0x80, 0x04, 0, 0, 0, 9, 0xFF}}
	pkt, _ := ota.WrapCommand(cmd, keys)
	rsp, _ := card.Process(context.Background(), pkt, &scriptUser{})
	r, err := ota.OpenResponse(rsp, cmd, keys)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := vmac.ParseResponse(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := vr.(*vmac.GenericResponse); !ok || g.Result != vmac.StatusBadRequest {
		t.Errorf("malformed VMAC command answered with %#v, want B0 BAD_REQUEST", vr)
	}
}

func TestBusy(t *testing.T) {
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	u := &scriptUser{release: make(chan struct{})}
	_, first := op.wrap(&vmac.Display{Ref: 1, Text: "wait", WaitForOK: true})
	done := make(chan struct{})
	go func() {
		card.Process(context.Background(), first, u)
		close(done)
	}()
	for {
		u.mu.Lock()
		n := len(u.shown)
		u.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if r := op.send(card, &scriptUser{}, &vmac.Info{Ref: 2}); r.Status() != vmac.StatusBusy {
		t.Errorf("command during another = %v, want BUSY", r.Status())
	}
	close(u.release)
	<-done
}

func TestImage(t *testing.T) {
	card, is := newTestCard(t, Options{})
	if _, err := Open(is.Image, bytes.Repeat([]byte{8}, 32), Options{}); err == nil {
		t.Error("Open with another factory key succeeded")
	}
	tampered := bytes.Clone(is.Image)
	tampered[len(tampered)-1] ^= 1
	if _, err := Open(tampered, factory(t).FactoryKey, Options{}); err == nil {
		t.Error("Open of a tampered image succeeded")
	}
	for n := 0; n < len(is.Image); n += 7 {
		if _, err := Open(is.Image[:n], factory(t).FactoryKey, Options{}); err == nil {
			t.Fatalf("Open of %d bytes succeeded", n)
		}
	}
	if id, _ := ImageICCID(is.Image); id != is.Record.ICCID {
		t.Errorf("ImageICCID = %q", id)
	}
	if bytes.Contains(is.Image, is.Record.KIcKey) || bytes.Contains(is.Image, []byte(is.PUK)) {
		t.Error("card image contains a key or the PUK in clear")
	}
	_ = card
}

// TestNoSecretsInOutput checks that printing a card, its status or its
// errors shows no PIN, PUK or key.
func TestNoSecretsInOutput(t *testing.T) {
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	register(t, op, card)
	err1 := card.ChangePIN(PIN1, "9876", "1234")
	err2 := card.Unblock(PIN2, "87654321", "56789")
	out := fmt.Sprintf("%v %+v %#v %s %v %v %+v", card, card, card, card, err1, err2, card.Status())
	for _, secret := range []string{"1234", "12345", is.PUK, "9876", "87654321", fmt.Sprintf("%x", is.Record.KIcKey)} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains secret %q: %s", secret, out)
		}
	}
}

package handset

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mobileid/internal/ota"
	"mobileid/internal/sim"
	"mobileid/internal/sms"
	"mobileid/internal/vmac"
)

func TestInfo(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])

	got := o.do(&vmac.Info{Ref: 7})
	want := &vmac.InfoResponse{Ref: 7, Result: vmac.StatusOK, VersionMajor: vmac.ProtocolMajor, VersionMinor: vmac.ProtocolMinor,
		ICCID: o.rec.ICCID, State: vmac.StatePersonalised, PUKTriesLeft: sim.PUKTries}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("INFO response mismatch (-want +got):\n%s", diff)
	}
	// The phone counts a submission once the uplink has returned.
	p := mustPhone(t, n, o.msisdn)
	waitFor(t, func() bool { return p.State().Counters.Sent == 1 })
	if c := p.State().Counters; c != (Counters{Received: 1, Sent: 1}) {
		t.Errorf("counters = %+v, want 1 received, 1 sent", c)
	}
}

// signCmd is an authentication request as the ID Server would send it.
func signCmd(ref uint32, key vmac.KeyRef, digest []byte) *vmac.Sign {
	return &vmac.Sign{Ref: ref, Key: key, Hash: vmac.HashSHA256, Digest: digest,
		DisplayText: "Log in to your bank", VerificationCode: "1462", RPName: "Demo Bank"}
}

func TestRegisterAndSign(t *testing.T) {
	digest := sha256.Sum256([]byte("login 42"))
	tests := []struct {
		name      string
		behaviour Behaviour
		key       vmac.KeyRef
		timeout   time.Duration // the card's user time-out
		want      vmac.Status
		tries     int // PIN tries left afterwards
	}{
		{"approve PIN1", Behaviour{Action: Approve}, vmac.KeyAuth, 0, vmac.StatusOK, 3},
		{"approve PIN2", Behaviour{Action: Approve}, vmac.KeySign, 0, vmac.StatusOK, 3},
		{"wrong PIN", Behaviour{Action: WrongPIN}, vmac.KeyAuth, 0, vmac.StatusPINBlocked, 0},
		{"cancel", Behaviour{Action: Cancel}, vmac.KeyAuth, 0, vmac.StatusUserCancel, 3},
		{"never answer", Behaviour{Action: NeverAnswer}, vmac.KeyAuth, 200 * time.Millisecond, vmac.StatusTimeout, 3},
		{"think time", ThinkTime(20 * time.Millisecond), vmac.KeySign, 0, vmac.StatusOK, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatch(t, 1)
			up := newUplink()
			n := b.load(t, Config{Uplink: up, Card: sim.Options{UserTimeout: tt.timeout}})
			o := newOperator(t, n, up, b, b.msisdn[0])
			rr := o.register()
			if err := vmac.VerifyRegistration(rr, challenge, vendorPool(t), time.Now()); err != nil {
				t.Fatalf("VerifyRegistration: %v", err)
			}
			p, _ := n.Phone(o.msisdn)
			p.SetBehaviour(tt.behaviour)

			r := o.do(signCmd(2, tt.key, digest[:])).(*vmac.SignResponse)
			if r.Result != tt.want {
				t.Fatalf("SIGN with behaviour %v = %v, want %v", tt.behaviour, r.Result, tt.want)
			}
			if tt.want == vmac.StatusOK {
				spki := rr.AuthKey.SPKI
				if tt.key == vmac.KeySign {
					spki = rr.SignKey.SPKI
				}
				pub, err := x509.ParsePKIXPublicKey(spki)
				if err != nil {
					t.Fatal(err)
				}
				if err := vmac.VerifyDigest(pub, crypto.SHA256, digest[:], r.Signature); err != nil {
					t.Errorf("signature does not verify: %v", err)
				}
			}
			st := p.State().Card
			tries := st.PIN1TriesLeft
			if tt.key == vmac.KeySign {
				tries = st.PIN2TriesLeft
			}
			if tries != tt.tries {
				t.Errorf("%v tries left = %d, want %d", tt.key, tries, tt.tries)
			}
		})
	}
}

// TestThinkTime checks with a fake clock that a scripted user takes its
// think time at each question: the confirmation and the PIN.
func TestThinkTime(t *testing.T) {
	b := newBatch(t, 1)
	synctest.Test(t, func(t *testing.T) {
		up := newUplink()
		n, err := LoadNetwork(b.dir, Config{Uplink: up})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		o := newOperator(t, n, up, b, b.msisdn[0])
		o.wait = time.Hour
		o.register()
		p, _ := n.Phone(o.msisdn)
		p.SetBehaviour(ThinkTime(30 * time.Second))
		start := time.Now()
		r := o.do(signCmd(2, vmac.KeyAuth, make([]byte, 32)))
		if r.Status() != vmac.StatusOK {
			t.Fatalf("SIGN = %v, want OK", r.Status())
		}
		if got := time.Since(start); got != time.Minute {
			t.Errorf("SIGN took %v, want 1m0s (two answers after 30s each)", got)
		}

		// The default user time-out ends a user who never answers.
		p.SetBehaviour(Behaviour{Action: NeverAnswer})
		start = time.Now()
		if r := o.do(signCmd(3, vmac.KeyAuth, make([]byte, 32))); r.Status() != vmac.StatusTimeout {
			t.Errorf("SIGN unanswered = %v, want TIMEOUT", r.Status())
		}
		if got := time.Since(start); got != sim.DefaultUserTimeout {
			t.Errorf("TIMEOUT after %v, want %v", got, sim.DefaultUserTimeout)
		}
	})
}

func TestDefaultBehaviour(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up, Default: Behaviour{Action: Cancel}})
	o := newOperator(t, n, up, b, b.msisdn[0])
	c := &vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge}
	if r := o.do(c); r.Status() != vmac.StatusUserCancel {
		t.Errorf("REGISTER with default cancel = %v, want USER_CANCEL", r.Status())
	}
	n.SetDefaultBehaviour(Behaviour{})
	c.Ref = 2
	if r := o.do(c); r.Status() != vmac.StatusOK {
		t.Errorf("REGISTER with default approve = %v, want OK", r.Status())
	}
}

// TestConcatenatedCommand sends a SIGN whose long display text needs two
// SMS, the parts in reverse order.
func TestConcatenatedCommand(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])
	o.register()

	c := signCmd(5, vmac.KeyAuth, make([]byte, 32))
	c.DisplayText = strings.Repeat("Transfer 100 EUR to ACME Ltd. ", 6)[:180]
	cmd, tpdus := o.wrap(c)
	if len(tpdus) < 2 {
		t.Fatalf("SIGN with a long text took %d SMS, want several", len(tpdus))
	}
	for i := len(tpdus) - 1; i > 0; i-- {
		o.deliver(tpdus[i])
	}
	up.none(t, 50*time.Millisecond)
	o.deliver(tpdus[0])
	r, _ := o.await(cmd)
	if r.Status() != vmac.StatusOK {
		t.Errorf("concatenated SIGN = %v, want OK", r.Status())
	}
}

func TestAbsent(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])
	p, _ := n.Phone(o.msisdn)
	_, tpdus := o.wrap(&vmac.Info{Ref: 1})

	tests := []struct {
		name   string
		msisdn string
		setup  func()
		reason AbsentReason
		absent bool   // the SMSC should retry
		code   uint16 // GSM MAP error for the receipt
	}{
		{"switched off", o.msisdn, func() { p.SetPower(false) }, ReasonPoweredOff, true, 0x1B},
		{"out of coverage", o.msisdn, func() { p.SetPower(true); p.SetCoverage(false) }, ReasonNoCoverage, true, 0x1B},
		{"unknown number", "+37299999999", func() {}, ReasonUnknown, false, 0x01},
		{"unknown number without +", "37299999999", func() {}, ReasonUnknown, false, 0x01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			err := n.DeliverSMS(context.Background(), tt.msisdn, tpdus[0])
			var ae *AbsentError
			if absent(err) != tt.absent || !errors.As(err, &ae) || ae.Reason != tt.reason || ae.NetworkErrorCode() != tt.code {
				t.Fatalf("DeliverSMS(%s) = %v, want %v (absent %v, code %d)", tt.msisdn, err, tt.reason, tt.absent, tt.code)
			}
		})
	}
	up.none(t, 50*time.Millisecond)
	if c := p.State().Card.Counter; c != 0 {
		t.Errorf("card counter = %d after absent deliveries, want 0", c)
	}

	// Back in coverage the SMSC's retry goes through.
	p.SetCoverage(true)
	o.deliver(tpdus[0])
	if pkt, _ := o.receive(); len(pkt) == 0 {
		t.Error("empty response after coverage returned")
	}
}

func TestBadTPDU(t *testing.T) {
	b := newBatch(t, 1)
	n := b.load(t, Config{Uplink: newUplink()})
	err := n.DeliverSMS(context.Background(), b.msisdn[0], []byte{0x01, 0x02})
	if err == nil || absent(err) {
		t.Errorf("DeliverSMS(garbage) = %v, want a rejection that is not absent", err)
	}
}

// TestDuplicate delivers the same SMS twice: the card's counter check
// answers the replay with an unsecured PoR, status 02.
func TestDuplicate(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])
	cmd, tpdus := o.wrap(&vmac.Info{Ref: 1})
	o.deliver(tpdus...)
	if r, _ := o.await(cmd); r.Status() != vmac.StatusOK {
		t.Fatalf("INFO = %v", r.Status())
	}
	o.deliver(tpdus...)
	pkt, _ := o.receive()
	r, err := ota.OpenResponse(pkt, cmd, o.keys())
	if err != nil {
		t.Fatalf("OpenResponse(%x): %v", pkt, err)
	}
	if r.Status != ota.StatusCounterLow || r.Secured {
		t.Errorf("PoR to the duplicate = status %v secured %v, want %v unsecured", r.Status, r.Secured, ota.StatusCounterLow)
	}
}

// TestStateSurvivesReload registers, restarts the network from its
// directory and signs; a replay of the registration is still refused.
func TestStateSurvivesReload(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])
	regCmd, regTPDUs := o.wrap(&vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge})
	o.deliver(regTPDUs...)
	r, _ := o.await(regCmd)
	rr := r.(*vmac.RegisterResponse)
	n.Close()

	n = b.load(t, Config{Uplink: up})
	o.n = n
	if st := mustPhone(t, n, o.msisdn).State().Card; !st.Registered || st.Counter != 1 {
		t.Fatalf("card after reload = %+v, want registered with counter 1", st)
	}
	digest := sha256.Sum256([]byte("after restart"))
	sr := o.do(signCmd(2, vmac.KeySign, digest[:])).(*vmac.SignResponse)
	pub, _ := x509.ParsePKIXPublicKey(rr.SignKey.SPKI)
	if err := vmac.VerifyDigest(pub, crypto.SHA256, digest[:], sr.Signature); sr.Result != vmac.StatusOK || err != nil {
		t.Fatalf("SIGN after reload = %v, verify: %v", sr.Result, err)
	}
	o.deliver(regTPDUs...)
	pkt, _ := o.receive()
	if por, err := ota.OpenResponse(pkt, regCmd, o.keys()); err != nil || por.Status != ota.StatusCounterLow {
		t.Errorf("replayed REGISTER after reload: PoR %+v, %v; want CNTR low", por, err)
	}
	if ents, _ := filepath.Glob(filepath.Join(b.dir, cardsDir, ".*")); len(ents) != 0 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func mustPhone(t testing.TB, n *Network, msisdn string) *Phone {
	t.Helper()
	p, ok := n.Phone(msisdn)
	if !ok {
		t.Fatalf("no phone %s", msisdn)
	}
	return p
}

// TestPersistBeforeSend checks that when the response leaves, the card
// file on disk already holds the counter of the command it answers.
func TestPersistBeforeSend(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	is := b.issued[b.msisdn[0]]
	path := filepath.Join(b.dir, cardsDir, is.Record.ICCID+cardExt)
	counters := make(chan uint64, 10)
	up.onSubmit = func(string, []byte) {
		imgs, _, err := readImages(path)
		if err != nil {
			t.Error(err)
			return
		}
		c, err := sim.Open(imgs[0], factory(t).FactoryKey, sim.Options{})
		if err != nil {
			t.Error(err)
			return
		}
		counters <- c.Status().Counter
	}
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])
	for i := range 3 {
		o.do(&vmac.Info{Ref: uint32(i)})
		if got := <-counters; got != o.counter {
			t.Errorf("counter on disk when response %d left = %d, want %d", i, got, o.counter)
		}
	}
}

func TestUplinkRetry(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	failures := 2
	up.fail = func(string, []byte) error {
		if failures > 0 {
			failures--
			return errors.New("SMSC busy")
		}
		return nil
	}
	n := b.load(t, Config{Uplink: up, SubmitAttempts: 3, SubmitBackoff: time.Millisecond})
	o := newOperator(t, n, up, b, b.msisdn[0])
	if r := o.do(&vmac.Info{Ref: 1}); r.Status() != vmac.StatusOK {
		t.Errorf("INFO after two refusals = %v", r.Status())
	}
	if a := up.Attempts(); a != 3 {
		t.Errorf("SubmitMO attempts = %d, want 3", a)
	}

	// A network that never accepts: the phone gives up and records it.
	up.fail = func(string, []byte) error { return errors.New("SMSC down") }
	_, tpdus := o.wrap(&vmac.Info{Ref: 2})
	o.deliver(tpdus...)
	p := mustPhone(t, n, o.msisdn)
	deadline := time.Now().Add(5 * time.Second)
	for p.State().Counters.SendFailed == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := p.State(); st.Counters.SendFailed != 1 || st.LastError == "" {
		t.Errorf("after a refused response: counters %+v, last error %q; want 1 failed and an error", st.Counters, st.LastError)
	}
	if a := up.Attempts(); a != 6 {
		t.Errorf("SubmitMO attempts = %d, want 6", a)
	}
}

func TestNoUplink(t *testing.T) {
	b := newBatch(t, 1)
	n := b.load(t, Config{SubmitAttempts: 1})
	o := newOperator(t, n, nil, b, b.msisdn[0])
	_, tpdus := o.wrap(&vmac.Info{Ref: 1})
	o.deliver(tpdus...)
	p := mustPhone(t, n, o.msisdn)
	deadline := time.Now().Add(5 * time.Second)
	for p.State().Counters.SendFailed == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := p.State(); st.Counters.SendFailed != 1 {
		t.Errorf("counters without uplink = %+v, want 1 failed", st.Counters)
	}
	// Set later, as the wiring does once the SMSC exists.
	up := newUplink()
	n.SetUplink(up)
	o.up = up
	if r := o.do(&vmac.Info{Ref: 2}); r.Status() != vmac.StatusOK {
		t.Errorf("INFO after SetUplink = %v", r.Status())
	}
}

// TestPowerOffDuringSession switches a phone off while its user thinks:
// the response is dropped, as the SIM toolkit session ended.
func TestPowerOffDuringSession(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, b.msisdn[0])
	o.register()
	p := mustPhone(t, n, o.msisdn)
	p.SetBehaviour(Behaviour{Action: NeverAnswer})
	_, tpdus := o.wrap(signCmd(2, vmac.KeyAuth, make([]byte, 32)))
	o.deliver(tpdus...)
	waitFor(t, func() bool { return p.Screen().Mode == ScreenConfirm })
	p.SetPower(false)
	waitFor(t, func() bool { return p.State().Counters.Dropped == 1 })
	up.none(t, 50*time.Millisecond)
	if s := p.Screen(); s != (Screen{}) {
		t.Errorf("screen of a phone switched off = %+v, want blank", s)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTextMessages(t *testing.T) {
	b := newBatch(t, 1)
	n := b.load(t, Config{Uplink: newUplink(), InboxSize: 5})
	p := mustPhone(t, n, b.msisdn[0])
	bank := sms.Address{TON: 5, Digits: "DemoBank"}
	intl := sms.Address{TON: 1, NPI: 1, Digits: "37255512345"}
	sent := sms.SCTSTime(2025, 6, 1, 12, 0, 0, 8)

	gsm := strings.Repeat("Your Mobile ID is ready {use it} for 5€. ", 6)
	ucs := strings.Repeat("Мобильный ID готов ✓ ", 6)
	short := "Hi @ home"
	deliver := func(tpdus ...[]byte) {
		t.Helper()
		for _, tpdu := range tpdus {
			if err := n.DeliverSMS(context.Background(), p.MSISDN(), tpdu); err != nil {
				t.Fatalf("DeliverSMS(%s) = %v, want nil", p.MSISDN(), err)
			}
		}
	}
	g := textDelivers(t, bank, gsm, 7)
	u := textDelivers(t, intl, ucs, 7) // same reference, other sender
	if len(g) < 2 || len(u) < 2 {
		t.Fatalf("texts took %d and %d SMS, want concatenated ones", len(g), len(u))
	}
	// Interleaved and out of order: the GSM text completes first.
	deliver(g[1], u[0], g[0])
	deliver(u[1:]...)
	deliver(g[2:]...)
	deliver(textDelivers(t, intl, short, 0)...)

	want := []TextMessage{
		{From: "+37255512345", Text: short, Sent: sent, Parts: 1},
		{From: "+37255512345", Text: ucs, Sent: sent, Parts: len(u)},
		{From: "DemoBank", Text: gsm, Sent: sent, Parts: len(g)},
	}
	if diff := cmp.Diff(want, p.Inbox(), cmpopts.IgnoreFields(TextMessage{}, "Received")); diff != "" {
		t.Errorf("inbox mismatch (-want +got):\n%s", diff)
	}

	for i := range 10 {
		deliver(textDelivers(t, intl, strings.Repeat("x", i+1), 0)...)
	}
	if in := p.Inbox(); len(in) != 5 || in[0].Text != "xxxxxxxxxx" {
		t.Errorf("inbox after 13 texts holds %d, newest %q; want 5, newest 10 x", len(in), in[0].Text)
	}
}

func TestParseBehaviour(t *testing.T) {
	tests := []struct {
		in   string
		want Behaviour
	}{
		{"", Behaviour{}},
		{"default", Behaviour{}},
		{"approve", Behaviour{Action: Approve}},
		{"wrong-pin", Behaviour{Action: WrongPIN}},
		{"cancel", Behaviour{Action: Cancel}},
		{"never", Behaviour{Action: NeverAnswer}},
		{"console", Behaviour{Action: Console}},
		{"think:2s", ThinkTime(2 * time.Second)},
		{"cancel+think:1m0s", Behaviour{Action: Cancel, Think: time.Minute}},
	}
	for _, tt := range tests {
		got, err := ParseBehaviour(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBehaviour(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if tt.in != "" {
			if s := got.String(); s != tt.in {
				t.Errorf("%#v.String() = %q, want %q", got, s, tt.in)
			}
		}
	}
	for _, bad := range []string{"maybe", "think:soon", "think:-1s"} {
		if _, err := ParseBehaviour(bad); !errors.Is(err, ErrBadBehaviour) {
			t.Errorf("ParseBehaviour(%q) error = %v, want ErrBadBehaviour", bad, err)
		}
	}
}

func TestDefaultPINs(t *testing.T) {
	p1, p2 := defaultPINs("+37250000123")
	if p1 != "0123" || p2 != "00123" {
		t.Errorf("defaultPINs = %q, %q; want 0123, 00123", p1, p2)
	}
	if w := wrongPIN("0123"); w == "0123" || len(w) != 4 {
		t.Errorf("wrongPIN(0123) = %q", w)
	}
}

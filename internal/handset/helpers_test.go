package handset

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/ota"
	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
	"mobileid/internal/sms"
	"mobileid/internal/vmac"
)

var (
	factoryOnce sync.Once
	testFactory *sim.Factory
	factoryErr  error
)

// factory returns one SIM factory for all tests: making a vendor CA is
// the slow part of issuing cards. Call it outside synctest bubbles, whose
// clock starts in the year 2000.
func factory(t testing.TB) *sim.Factory {
	t.Helper()
	factoryOnce.Do(func() {
		var ca *sim.VendorCA
		ca, factoryErr = sim.NewVendorCA("Test SIM vendor CA", time.Now())
		testFactory = &sim.Factory{CA: ca, FactoryKey: bytes.Repeat([]byte{0x5A}, 32)}
	})
	if factoryErr != nil {
		t.Fatal(factoryErr)
	}
	return testFactory
}

// batch is a personalisation batch directory as `mobileid sim issue`
// writes it, with the operator's records kept for the test operator.
type batch struct {
	dir    string
	issued map[string]*sim.Issued // by MSISDN
	msisdn []string
}

// newBatch issues count cards numbered from +37250000001.
func newBatch(t testing.TB, count int) *batch {
	t.Helper()
	f := factory(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, cardsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	b := &batch{dir: dir, issued: make(map[string]*sim.Issued)}
	var mailers bytes.Buffer
	w := csv.NewWriter(&mailers)
	w.Write([]string{"iccid", "msisdn", "puk"})
	for i := 1; i <= count; i++ {
		msisdn := fmt.Sprintf("+372500%05d", i)
		body := "8999901" + msisdn[len(msisdn)-11:]
		iccid := body + string(simbatch.LuhnDigit(body))
		imsi := "00101" + msisdn[len(msisdn)-10:]
		is, err := f.Issue(iccid, imsi, msisdn)
		if err != nil {
			t.Fatalf("Issue(%s): %v", msisdn, err)
		}
		if err := os.WriteFile(filepath.Join(dir, cardsDir, iccid+cardExt), is.Image, 0o600); err != nil {
			t.Fatal(err)
		}
		w.Write([]string{iccid, msisdn, is.PUK})
		b.issued[msisdn] = is
		b.msisdn = append(b.msisdn, msisdn)
	}
	w.Flush()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(mailerFile, mailers.Bytes())
	write(factoryKeyFile, []byte(hex.EncodeToString(f.FactoryKey)+"\n"))
	return b
}

// load starts a network on the batch and closes it at the end of the test.
func (b *batch) load(t testing.TB, cfg Config) *Network {
	t.Helper()
	n, err := LoadNetwork(b.dir, cfg)
	if err != nil {
		t.Fatalf("LoadNetwork: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// submission is one SMS-SUBMIT a phone sent.
type submission struct {
	from string
	tpdu []byte
}

// recUplink records what the phones send. It stands in for the SMSC,
// which lives in another package.
type recUplink struct {
	ch chan submission
	// fail, when set, decides whether an attempt is refused.
	fail func(from string, tpdu []byte) error
	// onSubmit, when set, runs before the submission is recorded.
	onSubmit func(from string, tpdu []byte)

	mu       sync.Mutex
	attempts int
}

func newUplink() *recUplink { return &recUplink{ch: make(chan submission, 1000)} }

func (u *recUplink) SubmitMO(ctx context.Context, from string, tpdu []byte) error {
	u.mu.Lock()
	u.attempts++
	u.mu.Unlock()
	if u.fail != nil {
		if err := u.fail(from, tpdu); err != nil {
			return err
		}
	}
	if u.onSubmit != nil {
		u.onSubmit(from, tpdu)
	}
	u.ch <- submission{from, bytes.Clone(tpdu)}
	return nil
}

func (u *recUplink) Attempts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.attempts
}

// none checks that nothing is sent for a while.
func (u *recUplink) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case s := <-u.ch:
		t.Errorf("unexpected SMS-SUBMIT from %s: %x", s.from, s.tpdu)
	case <-time.After(d):
	}
}

var vmacSPI = ota.SPI{Integrity: ota.CC, Ciphered: true, Counter: ota.CounterHigher,
	PoR: ota.PoRAlways, PoRIntegrity: ota.CC, PoRCiphered: true, PoRSubmit: true}

// operatorAddr is the MSSP's address as the phones see it.
var operatorAddr = sms.Address{TON: 1, NPI: 1, Digits: "3725550100"}

// operator plays the MSSP and the SMSC's delivery side for one card: it
// wraps VMAC commands with the card's keys and a rising counter, delivers
// them as SMS-DELIVERs and opens what comes back.
type operator struct {
	t       testing.TB
	n       *Network
	up      *recUplink
	msisdn  string
	rec     simbatch.Record
	counter uint64
	ref     uint16
	reasm   *sms.Reassembler
	wait    time.Duration // how long to wait for an answer
}

func newOperator(t testing.TB, n *Network, up *recUplink, b *batch, msisdn string) *operator {
	return &operator{t: t, n: n, up: up, msisdn: msisdn, rec: b.issued[msisdn].Record,
		reasm: sms.NewReassembler(time.Hour, 10), wait: 20 * time.Second}
}

func (o *operator) keys() ota.Keys { return ota.Keys{KIc: o.rec.KIcKey, KID: o.rec.KIDKey} }

// wrap makes the SMS-DELIVER TPDUs carrying c.
func (o *operator) wrap(c vmac.Command) (*ota.Command, [][]byte) {
	o.t.Helper()
	data, err := vmac.MarshalCommand(c)
	if err != nil {
		o.t.Fatalf("MarshalCommand: %v", err)
	}
	o.counter++
	o.ref++
	cmd := &ota.Command{SPI: vmacSPI, KIc: o.rec.KIc, KID: o.rec.KID, TAR: o.rec.TAR, Counter: o.counter, Data: data}
	pkt, err := ota.WrapCommand(cmd, o.keys())
	if err != nil {
		o.t.Fatalf("WrapCommand: %v", err)
	}
	segs, err := sms.SplitCommandPacket(pkt, o.ref, false)
	if err != nil {
		o.t.Fatalf("SplitCommandPacket: %v", err)
	}
	var tpdus [][]byte
	for _, seg := range segs {
		udh, rest, err := sms.ParseUDH(seg)
		if err != nil {
			o.t.Fatal(err)
		}
		d := sms.Deliver{OA: operatorAddr, PID: 0x7F, DCS: 0xF6, SCTS: sms.SCTSTime(2025, 6, 1, 12, 0, 0, 8), UDH: udh, Data: rest}
		tpdu, err := d.MarshalBinary()
		if err != nil {
			o.t.Fatalf("Deliver.MarshalBinary: %v", err)
		}
		tpdus = append(tpdus, tpdu)
	}
	return cmd, tpdus
}

// deliver hands TPDUs to the network and fails the test on an error.
func (o *operator) deliver(tpdus ...[]byte) {
	o.t.Helper()
	for _, tpdu := range tpdus {
		if err := o.n.DeliverSMS(context.Background(), o.msisdn, tpdu); err != nil {
			o.t.Fatalf("DeliverSMS(%s) = %v, want nil", o.msisdn, err)
		}
	}
}

// receive waits for a whole response packet and returns it with the
// number of SMS it took.
func (o *operator) receive() ([]byte, int) {
	o.t.Helper()
	deadline := time.After(o.wait)
	for {
		var s submission
		select {
		case s = <-o.up.ch:
		case <-deadline:
			o.t.Fatalf("no response from %s within %v", o.msisdn, o.wait)
		}
		if s.from != o.msisdn {
			o.t.Fatalf("SMS-SUBMIT from %s, want %s", s.from, o.msisdn)
		}
		sub, err := sms.ParseSubmit(s.tpdu)
		if err != nil {
			o.t.Fatalf("ParseSubmit(%x): %v", s.tpdu, err)
		}
		if sub.PID != 0x7F || sub.DCS != 0xF6 || sub.DA != operatorAddr || sub.VP.Format != sms.VPNone {
			o.t.Fatalf("SMS-SUBMIT PID %02x DCS %02x DA %+v VP %v, want 7F F6 %+v none", sub.PID, byte(sub.DCS), sub.DA, sub.VP.Format, operatorAddr)
		}
		m, err := o.reasm.Add(s.from, append(sms.MarshalUDH(sub.UDH), sub.Data...), time.Now())
		if err != nil {
			o.t.Fatalf("reassemble response: %v", err)
		}
		if m == nil {
			continue
		}
		if m.SecurityIEI() != sms.IEResponsePacket {
			o.t.Fatalf("response UDH %+v lacks IEI 71", m.UDH)
		}
		return m.Data, m.Segments
	}
}

// await opens the response to cmd.
func (o *operator) await(cmd *ota.Command) (vmac.Response, int) {
	o.t.Helper()
	pkt, segs := o.receive()
	r, err := ota.OpenResponse(pkt, cmd, o.keys())
	if err != nil {
		o.t.Fatalf("OpenResponse(%x): %v", pkt, err)
	}
	if r.Status != ota.StatusOK || !r.Secured || r.Counter != cmd.Counter {
		o.t.Fatalf("PoR status %v secured %v counter %d, want OK, secured, %d", r.Status, r.Secured, r.Counter, cmd.Counter)
	}
	vr, err := vmac.ParseResponse(r.Data)
	if err != nil {
		o.t.Fatalf("ParseResponse(%x): %v", r.Data, err)
	}
	return vr, segs
}

// do sends c and returns the card's answer.
func (o *operator) do(c vmac.Command) vmac.Response {
	o.t.Helper()
	cmd, tpdus := o.wrap(c)
	o.deliver(tpdus...)
	r, _ := o.await(cmd)
	if r.TxRef() != c.TxRef() {
		o.t.Fatalf("response TxRef %d, want %d", r.TxRef(), c.TxRef())
	}
	return r
}

var challenge = bytes.Repeat([]byte{0xC4}, 16)

// register registers the card and checks the answer came in several SMS.
func (o *operator) register() *vmac.RegisterResponse {
	o.t.Helper()
	c := &vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge}
	cmd, tpdus := o.wrap(c)
	o.deliver(tpdus...)
	r, segs := o.await(cmd)
	rr, ok := r.(*vmac.RegisterResponse)
	if !ok || rr.Result != vmac.StatusOK {
		o.t.Fatalf("REGISTER = %#v, want OK", r)
	}
	if segs < 2 {
		o.t.Errorf("REGISTER response took %d SMS, want a concatenated one", segs)
	}
	return rr
}

func vendorPool(t testing.TB) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(factory(t).CA.Cert)
	return pool
}

// absent reports whether err says the subscriber is absent.
func absent(err error) bool {
	var a interface{ Absent() bool }
	return errors.As(err, &a) && a.Absent()
}

// textDelivers makes the SMS-DELIVERs of a text as an SMSC would send it.
func textDelivers(t testing.TB, from sms.Address, text string, ref uint16) [][]byte {
	t.Helper()
	parts, dcs, err := sms.SplitText(text, ref)
	if err != nil {
		t.Fatalf("SplitText: %v", err)
	}
	var out [][]byte
	for _, p := range parts {
		d := sms.Deliver{OA: from, DCS: sms.DCS(dcs), SCTS: sms.SCTSTime(2025, 6, 1, 12, 0, 0, 8), UDH: p.UDH, Data: p.Data}
		tpdu, err := d.MarshalBinary()
		if err != nil {
			t.Fatalf("Deliver.MarshalBinary: %v", err)
		}
		out = append(out, tpdu)
	}
	return out
}

// contains reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

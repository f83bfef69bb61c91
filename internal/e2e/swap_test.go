package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mobileid/internal/ca"
	"mobileid/internal/cms"
	"mobileid/internal/etsi"
	"mobileid/internal/handset"
	"mobileid/internal/registration"
	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
)

// issueReplacement personalises a new card for msisdn in the factory that
// made the batch in factoryDir, so that the platform trusts its
// attestation, and writes it as a batch directory dir of one card. The
// card gets an ICCID of a series of its own: IssueBatch derives the ICCID
// from the number, which would give the replacement the old card's.
func issueReplacement(t *testing.T, factoryDir, dir, msisdn string) simbatch.Record {
	t.Helper()
	var f sim.Factory
	if err := simfactory.LoadFactory(&f, factoryDir); err != nil {
		t.Fatal(err)
	}
	digits := strings.TrimPrefix(msisdn, "+")
	body := "8999902" + digits[len(digits)-11:]
	iccid := body + string(simbatch.LuhnDigit(body))
	is, err := f.Issue(iccid, "00102"+digits[len(digits)-10:], msisdn)
	if err != nil {
		t.Fatalf("issue the new SIM: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, simfactory.CardsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	var mailer bytes.Buffer
	w := csv.NewWriter(&mailer)
	w.Write([]string{"iccid", "msisdn", "puk"})
	w.Write([]string{iccid, msisdn, is.PUK})
	w.Flush()
	for name, data := range map[string][]byte{
		filepath.Join(simfactory.CardsDir, iccid+".card"): is.Image,
		simfactory.FactoryKeyFile:                         []byte(hex.EncodeToString(f.FactoryKey) + "\n"),
		simfactory.MailerFile:                             mailer.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return is.Record
}

// swapPhoneSIM puts the new card into the phone, waiting for a command the
// phone is still working on (the ready message) to end.
func swapPhoneSIM(t *testing.T, p *platform, dir, iccid string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.w.phones.SwapSIM(dir, iccid)
		if err == nil {
			return
		}
		if !errors.Is(err, handset.ErrPhoneBusy) || time.Now().After(deadline) {
			t.Fatalf("SwapSIM(%s) = %v", iccid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signerSerial returns the serial of the certificate a signature response
// was made with.
func signerSerial(t *testing.T, p *platform, resp *etsi.MSSSignatureResp) string {
	t.Helper()
	sig := resp.MSSSignature
	switch {
	case sig == nil:
		t.Fatal("no signature in the response")
	case sig.PKCS1 != nil:
		c, err := x509.ParseCertificate(sig.PKCS1.X509Certificate)
		if err != nil {
			t.Fatal(err)
		}
		return c.SerialNumber.Text(16)
	case len(sig.Base64Signature) > 0:
		c, err := cms.Verify(sig.Base64Signature, nil, pool(p.keys.Root))
		if err != nil {
			t.Fatalf("cms.Verify: %v", err)
		}
		return c.SerialNumber.Text(16)
	}
	t.Fatalf("signature without a certificate: %+v", sig)
	return ""
}

// TestRegistrationSIMSwap registers a person, gives their number a new
// SIM (the operator at the MSSP and in the network, the officer at the
// desk because the old card was lost), and checks that the Mobile ID
// registers again on the new card: the old certificates revoked for key
// compromise at once, new ones for the new card's keys, and signatures
// through the MSSP made by the new card.
func TestRegistrationSIMSwap(t *testing.T) {
	ctx := context.Background()
	p := newPlatform(t, 2, platformOptions{})
	r := newRS(t, p, p.ca)
	msisdn := p.phones()[0]
	const nationalID = "47605030299"
	m, err := r.Register(ctx, officer, identity(msisdn, nationalID))
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	old := waitState(t, r, m.ID, registration.StateActive)
	if old.ICCID != p.w.recs[msisdn].ICCID {
		t.Fatalf("registered on SIM %s, want %s", old.ICCID, p.w.recs[msisdn].ICCID)
	}

	// The operator issues the new card and swaps it at the MSSP and in
	// the network.
	dir := filepath.Join(t.TempDir(), "replacement")
	rec := issueReplacement(t, p.w.dir, dir, msisdn)
	retired, err := p.sims.Swap(ctx, rec)
	if err != nil || retired == nil || retired.ICCID != old.ICCID {
		t.Fatalf("MSSP Swap() = %+v, %v; want SIM %s retired", retired, err, old.ICCID)
	}
	swapPhoneSIM(t, p, dir, rec.ICCID)

	// The officer records the swap: the old certificates are revoked now.
	m, err = r.SwapSIM(ctx, officer, m.ID, true)
	if err != nil {
		t.Fatalf("SwapSIM: %v", err)
	}
	if m.State != registration.StateRegistering || m.Step != registration.StepKeys || m.ICCID != "" || m.AuthSerial != "" || m.SignSerial != "" {
		t.Errorf("after SwapSIM the Mobile ID is %s at step %s on SIM %q with serials %q %q; want registering at keys without them",
			m.State, m.Step, m.ICCID, m.AuthSerial, m.SignSerial)
	}
	for _, h := range []string{old.AuthSerial, old.SignSerial} {
		n, _ := new(big.Int).SetString(h, 16)
		if c, err := p.ca.Get(ctx, n); err != nil || c.Status != ca.StatusRevoked || c.Reason != ca.ReasonKeyCompromise {
			t.Errorf("old certificate %s after SwapSIM = %+v, %v; want revoked for key compromise", h, c, err)
		}
	}

	m = waitState(t, r, m.ID, registration.StateActive)
	if m.ICCID != rec.ICCID {
		t.Errorf("Mobile ID on SIM %s after the swap, want %s", m.ICCID, rec.ICCID)
	}
	if m.AuthSerial == "" || m.SignSerial == "" || m.AuthSerial == old.AuthSerial || m.SignSerial == old.SignSerial {
		t.Errorf("serials after the swap %s %s, old %s %s", m.AuthSerial, m.SignSerial, old.AuthSerial, old.SignSerial)
	}
	if phone, _ := p.w.phones.Phone(msisdn); phone.ICCID() != rec.ICCID {
		t.Errorf("phone's SIM = %s, want %s", phone.ICCID(), rec.ICCID)
	}

	resp, err := p.client.Sign(ctx, p.signReq(msisdn, "Log in with the new SIM"))
	if err != nil || resp.Status.StatusCode.Value != etsi.CodeValidSignature {
		t.Fatalf("authentication after the swap = %v, %v; want 502", resp, err)
	}
	if s := signerSerial(t, p, resp); s != m.AuthSerial && s != m.SignSerial {
		t.Errorf("signature made with certificate %s, want one of the new ones (%s, %s)", s, m.AuthSerial, m.SignSerial)
	}

	// The CA holds both pairs: the old one revoked, on the old SIM; the
	// new one good, on the new SIM.
	certs := certsOf(t, p, nationalID)
	if len(certs) != 4 {
		t.Fatalf("certificates of the person = %d, want 4", len(certs))
	}
	want := map[string]struct {
		status ca.Status
		iccid  string
	}{
		old.AuthSerial: {ca.StatusRevoked, old.ICCID}, old.SignSerial: {ca.StatusRevoked, old.ICCID},
		m.AuthSerial: {ca.StatusGood, rec.ICCID}, m.SignSerial: {ca.StatusGood, rec.ICCID},
	}
	for _, c := range certs {
		w, ok := want[c.Serial.Text(16)]
		if !ok || c.Status != w.status || c.ICCID != w.iccid {
			t.Errorf("certificate %s: %v on SIM %s, want %+v", c.Serial.Text(16), c.Status, c.ICCID, w)
		}
	}

	var steps []string
	for _, e := range m.Events {
		steps = append(steps, e.Step)
	}
	if !strings.Contains(strings.Join(steps, " "), "swap-sim certificates bind notify done") {
		t.Errorf("events %v, want the swap followed by the registration steps", steps)
	}
	if n := rows(t, p.db, `SELECT COUNT(*) FROM registration_audit WHERE action = 'swap-sim' AND officer = 'anna' AND mobileid_id = $1`, m.ID); n != 1 {
		t.Errorf("swap-sim audit records = %d, want 1", n)
	}

	// Only a Mobile ID in use gets a new SIM.
	if _, err := r.Revoke(ctx, officer, m.ID, "request"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := r.SwapSIM(ctx, officer, m.ID, false); !errors.Is(err, registration.ErrState) {
		t.Errorf("SwapSIM(revoked) = %v, want ErrState", err)
	}
}

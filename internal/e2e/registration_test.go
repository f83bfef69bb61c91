package e2e

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
	"mobileid/internal/handset"
	"mobileid/internal/registration"
)

var officer = registration.Officer{Username: "anna", Name: "Anna Tamm", Desk: "Tallinn 1"}

// rs is a Registration Server on the platform, with its Run loop.
type rs struct {
	*registration.Server
	stop func()
}

func newRS(t *testing.T, p *platform, issuer ca.Issuer) *rs {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	srv, err := registration.New(registration.Config{APID: p.apID, APPassword: p.apPwd, RetryPause: 100 * time.Millisecond},
		p.db, p.client, issuer, nil, logger, logger, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(ctx) })
	r := &rs{Server: srv, stop: func() { cancel(); wg.Wait() }}
	t.Cleanup(r.stop)
	return r
}

// identity is a valid identity for msisdn.
func identity(msisdn, nationalID string) registration.Identity {
	dob, _ := time.Parse("2006-01-02", "1976-05-03")
	return registration.Identity{
		Person: registration.Person{GivenNames: "Mari-Liis", Surname: "Männik", Country: "EE", NationalID: nationalID, DateOfBirth: dob},
		Document: registration.Document{Type: "id-card", Number: "AB1234567", Issuer: "EE",
			Expires: time.Now().AddDate(3, 0, 0).Truncate(24 * time.Hour)},
		MSISDN: msisdn,
	}
}

// waitState waits for the Mobile ID to reach state.
func waitState(t *testing.T, r *rs, id int64, state string) *registration.MobileID {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := r.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("Mobile ID %d is %s at step %s (%q), want %s", id, m.State, m.Step, m.Status, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// certsOf lists the certificates the CA issued for a national ID.
func certsOf(t *testing.T, p *platform, nationalID string) []*ca.Certificate {
	t.Helper()
	list, err := p.ca.List(context.Background(), ca.ListFilter{Country: "EE", NationalID: nationalID})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestRegistrationEndToEnd registers a person at the desk through the
// real MSSP, network, SIM and CA, authenticates with the new key, then
// revokes the Mobile ID and sees the MSSP and the CA refuse it.
func TestRegistrationEndToEnd(t *testing.T) {
	p := newPlatform(t, 2, platformOptions{})
	r := newRS(t, p, p.ca)
	msisdn := p.phones()[0]
	m, err := r.Register(context.Background(), officer, identity(msisdn, "47605030299"))
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	m = waitState(t, r, m.ID, registration.StateActive)
	if m.ICCID != p.w.recs[msisdn].ICCID || m.AuthSerial == "" || m.SignSerial == "" {
		t.Fatalf("active Mobile ID = %+v", m)
	}
	if n := len(certsOf(t, p, "47605030299")); n != 2 {
		t.Errorf("certificates issued = %d, want 2", n)
	}
	if found, err := r.Lookup(context.Background(), msisdn); err != nil || found.ID != m.ID {
		t.Errorf("Lookup(%s) = %v, %v", msisdn, found, err)
	}

	phone, _ := p.w.phones.Phone(msisdn)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(phone.Screen().Text, "Mobile ID is ready"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("phone screen after registration = %q, want the ready message", phone.Screen().Text)
		}
	}

	resp, err := p.client.Sign(context.Background(), p.signReq(msisdn, "Log in to Test Bank"))
	if err != nil || resp.Status.StatusCode.Value != etsi.CodeValidSignature {
		t.Fatalf("authentication after registration = %v, %v", resp, err)
	}

	// Renewal: new keys on the same SIM, new certificates, the old ones
	// revoked as superseded once the new ones work.
	old := m
	if _, err := r.Renew(context.Background(), officer, m.ID); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	m = waitState(t, r, m.ID, registration.StateActive)
	if m.AuthSerial == old.AuthSerial || m.SignSerial == old.SignSerial || m.AuthSerial == "" {
		t.Fatalf("renewed serials %s %s, old %s %s", m.AuthSerial, m.SignSerial, old.AuthSerial, old.SignSerial)
	}
	for _, h := range []string{old.AuthSerial, old.SignSerial} {
		n, _ := new(big.Int).SetString(h, 16)
		if c, err := p.ca.Get(context.Background(), n); err != nil || c.Status != ca.StatusRevoked || c.Reason != ca.ReasonSuperseded {
			t.Errorf("old certificate %s after renewal = %+v, %v", h, c, err)
		}
	}
	resp, err = p.client.Sign(context.Background(), p.signReq(msisdn, "Log in with the new key"))
	if err != nil || resp.Status.StatusCode.Value != etsi.CodeValidSignature {
		t.Fatalf("authentication after renewal = %v, %v", resp, err)
	}

	if _, err := r.Revoke(context.Background(), officer, m.ID, "lost"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	resp, err = p.client.Sign(context.Background(), p.signReq(msisdn, "Log in again"))
	if err != nil || resp.Status.StatusCode.Value != etsi.CodeRevokedCertificate {
		t.Errorf("authentication after revocation = %v, %v; want 501", resp, err)
	}
	for _, h := range []string{m.AuthSerial, m.SignSerial} {
		n, _ := new(big.Int).SetString(h, 16)
		c, err := p.ca.Get(context.Background(), n)
		if err != nil || c.Status != ca.StatusRevoked || c.Reason != ca.ReasonKeyCompromise {
			t.Errorf("certificate %s after revocation = %+v, %v", h, c, err)
		}
	}
	if _, err := r.Lookup(context.Background(), msisdn); !errors.Is(err, registration.ErrNotFound) {
		t.Errorf("Lookup after revocation = %v, want ErrNotFound", err)
	}
}

// TestRegistrationBadInput checks that refused registrations leave
// nothing behind and tell the officer why.
func TestRegistrationBadInput(t *testing.T) {
	p := newPlatform(t, 2, platformOptions{})
	r := newRS(t, p, p.ca)
	msisdn := p.phones()[0]
	bad := identity(msisdn, "47605030298") // wrong check digit
	var fe registration.FieldErrors
	if _, err := r.Register(context.Background(), officer, bad); !errors.As(err, &fe) || fe["national_id"] == "" {
		t.Errorf("Register(bad national ID) = %v, want a national_id field error", err)
	}
	noSIM := identity("+37299999999", "47605030299")
	if _, err := r.Register(context.Background(), officer, noSIM); !errors.As(err, &fe) || fe["msisdn"] == "" {
		t.Errorf("Register(number without SIM) = %v, want an msisdn field error", err)
	}
	if n := rows(t, p.db, `SELECT COUNT(*) FROM registration_mobileid`); n != 0 {
		t.Errorf("refused registrations left %d rows", n)
	}

	// The user cancels the PIN choice: a clear status, no certificate;
	// a retry after that ends with exactly one pair.
	phone, _ := p.w.phones.Phone(msisdn)
	phone.SetBehaviour(handset.Behaviour{Action: handset.Cancel})
	m, err := r.Register(context.Background(), officer, identity(msisdn, "47605030299"))
	if err != nil {
		t.Fatal(err)
	}
	m = waitState(t, r, m.ID, registration.StateFailed)
	if m.Status != "The user cancelled the PIN choice on the phone." {
		t.Errorf("status after cancel = %q", m.Status)
	}
	if n := len(certsOf(t, p, "47605030299")); n != 0 {
		t.Errorf("certificates issued after a cancelled key generation = %d", n)
	}
	other := identity(msisdn, "47605030299")
	other.Surname = "Someone-Else"
	if _, err := r.Register(context.Background(), officer, other); !errors.As(err, &fe) || fe["national_id"] == "" {
		t.Errorf("Register(known national ID, other name) = %v, want a national_id field error", err)
	}
	phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
	if _, err := r.Retry(context.Background(), officer, m.ID); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	waitState(t, r, m.ID, registration.StateActive)
	if n := len(certsOf(t, p, "47605030299")); n != 2 {
		t.Errorf("certificates after the retry = %d, want 2", n)
	}
	if _, err := r.Register(context.Background(), officer, identity(msisdn, "47605030299")); !errors.As(err, &fe) || fe["msisdn"] == "" {
		t.Errorf("Register(number with a Mobile ID) = %v, want an msisdn field error", err)
	}
	if n := rows(t, p.db, `SELECT COUNT(*) FROM registration_audit WHERE officer = 'anna'`); n < 2 {
		t.Errorf("audit records = %d, want the registration and the retry", n)
	}
}

// stallingCA issues the first certificate it is asked for and then hangs,
// as a CA that becomes unreachable, until released.
type stallingCA struct {
	ca.Issuer
	issued  chan struct{}
	release chan struct{}
	once    sync.Once
	count   int
	mu      sync.Mutex
}

func (s *stallingCA) Issue(ctx context.Context, req *ca.IssueRequest) (*ca.Certificate, error) {
	s.mu.Lock()
	s.count++
	n := s.count
	s.mu.Unlock()
	if n > 1 {
		select {
		case <-ctx.Done():
		case <-s.release:
		}
		return nil, errors.New("CA unreachable")
	}
	c, err := s.Issuer.Issue(ctx, req)
	s.once.Do(func() { close(s.issued) })
	return c, err
}

// TestRegistrationResumes stops the Registration Server twice — while the
// user chooses the PINs, and after the CA issued one of the two
// certificates — and finishes with a new one, which ends with exactly one
// pair of certificates.
func TestRegistrationResumes(t *testing.T) {
	p := newPlatform(t, 2, platformOptions{})
	msisdn := p.phones()[0]
	phone, _ := p.w.phones.Phone(msisdn)
	phone.SetBehaviour(handset.ThinkTime(500 * time.Millisecond))

	stall := &stallingCA{Issuer: p.ca, issued: make(chan struct{}), release: make(chan struct{})}
	first := newRS(t, p, stall)
	m, err := first.Register(context.Background(), officer, identity(msisdn, "47605030299"))
	if err != nil {
		t.Fatal(err)
	}
	// Stop while the phone asks for the PINs: the MSSP goes on.
	time.Sleep(200 * time.Millisecond)
	first.stop()
	if got, _ := first.Get(context.Background(), m.ID); got.State != registration.StateRegistering || got.Step != registration.StepKeys {
		t.Fatalf("after the first stop the Mobile ID is %s at step %s, want registering at keys", got.State, got.Step)
	}

	second := newRS(t, p, stall)
	select {
	case <-stall.issued:
	case <-time.After(30 * time.Second):
		t.Fatal("the second run never reached the CA")
	}
	// One certificate issued, the second request hangs: stop again.
	time.Sleep(50 * time.Millisecond)
	second.stop()
	close(stall.release)
	if n := len(certsOf(t, p, "47605030299")); n != 1 {
		t.Fatalf("certificates after the second stop = %d, want 1", n)
	}

	third := newRS(t, p, p.ca)
	m = waitState(t, third, m.ID, registration.StateActive)
	if n := len(certsOf(t, p, "47605030299")); n != 2 {
		t.Errorf("certificates at the end = %d, want exactly one pair", n)
	}
	resp, err := p.client.Sign(context.Background(), p.signReq(msisdn, "Log in after the restarts"))
	if err != nil || resp.Status.StatusCode.Value != etsi.CodeValidSignature {
		t.Errorf("authentication = %v, %v", resp, err)
	}
	var steps []string
	for _, e := range m.Events {
		steps = append(steps, e.Step)
	}
	t.Logf("steps: %v", steps)
}

package ca

import (
	"context"
	"encoding/asn1"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// crlEntry is what a test compares of a CRL entry.
type crlEntry struct {
	Serial         string
	RevocationTime time.Time
	Reason         int
	InvalidityDate time.Time
}

func entriesOf(t *testing.T, tc *testCA) (number int64, entries []crlEntry) {
	t.Helper()
	rl := tc.parseCRL(t)
	for _, e := range rl.RevokedCertificateEntries {
		ce := crlEntry{Serial: serialKey(e.SerialNumber), RevocationTime: e.RevocationTime, Reason: e.ReasonCode}
		for _, x := range e.Extensions {
			if x.Id.Equal(oidInvalidityDate) {
				if _, err := asn1.UnmarshalWithParams(x.Value, &ce.InvalidityDate, "generalized"); err != nil {
					t.Errorf("invalidity date %x: %v", x.Value, err)
				}
			}
		}
		entries = append(entries, ce)
	}
	return rl.Number.Int64(), entries
}

func TestRevokeAndCRL(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		reg := newRegistration(t, tc.vendor, newECKey(t), newECKey(t))
		auth, _ := tc.issue(t, reg.request(t, ProfileAuthentication))
		sign, _ := tc.issue(t, reg.request(t, ProfileSigning))

		rl := tc.parseCRL(t)
		if rl.Number.Int64() != 1 || len(rl.RevokedCertificateEntries) != 0 {
			t.Fatalf("first CRL: number %v with %d entries, want 1 with none", rl.Number, len(rl.RevokedCertificateEntries))
		}
		if got := testutil.ToFloat64(tc.m.crlNumber); got != 1 {
			t.Errorf("mobileid_ca_crl_number = %v, want 1", got)
		}

		tc.clock.Advance(10 * time.Minute)
		now := tc.clock.Now()
		lostAt := now.Add(-5 * time.Minute)
		if err := tc.Revoke(t.Context(), auth.Serial, ReasonKeyCompromise, lostAt); err != nil {
			t.Fatalf("Revoke() = %v", err)
		}

		rl = tc.parseCRL(t)
		if rl.Number.Int64() != 2 {
			t.Errorf("CRL number after a revocation = %v, want 2", rl.Number)
		}
		if !rl.ThisUpdate.Equal(now) || !rl.NextUpdate.Equal(now.Add(24*time.Hour)) {
			t.Errorf("CRL thisUpdate %v nextUpdate %v, want %v and a day later", rl.ThisUpdate, rl.NextUpdate, now)
		}
		if rl.Issuer.String() != tc.keys.Issuing.Subject.String() || string(rl.AuthorityKeyId) != string(tc.keys.Issuing.SubjectKeyId) {
			t.Errorf("CRL issuer %v (AKI %x), want the issuing CA", rl.Issuer, rl.AuthorityKeyId)
		}
		_, entries := entriesOf(t, tc)
		want := []crlEntry{{Serial: serialKey(auth.Serial), RevocationTime: now, Reason: ReasonKeyCompromise, InvalidityDate: lostAt}}
		if diff := cmp.Diff(want, entries); diff != "" {
			t.Errorf("CRL entries (-want +got):\n%s", diff)
		}

		for _, tt := range []struct {
			name      string
			serial    *big.Int
			status    int
			revokedAt time.Time
			reason    int
		}{
			{"revoked", auth.Serial, CertStatusRevoked, now, ReasonKeyCompromise},
			{"good", sign.Serial, CertStatusGood, time.Time{}, 0},
			{"unknown", big.NewInt(12345), CertStatusUnknown, time.Time{}, 0},
			{"OCSP responder", tc.keys.OCSP.SerialNumber, CertStatusGood, time.Time{}, 0},
			{"TSA", tc.keys.TSA.SerialNumber, CertStatusGood, time.Time{}, 0},
		} {
			status, at, reason, err := tc.CertStatus(t.Context(), tt.serial)
			if err != nil || status != tt.status || !at.Equal(tt.revokedAt) || reason != tt.reason {
				t.Errorf("%s: CertStatus() = %d, %v, %d, %v; want %d, %v, %d", tt.name, status, at, reason, err, tt.status, tt.revokedAt, tt.reason)
			}
		}
		got, err := tc.Get(t.Context(), auth.Serial)
		if err != nil || got.Status != StatusRevoked || !got.RevokedAt.Equal(now) || !got.InvalidSince.Equal(lostAt) || got.Reason != ReasonKeyCompromise {
			t.Errorf("Get(revoked) = %+v, %v", got, err)
		}

		if err := tc.Revoke(t.Context(), auth.Serial, ReasonSuperseded, time.Time{}); !errors.Is(err, ErrAlreadyRevoked) {
			t.Errorf("second Revoke() = %v, want ErrAlreadyRevoked", err)
		}
		if err := tc.Revoke(t.Context(), auth.Serial, ReasonCertificateHold, time.Time{}); !errors.Is(err, ErrAlreadyRevoked) {
			t.Errorf("hold after revocation = %v, want ErrAlreadyRevoked", err)
		}
		if n, _ := entriesOf(t, tc); n != 2 {
			t.Errorf("CRL number after refused revocations = %d, want 2 (nothing changed)", n)
		}
		if got := testutil.ToFloat64(tc.m.revoked.WithLabelValues("keyCompromise")); got != 1 {
			t.Errorf("mobileid_ca_revoked_total{reason=keyCompromise} = %v, want 1", got)
		}
		if got := testutil.ToFloat64(tc.m.crlNumber); got != 2 {
			t.Errorf("mobileid_ca_crl_number = %v, want 2", got)
		}
		var audits []auditRecord
		for _, r := range tc.audit.all() {
			if r.Attrs["event"] == "revoke" {
				audits = append(audits, r)
			}
		}
		if len(audits) != 1 || audits[0].Attrs["serial"] != serialKey(auth.Serial) || audits[0].Attrs["reason"] != "1" {
			t.Errorf("revocation audit records = %+v, want one for %s", audits, serialKey(auth.Serial))
		}
	})
}

func TestHoldAndRelease(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		sign, _ := tc.issue(t, newRegistration(t, nil, newECKey(t), newECKey(t)).request(t, ProfileSigning))
		key := serialKey(sign.Serial)
		ctx := t.Context()

		tc.clock.Advance(time.Minute)
		heldAt := tc.clock.Now()
		if err := tc.Revoke(ctx, sign.Serial, ReasonCertificateHold, time.Time{}); err != nil {
			t.Fatalf("hold: %v", err)
		}
		if st, at, reason, _ := tc.CertStatus(ctx, sign.Serial); st != CertStatusRevoked || !at.Equal(heldAt) || reason != ReasonCertificateHold {
			t.Errorf("CertStatus(held) = %d, %v, %d; want revoked at %v, certificateHold", st, at, reason, heldAt)
		}
		n1, entries := entriesOf(t, tc)
		if diff := cmp.Diff([]crlEntry{{Serial: key, RevocationTime: heldAt, Reason: ReasonCertificateHold}}, entries); diff != "" {
			t.Errorf("CRL entries while on hold (-want +got):\n%s", diff)
		}
		if err := tc.Revoke(ctx, sign.Serial, ReasonCertificateHold, time.Time{}); !errors.Is(err, ErrAlreadyOnHold) {
			t.Errorf("second hold = %v, want ErrAlreadyOnHold", err)
		}

		tc.clock.Advance(time.Minute)
		if err := tc.Release(ctx, sign.Serial); err != nil {
			t.Fatalf("Release() = %v", err)
		}
		if st, _, _, _ := tc.CertStatus(ctx, sign.Serial); st != CertStatusGood {
			t.Errorf("CertStatus(released) = %d, want good", st)
		}
		n2, entries := entriesOf(t, tc)
		if n2 <= n1 || len(entries) != 0 {
			t.Errorf("CRL after release: number %d (before %d), entries %+v; want a newer CRL without the certificate", n2, n1, entries)
		}
		if err := tc.Release(ctx, sign.Serial); !errors.Is(err, ErrNotOnHold) {
			t.Errorf("Release(good) = %v, want ErrNotOnHold", err)
		}

		// Hold again, then make it final: the revocation date stays that
		// of the hold.
		tc.clock.Advance(time.Minute)
		heldAt = tc.clock.Now()
		if err := tc.Revoke(ctx, sign.Serial, ReasonCertificateHold, time.Time{}); err != nil {
			t.Fatal(err)
		}
		tc.clock.Advance(time.Minute)
		if err := tc.Revoke(ctx, sign.Serial, ReasonKeyCompromise, time.Time{}); err != nil {
			t.Fatalf("hold → keyCompromise: %v", err)
		}
		_, entries = entriesOf(t, tc)
		want := []crlEntry{{Serial: key, RevocationTime: heldAt, Reason: ReasonKeyCompromise, InvalidityDate: tc.clock.Now()}}
		if diff := cmp.Diff(want, entries); diff != "" {
			t.Errorf("CRL entries after hold → revocation (-want +got):\n%s", diff)
		}
		if err := tc.Release(ctx, sign.Serial); !errors.Is(err, ErrNotOnHold) {
			t.Errorf("Release(revoked) = %v, want ErrNotOnHold", err)
		}
		if got := testutil.ToFloat64(tc.m.released); got != 1 {
			t.Errorf("mobileid_ca_released_total = %v, want 1", got)
		}
		var events []string
		for _, r := range tc.audit.all() {
			if e := r.Attrs["event"]; e != "issue" {
				events = append(events, e)
			}
		}
		if diff := cmp.Diff([]string{"hold", "release", "hold", "revoke"}, events); diff != "" {
			t.Errorf("audit events (-want +got):\n%s", diff)
		}
	})
}

func TestRevokeErrors(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		reg := newRegistration(t, nil, newECKey(t), newECKey(t))
		cert, _ := tc.issue(t, reg.request(t, ProfileAuthentication))
		now := tc.clock.Now()
		for _, tt := range []struct {
			name   string
			serial *big.Int
			reason int
			at     time.Time
			want   error
		}{
			{"unused reason 7", cert.Serial, 7, now, ErrBadReason},
			{"removeFromCRL", cert.Serial, ReasonRemoveFromCRL, now, ErrBadReason},
			{"cACompromise", cert.Serial, ReasonCACompromise, now, ErrBadReason},
			{"aACompromise", cert.Serial, ReasonAACompromise, now, ErrBadReason},
			{"negative reason", cert.Serial, -1, now, ErrBadReason},
			{"future", cert.Serial, ReasonKeyCompromise, now.Add(2 * time.Minute), ErrFutureRevocation},
			{"unknown serial", big.NewInt(99), ReasonKeyCompromise, now, ErrNotFound},
			{"nil serial", nil, ReasonKeyCompromise, now, ErrNotFound},
		} {
			if err := tc.Revoke(t.Context(), tt.serial, tt.reason, tt.at); !errors.Is(err, tt.want) {
				t.Errorf("%s: Revoke() = %v, want %v", tt.name, err, tt.want)
			}
		}
		if st, _, _, _ := tc.CertStatus(t.Context(), cert.Serial); st != CertStatusGood {
			t.Errorf("refused revocations changed the status to %d", st)
		}
		if err := tc.Release(t.Context(), big.NewInt(99)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Release(unknown) = %v, want ErrNotFound", err)
		}
		// A caller whose clock is a little ahead is not refused; the
		// invalidity date is then now.
		if err := tc.Revoke(t.Context(), cert.Serial, ReasonUnspecified, now.Add(30*time.Second)); err != nil {
			t.Fatalf("Revoke(30 s ahead) = %v", err)
		}
		got, _ := tc.Get(t.Context(), cert.Serial)
		if !got.InvalidSince.Equal(now) {
			t.Errorf("InvalidSince = %v, want %v", got.InvalidSince, now)
		}
		// Reason unspecified: the CRL entry has no reasonCode extension
		// (RFC 5280 §5.3.1), which parses as 0.
		_, entries := entriesOf(t, tc)
		if len(entries) != 1 || entries[0].Reason != 0 {
			t.Errorf("CRL entries = %+v, want one with reason 0", entries)
		}
	})
}

func TestOnRevoke(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		cert, _ := tc.issue(t, newRegistration(t, nil, newECKey(t), newECKey(t)).request(t, ProfileSigning))
		var got []string
		tc.OnRevoke(func(serial *big.Int) {
			// Called after the commit: the new status is visible.
			st, _, reason, err := tc.CertStatus(context.Background(), serial)
			if err != nil {
				t.Errorf("CertStatus() in callback = %v", err)
			}
			got = append(got, serialKey(serial)+":"+string(rune('0'+st))+string(rune('0'+reason)))
		})
		ctx := t.Context()
		tc.Revoke(ctx, cert.Serial, ReasonCertificateHold, time.Time{})
		tc.Revoke(ctx, cert.Serial, ReasonCertificateHold, time.Time{}) // refused: no callback
		tc.Release(ctx, cert.Serial)
		tc.Revoke(ctx, cert.Serial, ReasonSuperseded, time.Time{})
		k := serialKey(cert.Serial)
		if diff := cmp.Diff([]string{k + ":16", k + ":00", k + ":14"}, got); diff != "" {
			t.Errorf("callbacks (-want +got):\n%s", diff)
		}
	})
}

func TestCRLSchedule(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		ctx := t.Context()
		first, err := tc.LatestCRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := tc.LatestCRL(ctx); again.Number != first.Number {
			t.Errorf("LatestCRL() issued a new CRL (%d → %d) while the old one was current", first.Number, again.Number)
		}
		updated, err := tc.UpdateCRL(ctx)
		if err != nil || updated.Number != first.Number+1 {
			t.Errorf("UpdateCRL() = %+v, %v; want number %d", updated, err, first.Number+1)
		}
		// A second process sees the newer CRL.
		other, err := New(Config{BaseURL: testBaseURL}, tc.keys, storetest.Another(t, db), nil, slog.New(&auditLog{}), nil, tc.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		if crl, _ := other.LatestCRL(ctx); crl == nil || crl.Number != updated.Number || string(crl.DER) != string(updated.DER) {
			t.Errorf("other process's LatestCRL() = %+v, want number %d", crl, updated.Number)
		}
		// Past nextUpdate, a CRL is issued on demand even without Run.
		tc.clock.Advance(25 * time.Hour)
		if crl, _ := tc.LatestCRL(ctx); crl == nil || crl.Number != updated.Number+1 || !crl.ThisUpdate.Equal(tc.clock.Now()) {
			t.Errorf("LatestCRL() after nextUpdate = %+v, want a new CRL", crl)
		}

		// Run on the real clock with a short period. The loop reads the
		// store directly: LatestCRL would itself issue CRLs.
		run, err := New(Config{BaseURL: testBaseURL, CRLPeriod: 2 * time.Second}, tc.keys, db, nil, slog.New(&auditLog{}), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		number := func() int64 {
			var n int64
			if err := db.QueryRowContext(ctx, `SELECT number FROM ca_crl`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		start := number()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- run.Run(runCtx) }()
		deadline := time.Now().Add(10 * time.Second)
		for number() < start+3 {
			if time.Now().After(deadline) {
				t.Fatalf("Run issued %d CRLs in 10 s with a 2 s period, want 3 or more", number()-start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
}

// TestConcurrentRevocations revokes from two CA processes sharing the
// database: every revocation lands on a CRL with a distinct number, and
// racing revocations of one certificate succeed once.
func TestConcurrentRevocations(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		other, err := New(Config{BaseURL: testBaseURL}, tc.keys, storetest.Another(t, db), nil, slog.New(&auditLog{}), nil, tc.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		reg := newRegistration(t, nil, newECKey(t), newECKey(t))
		const n = 8
		var certs []*Certificate
		for range n {
			c, _ := tc.issue(t, reg.request(t, ProfileAuthentication))
			certs = append(certs, c)
		}
		start, _ := tc.UpdateCRL(t.Context())
		var wg sync.WaitGroup
		errs := make([]error, 2*n)
		for i, c := range certs {
			for j, ca := range []*CA{tc.CA, other} {
				wg.Go(func() { errs[2*i+j] = ca.Revoke(t.Context(), c.Serial, ReasonCessationOfOperation, time.Time{}) })
			}
		}
		wg.Wait()
		for i := range n {
			a, b := errs[2*i], errs[2*i+1]
			if (a == nil) == (b == nil) || !errors.Is(cmpOr(a, b), ErrAlreadyRevoked) {
				t.Errorf("certificate %d: revocations returned %v and %v, want one success and one ErrAlreadyRevoked", i, a, b)
			}
		}
		number, entries := entriesOf(t, tc)
		if len(entries) != n || number != start.Number+n {
			t.Errorf("final CRL number %d with %d entries, want %d with %d", number, len(entries), start.Number+n, n)
		}
	})
}

func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

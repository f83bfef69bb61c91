package mssp

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// testSigned is a signature by a card over a digest.
type testSigned struct {
	cert   *x509.Certificate
	hash   crypto.Hash
	digest []byte
	sig    []byte
}

func testSignDigest(t testing.TB, u *testUser, hash crypto.Hash) testSigned {
	t.Helper()
	d := hash.New()
	d.Write([]byte("what " + u.name + " signs"))
	digest := d.Sum(nil)
	return testSigned{cert: u.cert, hash: hash, digest: digest, sig: testCardSign(t, u.key, hash, digest)}
}

func TestValidate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		p := newTestPKI(t, db)
		ctx := t.Context()

		revoked := p.newUser(t, "revoked", ca.ProfileSigning, testECKey(t))
		if err := p.ca.Revoke(ctx, revoked.cert.SerialNumber, ca.ReasonKeyCompromise, time.Now()); err != nil {
			t.Fatal(err)
		}
		held := p.newUser(t, "on hold", ca.ProfileSigning, testECKey(t))
		if err := p.ca.Revoke(ctx, held.cert.SerialNumber, ca.ReasonCertificateHold, time.Now()); err != nil {
			t.Fatal(err)
		}
		// A certificate the issuing CA signed that the CA does not know:
		// its responder answers "unknown".
		unknownKey := testECKey(t)
		unknown := &testUser{name: "unknown", key: unknownKey, cert: testCert(t, &x509.Certificate{
			SerialNumber: big.NewInt(424242),
			Subject:      pkix.Name{CommonName: "Not Recorded"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageContentCommitment,
			OCSPServer:   p.signEC.cert.OCSPServer,
		}, p.keys.Issuing, unknownKey.Public(), p.keys.IssuingKey)}
		stranger := testECKey(t)
		other := &testUser{name: "other CA", key: stranger, cert: testOtherCA(t, stranger.Public(), x509.KeyUsageContentCommitment|x509.KeyUsageDigitalSignature)}

		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()

		signEC := testSignDigest(t, p.signEC, crypto.SHA256)
		tampered := signEC
		tampered.sig = testFlip(signEC.sig)
		otherDigest := signEC
		otherDigest.digest = testSignDigest(t, p.authEC, crypto.SHA256).digest
		wrongHash := signEC
		wrongHash.hash = crypto.SHA384
		sha384EC := testSignDigest(t, p.signEC, crypto.SHA384)
		sha512RSA := testSignDigest(t, p.signRSA, crypto.SHA512)

		type options struct {
			now        time.Time      // of the Validator; zero means the real time
			checkerNow time.Time      // of the OCSPChecker; zero means the real time
			url        string         // overrides the certificates' responder
			noRoots    bool           // a Validator without Roots
			noChecker  bool           // a Validator without Revocation
			maxAge     time.Duration  // of the OCSPChecker
			intermed   *x509.CertPool // nil means p.intermediates
			signed     *testSigned    // nil means signEC
			user       *testUser      // signs a SHA-256 digest; overrides signed
		}
		tests := []struct {
			name       string
			opts       options
			needNR     bool
			revocation bool
			want       etsi.Code
			wantReason string
		}{
			{"EC signing", options{}, true, true, etsi.CodeValidSignature, "valid"},
			{"RSA signing", options{user: p.signRSA}, true, true, etsi.CodeValidSignature, "valid"},
			{"EC authentication", options{user: p.authEC}, false, true, etsi.CodeValidSignature, "valid"},
			{"SHA-384 digest", options{signed: &sha384EC}, true, true, etsi.CodeValidSignature, "valid"},
			{"SHA-512 digest RSA", options{signed: &sha512RSA}, true, true, etsi.CodeValidSignature, "valid"},
			{"revocation not checked", options{}, true, false, etsi.CodeSignature, "not checked"},
			{"tampered signature", options{signed: &tampered}, true, true, etsi.CodeInvalidSignature, "does not verify"},
			{"signature over another digest", options{signed: &otherDigest}, true, true, etsi.CodeInvalidSignature, "does not verify"},
			{"wrong hash", options{signed: &wrongHash}, true, true, etsi.CodeInvalidSignature, "does not verify"},
			{"tampered, revocation not checked", options{signed: &tampered}, true, false, etsi.CodeInvalidSignature, "does not verify"},
			{"revoked", options{user: revoked}, true, true, etsi.CodeRevokedCertificate, "revoked"},
			{"on hold", options{user: held}, true, true, etsi.CodeRevokedCertificate, "on hold"},
			{"unknown to the responder", options{user: unknown}, true, true, etsi.CodeCRLPB, "unknown"},
			{"responder down", options{url: down.URL}, true, true, etsi.CodeCRLPB, "unavailable"},
			{"stale response", options{checkerNow: time.Now().Add(2 * time.Hour), maxAge: -1}, true, true, etsi.CodeCRLExpired, "stale"},
			{"expired", options{now: p.signEC.cert.NotAfter.Add(time.Hour)}, true, true, etsi.CodeInvalidSignature, "expired"},
			{"expired, revocation not checked", options{now: p.signEC.cert.NotAfter.Add(time.Second)}, true, false, etsi.CodeInvalidSignature, "expired"},
			{"not yet valid", options{now: p.signEC.cert.NotBefore.Add(-time.Hour)}, true, true, etsi.CodeInvalidSignature, "not valid before"},
			{"other CA", options{user: other}, true, true, etsi.CodeErrorCertificate, "trusted CA"},
			{"issuing CA unknown", options{intermed: x509.NewCertPool()}, true, true, etsi.CodeErrorCertificate, "trusted CA"},
			{"signing profile, authentication certificate", options{user: p.authEC}, true, true, etsi.CodeConstraintMismatch, "nonRepudiation"},
			{"authentication profile, signing certificate", options{}, false, true, etsi.CodeConstraintMismatch, "digitalSignature"},
			{"no roots", options{noRoots: true}, true, true, etsi.CodeInternalError, "trusted CA"},
			{"no revocation checker", options{noChecker: true}, true, true, etsi.CodeInternalError, "revocation"},
			{"no revocation checker, not checked", options{noChecker: true}, true, false, etsi.CodeSignature, "not checked"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o := tt.opts
				checkerNow := time.Now
				if !o.checkerNow.IsZero() {
					checkerNow = func() time.Time { return o.checkerNow }
				}
				checker := NewOCSPChecker(p.server.Client(), checkerNow, o.maxAge)
				checker.URL = o.url
				v := &Validator{Roots: p.roots, Intermediates: p.intermediates, Revocation: checker}
				if o.intermed != nil {
					v.Intermediates = o.intermed
				}
				if !o.now.IsZero() {
					v.Now = func() time.Time { return o.now }
				}
				if o.noRoots {
					v.Roots = nil
				}
				if o.noChecker {
					v.Revocation = nil
				}
				s := signEC
				switch {
				case o.user != nil:
					s = testSignDigest(t, o.user, crypto.SHA256)
				case o.signed != nil:
					s = *o.signed
				}
				code, reason := v.Validate(ctx, s.cert, s.hash, s.digest, s.sig, tt.needNR, tt.revocation)
				if code != tt.want || !strings.Contains(reason, tt.wantReason) {
					t.Errorf("Validate() = %v, %q; want %v, a reason with %q", code, reason, tt.want, tt.wantReason)
				}
			})
		}

		t.Run("nil certificate", func(t *testing.T) {
			v := &Validator{Roots: p.roots, Intermediates: p.intermediates, Revocation: NewOCSPChecker(nil, nil, 0)}
			if code, reason := v.Validate(ctx, nil, crypto.SHA256, signEC.digest, signEC.sig, true, true); code != etsi.CodeNoCertFound {
				t.Errorf("Validate(nil) = %v, %q; want %v", code, reason, etsi.CodeNoCertFound)
			}
		})

		// Released from hold, the certificate is good again.
		t.Run("released", func(t *testing.T) {
			if err := p.ca.Release(ctx, held.cert.SerialNumber); err != nil {
				t.Fatal(err)
			}
			v := &Validator{Roots: p.roots, Intermediates: p.intermediates, Revocation: NewOCSPChecker(p.server.Client(), nil, 0)}
			s := testSignDigest(t, held, crypto.SHA256)
			if code, reason := v.Validate(ctx, s.cert, s.hash, s.digest, s.sig, true, true); code != etsi.CodeValidSignature {
				t.Errorf("Validate() = %v, %q; want %v", code, reason, etsi.CodeValidSignature)
			}
		})
	})
}

// TestOCSPCheckerCache counts the requests that reach the responder.
func TestOCSPCheckerCache(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	ctx := t.Context()
	issuer := p.keys.Issuing

	// check asks c about u and wants status after the responder has seen
	// requests requests in all.
	check := func(t *testing.T, c *OCSPChecker, u *testUser, want RevocationStatus, requests int64) {
		t.Helper()
		got, err := c.Check(ctx, u.cert, issuer)
		if err != nil || got != want {
			t.Errorf("Check(%s) = %v, %v; want %v", u.name, got, err, want)
		}
		if n := p.requests.Load(); n != requests {
			t.Errorf("responder got %d requests, want %d", n, requests)
		}
	}

	t.Run("max age", func(t *testing.T) {
		p.requests.Store(0)
		clock := newTestClock()
		c := NewOCSPChecker(p.server.Client(), clock.Now, 0)
		check(t, c, p.signEC, RevocationGood, 1)
		check(t, c, p.signEC, RevocationGood, 1)
		clock.Advance(DefaultOCSPMaxAge - time.Second)
		check(t, c, p.signEC, RevocationGood, 1)
		check(t, c, p.signRSA, RevocationGood, 2) // another serial
		clock.Advance(time.Second)
		check(t, c, p.signEC, RevocationGood, 3)
		check(t, c, p.signEC, RevocationGood, 3)
	})

	t.Run("disabled", func(t *testing.T) {
		p.requests.Store(0)
		c := NewOCSPChecker(p.server.Client(), nil, -1)
		check(t, c, p.signEC, RevocationGood, 1)
		check(t, c, p.signEC, RevocationGood, 2)
	})

	t.Run("revoked until expiry", func(t *testing.T) {
		u := p.newUser(t, "revoked", ca.ProfileSigning, testECKey(t))
		if err := p.ca.Revoke(ctx, u.cert.SerialNumber, ca.ReasonKeyCompromise, time.Now()); err != nil {
			t.Fatal(err)
		}
		p.requests.Store(0)
		clock := newTestClock()
		c := NewOCSPChecker(p.server.Client(), clock.Now, 0)
		check(t, c, u, RevocationRevoked, 1)
		clock.Advance(24 * time.Hour)
		check(t, c, u, RevocationRevoked, 1)
		// Once the certificate has expired the responder is asked again;
		// its answer, signed at the real time, is of no use by then.
		clock.Set(u.cert.NotAfter)
		if st, err := c.Check(ctx, u.cert, issuer); err == nil {
			t.Errorf("Check() at expiry = %v, nil; want an error", st)
		}
		if n := p.requests.Load(); n != 2 {
			t.Errorf("responder got %d requests, want 2", n)
		}
	})

	t.Run("hold for max age", func(t *testing.T) {
		u := p.newUser(t, "on hold", ca.ProfileSigning, testECKey(t))
		if err := p.ca.Revoke(ctx, u.cert.SerialNumber, ca.ReasonCertificateHold, time.Now()); err != nil {
			t.Fatal(err)
		}
		p.requests.Store(0)
		clock := newTestClock()
		c := NewOCSPChecker(p.server.Client(), clock.Now, 0)
		check(t, c, u, RevocationRevoked, 1)
		if err := p.ca.Release(ctx, u.cert.SerialNumber); err != nil {
			t.Fatal(err)
		}
		check(t, c, u, RevocationRevoked, 1)
		clock.Advance(DefaultOCSPMaxAge)
		check(t, c, u, RevocationGood, 2)
	})

	t.Run("errors not cached", func(t *testing.T) {
		clock := newTestClock()
		clock.Advance(2 * time.Hour) // every answer is stale
		c := NewOCSPChecker(p.server.Client(), clock.Now, 0)
		p.requests.Store(0)
		for i := range int64(2) {
			if got, err := c.Check(ctx, p.signEC.cert, issuer); !errors.Is(err, ErrStaleRevocation) {
				t.Errorf("Check() = %v, %v; want %v", got, err, ErrStaleRevocation)
			}
			if n := p.requests.Load(); n != i+1 {
				t.Errorf("responder got %d requests, want %d", n, i+1)
			}
		}
	})

	// Last: it moves the responder's clock.
	t.Run("next update", func(t *testing.T) {
		// The responder's answers are good for an hour (ocsp.DefaultValidity);
		// the checker would keep them for two.
		p.requests.Store(0)
		c := NewOCSPChecker(p.server.Client(), p.clock.Now, 2*time.Hour)
		check(t, c, p.authEC, RevocationGood, 1)
		p.clock.Advance(59 * time.Minute)
		check(t, c, p.authEC, RevocationGood, 1)
		p.clock.Advance(2 * time.Minute)
		check(t, c, p.authEC, RevocationGood, 2)
	})
}

// testCountingContext counts the calls of Done, which Check makes once it
// waits for a request, its own or another caller's.
type testCountingContext struct {
	context.Context
	waiting *atomic.Int64
}

func (c testCountingContext) Done() <-chan struct{} {
	c.waiting.Add(1)
	return c.Context.Done()
}

// TestOCSPCheckerSharesRequests checks that callers that miss the cache at
// the same time share one request. The cache is off, so a caller that came
// after the request would make one of its own.
func TestOCSPCheckerSharesRequests(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	release := make(chan struct{})
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		<-release
		p.server.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := NewOCSPChecker(srv.Client(), nil, -1)
	c.URL = srv.URL

	const callers = 20
	var waiting atomic.Int64
	ctx := testCountingContext{t.Context(), &waiting}
	var wg sync.WaitGroup
	statuses := make([]RevocationStatus, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { statuses[i], errs[i] = c.Check(ctx, p.signEC.cert, p.keys.Issuing) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting.Load() < callers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := waiting.Load(); n != callers {
		t.Fatalf("%d callers waited, want %d", n, callers)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests for %d concurrent callers, want 1", n, callers)
	}
	for i := range callers {
		if statuses[i] != RevocationGood || errs[i] != nil {
			t.Errorf("caller %d: Check() = %v, %v; want %v", i, statuses[i], errs[i], RevocationGood)
		}
	}

	// A caller that gives up does not spoil the answer for the others.
	release = make(chan struct{})
	requests.Store(0)
	cctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.Check(cctx, p.signEC.cert, p.keys.Issuing)
		gaveUp <- err
	}()
	for requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiting.Store(0)
	var st RevocationStatus
	var err error
	wg.Go(func() { st, err = c.Check(ctx, p.signEC.cert, p.keys.Issuing) })
	for waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrRevocationUnavailable) {
		t.Errorf("Check() with a cancelled context = %v, want %v and %v", err, context.Canceled, ErrRevocationUnavailable)
	}
	close(release)
	wg.Wait()
	if st != RevocationGood || err != nil {
		t.Errorf("Check() sharing a cancelled caller's request = %v, %v; want %v", st, err, RevocationGood)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestOCSPCheckerRefuses scripts responders that go wrong.
func TestOCSPCheckerRefuses(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	cert, issuer := p.signEC.cert, p.keys.Issuing
	now := time.Now()

	// respond signs an answer about cert with key, embedding responder.
	respond := func(responder *x509.Certificate, key crypto.Signer, tmpl xocsp.Response) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			tmpl.SerialNumber = cert.SerialNumber
			if responder != issuer {
				tmpl.Certificate = responder
			}
			der, err := xocsp.CreateResponse(issuer, responder, tmpl, key)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Write(der)
		}
	}
	good := xocsp.Response{Status: xocsp.Good, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	// A certificate from the issuing CA for a responder key, without
	// id-kp-OCSPSigning.
	rogueKey := testECKey(t)
	rogue := testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(77),
		Subject:      pkix.Name{CommonName: "Not a Responder"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, issuer, rogueKey.Public(), p.keys.IssuingKey)
	expiredResponder := testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(78),
		Subject:      pkix.Name{CommonName: "Expired Responder"},
		NotBefore:    now.Add(-2 * time.Hour),
		NotAfter:     now.Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}, issuer, rogueKey.Public(), p.keys.IssuingKey)
	strangerKey := testECKey(t)
	stranger := testOtherCA(t, strangerKey.Public(), x509.KeyUsageDigitalSignature)

	tests := []struct {
		name    string
		handler http.Handler
		want    error
	}{
		{"by the issuer", respond(issuer, p.keys.IssuingKey, good), nil},
		{"by the delegated responder", respond(p.keys.OCSP, p.keys.OCSPKey, good), nil},
		{"responder without id-kp-OCSPSigning", respond(rogue, rogueKey, good), ErrRevocationUnavailable},
		{"expired responder", respond(expiredResponder, rogueKey, good), ErrRevocationUnavailable},
		{"responder of another CA", respond(stranger, strangerKey, good), ErrRevocationUnavailable},
		{"stale", respond(issuer, p.keys.IssuingKey, xocsp.Response{Status: xocsp.Good, ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)}), ErrStaleRevocation},
		{"from the future", respond(issuer, p.keys.IssuingKey, xocsp.Response{Status: xocsp.Good, ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)}), ErrRevocationUnavailable},
		{"HTTP 500", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
		}), ErrRevocationUnavailable},
		{"OCSP tryLater", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte{0x30, 0x03, 0x0a, 0x01, 0x03})
		}), ErrRevocationUnavailable},
		{"not DER", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>captive portal</html>"))
		}), ErrRevocationUnavailable},
		{"too long", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(make([]byte, maxOCSPResponse+1))
		}), ErrRevocationUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := NewOCSPChecker(srv.Client(), nil, 0)
			c.URL = srv.URL
			st, err := c.Check(t.Context(), cert, issuer)
			if tt.want == nil {
				if err != nil || st != RevocationGood {
					t.Errorf("Check() = %v, %v; want %v", st, err, RevocationGood)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Check() = %v, %v; want %v", st, err, tt.want)
			}
		})
	}

	t.Run("no responder named", func(t *testing.T) {
		c := NewOCSPChecker(nil, nil, 0)
		if st, err := c.Check(t.Context(), stranger, issuer); !errors.Is(err, ErrRevocationUnavailable) {
			t.Errorf("Check(a certificate without OCSP URL) = %v, %v; want %v", st, err, ErrRevocationUnavailable)
		}
	})
}

func TestRevocationStatusString(t *testing.T) {
	for s, want := range map[RevocationStatus]string{RevocationGood: "good", RevocationRevoked: "revoked", RevocationUnknown: "unknown", 0: "RevocationStatus(0)"} {
		if got := s.String(); got != want {
			t.Errorf("RevocationStatus(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func BenchmarkValidateCached(b *testing.B) {
	p := newTestPKI(b, testSQLite(b))
	v := &Validator{Roots: p.roots, Intermediates: p.intermediates, Revocation: NewOCSPChecker(p.server.Client(), nil, time.Hour)}
	digest := sha256.Sum256([]byte("benchmark"))
	sig := testCardSign(b, p.signEC.key, crypto.SHA256, digest[:])
	ctx := context.Background()
	if code, reason := v.Validate(ctx, p.signEC.cert, crypto.SHA256, digest[:], sig, true, true); code != etsi.CodeValidSignature {
		b.Fatalf("Validate() = %v, %q", code, reason)
	}
	p.requests.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if code, reason := v.Validate(ctx, p.signEC.cert, crypto.SHA256, digest[:], sig, true, true); code != etsi.CodeValidSignature {
			b.Fatalf("Validate() = %v, %q", code, reason)
		}
	}
	if n := p.requests.Load(); n != 0 {
		b.Errorf("responder got %d requests, want none", n)
	}
}

// TestValidateChainCache checks that a remembered chain is used only while
// every certificate in it is valid: here the issuing CA expires before the
// user's certificate.
func TestValidateChainCache(t *testing.T) {
	now := time.Now()
	rootKey, caKey, userKey := testECKey(t), testECKey(t), testECKey(t)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	root := testCert(t, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	issuing := testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Issuing"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}, root, caKey.Public(), rootKey)
	user := &testUser{name: "user", key: userKey, cert: testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "User"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageContentCommitment,
	}, issuing, userKey.Public(), caKey)}

	clock := newTestClock()
	v := &Validator{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), Now: clock.Now}
	v.Roots.AddCert(root)
	v.Intermediates.AddCert(issuing)
	s := testSignDigest(t, user, crypto.SHA256)
	for _, step := range []struct {
		advance time.Duration
		want    etsi.Code
	}{
		{0, etsi.CodeSignature},
		{30 * time.Minute, etsi.CodeSignature},
		{time.Hour, etsi.CodeErrorCertificate}, // the issuing CA has expired
		{-time.Hour, etsi.CodeSignature},
	} {
		clock.Advance(step.advance)
		if code, reason := v.Validate(t.Context(), s.cert, s.hash, s.digest, s.sig, true, false); code != step.want {
			t.Errorf("Validate() at %v = %v, %q; want %v", clock.Now().Sub(now).Round(time.Minute), code, reason, step.want)
		}
	}
}

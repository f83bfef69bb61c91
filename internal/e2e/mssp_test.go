package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"mobileid/internal/cms"
	"mobileid/internal/vmac"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/messaging"
	"mobileid/internal/mssp"
	"mobileid/internal/ocsp"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
	"mobileid/internal/store"
	"mobileid/internal/tsa"
)

// clock is the platform's time: the real time plus an offset that tests
// of time-outs move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) instant() time.Time      { return c.now().UTC().Truncate(time.Second) }

// platform is the Signature Server wired as `mobileid mssp` wires it,
// with the real network, CA, OCSP responder and TSA around it, and an AP
// that talks to it over mutual TLS.
type platform struct {
	w       *world
	db      *store.DB
	clock   *clock
	keys    *ca.Keys
	ca      *ca.CA
	caURL   string
	engine  *mssp.Engine
	aps     *mssp.APs
	users   *mssp.Users
	sims    *mssp.SIMs
	msg     *messaging.Server
	url     string
	client  *etsiclient.Client // the AP, with its client certificate
	tlsRoot *x509.Certificate
	apCert  tls.Certificate
	apID    string
	apPwd   string
	// ocspDown makes the OCSP responder answer 503.
	ocspDown atomic.Bool
	nextTx   atomic.Int64
}

type platformOptions struct {
	validateOnRequest bool
	sweep             time.Duration
	// ocspMaxAge is how long the MSSP caches good OCSP answers; 0 means
	// not at all, so that a revocation shows at once.
	ocspMaxAge time.Duration
}

func newPlatform(t testing.TB, phones int, opt platformOptions) *platform {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	p := &platform{w: newWorld(t, phones, smscNoFaults), clock: &clock{}, apID: "http://bank.example/mid", apPwd: "bank-secret-1"}
	var err error
	p.db, err = store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.db.Close() })

	// The CA, its OCSP responder and TSA, on one HTTP server.
	caSrv := httptest.NewUnstartedServer(nil)
	p.caURL = "http://" + caSrv.Listener.Addr().String()
	kek := make([]byte, 32)
	rand.Read(kek)
	caDir := filepath.Join(t.TempDir(), "ca")
	if err := ca.Init(caDir, kek, ca.InitOptions{Organization: "Test", Country: "EE", BaseURL: p.caURL}); err != nil {
		t.Fatal(err)
	}
	if p.keys, err = ca.Load(caDir, kek); err != nil {
		t.Fatal(err)
	}
	vendor := vendorRoots(t, p.w.dir)
	if p.ca, err = ca.New(ca.Config{BaseURL: p.caURL, TrustedVendorRoots: vendor}, p.keys, p.db, logger, logger, prometheus.NewRegistry(), time.Now); err != nil {
		t.Fatal(err)
	}
	responder, err := ocsp.New(ocsp.Config{Issuer: p.keys.Issuing, Cert: p.keys.OCSP, Key: p.keys.OCSPKey}, p.ca, logger, prometheus.NewRegistry(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	p.ca.OnRevoke(responder.Invalidate)
	stamper, err := tsa.New(tsa.Config{Cert: p.keys.TSA, Key: p.keys.TSAKey, Chain: []*x509.Certificate{p.keys.Issuing}, Policy: []int{1, 3, 6, 1, 4, 1, 32473, 1, 3161}}, logger, prometheus.NewRegistry(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ocspH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.ocspDown.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		http.StripPrefix("/ocsp", responder).ServeHTTP(w, r)
	})
	mux.Handle("/ocsp", ocspH)
	mux.Handle("/ocsp/", ocspH)
	mux.Handle("/tsa", stamper)
	mux.Handle("/ca/", p.ca.PublicHandler())
	caSrv.Config.Handler = mux
	caSrv.Start()
	t.Cleanup(caSrv.Close)

	// The MSSP and its Messaging Server.
	msspKEK := make([]byte, 32)
	rand.Read(msspKEK)
	if p.sims, err = mssp.NewSIMs(p.db, msspKEK, p.clock.now); err != nil {
		t.Fatal(err)
	}
	var recs []simbatch.Record
	for _, r := range p.w.recs {
		recs = append(recs, r)
	}
	if _, _, err := p.sims.Import(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if p.users, err = mssp.NewUsers(p.db, p.clock.now); err != nil {
		t.Fatal(err)
	}
	if p.aps, err = mssp.NewAPs(p.db, p.clock.now, 0); err != nil {
		t.Fatal(err)
	}
	cfg := mssp.Config{
		VendorRoots: vendor,
		CAChain:     []*x509.Certificate{p.keys.Issuing},
		Validator: &mssp.Validator{
			Roots: pool(p.keys.Root), Intermediates: pool(p.keys.Issuing),
			Revocation: mssp.NewOCSPChecker(&http.Client{Timeout: 2 * time.Second}, time.Now, cmp.Or(opt.ocspMaxAge, -1)),
			Now:        time.Now,
		},
		Timestamper:           &mssp.HTTPTimestamper{URL: p.caURL + "/tsa", Client: http.DefaultClient},
		ValidateOnRequestOnly: opt.validateOnRequest,
		SweepInterval:         opt.sweep,
	}
	if p.engine, err = mssp.NewEngine(cfg, p.db, p.sims, p.users, logger, logger, prometheus.NewRegistry(), p.clock.now); err != nil {
		t.Fatal(err)
	}
	p.msg, err = messaging.New(messaging.Config{
		Binds:         []messaging.Bind{{Addr: p.w.addr, SystemID: systemID, Password: password}},
		ServiceNumber: serviceNumber,
		ReconnectMin:  10 * time.Millisecond,
	}, p.db, p.engine, logger, prometheus.NewRegistry(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	p.engine.SetSender(p.msg)

	// TLS: a server certificate and the AP's client certificate from a
	// test PKI made here.
	tlsRoot, tlsRootKey := newTestCA(t, "test TLS root")
	p.tlsRoot = tlsRoot
	serverCert := newLeaf(t, tlsRoot, tlsRootKey, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	p.apCert = newLeaf(t, tlsRoot, tlsRootKey, "bank AP", x509.ExtKeyUsageClientAuth)
	if err := p.aps.Add(ctx, mssp.APConfig{AP: mssp.AP{
		ID: p.apID, Name: "Test Bank",
		ClientCerts: [][32]byte{sha256.Sum256(p.apCert.Certificate[0])},
		URLPrefixes: []string{"http://127.0.0.1"},
	}, Password: p.apPwd}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "https://" + ln.Addr().String()
	api := mssp.NewServer(p.engine, p.aps, p.users, logger, p.url)
	hs := &http.Server{Handler: api.Handler(), TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool(tlsRoot),
	}}
	go hs.ServeTLS(ln, "", "")
	p.client = &etsiclient.Client{BaseURL: p.url, HTTP: p.httpClient(&p.apCert)}

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.engine.Run(rctx) })
	wg.Go(func() { p.msg.Run(rctx) })
	t.Cleanup(func() {
		hs.Close()
		cancel()
		wg.Wait()
	})
	return p
}

// httpClient returns a client that trusts the test TLS root and presents
// cert, if not nil.
func (p *platform) httpClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: pool(p.tlsRoot)}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: time.Minute}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// vendorRoots reads the SIM vendor CA of a batch.
func vendorRoots(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, simfactory.VendorCertFile))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no vendor CA certificate")
	}
	return p
}

func newTestCA(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func newLeaf(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, eku x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
	}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// abstract returns a request header of the test AP with a fresh
// AP_TransID.
func (p *platform) abstract() etsi.MessageAbstract {
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   etsi.APInfo{APID: p.apID, APPWD: p.apPwd, APTransID: fmt.Sprintf("TX%d", p.nextTx.Add(1)), Instant: p.clock.instant()},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mobileid.dev/mssp"}},
	}
}

// rows returns a single number a query gives.
func rows(t testing.TB, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return n
}

// register makes msisdn a Mobile ID user the way the Registration Server
// does: keys generated on the SIM through MSS_Registration, both
// certificates issued by the CA on the card's proofs of possession and
// attestation, and bound back at the MSSP.
func (p *platform) register(t testing.TB, msisdn string) (auth, sign *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	challenge := make([]byte, 16)
	rand.Read(challenge)
	resp, err := p.client.Registration(ctx, &etsi.MSSRegistrationReq{
		MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: msisdn},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegGenerateKeys, Challenge: challenge},
	})
	if err != nil {
		t.Fatalf("MSS_Registration GenerateKeys(%s): %v", msisdn, err)
	}
	res := resp.Status.Registration
	if res == nil || len(res.Keys) != 2 || res.Attestation == nil {
		t.Fatalf("MSS_Registration result = %+v", res)
	}
	att := &ca.Attestation{ICCID: res.ICCID, Signature: res.Attestation.Signature, Certificate: res.Attestation.Certificates[0]}
	for _, k := range res.Keys {
		if k.Ref == etsi.KeyUsageAuthentication {
			att.AuthSPKI = k.SPKI
		} else {
			att.SignSPKI = k.SPKI
		}
	}
	var bind []etsi.RegistrationCertificate
	for _, k := range res.Keys {
		profile, ref := ca.ProfileAuthentication, vmac.KeyAuth
		if k.Ref == etsi.KeyUsageSigning {
			profile, ref = ca.ProfileSigning, vmac.KeySign
		}
		c, err := p.ca.Issue(ctx, &ca.IssueRequest{
			Profile: profile, Subject: ca.Subject{Country: "EE", GivenName: "MARY", Surname: "TESTNUMBER", NationalID: "60001019906"},
			PublicKey: k.SPKI, Challenge: challenge, KeyRef: ref, ProofOfPossession: k.PoP, Attestation: att,
		})
		if err != nil {
			t.Fatalf("CA issue %s: %v", k.Ref, err)
		}
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if ref == vmac.KeyAuth {
			auth = cert
		} else {
			sign = cert
		}
		bind = append(bind, etsi.RegistrationCertificate{KeyUsage: k.Ref, DER: c.DER})
	}
	if _, err := p.client.Registration(ctx, &etsi.MSSRegistrationReq{
		MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: msisdn},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegBindCertificates, Certificates: bind},
	}); err != nil {
		t.Fatalf("MSS_Registration BindCertificates(%s): %v", msisdn, err)
	}
	return auth, sign
}

// signReq is a synch MSS_SignatureReq for a text.
func (p *platform) signReq(msisdn, text string) *etsi.MSSSignatureReq {
	return &etsi.MSSSignatureReq{
		MessageAbstract: p.abstract(), MessagingMode: etsi.Synch,
		MobileUser:     etsi.MobileUser{MSISDN: msisdn},
		DataToBeSigned: etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: text},
	}
}

// phones returns the platform's MSISDNs in order.
func (p *platform) phones() []string {
	var out []string
	for m := range p.w.recs {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// TestMSSPRegisterAndSign registers a user through MSS_Registration and
// the CA, then has them sign a text (CAdES-BES, attached) and
// authenticate over a digest (PKCS1) through the whole stack.
func TestMSSPRegisterAndSign(t *testing.T) {
	p := newPlatform(t, 2, platformOptions{})
	msisdn := p.phones()[0]
	_, signCert := p.register(t, msisdn)

	req := p.signReq(msisdn, "Pay 12.50 EUR to ACME")
	req.SignatureProfile = &etsi.MSSURI{URI: "mss:mobileid.dev:sign:loa3:UICC"}
	resp, err := p.client.Sign(context.Background(), req)
	if err != nil {
		t.Fatalf("MSS_Signature: %v", err)
	}
	if got := resp.Status.StatusCode.Value; got != etsi.CodeValidSignature {
		t.Fatalf("status = %v, want 502", got)
	}
	if resp.MSSSignature == nil || len(resp.MSSSignature.Base64Signature) == 0 {
		t.Fatal("no signature in the response")
	}
	signer, err := cms.Verify(resp.MSSSignature.Base64Signature, nil, pool(p.keys.Root))
	if err != nil {
		t.Fatalf("cms.Verify: %v", err)
	}
	if !signer.Equal(signCert) {
		t.Errorf("CMS signer = %s, want the signing certificate", signer.Subject)
	}

	digest := sha256.Sum256([]byte("login nonce"))
	auth := p.signReq(msisdn, "")
	auth.DataToBeSigned = etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: base64.StdEncoding.EncodeToString(digest[:])}
	auth.DataToBeDisplayed = &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Log in to Test Bank"}
	auth.MSSFormat = &etsi.MSSURI{URI: etsi.FormatFiComPKCS1}
	resp, err = p.client.Sign(context.Background(), auth)
	if err != nil {
		t.Fatalf("MSS_Signature (authentication): %v", err)
	}
	if resp.Status.StatusCode.Value != etsi.CodeValidSignature || resp.MSSSignature == nil || resp.MSSSignature.PKCS1 == nil {
		t.Fatalf("authentication response = %+v", resp.Status)
	}
	cert, err := x509.ParseCertificate(resp.MSSSignature.PKCS1.X509Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if err := vmac.VerifyDigest(cert.PublicKey, crypto.SHA256, digest[:], resp.MSSSignature.PKCS1.SignatureValue); err != nil {
		t.Errorf("PKCS1 signature does not verify: %v", err)
	}
}

// TestMSSPRegistrationResult asks, with the registration extension's
// Result operation, for the outcome of an earlier GenerateKeys by its
// AP_TransID, as a Registration Server that stopped while waiting does.
func TestMSSPRegistrationResult(t *testing.T) {
	p := newPlatform(t, 2, platformOptions{})
	msisdn := p.phones()[0]
	challenge := make([]byte, 16)
	rand.Read(challenge)
	req := &etsi.MSSRegistrationReq{
		MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: msisdn},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegGenerateKeys, Challenge: challenge},
	}
	first, err := p.client.Registration(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(msisdn, apTransID string) (*etsi.MSSRegistrationResp, error) {
		return p.client.Registration(context.Background(), &etsi.MSSRegistrationReq{
			MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: msisdn},
			Operation: &etsi.RegistrationOperation{Type: etsi.RegResult, APTransID: apTransID},
		})
	}
	got, err := ask(msisdn, req.APInfo.APTransID)
	if err != nil {
		t.Fatalf("Result: %v", err)
	}
	if got.MSSPTransID != first.MSSPTransID || got.Status.Registration == nil ||
		!bytes.Equal(got.Status.Registration.Keys[0].SPKI, first.Status.Registration.Keys[0].SPKI) {
		t.Errorf("Result = %s %+v, want the outcome of %s", got.MSSPTransID, got.Status.Registration, first.MSSPTransID)
	}
	for _, c := range []struct{ msisdn, apTransID string }{
		{msisdn, "never-used"},
		{p.phones()[1], req.APInfo.APTransID},
	} {
		var f *etsi.Fault
		if _, err := ask(c.msisdn, c.apTransID); !errors.As(err, &f) || f.Code != etsi.CodeWrongParam {
			t.Errorf("Result(%s, %s) = %v, want fault 101", c.msisdn, c.apTransID, err)
		}
	}
}

// TestMSSPBindRefusesOtherKeys binds to a user certificates that certify
// another SIM's keys: 407 REGISTRATION_NOK with detail 4072, and the user
// stays unable to sign.
func TestMSSPBindRefusesOtherKeys(t *testing.T) {
	p := newPlatform(t, 2, platformOptions{})
	a, b := p.phones()[0], p.phones()[1]
	authA, signA := p.register(t, a)
	challenge := make([]byte, 16)
	rand.Read(challenge)
	if _, err := p.client.Registration(context.Background(), &etsi.MSSRegistrationReq{
		MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: b},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegGenerateKeys, Challenge: challenge},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := p.client.Registration(context.Background(), &etsi.MSSRegistrationReq{
		MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: b},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegBindCertificates, Certificates: []etsi.RegistrationCertificate{
			{KeyUsage: etsi.KeyUsageAuthentication, DER: authA.Raw}, {KeyUsage: etsi.KeyUsageSigning, DER: signA.Raw},
		}},
	})
	var f *etsi.Fault
	if !errors.As(err, &f) || f.Code != etsi.CodeRegistrationNOK || f.DetailCode != 4072 {
		t.Fatalf("BindCertificates(other SIM's certificates) = %v, want 407/4072", err)
	}
	_, err = p.client.Sign(context.Background(), p.signReq(b, "Log in"))
	if !errors.As(err, &f) || f.Code != etsi.CodeUnknownClient || f.DetailCode != 1053 {
		t.Errorf("signature after a refused binding = %v, want 105/1053", err)
	}
}

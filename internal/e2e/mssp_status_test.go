package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/ca"
	"mobileid/internal/cms"
	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/handset"
	"mobileid/internal/mssp"
	"mobileid/internal/vmac"
)

// tableStatusCodes is the TS 102 204 status table as FiCom profiles it: the
// codes TestMSSPStatusTestNumbers must see the platform produce.
var tableStatusCodes = []etsi.Code{
	100, 101, 102, 103, 104, 105, 107, 108, 109,
	208, 209,
	401, 402, 403, 404, 405, 406, 407,
	422, 423, 424, 425,
	500, 501, 502, 503, 504, 505,
	900,
}

// Content types of the two transports.
const (
	soapContentType = "application/soap+xml; charset=utf-8"
	jsonContentType = "application/json"
)

// The profile URIs MSS_ProfileQuery reports, default first.
const (
	uriAuthn   = "mss:mobileid.dev:authn:loa3:UICC"
	uriSign    = "mss:mobileid.dev:sign:loa3:UICC"
	uriConsent = "mss:mobileid.dev:consent:loa3:UICC"
)

// requestTimeout bounds every request a test makes, so that a transaction
// that never ends fails the test instead of hanging it.
const requestTimeout = 30 * time.Second

// secretWatch keeps every body the platform sends to an AP — responses
// and MSS_Notification callbacks — and fails the test when one contains
// an AP's password.
type secretWatch struct {
	mu      sync.Mutex
	secrets []string
	bodies  []recordedBody
}

type recordedBody struct {
	where string
	body  []byte
}

// watch adds a secret that no body may contain.
func (w *secretWatch) watch(secret string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.secrets = append(w.secrets, secret)
}

// record keeps a body the platform sent.
func (w *secretWatch) record(where string, body []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bodies = append(w.bodies, recordedBody{where, bytes.Clone(body)})
}

// count returns how many bodies were recorded.
func (w *secretWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bodies)
}

// check fails t for every recorded body that contains a secret. The
// secret itself is not printed.
func (w *secretWatch) check(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.bodies {
		for i, s := range w.secrets {
			if bytes.Contains(b.body, []byte(s)) {
				t.Errorf("body from %s contains AP password #%d", b.where, i)
			}
		}
	}
}

// watchedTransport records the response bodies of its base transport.
type watchedTransport struct {
	w    *secretWatch
	base http.RoundTripper
}

func (t *watchedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	t.w.record(r.Method+" "+r.URL.Path, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// wrap returns a copy of c whose response bodies are recorded.
func (w *secretWatch) wrap(c *http.Client) *http.Client {
	cc := *c
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = &watchedTransport{w: w, base: base}
	return &cc
}

// newWatchedPlatform is newPlatform whose AP client's response bodies
// are checked for the AP's password when the test ends.
func newWatchedPlatform(t testing.TB, phones int, opt platformOptions) (*platform, *secretWatch) {
	t.Helper()
	p := newPlatform(t, phones, opt)
	sw := &secretWatch{}
	sw.watch(p.apPwd)
	p.client.HTTP = sw.wrap(p.client.HTTP)
	t.Cleanup(func() { sw.check(t) })
	return p, sw
}

// addOtherAP registers another AP that may present the TLS client
// certificates certs (DER) and returns its AP_ID and password.
func addOtherAP(t testing.TB, p *platform, sw *secretWatch, id string, certs ...[]byte) (apID, pwd string) {
	t.Helper()
	pwd = id + "-secret-" + base64.RawURLEncoding.EncodeToString(randomChallenge(9))
	sw.watch(pwd)
	ap := mssp.AP{ID: id, Name: "Other AP"}
	for _, c := range certs {
		ap.ClientCerts = append(ap.ClientCerts, sha256.Sum256(c))
	}
	if err := p.aps.Add(context.Background(), mssp.APConfig{AP: ap, Password: pwd}); err != nil {
		t.Fatal(err)
	}
	return id, pwd
}

// randomChallenge returns n random bytes.
func randomChallenge(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// testMSISDN is the test MSISDN that answers with status c.
func testMSISDN(c etsi.Code) string { return fmt.Sprintf("%s%03d", mssp.TestNumberPrefix, int(c)) }

// scriptedPINs are the PINs a scripted user of msisdn chooses: the last
// four and the last five digits of the number.
func scriptedPINs(msisdn string) (pin1, pin2 string) {
	return msisdn[len(msisdn)-4:], msisdn[len(msisdn)-5:]
}

// handsetOf returns the handset of msisdn.
func handsetOf(t testing.TB, p *platform, msisdn string) *handset.Phone {
	t.Helper()
	ph, ok := p.w.phones.Phone(msisdn)
	if !ok {
		t.Fatalf("no phone %s", msisdn)
	}
	return ph
}

// requestCtx returns a context for one test's requests.
func requestCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// wantMSSPFault checks that err is fault code with FiCom detail code detail
// (0 for none).
func wantMSSPFault(t testing.TB, err error, code etsi.Code, detail int) {
	t.Helper()
	var f *etsi.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error = %v, want fault %v", err, code)
	}
	if f.Code != code || f.DetailCode != detail {
		t.Fatalf("fault = %v detail %d (%s), want %v detail %d", f.Code, f.DetailCode, f.Detail, code, detail)
	}
}

// wantMSSPStatus checks a Status element's code and FiCom detail code.
func wantMSSPStatus(t testing.TB, st etsi.Status, code etsi.Code, detail int) {
	t.Helper()
	if st.StatusCode.Value != code || st.DetailCode != detail {
		t.Fatalf("status = %v detail %d (%s), want %v detail %d", st.StatusCode.Value, st.DetailCode, st.StatusDetail, code, detail)
	}
}

// pollUntil polls cond until it holds, failing t after d.
func pollUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verifyCMSSigner checks a CMS signature of a certificate of the
// platform's CA and returns its signer.
func verifyCMSSigner(t testing.TB, p *platform, sig *etsi.Signature) *x509.Certificate {
	t.Helper()
	if sig == nil || len(sig.Base64Signature) == 0 {
		t.Fatalf("MSS_Signature = %+v, want a CMS signature", sig)
	}
	signer, err := cms.Verify(sig.Base64Signature, nil, pool(p.keys.Root))
	if err != nil {
		t.Fatalf("cms.Verify: %v", err)
	}
	return signer
}

// pkcs1DigestReq is a synch MSS_SignatureReq of a SHA-256 digest in the
// FiCom PKCS1 format, whose answer can be checked without the signer's CA.
func pkcs1DigestReq(p *platform, msisdn string, digest []byte) *etsi.MSSSignatureReq {
	req := p.signReq(msisdn, "")
	req.DataToBeSigned = etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: base64.StdEncoding.EncodeToString(digest)}
	req.DataToBeDisplayed = &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Log in to Test Bank"}
	req.MSSFormat = &etsi.MSSURI{URI: etsi.FormatFiComPKCS1}
	return req
}

// TestMSSPStatusTestNumbers produces every status code of the table
// through SOAP with the test numbers: a fault for the fault codes, a
// Status for 500, 501, 502, 503 and 505, and 504 on an asynchronous
// request until the time-out ends it with 208.
func TestMSSPStatusTestNumbers(t *testing.T) {
	t.Parallel()
	var known []etsi.Code
	for c := etsi.Code(0); c < 10000; c++ {
		if c.Known() {
			known = append(known, c)
		}
	}
	if diff := cmp.Diff(tableStatusCodes, known); diff != "" {
		t.Fatalf("the status table changed (-tested +table):\n%s", diff)
	}

	p, _ := newWatchedPlatform(t, 1, platformOptions{sweep: time.Hour})
	ctx := requestCtx(t)
	produced := map[etsi.Code]bool{}
	saw := func(c etsi.Code) { produced[c] = true }
	digest := sha256.Sum256([]byte("test number"))

	for _, code := range tableStatusCodes {
		if code == etsi.CodeRequestOK || code == etsi.CodeOutstandingTransaction {
			continue // not a final answer; see below
		}
		t.Run(code.String(), func(t *testing.T) {
			resp, err := p.client.Sign(ctx, pkcs1DigestReq(p, testMSISDN(code), digest[:]))
			if code.IsFault() {
				wantMSSPFault(t, err, code, 0)
				saw(code)
				return
			}
			if err != nil {
				t.Fatalf("MSS_Signature: %v", err)
			}
			wantMSSPStatus(t, resp.Status, code, 0)
			saw(code)
			if got := resp.MobileUser.MSISDN; got != testMSISDN(code) {
				t.Errorf("MobileUser = %q, want %q", got, testMSISDN(code))
			}
			hasSig := code == etsi.CodeSignature || code == etsi.CodeValidSignature
			if !hasSig {
				if resp.MSSSignature != nil {
					t.Errorf("status %v with a signature", code)
				}
				return
			}
			if resp.MSSSignature == nil || resp.MSSSignature.PKCS1 == nil {
				t.Fatalf("status %v: MSS_Signature = %+v, want fi:PKCS1", code, resp.MSSSignature)
			}
			cert, err := x509.ParseCertificate(resp.MSSSignature.PKCS1.X509Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(cert.Subject.CommonName, "TEST ONLY") {
				t.Errorf("test number signed with %q, want the test-only certificate", cert.Subject.CommonName)
			}
			if err := vmac.VerifyDigest(cert.PublicKey, crypto.SHA256, digest[:], resp.MSSSignature.PKCS1.SignatureValue); err != nil {
				t.Errorf("test signature does not verify: %v", err)
			}
		})
	}

	t.Run("100 is not a test status", func(t *testing.T) {
		_, err := p.client.Sign(ctx, p.signReq(testMSISDN(etsi.CodeRequestOK), "hello"))
		wantMSSPFault(t, err, etsi.CodeWrongParam, 0)
	})

	t.Run("504 until the time-out, then 208", func(t *testing.T) {
		req := p.signReq(testMSISDN(etsi.CodeOutstandingTransaction), "Pay 1 EUR")
		req.MessagingMode, req.TimeOut = etsi.AsynchClientServer, 10
		resp, err := p.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeRequestOK, 0)
		saw(etsi.CodeRequestOK)
		if resp.MSSPTransID == "" {
			t.Fatal("no MSSP_TransID")
		}
		st, err := p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID})
		if err != nil {
			t.Fatalf("MSS_StatusQuery: %v", err)
		}
		wantMSSPStatus(t, st.Status, etsi.CodeOutstandingTransaction, 0)
		saw(etsi.CodeOutstandingTransaction)

		p.clock.advance(11 * time.Second)
		if err := p.engine.Sweep(ctx); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		_, err = p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID})
		wantMSSPFault(t, err, etsi.CodeExpiredTransaction, etsi.DetailServerTimeout)
	})

	for _, c := range tableStatusCodes {
		if !produced[c] {
			t.Errorf("status %v was not produced", c)
		}
	}
}

// TestMSSPStatusRealPaths produces the status codes that real requests,
// users and SIMs lead to, each with its FiCom detail code.
func TestMSSPStatusRealPaths(t *testing.T) {
	t.Parallel()
	p, sw := newWatchedPlatform(t, 7, platformOptions{sweep: time.Hour})
	ctx := requestCtx(t)
	ph := p.phones()
	// ph[0] approves and is used for most cases; ph[1]–ph[5] each have
	// one case of their own; ph[6] has a SIM but no Mobile ID.
	signCerts := map[string]*x509.Certificate{}
	for _, m := range ph[:6] {
		_, signCerts[m] = p.register(t, m)
	}
	approver := ph[0]
	abstract := func(f func(*etsi.MessageAbstract)) etsi.MessageAbstract {
		a := p.abstract()
		f(&a)
		return a
	}

	// A second AP whose TLS client certificate is not the bank's.
	shopRoot, shopRootKey := newTestCA(t, "shop TLS root")
	shopCert := newLeaf(t, shopRoot, shopRootKey, "shop AP", x509.ExtKeyUsageClientAuth)
	shopID, shopPwd := addOtherAP(t, p, sw, "http://shop.example/mid", shopCert.Certificate[0])

	faults := []struct {
		name   string
		req    func() *etsi.MSSSignatureReq
		client *etsiclient.Client // nil: the bank's
		code   etsi.Code
		detail int
	}{
		{"101 bad MimeType", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.DataToBeSigned.MimeType = "image/png"
			return r
		}, nil, etsi.CodeWrongParam, etsi.DetailMimeTypeNotSupported},
		{"101 Instant an hour ahead", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessageAbstract = abstract(func(a *etsi.MessageAbstract) { a.APInfo.Instant = a.APInfo.Instant.Add(time.Hour) })
			return r
		}, nil, etsi.CodeWrongParam, 0},
		{"101 Instant an hour behind", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessageAbstract = abstract(func(a *etsi.MessageAbstract) { a.APInfo.Instant = a.APInfo.Instant.Add(-time.Hour) })
			return r
		}, nil, etsi.CodeWrongParam, 0},
		{"101 illegal MessagingMode", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessagingMode = "sometimes"
			return r
		}, nil, etsi.CodeWrongParam, etsi.DetailIllegalMessagingMode},
		{"102 no DataToBeSigned", func() *etsi.MSSSignatureReq {
			return p.signReq(approver, "")
		}, nil, etsi.CodeMissingParam, etsi.DetailDTBSMissing},
		{"103 DataToBeDisplayed too long", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.DataToBeDisplayed = &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: strings.Repeat("x", 201)}
			return r
		}, nil, etsi.CodeWrongDataLength, 0},
		{"104 wrong AP_PWD", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessageAbstract = abstract(func(a *etsi.MessageAbstract) { a.APInfo.APPWD = "bank-secret-2" })
			return r
		}, nil, etsi.CodeUnauthorizedAccess, 0},
		{"104 unknown AP", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessageAbstract = abstract(func(a *etsi.MessageAbstract) { a.APInfo.APID = "http://unknown.example/mid" })
			return r
		}, nil, etsi.CodeUnauthorizedAccess, 0},
		{"104 no client certificate", func() *etsi.MSSSignatureReq {
			return p.signReq(approver, "Pay 1 EUR")
		}, &etsiclient.Client{BaseURL: p.url, HTTP: sw.wrap(p.httpClient(nil))}, etsi.CodeUnauthorizedAccess, 0},
		{"104 another AP's client certificate", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessageAbstract = abstract(func(a *etsi.MessageAbstract) { a.APInfo.APID, a.APInfo.APPWD = shopID, shopPwd })
			return r
		}, nil, etsi.CodeUnauthorizedAccess, 0},
		{"105 unknown MSISDN", func() *etsi.MSSSignatureReq {
			return p.signReq("+37259999999", "Pay 1 EUR")
		}, nil, etsi.CodeUnknownClient, etsi.DetailUserDoesNotExist},
		{"105 SIM without Mobile ID", func() *etsi.MSSSignatureReq {
			return p.signReq(ph[6], "Pay 1 EUR")
		}, nil, etsi.CodeUnknownClient, etsi.DetailUserNotRegistered},
		{"105 malformed MSISDN", func() *etsi.MSSSignatureReq {
			return p.signReq("+372 5000 0001", "Pay 1 EUR")
		}, nil, etsi.CodeUnknownClient, etsi.DetailMalformedUserID},
		{"108 MajorVersion 2", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MajorVersion = 2
			return r
		}, nil, etsi.CodeIncompatibleInterface, 0},
		{"109 unknown SignatureProfile", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.SignatureProfile = &etsi.MSSURI{URI: "http://mss.example/no-such-profile"}
			return r
		}, nil, etsi.CodeUnsupportedProfile, 0},
		{"405 AP_URL outside the AP's prefixes", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessagingMode = etsi.AsynchServerServer
			r.APInfo.APURL = "https://evil.example/mss"
			return r
		}, nil, etsi.CodeNoURLFound, 0},
		{"405 AP_URL on a look-alike host", func() *etsi.MSSSignatureReq {
			r := p.signReq(approver, "Pay 1 EUR")
			r.MessagingMode = etsi.AsynchServerServer
			r.APInfo.APURL = "http://127.0.0.1.evil.example/mss"
			return r
		}, nil, etsi.CodeNoURLFound, 0},
	}
	for _, c := range faults {
		t.Run(c.name, func(t *testing.T) {
			before := txTableCounts(t, p)
			client := c.client
			if client == nil {
				client = p.client
			}
			_, err := client.Sign(ctx, c.req())
			wantMSSPFault(t, err, c.code, c.detail)
			if diff := cmp.Diff(before, txTableCounts(t, p)); diff != "" {
				t.Errorf("a refused request changed the tables (-before +after):\n%s", diff)
			}
		})
	}

	t.Run("502 valid signature", func(t *testing.T) {
		req := p.signReq(approver, "Pay 12.50 EUR to ACME")
		req.SignatureProfile = &etsi.MSSURI{URI: uriSign}
		resp, err := p.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeValidSignature, 0)
		if signer := verifyCMSSigner(t, p, resp.MSSSignature); !signer.Equal(signCerts[approver]) {
			t.Errorf("CMS signer = %s, want the signing certificate", signer.Subject)
		}
	})

	t.Run("101 replayed AP_TransID", func(t *testing.T) {
		req := p.signReq(approver, "Pay 2 EUR")
		resp, err := p.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("first MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeValidSignature, 0)
		before := txTableCounts(t, p)
		_, err = p.client.Sign(ctx, req)
		wantMSSPFault(t, err, etsi.CodeWrongParam, 0)
		if diff := cmp.Diff(before, txTableCounts(t, p)); diff != "" {
			t.Errorf("the replay changed the tables (-before +after):\n%s", diff)
		}
	})

	t.Run("401 user cancels", func(t *testing.T) {
		handsetOf(t, p, ph[1]).SetBehaviour(handset.Behaviour{Action: handset.Cancel})
		_, err := p.client.Sign(ctx, p.signReq(ph[1], "Pay 3 EUR"))
		wantMSSPFault(t, err, etsi.CodeUserCancel, etsi.DetailUserCancelled)
	})

	t.Run("402 third wrong PIN blocks", func(t *testing.T) {
		hs := handsetOf(t, p, ph[2])
		hs.SetBehaviour(handset.Behaviour{Action: handset.WrongPIN})
		_, err := p.client.Sign(ctx, p.signReq(ph[2], "Pay 4 EUR"))
		wantMSSPFault(t, err, etsi.CodePINNrBlocked, etsi.DetailPINNrBlocked)
		if st := hs.State().Card; st.PIN1TriesLeft != 0 {
			t.Errorf("PIN1 tries left = %d, want 0", st.PIN1TriesLeft)
		}
		// The blocked PIN stays blocked: the right PIN no longer helps.
		hs.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		_, err = p.client.Sign(ctx, p.signReq(ph[2], "Pay 5 EUR"))
		wantMSSPFault(t, err, etsi.CodePINNrBlocked, etsi.DetailPINNrBlocked)
	})

	t.Run("406 second request while the first waits", func(t *testing.T) {
		handsetOf(t, p, ph[4]).SetBehaviour(handset.Behaviour{Action: handset.NeverAnswer})
		first := p.signReq(ph[4], "Pay 6 EUR")
		first.MessagingMode = etsi.AsynchClientServer
		resp, err := p.client.Sign(ctx, first)
		if err != nil {
			t.Fatalf("first MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeRequestOK, 0)
		before := txTableCounts(t, p)
		_, err = p.client.Sign(ctx, p.signReq(ph[4], "Pay 7 EUR"))
		wantMSSPFault(t, err, etsi.CodePBSignatureProcess, 0)
		if diff := cmp.Diff(before, txTableCounts(t, p)); diff != "" {
			t.Errorf("the refused request changed the tables (-before +after):\n%s", diff)
		}
	})

	t.Run("407 GenerateKeys on a registered SIM", func(t *testing.T) {
		_, err := p.client.Registration(ctx, &etsi.MSSRegistrationReq{
			MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: approver},
			Operation: &etsi.RegistrationOperation{Type: etsi.RegGenerateKeys, Challenge: randomChallenge(16)},
		})
		wantMSSPFault(t, err, etsi.CodeRegistrationNOK, etsi.DetailRegistrationSIM)
	})

	t.Run("423 OCSP responder down", func(t *testing.T) {
		p.ocspDown.Store(true)
		defer p.ocspDown.Store(false)
		_, err := p.client.Sign(ctx, p.signReq(approver, "Pay 8 EUR"))
		wantMSSPFault(t, err, etsi.CodeCRLPB, 0)
	})

	t.Run("501 revoked signing certificate", func(t *testing.T) {
		if err := p.ca.Revoke(ctx, signCerts[ph[5]].SerialNumber, ca.ReasonKeyCompromise, time.Time{}); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		req := p.signReq(ph[5], "Pay 9 EUR")
		req.SignatureProfile = &etsi.MSSURI{URI: uriSign}
		resp, err := p.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeRevokedCertificate, 0)
		if resp.MSSSignature != nil {
			t.Error("a signature by a revoked certificate was returned")
		}
	})

	// Last: it moves the platform's clock.
	t.Run("208 user never answers", func(t *testing.T) {
		m := ph[3]
		handsetOf(t, p, m).SetBehaviour(handset.Behaviour{Action: handset.NeverAnswer})
		errc := make(chan error, 1)
		go func() {
			req := p.signReq(m, "Pay 10 EUR")
			req.TimeOut = 10
			_, err := p.client.Sign(ctx, req)
			errc <- err
		}()
		pollUntil(t, 10*time.Second, "request delivered to the phone", func() bool {
			return rows(t, p.db, `SELECT COUNT(*) FROM mssp_tx WHERE msisdn = $1 AND state = $2`, withPlus(m), mssp.StateDelivered) == 1
		})
		p.clock.advance(11 * time.Second)
		if err := p.engine.Sweep(ctx); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		select {
		case err := <-errc:
			wantMSSPFault(t, err, etsi.CodeExpiredTransaction, etsi.DetailUserTimeout)
		case <-time.After(requestTimeout):
			t.Fatal("the synchronous request did not end after the time-out")
		}
		if n := rows(t, p.db, `SELECT COUNT(*) FROM mssp_active WHERE msisdn = $1`, withPlus(m)); n != 0 {
			t.Errorf("the expired transaction still holds the SIM (%d rows)", n)
		}
	})
}

// TestMSSPPhoneAbsent switches the phone off: the network keeps the
// request until it expires and reports the subscriber absent, 209 with
// the PHONE_ABSENT detail 2093. The platform does not sweep, so that the
// MSSP's own time-out does not end the transaction first.
func TestMSSPPhoneAbsent(t *testing.T) {
	t.Parallel()
	p, _ := newWatchedPlatform(t, 1, platformOptions{sweep: time.Hour})
	ctx := requestCtx(t)
	m := p.phones()[0]
	p.register(t, m)
	handsetOf(t, p, m).SetPower(false)
	req := p.signReq(m, "Pay 11 EUR")
	req.TimeOut = 10
	_, err := p.client.Sign(ctx, req)
	wantMSSPFault(t, err, etsi.CodeOTAError, etsi.DetailMECommunicationError)
}

// TestMSSPValidateOnRequest runs a platform that checks revocation only
// for the #validate service: a signature without it is 500 SIGNATURE,
// with it 502.
func TestMSSPValidateOnRequest(t *testing.T) {
	t.Parallel()
	p, _ := newWatchedPlatform(t, 1, platformOptions{validateOnRequest: true, sweep: time.Hour})
	ctx := requestCtx(t)
	m := p.phones()[0]
	_, signCert := p.register(t, m)
	for _, c := range []struct {
		name     string
		validate bool
		want     etsi.Code
	}{
		{"without #validate", false, etsi.CodeSignature},
		{"with #validate", true, etsi.CodeValidSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := p.signReq(m, "Sign the contract")
			req.SignatureProfile = &etsi.MSSURI{URI: uriSign}
			if c.validate {
				req.AdditionalServices = []etsi.Service{{Description: etsi.MSSURI{URI: etsi.ServiceValidate}}}
			}
			resp, err := p.client.Sign(ctx, req)
			if err != nil {
				t.Fatalf("MSS_Signature: %v", err)
			}
			wantMSSPStatus(t, resp.Status, c.want, 0)
			if signer := verifyCMSSigner(t, p, resp.MSSSignature); !signer.Equal(signCert) {
				t.Errorf("CMS signer = %s, want the signing certificate", signer.Subject)
			}
		})
	}
}

// TestMSSPMessagingModes runs a signature in each asynchronous mode:
// polled with MSS_StatusQuery, and called back with MSS_Notification
// after the AP's server failed the first attempt.
func TestMSSPMessagingModes(t *testing.T) {
	t.Parallel()
	p, sw := newWatchedPlatform(t, 2, platformOptions{sweep: time.Hour})
	ctx := requestCtx(t)
	ph := p.phones()
	authCerts := map[string]*x509.Certificate{}
	for _, m := range ph {
		authCerts[m], _ = p.register(t, m)
	}
	// An AP of the same provider, sharing the bank's TLS certificate.
	partnerID, partnerPwd := addOtherAP(t, p, sw, "http://partner.example/mid", p.apCert.Certificate[0])

	t.Run("asynchClientServer", func(t *testing.T) {
		m := ph[0]
		hs := handsetOf(t, p, m)
		hs.SetBehaviour(handset.Behaviour{Action: handset.Console})
		req := p.signReq(m, "Pay 20 EUR")
		req.MessagingMode = etsi.AsynchClientServer
		resp, err := p.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeRequestOK, 0)
		if resp.MSSPTransID == "" || resp.MSSSignature != nil {
			t.Fatalf("asynchronous response: MSSP_TransID %q, signature %v", resp.MSSPTransID, resp.MSSSignature)
		}
		query := func() (*etsi.MSSStatusResp, error) {
			return p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID})
		}

		pollUntil(t, 10*time.Second, "the phone asks to confirm", func() bool {
			s := hs.Screen()
			return s.Waiting && s.Mode == handset.ScreenConfirm
		})
		st, err := query()
		if err != nil {
			t.Fatalf("MSS_StatusQuery: %v", err)
		}
		wantMSSPStatus(t, st.Status, etsi.CodeOutstandingTransaction, 0)
		if st.MSSSignature != nil {
			t.Error("an outstanding transaction has a signature")
		}

		t.Run("another AP's MSS_StatusQuery", func(t *testing.T) {
			a := p.abstract()
			a.APInfo.APID, a.APInfo.APPWD = partnerID, partnerPwd
			_, err := p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: a, MSSPTransID: resp.MSSPTransID})
			wantMSSPFault(t, err, etsi.CodeWrongParam, 0)
		})

		if err := hs.PressOK(); err != nil {
			t.Fatalf("PressOK: %v", err)
		}
		pollUntil(t, 10*time.Second, "the phone asks for the PIN", func() bool {
			s := hs.Screen()
			return s.Waiting && s.Mode == handset.ScreenPIN
		})
		pin1, _ := scriptedPINs(m)
		if err := hs.EnterPIN(pin1); err != nil {
			t.Fatalf("EnterPIN: %v", err)
		}
		pollUntil(t, 10*time.Second, "the transaction ends", func() bool {
			if st, err = query(); err != nil {
				t.Fatalf("MSS_StatusQuery: %v", err)
			}
			return st.Status.StatusCode.Value != etsi.CodeOutstandingTransaction
		})
		wantMSSPStatus(t, st.Status, etsi.CodeValidSignature, 0)
		if st.MSSPTransID != resp.MSSPTransID {
			t.Errorf("MSSP_TransID = %q, want %q", st.MSSPTransID, resp.MSSPTransID)
		}
		if signer := verifyCMSSigner(t, p, st.MSSSignature); !signer.Equal(authCerts[m]) {
			t.Errorf("CMS signer = %s, want the authentication certificate", signer.Subject)
		}
	})

	t.Run("asynchServerServer", func(t *testing.T) {
		m := ph[1]
		attempts := make(chan int, 4)
		notes := make(chan *etsi.MSSStatusResp, 4)
		var calls atomic.Int32
		ap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "cannot read", http.StatusBadRequest)
				return
			}
			sw.record("MSS_Notification", body)
			n := int(calls.Add(1))
			attempts <- n
			if n == 1 {
				http.Error(w, "try again later", http.StatusInternalServerError)
				return
			}
			note, err := etsi.DecodeNotification(bytes.NewReader(body), 0)
			if err != nil {
				t.Errorf("DecodeNotification: %v", err)
				http.Error(w, "bad notification", http.StatusBadRequest)
				return
			}
			notes <- note
		}))
		defer ap.Close()
		// The registered prefix http://127.0.0.1 covers port 80 only; the
		// AP adds the origin of its callback server.
		reg, err := p.aps.Get(ctx, p.apID)
		if err != nil {
			t.Fatal(err)
		}
		reg.URLPrefixes = append(reg.URLPrefixes, ap.URL)
		if err := p.aps.Update(ctx, mssp.APConfig{AP: *reg}); err != nil {
			t.Fatal(err)
		}

		req := p.signReq(m, "Pay 21 EUR")
		req.MessagingMode = etsi.AsynchServerServer
		req.APInfo.APURL = ap.URL + "/mid/callback"
		resp, err := p.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeRequestOK, 0)
		if resp.MSSPTransID == "" {
			t.Fatal("no MSSP_TransID")
		}

		select {
		case n := <-attempts:
			if n != 1 {
				t.Fatalf("attempt %d first", n)
			}
		case <-ctx.Done():
			t.Fatal("no callback")
		}
		pollUntil(t, 10*time.Second, "the failed callback is scheduled again", func() bool {
			return rows(t, p.db, `SELECT COUNT(*) FROM mssp_notify WHERE attempts = 1`) == 1
		})
		// Past the first back-off, without waiting for it.
		p.clock.advance(2 * time.Second)
		if err := p.engine.Notify(ctx); err != nil {
			t.Fatalf("Notify: %v", err)
		}
		var note *etsi.MSSStatusResp
		select {
		case note = <-notes:
		case <-ctx.Done():
			t.Fatal("no second callback")
		}
		if n := calls.Load(); n != 2 {
			t.Errorf("%d callbacks, want 2", n)
		}
		if note.MSSPTransID != resp.MSSPTransID || note.APInfo.APTransID != req.APInfo.APTransID {
			t.Errorf("notification for %q/%q, want %q/%q", note.MSSPTransID, note.APInfo.APTransID, resp.MSSPTransID, req.APInfo.APTransID)
		}
		wantMSSPStatus(t, note.Status, etsi.CodeValidSignature, 0)
		if signer := verifyCMSSigner(t, p, note.MSSSignature); !signer.Equal(authCerts[m]) {
			t.Errorf("CMS signer = %s, want the authentication certificate", signer.Subject)
		}
		if n := rows(t, p.db, `SELECT COUNT(*) FROM mssp_notify`); n != 0 {
			t.Errorf("%d callbacks still queued after delivery", n)
		}
	})
}

// TestMSSPReceiptAndProfileQuery shows a receipt on the phone after a
// signature and lists a user's profiles.
func TestMSSPReceiptAndProfileQuery(t *testing.T) {
	t.Parallel()
	p, _ := newWatchedPlatform(t, 1, platformOptions{sweep: time.Hour})
	ctx := requestCtx(t)
	m := p.phones()[0]
	p.register(t, m)

	t.Run("MSS_Receipt", func(t *testing.T) {
		resp, err := p.client.Sign(ctx, p.signReq(m, "Pay 30 EUR to ACME"))
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeValidSignature, 0)
		const text = "Payment of 30 EUR to ACME done"
		rr, err := p.client.Receipt(ctx, &etsi.MSSReceiptReq{
			MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID, MobileUser: etsi.MobileUser{MSISDN: m},
			Message: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: text},
		})
		if err != nil {
			t.Fatalf("MSS_Receipt: %v", err)
		}
		wantMSSPStatus(t, rr.Status, etsi.CodeRequestOK, 0)
		hs := handsetOf(t, p, m)
		pollUntil(t, 10*time.Second, "the phone shows the receipt", func() bool { return hs.Screen().Text == text })
		pollUntil(t, 10*time.Second, "the receipt transaction ends", func() bool {
			return rows(t, p.db, `SELECT COUNT(*) FROM mssp_tx WHERE kind = 'receipt' AND state = $1 AND status = 100`, mssp.StateValidated) == 1
		})
	})

	t.Run("MSS_Receipt of an unknown transaction", func(t *testing.T) {
		_, err := p.client.Receipt(ctx, &etsi.MSSReceiptReq{
			MessageAbstract: p.abstract(), MSSPTransID: "Tnosuchtransaction000",
			Message: &etsi.Data{Value: "Done"},
		})
		wantMSSPFault(t, err, etsi.CodeWrongParam, 0)
	})

	t.Run("MSS_ProfileQuery", func(t *testing.T) {
		resp, err := p.client.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: m}})
		if err != nil {
			t.Fatalf("MSS_ProfileQuery: %v", err)
		}
		wantMSSPStatus(t, resp.Status, etsi.CodeRequestOK, 0)
		want := []etsi.MSSURI{{URI: uriAuthn}, {URI: uriSign}, {URI: uriConsent}}
		if diff := cmp.Diff(want, resp.SignatureProfile); diff != "" {
			t.Errorf("profiles (-want +got):\n%s", diff)
		}
	})

	t.Run("MSS_ProfileQuery of an unknown user", func(t *testing.T) {
		_, err := p.client.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: "+37259999999"}})
		wantMSSPFault(t, err, etsi.CodeUnknownClient, etsi.DetailUserDoesNotExist)
	})
}

// txTables are the tables a request that is refused must not
// change.
var txTables = []string{"mssp_tx", "mssp_active", "mssp_ap_transids", "messaging_outbox"}

// txTableCounts returns the number of rows of each counted table.
func txTableCounts(t testing.TB, p *platform) map[string]int {
	t.Helper()
	n := make(map[string]int, len(txTables))
	for _, tbl := range txTables {
		n[tbl] = rows(t, p.db, `SELECT COUNT(*) FROM `+tbl)
	}
	return n
}

// postRawAP posts body to the platform's path with the client c and
// returns the HTTP status and the response body.
func postRawAP(t testing.TB, c *http.Client, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// checkRawFault checks that an HTTP answer is a 500 carrying a SOAP (or,
// for JSON, a JSON) fault with subcode _code and detail code detail.
func checkRawFault(t testing.TB, isJSON bool, status int, body []byte, code etsi.Code, detail int) {
	t.Helper()
	if status != http.StatusInternalServerError {
		t.Errorf("HTTP status = %d, want 500", status)
	}
	var (
		f   *etsi.Fault
		err error
		sub string
	)
	if isJSON {
		f, err = etsi.DecodeJSONFault(bytes.NewReader(body), 0)
		sub = fmt.Sprintf(`"Value":"_%d"`, int(code))
	} else {
		f, err = etsi.DecodeFault(bytes.NewReader(body), 0)
		sub = fmt.Sprintf("mss:_%d<", int(code))
	}
	if err != nil {
		t.Fatalf("not a fault (%v):\n%s", err, body)
	}
	if !bytes.Contains(body, []byte(sub)) {
		t.Errorf("fault lacks subcode %s:\n%s", sub, body)
	}
	if f.Code != code || f.DetailCode != detail {
		t.Errorf("fault = %v detail %d (%s), want %v detail %d", f.Code, f.DetailCode, f.Detail, code, detail)
	}
}

// TestMSSPBadInputChangesNothing sends malformed and refused requests as
// raw HTTP and checks that each gets its fault and leaves no trace in the
// transaction tables or the SMS outbox.
func TestMSSPBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	p, sw := newWatchedPlatform(t, 3, platformOptions{sweep: time.Hour})
	ph := p.phones()
	for _, m := range ph {
		p.register(t, m)
	}
	free := ph[0]
	ap := sw.wrap(p.httpClient(&p.apCert))
	sigURL, jsonURL := p.url+mssp.PathSignature, p.url+mssp.PathRESTSign

	soap := func(f func(r *etsi.MSSSignatureReq)) []byte {
		r := p.signReq(free, "Pay 40 EUR")
		if f != nil {
			f(r)
		}
		var b bytes.Buffer
		if err := etsi.EncodeRequest(&b, r); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	jsonBody := func(f func(r *etsi.MSSSignatureReq)) []byte {
		r := p.signReq(free, "Pay 41 EUR")
		if f != nil {
			f(r)
		}
		var b bytes.Buffer
		if err := etsi.EncodeJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	cases := []struct {
		name   string
		json   bool
		body   func() []byte
		code   etsi.Code
		detail int
	}{
		{"malformed XML", false, func() []byte {
			b := soap(nil)
			return b[:len(b)-30]
		}, etsi.CodeWrongParam, 0},
		{"wrong ETSI namespace", false, func() []byte {
			return bytes.ReplaceAll(soap(nil), []byte(etsi.Namespace), []byte("http://uri.etsi.org/TS102204/v9.9.9#"))
		}, etsi.CodeIncompatibleInterface, 0},
		{"SOAP 1.1 envelope", false, func() []byte {
			return bytes.ReplaceAll(soap(nil), []byte(etsi.SOAPNamespace), []byte("http://schemas.xmlsoap.org/soap/envelope/"))
		}, etsi.CodeIncompatibleInterface, 0},
		{"DOCTYPE with an entity", false, func() []byte {
			b := soap(func(r *etsi.MSSSignatureReq) { r.DataToBeSigned.Value = "PLACEHOLDER" })
			b = bytes.Replace(b, []byte("<env:Envelope"), []byte(`<!DOCTYPE env:Envelope [<!ENTITY pay "Pay 1000 EUR">]><env:Envelope`), 1)
			return bytes.Replace(b, []byte("PLACEHOLDER"), []byte("&pay;"), 1)
		}, etsi.CodeWrongParam, 0},
		{"body over 64 KiB", false, func() []byte {
			b := soap(nil)
			return append(b, bytes.Repeat([]byte(" "), mssp.MaxBody)...)
		}, etsi.CodeWrongDataLength, 0},
		{"unknown profile", false, func() []byte {
			return soap(func(r *etsi.MSSSignatureReq) {
				r.SignatureProfile = &etsi.MSSURI{URI: "http://mss.example/no-such-profile"}
			})
		}, etsi.CodeUnsupportedProfile, 0},
		{"malformed MSISDN", false, func() []byte {
			return soap(func(r *etsi.MSSSignatureReq) { r.MobileUser.MSISDN = "+372 5000-0001" })
		}, etsi.CodeUnknownClient, etsi.DetailMalformedUserID},
		{"wrong password", false, func() []byte {
			return soap(func(r *etsi.MSSSignatureReq) { r.APInfo.APPWD = "not-the-password" })
		}, etsi.CodeUnauthorizedAccess, 0},
		{"JSON malformed", true, func() []byte {
			b := jsonBody(nil)
			return b[:len(b)/2]
		}, etsi.CodeWrongParam, 0},
		{"JSON not an object", true, func() []byte { return []byte(`["MSS_SignatureReq"]`) }, etsi.CodeWrongParam, 0},
		{"JSON wrong password", true, func() []byte {
			return jsonBody(func(r *etsi.MSSSignatureReq) { r.APInfo.APPWD = "not-the-password" })
		}, etsi.CodeUnauthorizedAccess, 0},
		{"JSON no DataToBeSigned", true, func() []byte {
			return jsonBody(func(r *etsi.MSSSignatureReq) { r.DataToBeSigned.Value = "" })
		}, etsi.CodeMissingParam, etsi.DetailDTBSMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url, ctype := sigURL, soapContentType
			if c.json {
				url, ctype = jsonURL, jsonContentType
			}
			before := txTableCounts(t, p)
			status, body := postRawAP(t, ap, url, ctype, c.body())
			checkRawFault(t, c.json, status, body, c.code, c.detail)
			if diff := cmp.Diff(before, txTableCounts(t, p)); diff != "" {
				t.Errorf("the refused request changed the tables (-before +after):\n%s", diff)
			}
		})
	}

	// The first request holds the SIM of a user who never answers, so that
	// its rows stay as they are while the replay is tried.
	for _, c := range []struct {
		name string
		json bool
		held string
	}{{"replayed AP_TransID", false, ph[1]}, {"JSON replayed AP_TransID", true, ph[2]}} {
		t.Run(c.name, func(t *testing.T) {
			handsetOf(t, p, c.held).SetBehaviour(handset.Behaviour{Action: handset.NeverAnswer})
			r := p.signReq(c.held, "Pay 42 EUR")
			r.MessagingMode = etsi.AsynchClientServer
			var b bytes.Buffer
			url, ctype, enc := sigURL, soapContentType, etsi.EncodeRequest
			if c.json {
				url, ctype, enc = jsonURL, jsonContentType, etsi.EncodeJSON
			}
			if err := enc(&b, r); err != nil {
				t.Fatal(err)
			}
			before := txTableCounts(t, p)
			status, body := postRawAP(t, ap, url, ctype, b.Bytes())
			if status != http.StatusOK {
				t.Fatalf("first request: HTTP %d\n%s", status, body)
			}
			want := map[string]int{}
			for k, v := range before {
				want[k] = v + 1
			}
			if diff := cmp.Diff(want, txTableCounts(t, p)); diff != "" {
				t.Fatalf("the first request's rows (-want +got):\n%s", diff)
			}
			status, body = postRawAP(t, ap, url, ctype, b.Bytes())
			checkRawFault(t, c.json, status, body, etsi.CodeWrongParam, 0)
			if diff := cmp.Diff(want, txTableCounts(t, p)); diff != "" {
				t.Errorf("the replay changed the tables (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMSSPNoSecretLeaks calls every endpoint, in both transports, with
// answers and faults, and checks that no response carries the AP's
// password.
func TestMSSPNoSecretLeaks(t *testing.T) {
	t.Parallel()
	p, sw := newWatchedPlatform(t, 1, platformOptions{sweep: time.Hour})
	ctx := requestCtx(t)
	m := p.phones()[0]
	p.register(t, m)
	ap := sw.wrap(p.httpClient(&p.apCert))

	resp, err := p.client.Sign(ctx, p.signReq(m, "Pay 50 EUR"))
	if err != nil {
		t.Fatalf("MSS_Signature: %v", err)
	}
	st, err := p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID})
	if err != nil {
		t.Fatalf("MSS_StatusQuery: %v", err)
	}
	rr, err := p.client.Receipt(ctx, &etsi.MSSReceiptReq{MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID, Message: &etsi.Data{Value: "Paid"}})
	if err != nil {
		t.Fatalf("MSS_Receipt: %v", err)
	}
	pr, err := p.client.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: m}})
	if err != nil {
		t.Fatalf("MSS_ProfileQuery: %v", err)
	}
	reg, err := p.client.Registration(ctx, &etsi.MSSRegistrationReq{MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: m},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegInfo, Challenge: randomChallenge(16)}})
	if err != nil {
		t.Fatalf("MSS_Registration Info: %v", err)
	}
	for _, a := range []etsi.MessageAbstract{resp.MessageAbstract, st.MessageAbstract, rr.MessageAbstract, pr.MessageAbstract, reg.MessageAbstract} {
		if a.APInfo.APPWD != "" {
			t.Error("a response header carries AP_PWD")
		}
	}

	// Faults. A wrong password must not be echoed either: it is
	// usually the right one mistyped.
	bad := p.signReq(m, "Pay 51 EUR")
	bad.DataToBeSigned.MimeType = "image/png"
	_, err = p.client.Sign(ctx, bad)
	wantMSSPFault(t, err, etsi.CodeWrongParam, etsi.DetailMimeTypeNotSupported)
	_, err = p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: p.abstract(), MSSPTransID: "Tnosuchtransaction000"})
	wantMSSPFault(t, err, etsi.CodeWrongParam, 0)
	wrong := p.signReq(m, "Pay 52 EUR")
	wrong.APInfo.APPWD = p.apPwd + "x"
	_, err = p.client.Sign(ctx, wrong)
	wantMSSPFault(t, err, etsi.CodeUnauthorizedAccess, 0)

	// The JSON transport, with an answer and a fault of each.
	for _, c := range []struct {
		path string
		msg  any
		ok   bool
	}{
		{mssp.PathRESTSign, p.signReq(m, "Pay 53 EUR"), true},
		{mssp.PathRESTSign, wrong, false},
		{mssp.PathRESTStatus, &etsi.MSSStatusReq{MessageAbstract: p.abstract(), MSSPTransID: resp.MSSPTransID}, true},
		{mssp.PathRESTProfile, &etsi.MSSProfileReq{MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: m}}, true},
		{mssp.PathRESTProfile, &etsi.MSSProfileReq{MessageAbstract: p.abstract(), MobileUser: etsi.MobileUser{MSISDN: "+37259999999"}}, false},
	} {
		var b bytes.Buffer
		if err := etsi.EncodeJSON(&b, c.msg); err != nil {
			t.Fatal(err)
		}
		status, body := postRawAP(t, ap, p.url+c.path, jsonContentType, b.Bytes())
		if ok := status == http.StatusOK; ok != c.ok {
			t.Errorf("POST %s: HTTP %d\n%s", c.path, status, body)
		}
	}
	resp2, err := ap.Get(p.url + mssp.PathWSDL)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()

	if n := sw.count(); n < 16 {
		t.Errorf("%d bodies recorded, want at least 16", n)
	}
	sw.check(t)
}

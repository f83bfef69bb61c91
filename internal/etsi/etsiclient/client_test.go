package etsiclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mobileid/internal/etsi"
)

var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

// testPKI is a CA with a server certificate for 127.0.0.1 and an AP client
// certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test MSSP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, eku x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = issue(2, "mssp", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.client = issue(3, "ap.example.com", x509.ExtKeyUsageClientAuth, nil)
	return p
}

// fakeMSSP is a TLS server that requires an AP certificate, decodes
// requests with etsi.DecodeRequest and answers with answer.
type fakeMSSP struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []any
	peers  []string
	answer func(w http.ResponseWriter, port string, req any)
}

func newFakeMSSP(t *testing.T, pki *testPKI, answer func(w http.ResponseWriter, port string, req any)) *fakeMSSP {
	m := &fakeMSSP{t: t, answer: answer}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	m.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}
	m.srv.StartTLS()
	t.Cleanup(m.srv.Close)
	return m
}

func (m *fakeMSSP) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != ContentType {
		m.t.Errorf("%s %s with Content-Type %q", r.Method, r.URL, r.Header.Get("Content-Type"))
	}
	port, ok := strings.CutPrefix(r.URL.Path, "/soap/services/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	req, err := etsi.DecodeRequest(r.Body, 0)
	if err != nil {
		m.t.Errorf("DecodeRequest: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	m.mu.Lock()
	m.got = append(m.got, req)
	m.peers = append(m.peers, r.TLS.PeerCertificates[0].Subject.CommonName)
	m.mu.Unlock()
	m.answer(w, port, req)
}

func respond(w http.ResponseWriter, resp any) {
	w.Header().Set("Content-Type", ContentType)
	var b bytes.Buffer
	if err := etsi.EncodeResponse(&b, resp); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(b.Bytes())
}

func fault(w http.ResponseWriter, status int, f *etsi.Fault) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	etsi.EncodeFault(w, f)
}

func httpClient(pki *testPKI, withCert bool) *http.Client {
	cfg := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{pki.client}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

var instant = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func abstract() etsi.MessageAbstract {
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   etsi.APInfo{APID: "http://ap.example.com", APTransID: "A1", APPWD: "pw", Instant: instant},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mssp.example.com"}},
	}
}

var user = etsi.MobileUser{MSISDN: "+358401234567"}

func TestClientOperations(t *testing.T) {
	pki := newTestPKI(t)
	cases := []struct {
		port string
		req  any
		resp any
		call func(context.Context, *Client, any) (any, error)
	}{
		{
			"MSS_SignaturePort",
			&etsi.MSSSignatureReq{MessageAbstract: abstract(), MessagingMode: etsi.AsynchClientServer, MobileUser: user,
				DataToBeSigned:     etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Login"},
				AdditionalServices: []etsi.Service{{Description: etsi.MSSURI{URI: etsi.ServiceUserLang}, UserLang: "en"}}},
			&etsi.MSSSignatureResp{MessageAbstract: abstract(), MSSPTransID: "M1", MobileUser: user, Status: etsi.NewStatus(etsi.CodeRequestOK)},
			func(ctx context.Context, c *Client, r any) (any, error) {
				return c.Sign(ctx, r.(*etsi.MSSSignatureReq))
			},
		},
		{
			"MSS_StatusQueryPort",
			&etsi.MSSStatusReq{MessageAbstract: abstract(), MSSPTransID: "M1"},
			&etsi.MSSStatusResp{MessageAbstract: abstract(), MobileUser: user,
				MSSSignature: &etsi.Signature{Base64Signature: etsi.Base64("\x30\x82cms")}, Status: etsi.NewStatus(etsi.CodeValidSignature)},
			func(ctx context.Context, c *Client, r any) (any, error) { return c.Status(ctx, r.(*etsi.MSSStatusReq)) },
		},
		{
			"MSS_ReceiptPort",
			&etsi.MSSReceiptReq{MessageAbstract: abstract(), MSSPTransID: "M1", MobileUser: user, Message: &etsi.Data{Value: "Done"}},
			&etsi.MSSReceiptResp{MessageAbstract: abstract(), Status: etsi.NewStatus(etsi.CodeRequestOK)},
			func(ctx context.Context, c *Client, r any) (any, error) {
				return c.Receipt(ctx, r.(*etsi.MSSReceiptReq))
			},
		},
		{
			"MSS_ProfilePort",
			&etsi.MSSProfileReq{MessageAbstract: abstract(), MobileUser: user},
			&etsi.MSSProfileResp{MessageAbstract: abstract(), SignatureProfile: []etsi.MSSURI{{URI: "http://mobileid.dev/auth"}}, Status: etsi.NewStatus(etsi.CodeRequestOK)},
			func(ctx context.Context, c *Client, r any) (any, error) {
				return c.Profile(ctx, r.(*etsi.MSSProfileReq))
			},
		},
		{
			"MSS_RegistrationPort",
			&etsi.MSSRegistrationReq{MessageAbstract: abstract(), MobileUser: user,
				Operation: &etsi.RegistrationOperation{Type: etsi.RegInfo, Challenge: etsi.Base64("nonce")}},
			&etsi.MSSRegistrationResp{MessageAbstract: abstract(), Status: etsi.Status{StatusCode: etsi.StatusCode{Value: etsi.CodeRequestOK},
				Registration: &etsi.RegistrationResult{State: "active", Challenge: etsi.Base64("nonce")}}},
			func(ctx context.Context, c *Client, r any) (any, error) {
				return c.Registration(ctx, r.(*etsi.MSSRegistrationReq))
			},
		},
	}
	for _, c := range cases {
		t.Run(c.port, func(t *testing.T) {
			m := newFakeMSSP(t, pki, func(w http.ResponseWriter, port string, req any) {
				if port != c.port {
					t.Errorf("request to %s, want %s", port, c.port)
				}
				respond(w, c.resp)
			})
			cl := &Client{BaseURL: m.srv.URL + "/", HTTP: httpClient(pki, true)}
			got, err := c.call(context.Background(), cl, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.resp, got, cmpOpts); d != "" {
				t.Errorf("response (-want +got):\n%s", d)
			}
			if len(m.got) != 1 {
				t.Fatalf("MSSP got %d requests, want 1", len(m.got))
			}
			if d := cmp.Diff(c.req, m.got[0], cmpOpts); d != "" {
				t.Errorf("request as the MSSP decoded it (-sent +got):\n%s", d)
			}
			if m.peers[0] != "ap.example.com" {
				t.Errorf("client certificate CN = %q, want ap.example.com", m.peers[0])
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	pki := newTestPKI(t)
	unknown := &etsi.Fault{Code: etsi.CodeUnknownClient, Detail: "no such user", DetailCode: etsi.DetailUserDoesNotExist}
	req := &etsi.MSSStatusReq{MessageAbstract: abstract(), MSSPTransID: "M1"}
	cases := []struct {
		name      string
		answer    func(w http.ResponseWriter)
		withCert  bool
		maxBody   int64
		wantFault *etsi.Fault
	}{
		{"fault 500", func(w http.ResponseWriter) { fault(w, http.StatusInternalServerError, unknown) }, true, 0, unknown},
		{"fault 200", func(w http.ResponseWriter) { fault(w, http.StatusOK, unknown) }, true, 0, unknown},
		{"not SOAP", func(w http.ResponseWriter) { http.Error(w, "maintenance", http.StatusServiceUnavailable) }, true, 0, nil},
		{"wrong message", func(w http.ResponseWriter) {
			respond(w, &etsi.MSSReceiptResp{MessageAbstract: abstract(), Status: etsi.NewStatus(etsi.CodeRequestOK)})
		}, true, 0, nil},
		{"invalid response", func(w http.ResponseWriter) {
			respond(w, &etsi.MSSStatusResp{MessageAbstract: abstract()}) // no StatusCode
		}, true, 0, nil},
		{"malformed", func(w http.ResponseWriter) { w.Write([]byte("<env:Envelope")) }, true, 0, nil},
		{"too large", func(w http.ResponseWriter) {
			respond(w, &etsi.MSSStatusResp{MessageAbstract: abstract(), Status: etsi.NewStatus(etsi.CodeOutstandingTransaction)})
		}, true, 100, nil},
		{"no client certificate", func(w http.ResponseWriter) { t.Error("request without client certificate reached the handler") }, false, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newFakeMSSP(t, pki, func(w http.ResponseWriter, _ string, _ any) { c.answer(w) })
			cl := &Client{BaseURL: m.srv.URL, HTTP: httpClient(pki, c.withCert), MaxBody: c.maxBody}
			resp, err := cl.Status(context.Background(), req)
			if err == nil {
				t.Fatalf("Status = %+v, want error", resp)
			}
			var f *etsi.Fault
			isFault := errors.As(err, &f)
			if c.wantFault == nil {
				if isFault {
					t.Errorf("Status error %v is a *Fault, want another error", err)
				}
				if !strings.HasPrefix(err.Error(), "etsiclient: ") {
					t.Errorf("error %q lacks prefix", err)
				}
				return
			}
			if !isFault {
				t.Fatalf("Status error = %v, want *Fault", err)
			}
			if d := cmp.Diff(c.wantFault, f); d != "" {
				t.Errorf("fault (-want +got):\n%s", d)
			}
		})
	}
}

func TestClientCanceled(t *testing.T) {
	pki := newTestPKI(t)
	m := newFakeMSSP(t, pki, func(w http.ResponseWriter, _ string, _ any) {})
	cl := &Client{BaseURL: m.srv.URL, HTTP: httpClient(pki, true)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := cl.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: abstract(), MobileUser: user})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Profile with canceled context = %v, want context.Canceled", err)
	}
}

func TestNotify(t *testing.T) {
	n := &etsi.MSSStatusResp{MessageAbstract: abstract(), MSSPTransID: "M7", MobileUser: user,
		MSSSignature: &etsi.Signature{Base64Signature: etsi.Base64("sig")}, Status: etsi.NewStatus(etsi.CodeValidSignature)}
	ack := &etsi.MSSReceiptReq{MessageAbstract: abstract(), MSSPTransID: "M7", MobileUser: user, Status: &etsi.Status{StatusCode: etsi.StatusCode{Value: etsi.CodeRequestOK}}}
	var got *etsi.MSSStatusResp
	ap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ap/callback" {
			t.Errorf("notification to %s", r.URL.Path)
		}
		var err error
		if got, err = etsi.DecodeNotification(r.Body, 0); err != nil {
			fault(w, http.StatusInternalServerError, err.(*etsi.Fault))
			return
		}
		w.Header().Set("Content-Type", ContentType)
		etsi.EncodeNotificationResponse(w, ack)
	}))
	defer ap.Close()
	cl := &Client{HTTP: ap.Client()}
	reply, err := cl.Notify(context.Background(), ap.URL+"/ap/callback", n)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(n, got, cmpOpts); d != "" {
		t.Errorf("notification as the AP decoded it (-sent +got):\n%s", d)
	}
	if d := cmp.Diff(ack, reply, cmpOpts); d != "" {
		t.Errorf("reply (-want +got):\n%s", d)
	}
	if _, err := cl.Notify(context.Background(), ap.URL+"/ap/callback", &etsi.MSSStatusResp{}); err == nil {
		t.Error("Notify without MSSP_TransID succeeded")
	}
}

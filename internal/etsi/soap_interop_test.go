package etsi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/testenv"
)

// nodeDir returns the folder of sign.js with its pinned node-soap installed
// (into node_modules, which the repository ignores).
func nodeDir(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.NPMInstall(dir); err != nil {
		t.Fatalf("installing node-soap: %v", err)
	}
	return dir
}

// fakeSigner is an MSSP that serves WSDL and answers the asynchClientServer
// flow: 100 to MSS_Signature, 504 to the first status query, then 502 with
// a signature.
type fakeSigner struct {
	t         *testing.T
	signature []byte
	fault     *Fault // answer to MSS_Signature instead, if set

	mu       sync.Mutex
	requests []any
}

func (s *fakeSigner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		if r.URL.Path == "/wsdl" || r.URL.Path == "/soap/services/MSS_SignaturePort" && r.URL.RawQuery == "wsdl" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.Write(WSDL(scheme + "://" + r.Host))
			return
		}
		http.NotFound(w, r)
		return
	}
	req, err := DecodeRequest(r.Body, 0)
	if err != nil {
		s.t.Errorf("DecodeRequest of node-soap's %s: %v", r.URL.Path, err)
		s.writeFault(w, err.(*Fault))
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	polls := len(s.requests) - 1
	s.mu.Unlock()
	mssp := MSSPInfo{MSSPID: MeshMember{URI: "http://mssp.example.com"}, Instant: time.Now().UTC().Truncate(time.Second)}
	var resp any
	switch m := req.(type) {
	case *MSSSignatureReq:
		if r.URL.Path != "/soap/services/MSS_SignaturePort" {
			s.t.Errorf("MSS_SignatureReq posted to %s", r.URL.Path)
		}
		if s.fault != nil {
			s.writeFault(w, s.fault)
			return
		}
		resp = &MSSSignatureResp{
			MessageAbstract: MessageAbstract{MajorVersion: 1, MinorVersion: 1, APInfo: m.APInfo, MSSPInfo: mssp},
			MSSPTransID:     "M1", MobileUser: m.MobileUser, Status: NewStatus(CodeRequestOK),
		}
	case *MSSStatusReq:
		if r.URL.Path != "/soap/services/MSS_StatusQueryPort" {
			s.t.Errorf("MSS_StatusReq posted to %s", r.URL.Path)
		}
		sr := &MSSStatusResp{
			MessageAbstract: MessageAbstract{MajorVersion: 1, MinorVersion: 1, APInfo: m.APInfo, MSSPInfo: mssp},
			MobileUser:      MobileUser{MSISDN: "+358401234567"},
			Status:          NewStatus(CodeOutstandingTransaction),
		}
		if polls > 1 {
			sr.Status = NewStatus(CodeValidSignature)
			sr.MSSSignature = &Signature{Base64Signature: s.signature}
		}
		resp = sr
	default:
		s.t.Errorf("unexpected %T", req)
		s.writeFault(w, NewFault(CodeWrongParam, "unexpected message"))
		return
	}
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	if err := EncodeResponse(w, resp); err != nil {
		s.t.Error(err)
	}
}

func (s *fakeSigner) writeFault(w http.ResponseWriter, f *Fault) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	EncodeFault(w, f)
}

// nodeResult is what sign.js prints.
type nodeResult struct {
	StatusCode  int    `json:"statusCode"`
	MSSPTransID string `json:"msspTransID"`
	APTransID   string `json:"apTransID"`
	Polls       int    `json:"polls"`
	Signature   string `json:"signature"`
	Error       string `json:"error"`
	Fault       *struct {
		Code, Subcode, DetailSubcode, Reason, Detail string
	} `json:"fault"`
}

// runSign runs sign.js against baseURL with extra environment settings.
func runSign(t *testing.T, dir, baseURL string, env ...string) (nodeResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "sign.js", baseURL, "http://ap.example.com", "ap-secret", "+358401234567", "Login to Example Bank")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MSS_FIRST_POLL_MS=10", "MSS_POLL_INTERVAL_MS=10", "MSS_MAX_POLLS=5", "MSS_USER_LANG=EN",
		"MSS_SIGNATURE_PROFILE=http://mobileid.dev/profile/auth", "MSS_MSSP_ID=http://mssp.example.com",
		"MSS_TLS_CA=", "MSS_TLS_CERT=", "MSS_TLS_KEY=")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res nodeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node sign.js output %q: %v (exit: %v)\n%s", out, err, runErr, stderr.String())
	}
	return res, runErr
}

func TestNodeSOAPInterop(t *testing.T) {
	dir := nodeDir(t)
	cases := []struct {
		name  string
		mtls  bool
		fault *Fault
	}{
		{name: "http"},
		{name: "mutual TLS", mtls: true},
		{name: "fault", fault: NewDetailedFault(CodeUnknownClient, DetailUserNotRegistered, "not a Mobile ID user")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &fakeSigner{t: t, signature: []byte("\x30\x82\x01\x0a fake CMS"), fault: c.fault}
			srv := httptest.NewUnstartedServer(s)
			var env []string
			if c.mtls {
				env = interopPKI(t, srv)
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()

			res, err := runSign(t, dir, srv.URL, env...)
			t.Logf("sign.js: %+v", res)
			if c.fault != nil {
				if err == nil {
					t.Fatalf("sign.js succeeded on a fault: %+v", res)
				}
				if res.Fault == nil || res.Fault.Subcode != "mss:_105" || res.Fault.DetailSubcode != "mss:_1053" || res.Fault.Reason != "UNKNOWN_CLIENT" {
					t.Errorf("sign.js fault = %+v, want mss:_105/mss:_1053 UNKNOWN_CLIENT", res.Fault)
				}
				return
			}
			if err != nil {
				t.Fatalf("sign.js: %v: %+v", err, res)
			}
			want := nodeResult{StatusCode: 502, MSSPTransID: "M1", APTransID: res.APTransID, Polls: 2, Signature: base64.StdEncoding.EncodeToString(s.signature)}
			if d := cmp.Diff(want, res); d != "" {
				t.Errorf("sign.js result (-want +got):\n%s", d)
			}

			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.requests) != 3 {
				t.Fatalf("MSSP got %d requests, want 3", len(s.requests))
			}
			sig, ok := s.requests[0].(*MSSSignatureReq)
			if !ok {
				t.Fatalf("first request is %T", s.requests[0])
			}
			if sig.APInfo.APTransID != res.APTransID {
				t.Errorf("AP_TransID = %q, sign.js reported %q", sig.APInfo.APTransID, res.APTransID)
			}
			sig.APInfo.APTransID, sig.APInfo.Instant = "", time.Time{}
			wantSig := &MSSSignatureReq{
				MessageAbstract: MessageAbstract{MajorVersion: 1, MinorVersion: 1,
					APInfo:   APInfo{APID: "http://ap.example.com", APPWD: "ap-secret"},
					MSSPInfo: MSSPInfo{MSSPID: MeshMember{URI: "http://mssp.example.com"}}},
				TimeOut: 80, MessagingMode: AsynchClientServer,
				MobileUser:         MobileUser{MSISDN: "+358401234567"},
				DataToBeSigned:     Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Login to Example Bank"},
				SignatureProfile:   &MSSURI{URI: "http://mobileid.dev/profile/auth"},
				AdditionalServices: []Service{{Description: MSSURI{URI: ServiceUserLang}, UserLang: "EN"}},
			}
			if d := cmp.Diff(wantSig, sig, cmpOpts); d != "" {
				t.Errorf("MSS_SignatureReq from node-soap (-want +got):\n%s", d)
			}
			for i, r := range s.requests[1:] {
				st, ok := r.(*MSSStatusReq)
				if !ok || st.MSSPTransID != "M1" || st.APInfo.APID != "http://ap.example.com" {
					t.Errorf("status query %d = %+v, want MSS_StatusReq for M1", i+1, r)
				}
			}
		})
	}
}

// interopPKI configures srv to require a client certificate and returns
// the sign.js settings (PEM files) that satisfy it.
func interopPKI(t *testing.T, srv *httptest.Server) []string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Interop CA"},
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
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(serial int64, eku x509.ExtKeyUsage, ips []net.IP) (*ecdsa.PrivateKey, []byte) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: strings.Repeat("x", int(serial))},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return key, der
	}
	srvKey, srvDER := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cliKey, cliDER := issue(3, x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"MSS_TLS_CA=" + writePEM("ca.pem", "CERTIFICATE", caDER),
		"MSS_TLS_CERT=" + writePEM("ap.pem", "CERTIFICATE", cliDER),
		"MSS_TLS_KEY=" + writePEM("ap-key.pem", "PRIVATE KEY", keyDER),
	}
}

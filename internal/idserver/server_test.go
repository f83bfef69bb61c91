package idserver

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// fakeMSSP answers MSS_Signature with 100 and a transaction ID, and
// MSS_StatusQuery with 504 until final is set, then with final.
type fakeMSSP struct {
	mu      sync.Mutex
	signs   []*etsi.MSSSignatureReq
	statusN int
	signErr error
	final   func() (*etsi.MSSStatusResp, error)
}

func (m *fakeMSSP) Sign(ctx context.Context, req *etsi.MSSSignatureReq) (*etsi.MSSSignatureResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signs = append(m.signs, req)
	if m.signErr != nil {
		return nil, m.signErr
	}
	return &etsi.MSSSignatureResp{MSSPTransID: "M" + req.APInfo.APTransID, Status: etsi.NewStatus(etsi.CodeRequestOK)}, nil
}

func (m *fakeMSSP) Status(ctx context.Context, req *etsi.MSSStatusReq) (*etsi.MSSStatusResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statusN++
	if m.final == nil {
		return &etsi.MSSStatusResp{Status: etsi.NewStatus(etsi.CodeOutstandingTransaction)}, nil
	}
	return m.final()
}

func (m *fakeMSSP) Receipt(ctx context.Context, req *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error) {
	return &etsi.MSSReceiptResp{Status: etsi.NewStatus(etsi.CodeRequestOK)}, nil
}

func (m *fakeMSSP) setFinal(f func() (*etsi.MSSStatusResp, error)) {
	m.mu.Lock()
	m.final = f
	m.mu.Unlock()
}

type fakeDirectory map[string]*Person

func (d fakeDirectory) Find(ctx context.Context, phone string) (*Person, error) {
	if p, ok := d[phone]; ok {
		return p, nil
	}
	return nil, ErrNotFound
}

type testServer struct {
	srv  *Server
	mssp *fakeMSSP
	url  string
	stop func()
}

func newTestServer(t *testing.T, db *store.DB, m *fakeMSSP) *testServer {
	t.Helper()
	rps, err := NewRPs(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rps.Get(context.Background(), testUUID); err != nil {
		if err := rps.Add(context.Background(), RPConfig{UUID: testUUID, RP: RP{Name: "Test Bank",
			Services: []Service{ServiceAuthentication, ServiceSignature, ServiceCertificate}}}); err != nil {
			t.Fatal(err)
		}
	}
	dir := fakeDirectory{"+37200000766": {Country: "EE", NationalID: "60001019906"}}
	srv, err := New(Config{APID: "http://id.example/ap", APPassword: "pw", Roots: x509.NewCertPool(), PollInterval: 10 * time.Millisecond},
		db, rps, dir, m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(ctx) })
	ts := &testServer{srv: srv, mssp: m, url: hs.URL + "/mid-api", stop: func() { hs.Close(); cancel(); wg.Wait() }}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ts.url+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func startBody() map[string]any {
	b := validBody()
	b["relyingPartyUUID"], b["relyingPartyName"] = testUUID, "test bank"
	b["displayText"], b["displayTextFormat"], b["language"] = "Log in?", "GSM-7", "RUS"
	return b
}

func (ts *testServer) start(t *testing.T, kind string, body map[string]any) string {
	t.Helper()
	code, out := ts.do(t, http.MethodPost, "/"+kind, body)
	id, _ := out["sessionID"].(string)
	if code != http.StatusOK || !validUUID(id) {
		t.Fatalf("POST /%s = %d %v", kind, code, out)
	}
	return id
}

func (ts *testServer) poll(t *testing.T, kind, id string) (int, map[string]any) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, out := ts.do(t, http.MethodGet, "/"+kind+"/session/"+id+"?timeoutMs=1000", nil)
		if code != http.StatusOK || out["state"] != StateRunning || time.Now().After(deadline) {
			return code, out
		}
	}
}

// TestSessionRequest checks what the ID Server asks the MSSP for.
func TestSessionRequest(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db, &fakeMSSP{})
		hash, _ := base64.StdEncoding.DecodeString(validBody()["hash"].(string))
		for _, kind := range []string{KindAuthentication, KindSignature} {
			ts.start(t, kind, startBody())
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			ts.mssp.mu.Lock()
			n := len(ts.mssp.signs)
			ts.mssp.mu.Unlock()
			if n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("MSSP got %d requests, want 2", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		ts.mssp.mu.Lock()
		defer ts.mssp.mu.Unlock()
		profiles := map[string]bool{}
		for _, req := range ts.mssp.signs {
			profiles[req.SignatureProfile.URI] = true
			want := &etsi.MSSSignatureReq{
				MessageAbstract: req.MessageAbstract, TimeOut: 120, MessagingMode: etsi.AsynchClientServer,
				MobileUser:        etsi.MobileUser{MSISDN: "+37200000766"},
				DataToBeSigned:    etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: base64.StdEncoding.EncodeToString(hash)},
				DataToBeDisplayed: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Test Bank: Log in?"},
				SignatureProfile:  req.SignatureProfile,
				MSSFormat:         &etsi.MSSURI{URI: etsi.FormatFiComPKCS1},
				AdditionalServices: []etsi.Service{
					{Description: etsi.MSSURI{URI: etsi.ServiceEventID}, EventID: VerificationCode(hash)},
					{Description: etsi.MSSURI{URI: etsi.ServiceUserLang}, UserLang: "ru"},
				},
			}
			if d := cmp.Diff(want, req); d != "" {
				t.Errorf("MSS_SignatureReq (-want +got):\n%s", d)
			}
			if err := etsi.Validate(req); err != nil {
				t.Errorf("the request is not valid TS 102 204: %v", err)
			}
			if a := req.APInfo; a.APID != "http://id.example/ap" || a.APPWD != "pw" || !strings.HasPrefix(a.APTransID, "ID") {
				t.Errorf("AP_Info = %+v", a)
			}
		}
		if !profiles[ProfileAuthentication] || !profiles[ProfileSigning] {
			t.Errorf("profiles used: %v, want the authentication and the signing profile", profiles)
		}
	})
}

// TestSessionOutcomes maps the MSSP's answers to MID results.
func TestSessionOutcomes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		cases := []struct {
			name     string
			signErr  error
			final    func() (*etsi.MSSStatusResp, error)
			code     int
			result   string
			wantSign bool
		}{
			{"cancel", nil, func() (*etsi.MSSStatusResp, error) {
				return nil, &etsi.Fault{Code: etsi.CodeUserCancel, DetailCode: 4011}
			}, 200, ResultUserCancelled, true},
			{"time-out", nil, func() (*etsi.MSSStatusResp, error) { return nil, &etsi.Fault{Code: etsi.CodeExpiredTransaction} }, 200, ResultTimeout, true},
			{"phone absent", nil, func() (*etsi.MSSStatusResp, error) {
				return nil, &etsi.Fault{Code: etsi.CodeOTAError, DetailCode: etsi.DetailMECommunicationError}
			}, 200, ResultPhoneAbsent, true},
			{"SIM error", nil, func() (*etsi.MSSStatusResp, error) {
				return nil, &etsi.Fault{Code: etsi.CodeInternalError, DetailCode: etsi.DetailSIMApplicationError}
			}, 200, ResultSIMError, true},
			{"invalid signature", nil, func() (*etsi.MSSStatusResp, error) {
				return &etsi.MSSStatusResp{Status: etsi.NewStatus(etsi.CodeInvalidSignature)}, nil
			}, 200, ResultSignatureHashMismatch, true},
			{"revoked", nil, func() (*etsi.MSSStatusResp, error) {
				return &etsi.MSSStatusResp{Status: etsi.NewStatus(etsi.CodeRevokedCertificate)}, nil
			}, 200, ResultNotMIDClient, true},
			{"unknown at the MSSP", &etsi.Fault{Code: etsi.CodeUnknownClient, DetailCode: 1052}, nil, 200, ResultNotMIDClient, true},
			{"MSSP refuses the AP", &etsi.Fault{Code: etsi.CodeUnauthorizedAccess}, nil, 500, "", true},
			{"signature without PKCS1", nil, func() (*etsi.MSSStatusResp, error) {
				return &etsi.MSSStatusResp{Status: etsi.NewStatus(etsi.CodeValidSignature)}, nil
			}, 500, "", true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				m := &fakeMSSP{signErr: c.signErr, final: c.final}
				ts := newTestServer(t, db, m)
				id := ts.start(t, KindAuthentication, startBody())
				code, out := ts.poll(t, KindAuthentication, id)
				if code != c.code || (c.code == 200 && (out["state"] != StateComplete || out["result"] != c.result)) {
					t.Errorf("status = %d %v, want %d %s", code, out, c.code, c.result)
				}
				if c.code == 500 && out["error"] != "Internal error" {
					t.Errorf("status = %v, want the MID error JSON", out)
				}
				if out["signature"] != nil || out["cert"] != nil {
					t.Errorf("status without a signature has %v", out)
				}
			})
		}

		// A national ID that is not the phone's owner's: NOT_MID_CLIENT,
		// and nothing reaches the MSSP.
		m := &fakeMSSP{}
		ts := newTestServer(t, db, m)
		for _, edit := range []func(map[string]any){
			func(b map[string]any) { b["nationalIdentityNumber"] = "38001085718" },
			func(b map[string]any) { b["phoneNumber"] = "+37200000767" },
		} {
			b := startBody()
			edit(b)
			if code, out := ts.poll(t, KindSignature, ts.start(t, KindSignature, b)); code != 200 || out["result"] != ResultNotMIDClient {
				t.Errorf("status = %d %v, want NOT_MID_CLIENT", code, out)
			}
		}
		m.mu.Lock()
		if len(m.signs) != 0 {
			t.Errorf("MSSP got %d requests for people who are not MID clients", len(m.signs))
		}
		m.mu.Unlock()
	})
}

// TestSessionResumes stops a server while the user has not answered and
// starts another on the same database, which finishes the session with
// the MSSP transaction the first one started.
func TestSessionResumes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		m := &fakeMSSP{}
		first := newTestServer(t, db, m)
		id := first.start(t, KindAuthentication, startBody())
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			m.mu.Lock()
			polled := m.statusN
			m.mu.Unlock()
			if polled > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first server never asked for the status")
			}
		}
		first.stop()
		m.setFinal(func() (*etsi.MSSStatusResp, error) { return nil, &etsi.Fault{Code: etsi.CodeUserCancel} })
		second := newTestServer(t, storetest.Reopen(t, db), m)
		if code, out := second.poll(t, KindAuthentication, id); code != 200 || out["result"] != ResultUserCancelled {
			t.Errorf("status after the restart = %d %v, want USER_CANCELLED", code, out)
		}
		m.mu.Lock()
		if len(m.signs) != 1 {
			t.Errorf("MSSP got %d MSS_Signature requests, want 1", len(m.signs))
		}
		m.mu.Unlock()
	})
}

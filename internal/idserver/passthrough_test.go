package idserver

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// RPs of the pass-through tests.
const (
	ptBankUUID   = "8c0d5d3e-7f31-4b7e-9a53-2f1c6f0b9d11"
	ptBankAPID   = "http://bank.example/etsi"
	ptShopUUID   = "1f4e2a9b-3c5d-4e6f-8a7b-9c0d1e2f3a4b"
	ptShopAPID   = "urn:example:shop"
	ptOfficeUUID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
	ptOfficeAPID = "http://office.example/etsi"
	ptSlowUUID   = "0a1b2c3d-4e5f-4061-8728-394a5b6c7d8e"
	ptSlowAPID   = "http://slow.example/etsi"
	ptFormerUUID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	ptFormerAPID = "http://former.example/etsi"
)

// etsiMSSP is an MSSP for the pass-through: it records what it is sent
// and answers as the real one does, echoing the caller's AP_Info. When
// err is set, every call returns it.
type etsiMSSP struct {
	mu       sync.Mutex
	signs    []*etsi.MSSSignatureReq
	statuses []*etsi.MSSStatusReq
	receipts []*etsi.MSSReceiptReq
	profiles []*etsi.MSSProfileReq
	err      error
	n        int
}

// header is the MSSP's header of an answer to a request with header m.
func (m *etsiMSSP) header(a etsi.MessageAbstract) etsi.MessageAbstract {
	a.APInfo.APPWD = ""
	a.MSSPInfo = etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mssp.example"}, Instant: time.Now().UTC().Truncate(time.Second)}
	return a
}

var ptSignature = &etsi.Signature{PKCS1: &etsi.PKCS1{SignatureValue: []byte{1, 2, 3}, X509Certificate: []byte{4, 5, 6}}}

func (m *etsiMSSP) Sign(ctx context.Context, req *etsi.MSSSignatureReq) (*etsi.MSSSignatureResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signs = append(m.signs, req)
	if m.err != nil {
		return nil, m.err
	}
	m.n++
	resp := &etsi.MSSSignatureResp{MessageAbstract: m.header(req.MessageAbstract), MSSPTransID: fmt.Sprintf("T%d", m.n),
		MobileUser: req.MobileUser, SignatureProfile: req.SignatureProfile, Status: etsi.NewStatus(etsi.CodeRequestOK)}
	if req.MessagingMode == etsi.Synch {
		resp.MSSSignature, resp.Status = ptSignature, etsi.NewStatus(etsi.CodeValidSignature)
	}
	return resp, nil
}

func (m *etsiMSSP) Status(ctx context.Context, req *etsi.MSSStatusReq) (*etsi.MSSStatusResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statuses = append(m.statuses, req)
	if m.err != nil {
		return nil, m.err
	}
	return &etsi.MSSStatusResp{MessageAbstract: m.header(req.MessageAbstract), MSSPTransID: req.MSSPTransID,
		MobileUser: etsi.MobileUser{MSISDN: "+37200000766"}, MSSSignature: ptSignature, Status: etsi.NewStatus(etsi.CodeValidSignature)}, nil
}

func (m *etsiMSSP) Receipt(ctx context.Context, req *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.receipts = append(m.receipts, req)
	if m.err != nil {
		return nil, m.err
	}
	return &etsi.MSSReceiptResp{MessageAbstract: m.header(req.MessageAbstract), Status: etsi.NewStatus(etsi.CodeRequestOK)}, nil
}

func (m *etsiMSSP) Profile(ctx context.Context, req *etsi.MSSProfileReq) (*etsi.MSSProfileResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.profiles = append(m.profiles, req)
	if m.err != nil {
		return nil, m.err
	}
	return &etsi.MSSProfileResp{MessageAbstract: m.header(req.MessageAbstract), Status: etsi.NewStatus(etsi.CodeRequestOK),
		SignatureProfile: []etsi.MSSURI{{URI: ProfileAuthentication}, {URI: ProfileSigning}}}, nil
}

func (m *etsiMSSP) setErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// calls returns how many requests the MSSP got.
func (m *etsiMSSP) calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.signs) + len(m.statuses) + len(m.receipts) + len(m.profiles)
}

// ptServer is an ID Server with its ETSI pass-through on a test HTTP
// server, and RPs of every kind.
type ptServer struct {
	srv  *Server
	db   *store.DB
	mssp *etsiMSSP
	url  string
	tx   int
}

func newPassThrough(t testing.TB, db *store.DB) *ptServer {
	t.Helper()
	ctx := context.Background()
	rps, err := NewRPs(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	etsiOnly := []Service{ServiceETSI}
	for _, c := range []RPConfig{
		{UUID: ptBankUUID, RP: RP{Name: "ETSI Bank", Services: etsiOnly, APID: ptBankAPID}},
		{UUID: ptShopUUID, RP: RP{Name: "ETSI Shop", Services: []Service{ServiceAuthentication, ServiceETSI}, APID: ptShopAPID}},
		{UUID: ptOfficeUUID, RP: RP{Name: "Office", Services: etsiOnly, APID: ptOfficeAPID,
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		{UUID: ptSlowUUID, RP: RP{Name: "Slow", Services: etsiOnly, APID: ptSlowAPID, RateLimit: 0.001, Burst: 1}},
		{UUID: ptFormerUUID, RP: RP{Name: "Former", Services: etsiOnly, APID: ptFormerAPID}},
		{UUID: testUUID, RP: RP{Name: "Test Bank", Services: []Service{ServiceAuthentication}}},
	} {
		if err := rps.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// An RP whose etsi service was taken away behind the registry's back.
	if _, err := db.ExecContext(ctx, `UPDATE idserver_rps SET services = '["authentication"]' WHERE ap_id = $1`, ptFormerAPID); err != nil {
		t.Fatal(err)
	}
	m := &etsiMSSP{}
	dir := fakeDirectory{"+37200000766": {Country: "EE", NationalID: "60001019906"}}
	srv, err := New(Config{APID: "http://id.example/ap", APPassword: "pw", Roots: x509.NewCertPool()}, db, rps, dir, m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.ETSIHandler())
	t.Cleanup(hs.Close)
	return &ptServer{srv: srv, db: db, mssp: m, url: hs.URL}
}

// abstract is a request header of the RP apID with password pwd and a
// fresh AP_TransID.
func (ts *ptServer) abstract(apID, pwd string) etsi.MessageAbstract {
	ts.tx++
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   etsi.APInfo{APID: apID, APPWD: pwd, APTransID: fmt.Sprintf("RP%d", ts.tx), Instant: time.Now().UTC().Truncate(time.Second)},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mobileid.dev/mssp"}},
	}
}

// signReq is an MSS_SignatureReq of the RP apID over a digest.
func (ts *ptServer) signReq(apID, pwd string, mode etsi.MessagingMode) *etsi.MSSSignatureReq {
	return &etsi.MSSSignatureReq{
		MessageAbstract: ts.abstract(apID, pwd), MessagingMode: mode, TimeOut: 60,
		MobileUser:         etsi.MobileUser{MSISDN: "+37200000766"},
		DataToBeSigned:     etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: base64.StdEncoding.EncodeToString(make([]byte, 32))},
		DataToBeDisplayed:  &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Pay 10 EUR"},
		SignatureProfile:   &etsi.MSSURI{URI: ProfileSigning},
		MSSFormat:          &etsi.MSSURI{URI: etsi.FormatFiComPKCS1},
		AdditionalServices: []etsi.Service{{Description: etsi.MSSURI{URI: etsi.ServiceEventID}, EventID: "AB12"}},
	}
}

// post sends raw to the pass-through, SOAP or JSON, and returns the
// HTTP status and body.
func (ts *ptServer) post(t testing.TB, isJSON bool, body []byte) (int, []byte) {
	t.Helper()
	path, ct := ETSIPathSignature, "application/soap+xml; charset=utf-8"
	if isJSON {
		path, ct = ETSIPathRESTSign, "application/json"
	}
	resp, err := http.Post(ts.url+path, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// ptEncode writes msg as SOAP or JSON.
func ptEncode(t testing.TB, isJSON bool, msg any) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	if isJSON {
		err = etsi.EncodeJSON(&b, msg)
	} else {
		err = etsi.EncodeRequest(&b, msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// call sends msg and returns the decoded answer, or the fault.
func (ts *ptServer) call(t testing.TB, isJSON bool, msg any) (any, *etsi.Fault) {
	t.Helper()
	code, body := ts.post(t, isJSON, ptEncode(t, isJSON, msg))
	return ptDecodeAnswer(t, isJSON, code, body)
}

// ptDecodeAnswer decodes an answer of the pass-through: a response with
// HTTP 200 or a fault with HTTP 500.
func ptDecodeAnswer(t testing.TB, isJSON bool, code int, body []byte) (any, *etsi.Fault) {
	t.Helper()
	if code == http.StatusInternalServerError {
		var f *etsi.Fault
		var err error
		if isJSON {
			f, err = etsi.DecodeJSONFault(bytes.NewReader(body), 0)
		} else {
			f, err = etsi.DecodeFault(bytes.NewReader(body), 0)
		}
		if err != nil {
			t.Fatalf("HTTP 500 without a fault (%v): %s", err, body)
		}
		return nil, f
	}
	if code != http.StatusOK {
		t.Fatalf("HTTP status %d: %s", code, body)
	}
	var v any
	var err error
	if isJSON {
		v, err = etsi.DecodeJSONResponse(bytes.NewReader(body), 0)
	} else {
		v, err = etsi.DecodeResponse(bytes.NewReader(body), 0)
	}
	if err != nil {
		t.Fatalf("HTTP 200 without a response (%v): %s", err, body)
	}
	return v, nil
}

// counts returns the rows of the pass-through's tables.
func (ts *ptServer) counts(t testing.TB) [2]int {
	t.Helper()
	var n [2]int
	for i, table := range []string{"idserver_etsi_transids", "idserver_etsi_tx"} {
		if err := ts.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n[i]); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

var ptCodecs = []struct {
	name string
	json bool
}{{"SOAP", false}, {"JSON", true}}

// ptWantHeader checks that an answer carries the RP's AP_Info, without its
// password, and the MSSP's MSSP_Info.
func ptWantHeader(t testing.TB, got etsi.MessageAbstract, req etsi.MessageAbstract) {
	t.Helper()
	want := req.APInfo
	want.APPWD = ""
	if d := cmp.Diff(want, got.APInfo); d != "" {
		t.Errorf("AP_Info of the answer (-want +got):\n%s", d)
	}
	if got.MSSPInfo.MSSPID.URI != "http://mssp.example" {
		t.Errorf("MSSP_Info = %+v, want the MSSP's", got.MSSPInfo)
	}
}

// ptWantOwnAbstract checks that a request passed on carries the ID Server's
// own AP_Info with a fresh AP_TransID.
func ptWantOwnAbstract(t testing.TB, a etsi.MessageAbstract, rpTransID string) {
	t.Helper()
	if a.APInfo.APID != "http://id.example/ap" || a.APInfo.APPWD != "pw" || a.APInfo.APURL != "" ||
		!strings.HasPrefix(a.APInfo.APTransID, "ID") || len(a.APInfo.APTransID) != 26 || a.APInfo.APTransID == rpTransID {
		t.Errorf("AP_Info passed on = %+v, want the ID Server's with a fresh AP_TransID", a.APInfo)
	}
	if d := time.Since(a.APInfo.Instant); d < -time.Second || d > 5*time.Second {
		t.Errorf("Instant passed on = %v, want now", a.APInfo.Instant)
	}
	if a.MSSPInfo.MSSPID.URI != DefaultMSSPID {
		t.Errorf("MSSP_ID passed on = %+v", a.MSSPInfo)
	}
}

// TestPassThroughSign passes a synchronous MSS_Signature on and checks
// what is rewritten both ways.
func TestPassThroughSign(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newPassThrough(t, db)
		for i, c := range ptCodecs {
			t.Run(c.name, func(t *testing.T) {
				req := ts.signReq(ptBankAPID, ptBankUUID, etsi.Synch)
				req.APInfo.APURL = "http://bank.example/cb"
				v, f := ts.call(t, c.json, req)
				if f != nil {
					t.Fatalf("MSS_Signature = fault %v", f)
				}
				resp := v.(*etsi.MSSSignatureResp)
				ptWantHeader(t, resp.MessageAbstract, req.MessageAbstract)
				if resp.MSSPTransID != fmt.Sprintf("T%d", i+1) || resp.Status.StatusCode.Value != etsi.CodeValidSignature ||
					!cmp.Equal(resp.MSSSignature, ptSignature) {
					t.Errorf("MSS_SignatureResp = %+v, want the MSSP's", resp)
				}

				sent := ts.mssp.signs[len(ts.mssp.signs)-1]
				ptWantOwnAbstract(t, sent.MessageAbstract, req.APInfo.APTransID)
				want := *req
				want.MessageAbstract = sent.MessageAbstract
				want.DataToBeDisplayed = &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "ETSI Bank: Pay 10 EUR"}
				if d := cmp.Diff(&want, sent); d != "" {
					t.Errorf("MSS_SignatureReq passed on (-want +got):\n%s", d)
				}

				var key, apTransID, own, msisdn string
				if err := db.QueryRowContext(context.Background(), `SELECT rp_key, ap_trans_id, id_ap_trans_id, msisdn FROM idserver_etsi_tx WHERE mssp_trans_id = $1`,
					resp.MSSPTransID).Scan(&key, &apTransID, &own, &msisdn); err != nil {
					t.Fatalf("transaction owner: %v", err)
				}
				if key != uuidKey(ptBankUUID) || apTransID != req.APInfo.APTransID || own != sent.APInfo.APTransID || msisdn != "+37200000766" {
					t.Errorf("transaction owner = %s %s %s %s", key, apTransID, own, msisdn)
				}
			})
		}

		// The real client works against the pass-through unchanged.
		client := &etsiclient.Client{BaseURL: ts.url}
		req := ts.signReq(ptBankAPID, ptBankUUID, etsi.Synch)
		resp, err := client.Sign(context.Background(), req)
		if err != nil || resp.APInfo.APTransID != req.APInfo.APTransID || resp.Status.StatusCode.Value != etsi.CodeValidSignature {
			t.Errorf("etsiclient Sign = %+v, %v", resp, err)
		}
	})
}

func TestDisplayData(t *testing.T) {
	text := etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Contract 7"}
	digest := etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: "AAAA"}
	cases := []struct {
		name string
		dtbs etsi.Data
		dtbd *etsi.Data
		want etsi.Data
	}{
		{"display text", digest, &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Log in?"},
			etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "ETSI Bank: Log in?"}},
		{"blank display text", digest, &etsi.Data{Value: "  "}, etsi.Data{Value: "ETSI Bank"}},
		{"display text kept as sent", digest, &etsi.Data{MimeType: "text/html", Value: "<b>x</b>"},
			etsi.Data{MimeType: "text/html", Value: "ETSI Bank: <b>x</b>"}},
		{"text to sign", text, nil, etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "ETSI Bank: Contract 7"}},
		{"text without types", etsi.Data{Value: "Contract 8"}, nil, etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "ETSI Bank: Contract 8"}},
		{"digest", digest, nil, etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "ETSI Bank"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := displayData("ETSI Bank", &etsi.MSSSignatureReq{DataToBeSigned: c.dtbs, DataToBeDisplayed: c.dtbd})
			if *got != c.want {
				t.Errorf("displayData(%+v, %+v) = %+v, want %+v", c.dtbs, c.dtbd, *got, c.want)
			}
		})
	}
}

// TestPassThroughAsynch starts an asynchronous transaction and asks for
// its status, sends a receipt on it and queries a profile; other RPs
// cannot reach the transaction.
func TestPassThroughAsynch(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newPassThrough(t, db)
		for _, c := range ptCodecs {
			t.Run(c.name, func(t *testing.T) {
				req := ts.signReq(ptBankAPID, ptBankUUID, etsi.AsynchClientServer)
				if c.json {
					req.MessagingMode = etsi.Asynch
				}
				v, f := ts.call(t, c.json, req)
				if f != nil {
					t.Fatalf("MSS_Signature = fault %v", f)
				}
				started := v.(*etsi.MSSSignatureResp)
				if started.Status.StatusCode.Value != etsi.CodeRequestOK || started.MSSPTransID == "" {
					t.Fatalf("MSS_SignatureResp = %+v, want 100 with an MSSP_TransID", started)
				}
				tid := started.MSSPTransID

				st := &etsi.MSSStatusReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MSSPTransID: tid}
				v, f = ts.call(t, c.json, st)
				if f != nil {
					t.Fatalf("MSS_StatusQuery = fault %v", f)
				}
				status := v.(*etsi.MSSStatusResp)
				ptWantHeader(t, status.MessageAbstract, st.MessageAbstract)
				if status.MSSPTransID != tid || status.Status.StatusCode.Value != etsi.CodeValidSignature || !cmp.Equal(status.MSSSignature, ptSignature) {
					t.Errorf("MSS_StatusResp = %+v", status)
				}
				sentStatus := ts.mssp.statuses[len(ts.mssp.statuses)-1]
				ptWantOwnAbstract(t, sentStatus.MessageAbstract, st.APInfo.APTransID)
				if sentStatus.MSSPTransID != tid {
					t.Errorf("MSSP_TransID passed on = %q, want %q", sentStatus.MSSPTransID, tid)
				}

				rc := &etsi.MSSReceiptReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MSSPTransID: tid,
					MobileUser: etsi.MobileUser{MSISDN: "+37200000766"}, Message: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Paid"}}
				v, f = ts.call(t, c.json, rc)
				if f != nil {
					t.Fatalf("MSS_Receipt = fault %v", f)
				}
				ptWantHeader(t, v.(*etsi.MSSReceiptResp).MessageAbstract, rc.MessageAbstract)
				sentReceipt := ts.mssp.receipts[len(ts.mssp.receipts)-1]
				ptWantOwnAbstract(t, sentReceipt.MessageAbstract, rc.APInfo.APTransID)
				want := *rc
				want.MessageAbstract = sentReceipt.MessageAbstract
				if d := cmp.Diff(&want, sentReceipt); d != "" {
					t.Errorf("MSS_ReceiptReq passed on (-want +got):\n%s", d)
				}

				pq := &etsi.MSSProfileReq{MessageAbstract: ts.abstract(ptShopAPID, ptShopUUID), MobileUser: etsi.MobileUser{MSISDN: "+37200000766"}}
				v, f = ts.call(t, c.json, pq)
				if f != nil {
					t.Fatalf("MSS_ProfileQuery = fault %v", f)
				}
				profile := v.(*etsi.MSSProfileResp)
				ptWantHeader(t, profile.MessageAbstract, pq.MessageAbstract)
				if len(profile.SignatureProfile) != 2 {
					t.Errorf("MSS_ProfileResp = %+v", profile)
				}
				sentProfile := ts.mssp.profiles[len(ts.mssp.profiles)-1]
				ptWantOwnAbstract(t, sentProfile.MessageAbstract, pq.APInfo.APTransID)
				if sentProfile.MobileUser != pq.MobileUser {
					t.Errorf("MobileUser passed on = %+v", sentProfile.MobileUser)
				}
			})
		}
	})
}

// TestPassThroughRefusals sends requests the ID Server must refuse: each
// gets its fault, reaches no MSSP and stores nothing.
func TestPassThroughRefusals(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newPassThrough(t, db)
		// A transaction of the bank, and an AP_TransID it has used.
		used := ts.signReq(ptBankAPID, ptBankUUID, etsi.AsynchClientServer)
		v, f := ts.call(t, false, used)
		if f != nil {
			t.Fatal(f)
		}
		bankTx := v.(*etsi.MSSSignatureResp).MSSPTransID

		sign := func(edit func(*etsi.MSSSignatureReq)) func() any {
			return func() any {
				r := ts.signReq(ptBankAPID, ptBankUUID, etsi.Synch)
				edit(r)
				return r
			}
		}
		cases := []struct {
			name   string
			msg    func() any // nil for raw
			raw    map[bool][]byte
			code   etsi.Code
			detail int
			text   string
		}{
			{name: "wrong password", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APPWD = ptShopUUID }), code: 104, text: etsiFaultCredentials},
			{name: "password in upper case", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APPWD = strings.ToUpper(ptBankUUID) }), code: 104, text: etsiFaultCredentials},
			{name: "unknown AP_ID", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID = "http://nobody.example" }), code: 104, text: etsiFaultCredentials},
			{name: "the ID Server's own AP_ID", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID, r.APInfo.APPWD = "http://id.example/ap", "pw" }), code: 104, text: etsiFaultCredentials},
			{name: "RP without the etsi service", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID, r.APInfo.APPWD = ptFormerAPID, ptFormerUUID }), code: 104, text: etsiFaultCredentials},
			{name: "address not allowed", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID, r.APInfo.APPWD = ptOfficeAPID, ptOfficeUUID }), code: 104, text: etsiFaultCredentials},
			{name: "old Instant", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.Instant = r.APInfo.Instant.Add(-6 * time.Minute) }), code: 101},
			{name: "asynchServerServer", msg: sign(func(r *etsi.MSSSignatureReq) {
				r.MessagingMode, r.APInfo.APURL = etsi.AsynchServerServer, "http://bank.example/cb"
			}), code: 101, detail: etsi.DetailIllegalMessagingMode, text: etsiFaultServerServer},
			{name: "duplicate AP_TransID", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APTransID = used.APInfo.APTransID }),
				code: 101, text: fmt.Sprintf(etsiFaultDuplicate, used.APInfo.APTransID)},
			{name: "status of another RP's transaction", msg: func() any {
				return &etsi.MSSStatusReq{MessageAbstract: ts.abstract(ptShopAPID, ptShopUUID), MSSPTransID: bankTx}
			}, code: 101, text: fmt.Sprintf(etsiFaultUnknownTransID, bankTx)},
			{name: "status of an unknown transaction", msg: func() any {
				return &etsi.MSSStatusReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MSSPTransID: "T999"}
			}, code: 101, text: fmt.Sprintf(etsiFaultUnknownTransID, "T999")},
			{name: "receipt on another RP's transaction", msg: func() any {
				return &etsi.MSSReceiptReq{MessageAbstract: ts.abstract(ptShopAPID, ptShopUUID), MSSPTransID: bankTx, Message: &etsi.Data{Value: "Hi"}}
			}, code: 101, text: fmt.Sprintf(etsiFaultUnknownTransID, bankTx)},
			{name: "receipt with a used AP_TransID", msg: func() any {
				a := ts.abstract(ptBankAPID, ptBankUUID)
				a.APInfo.APTransID = used.APInfo.APTransID
				return &etsi.MSSReceiptReq{MessageAbstract: a, MSSPTransID: bankTx, Message: &etsi.Data{Value: "Hi"}}
			}, code: 101, text: fmt.Sprintf(etsiFaultDuplicate, used.APInfo.APTransID)},
			{name: "MSS_Registration", msg: func() any {
				return &etsi.MSSRegistrationReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MobileUser: etsi.MobileUser{MSISDN: "+37200000766"},
					Operation: &etsi.RegistrationOperation{Type: etsi.RegInfo}}
			}, code: 104, text: etsiFaultRegistration},
			{name: "MSS_Registration of an unknown AP", msg: func() any {
				return &etsi.MSSRegistrationReq{MessageAbstract: ts.abstract("http://nobody.example", ptBankUUID), MobileUser: etsi.MobileUser{MSISDN: "+37200000766"},
					Operation: &etsi.RegistrationOperation{Type: etsi.RegInfo}}
			}, code: 104, text: etsiFaultCredentials},
			{name: "malformed", raw: map[bool][]byte{false: []byte(`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>`),
				true: []byte(`{"MSS_SignatureReq": {`)}, code: 101},
			{name: "a response", raw: map[bool][]byte{false: []byte(`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><MSS_SignatureResp xmlns="http://uri.etsi.org/TS102204/v1.1.2#"/></env:Body></env:Envelope>`),
				true: []byte(`{"MSS_SignatureResp": {}}`)}, code: 101},
			{name: "no AP_TransID", msg: sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APTransID = "" }), code: 102},
			{name: "too large", raw: map[bool][]byte{false: bytes.Repeat([]byte(" "), ETSIMaxBody+1), true: bytes.Repeat([]byte(" "), ETSIMaxBody+1)}, code: 103},
		}
		for _, codec := range ptCodecs {
			for _, c := range cases {
				t.Run(codec.name+"/"+c.name, func(t *testing.T) {
					before, calls := ts.counts(t), ts.mssp.calls()
					var body []byte
					if c.msg != nil {
						body = ptEncode(t, codec.json, c.msg())
					} else {
						body = c.raw[codec.json]
					}
					code, out := ts.post(t, codec.json, body)
					v, f := ptDecodeAnswer(t, codec.json, code, out)
					if f == nil {
						t.Fatalf("answer = %+v, want fault %d", v, c.code)
					}
					if f.Code != c.code || f.DetailCode != c.detail || (c.text != "" && f.Detail != c.text) {
						t.Errorf("fault = %v detail %d %q, want %d detail %d %q", f.Code, f.DetailCode, f.Detail, c.code, c.detail, c.text)
					}
					if bytes.Contains(out, []byte(ptBankUUID)) || bytes.Contains(out, []byte(ptShopUUID)) {
						t.Errorf("the fault shows a password: %s", out)
					}
					if after := ts.counts(t); after != before {
						t.Errorf("rows %v, want %v as before", after, before)
					}
					if n := ts.mssp.calls(); n != calls {
						t.Errorf("the MSSP got %d requests", n-calls)
					}
				})
			}
		}

		// Rate limit: the first request passes, the second is refused.
		for i, want := range []etsi.Code{0, 104} {
			_, f := ts.call(t, false, ts.signReq(ptSlowAPID, ptSlowUUID, etsi.AsynchClientServer))
			if (f == nil) != (want == 0) || (f != nil && (f.Code != want || f.Detail != etsiFaultRateLimit)) {
				t.Errorf("request %d of a slow RP = %v, want %v", i, f, want)
			}
		}
	})
}

// TestPassThroughMSSPFaults checks what the RP gets when the MSSP answers
// with a fault or cannot be reached.
func TestPassThroughMSSPFaults(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newPassThrough(t, db)
		unknown := &etsi.Fault{Code: etsi.CodeUnknownClient, DetailCode: etsi.DetailUserDoesNotExist, Detail: "+37200000766 is not a Mobile ID user"}
		cancel := &etsi.Fault{Code: etsi.CodeUserCancel, DetailCode: etsi.DetailUserCancelled, Detail: "cancelled"}
		cases := []struct {
			name   string
			err    error
			want   *etsi.Fault
			reused bool // the AP_TransID may be sent again
		}{
			{"request refused", unknown, unknown, true},
			{"transaction ended", cancel, cancel, false},
			{"ID Server refused", &etsi.Fault{Code: etsi.CodeUnauthorizedAccess, Detail: etsiFaultCredentials}, etsiInternalFault(), true},
			{"transport error", errors.New("etsiclient: posting to https://mssp: connection refused"), etsiInternalFault(), false},
		}
		for _, codec := range ptCodecs {
			for _, c := range cases {
				t.Run(codec.name+"/"+c.name, func(t *testing.T) {
					ts.mssp.setErr(c.err)
					defer ts.mssp.setErr(nil)
					req := ts.signReq(ptBankAPID, ptBankUUID, etsi.Synch)
					_, f := ts.call(t, codec.json, req)
					if !cmp.Equal(f, c.want) {
						t.Errorf("fault = %+v, want %+v", f, c.want)
					}
					ts.mssp.setErr(nil)
					req.APInfo.Instant = time.Now().UTC().Truncate(time.Second)
					_, f = ts.call(t, codec.json, req)
					if reused := f == nil; reused != c.reused {
						t.Errorf("the same AP_TransID again = %v, want accepted %v", f, c.reused)
					}
				})
			}
		}
		// A status query and a receipt pass the MSSP's faults on too.
		v, _ := ts.call(t, false, ts.signReq(ptBankAPID, ptBankUUID, etsi.AsynchClientServer))
		tid := v.(*etsi.MSSSignatureResp).MSSPTransID
		ts.mssp.setErr(cancel)
		if _, f := ts.call(t, false, &etsi.MSSStatusReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MSSPTransID: tid}); !cmp.Equal(f, cancel) {
			t.Errorf("MSS_StatusQuery = %+v, want %+v", f, cancel)
		}
		ts.mssp.setErr(errors.New("down"))
		if _, f := ts.call(t, true, &etsi.MSSProfileReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MobileUser: etsi.MobileUser{MSISDN: "+37200000766"}}); !cmp.Equal(f, etsiInternalFault()) {
			t.Errorf("MSS_ProfileQuery = %+v, want 900", f)
		}
	})
}

// TestPassThroughPrune deletes what is older than the retention.
func TestPassThroughPrune(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newPassThrough(t, db)
		if _, f := ts.call(t, false, ts.signReq(ptBankAPID, ptBankUUID, etsi.AsynchClientServer)); f != nil {
			t.Fatal(f)
		}
		old := time.Now().Add(-ETSIRetention - time.Hour).UnixMicro()
		for _, table := range []string{"idserver_etsi_transids", "idserver_etsi_tx"} {
			if _, err := db.ExecContext(context.Background(), `UPDATE `+table+` SET created_at = $1`, old); err != nil {
				t.Fatal(err)
			}
		}
		p := &passThrough{s: ts.srv}
		p.prune(context.Background())
		if n := ts.counts(t); n != [2]int{} {
			t.Errorf("rows after pruning = %v, want none", n)
		}
	})
}

// FuzzETSIPassThrough sends any body to the pass-through, as SOAP or as
// JSON: the answer is always a response of the codec with HTTP 200 or a
// fault with HTTP 500, and never carries an AP_PWD. The database's
// background work makes coverage differ between runs of one input, so
// active fuzzing spends its time minimizing unless run with
// -fuzzminimizetime=1x.
func FuzzETSIPassThrough(f *testing.F) {
	db, err := store.Open(context.Background(), store.Config{DataDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	ts := newPassThrough(f, db)
	h := ts.srv.ETSIHandler()
	for _, isJSON := range []bool{false, true} {
		f.Add(isJSON, ptEncode(f, isJSON, ts.signReq(ptBankAPID, ptBankUUID, etsi.Synch)))
		f.Add(isJSON, ptEncode(f, isJSON, ts.signReq(ptShopAPID, ptShopUUID, etsi.AsynchClientServer)))
		f.Add(isJSON, ptEncode(f, isJSON, &etsi.MSSStatusReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MSSPTransID: "T1"}))
		f.Add(isJSON, ptEncode(f, isJSON, &etsi.MSSProfileReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID), MobileUser: etsi.MobileUser{MSISDN: "+37200000766"}}))
		f.Add(isJSON, ptEncode(f, isJSON, &etsi.MSSRegistrationReq{MessageAbstract: ts.abstract(ptBankAPID, ptBankUUID),
			MobileUser: etsi.MobileUser{MSISDN: "+37200000766"}, Operation: &etsi.RegistrationOperation{Type: etsi.RegInfo}}))
	}
	f.Add(false, []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>`))
	f.Add(true, []byte(`{"MSS_StatusReq":null}`))
	f.Fuzz(func(t *testing.T, isJSON bool, body []byte) {
		path := ETSIPathSignature
		if isJSON {
			path = ETSIPathRESTSign
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		h.ServeHTTP(rec, req)
		v, fault := ptDecodeAnswer(t, isJSON, rec.Code, rec.Body.Bytes())
		if fault != nil {
			if !fault.Code.Known() || !fault.Code.IsFault() {
				t.Fatalf("fault with code %v", fault.Code)
			}
			return
		}
		var abs *etsi.MessageAbstract
		switch m := v.(type) {
		case *etsi.MSSSignatureResp:
			abs = &m.MessageAbstract
		case *etsi.MSSStatusResp:
			abs = &m.MessageAbstract
		case *etsi.MSSReceiptResp:
			abs = &m.MessageAbstract
		case *etsi.MSSProfileResp:
			abs = &m.MessageAbstract
		default:
			t.Fatalf("answer %T", v)
		}
		if abs.APInfo.APPWD != "" {
			t.Fatalf("answer with AP_PWD %q", abs.APInfo.APPWD)
		}
	})
}

// FuzzCheckAPID checks that every AP_ID the registry accepts is an
// absolute URI of at most 128 characters without spaces.
func FuzzCheckAPID(f *testing.F) {
	for _, s := range []string{ptBankAPID, ptShopAPID, "http://x", "bank/etsi", "http://bank.example/e tsi", "a:", ":b", "http://[::1", "\x00:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, apID string) {
		if err := checkAPID(apID, true); err != nil {
			return
		}
		u, err := url.Parse(apID)
		if err != nil || !u.IsAbs() || utf8.RuneCountInString(apID) > maxAPIDLen || strings.ContainsAny(apID, " \t\r\n") {
			t.Fatalf("checkAPID(%q) = nil, want an error", apID)
		}
	})
}

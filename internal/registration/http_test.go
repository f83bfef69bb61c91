package registration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

// Officers of the web tests.
const (
	webUser     = "anna"
	webPassword = "correct horse battery"
	webName     = "Anna Tamm"
	webDesk     = "Tallinn-1"
)

// webEnv is a Registration Server on SQLite with a real CA, its JSON API
// under /api/v1/ and its desk under /desk/, as the wiring mounts them.
type webEnv struct {
	s       *Server
	db      *store.DB
	ca      *ca.CA
	mssp    *webMSSP
	apiSrv  *httptest.Server
	deskSrv *httptest.Server
	// skew moves the Registration Server's clock ahead, in nanoseconds.
	skew atomic.Int64
}

// newWebEnv starts a Registration Server. With certStatus, the desk reads
// certificate statuses from the CA.
func newWebEnv(t *testing.T, certStatus bool) *webEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	kek := make([]byte, 32)
	rand.Read(kek)
	const caURL = "http://ca.test"
	if err := ca.Init(filepath.Join(dir, "ca"), kek, ca.InitOptions{Organization: "Test", Country: "EE", BaseURL: caURL}); err != nil {
		t.Fatal(err)
	}
	keys, err := ca.Load(filepath.Join(dir, "ca"), kek)
	if err != nil {
		t.Fatal(err)
	}
	vendor := newWebVendor(t)
	roots := x509.NewCertPool()
	roots.AddCert(vendor.root)
	discard := slog.New(slog.DiscardHandler)
	c, err := ca.New(ca.Config{BaseURL: caURL, TrustedVendorRoots: roots, RequireAttestation: true}, keys, db, discard, discard, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}

	e := &webEnv{db: db, ca: c, mssp: &webMSSP{vendor: vendor, noSIM: map[string]bool{}, cancel: map[string]bool{}}}
	now := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	e.s, err = New(Config{APID: "http://rs.test", RetryPause: 20 * time.Millisecond}, db, e.mssp, c, nil, discard, discard, now)
	if err != nil {
		t.Fatal(err)
	}
	if certStatus {
		e.s.CertStatus = func(ctx context.Context, serialHex string) (string, error) {
			n, ok := new(big.Int).SetString(serialHex, 16)
			if !ok {
				return "", fmt.Errorf("bad serial %q", serialHex)
			}
			cert, err := c.Get(ctx, n)
			if err != nil {
				return "", err
			}
			return string(cert.Status), nil
		}
	}
	if err := e.s.AddOfficer(ctx, webUser, webName, webDesk, webPassword); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddOfficer(ctx, "bert", "Bert Kask", "Tartu-2", "another long password"); err != nil {
		t.Fatal(err)
	}
	api := http.NewServeMux()
	api.Handle("/api/v1/", e.s.APIHandler())
	e.apiSrv = httptest.NewServer(api)
	t.Cleanup(e.apiSrv.Close)
	desk := http.NewServeMux()
	desk.Handle("/desk/", http.StripPrefix("/desk", e.s.DeskHandler()))
	e.deskSrv = httptest.NewServer(desk)
	t.Cleanup(e.deskSrv.Close)
	return e
}

// run advances the registrations until the test ends.
func (e *webEnv) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.s.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// wait waits until Mobile ID id is in state.
func (e *webEnv) wait(t *testing.T, id int64, state string) *MobileID {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := e.s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("Mobile ID %d is %s at step %s (%s), want %s", id, m.State, m.Step, m.Status, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// audit returns the officer actions recorded for Mobile ID id, as
// "officer desk action".
func (e *webEnv) audit(t *testing.T, id int64) []string {
	t.Helper()
	rows, err := e.db.Query(`SELECT officer, desk, action FROM registration_audit WHERE mobileid_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o, d, a string
		if err := rows.Scan(&o, &d, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, o+" "+d+" "+a)
	}
	return out
}

// certStatus returns the CA's status of a certificate by its hex serial.
func (e *webEnv) certStatus(t *testing.T, serialHex string) ca.Status {
	t.Helper()
	n, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		t.Fatalf("bad serial %q", serialHex)
	}
	c, err := e.ca.Get(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status
}

// webVendor is a SIM vendor's CA and the attestation key it certified.
type webVendor struct {
	root    *x509.Certificate
	attKey  *ecdsa.PrivateKey
	attCert []byte
}

func newWebVendor(t *testing.T) *webVendor {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test SIM Vendor Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	attKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test SIM attestation"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
	}, root, attKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return &webVendor{root: root, attKey: attKey, attCert: attDER}
}

// webMSSP is the Signature Server with a SIM behind every number: keys
// are generated at once with a valid attestation, unless the test scripts
// a number without a SIM or a user who cancels.
type webMSSP struct {
	vendor *webVendor

	mu     sync.Mutex
	noSIM  map[string]bool
	cancel map[string]bool
	resets []string
}

func (m *webMSSP) setCancel(msisdn string, on bool) {
	m.mu.Lock()
	m.cancel[msisdn] = on
	m.mu.Unlock()
}

func (m *webMSSP) Profile(ctx context.Context, req *etsi.MSSProfileReq) (*etsi.MSSProfileResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noSIM[req.MobileUser.MSISDN] {
		return nil, etsi.NewDetailedFault(etsi.CodeUnknownClient, 1052, "no SIM")
	}
	return nil, etsi.NewDetailedFault(etsi.CodeUnknownClient, 1053, "no Mobile ID")
}

func (m *webMSSP) Receipt(ctx context.Context, req *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error) {
	return &etsi.MSSReceiptResp{Status: etsi.NewStatus(etsi.CodeRequestOK)}, nil
}

func (m *webMSSP) Registration(ctx context.Context, req *etsi.MSSRegistrationReq) (*etsi.MSSRegistrationResp, error) {
	ok := &etsi.MSSRegistrationResp{MSSPTransID: "T" + req.APInfo.APTransID, Status: etsi.NewStatus(etsi.CodeRequestOK)}
	msisdn := req.MobileUser.MSISDN
	switch req.Operation.Type {
	case etsi.RegGenerateKeys:
		m.mu.Lock()
		cancel := m.cancel[msisdn]
		m.mu.Unlock()
		if cancel {
			return nil, etsi.NewFault(etsi.CodeUserCancel, "the user cancelled")
		}
		res, err := m.generate(req.Operation.Challenge)
		if err != nil {
			return nil, err
		}
		ok.Status.Registration = res
		return ok, nil
	case etsi.RegBindCertificates:
		return ok, nil
	case etsi.RegReset:
		m.mu.Lock()
		m.resets = append(m.resets, msisdn)
		m.mu.Unlock()
		return ok, nil
	}
	return nil, etsi.NewFault(etsi.CodeWrongParam, "unknown AP_TransID")
}

// generate makes the SIM's two keys with their proofs of possession and
// the vendor's attestation over them.
func (m *webMSSP) generate(challenge []byte) (*etsi.RegistrationResult, error) {
	const iccid = "8937201000000000017"
	res := &etsi.RegistrationResult{ICCID: iccid, Challenge: challenge}
	spkis := map[etsi.KeyUsage][]byte{}
	for _, k := range []struct {
		usage etsi.KeyUsage
		ref   vmac.KeyRef
	}{{etsi.KeyUsageAuthentication, vmac.KeyAuth}, {etsi.KeyUsageSigning, vmac.KeySign}} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(key.Public())
		pop, err := webSign(key, vmac.PoPMessage(challenge, k.ref, spki))
		if err != nil {
			return nil, err
		}
		spkis[k.usage] = spki
		res.Keys = append(res.Keys, etsi.RegisteredKey{Ref: k.usage, Alg: etsi.KeyAlgECDSAP256, SPKI: spki, PoP: pop})
	}
	msg, err := vmac.AttestationMessage(challenge, iccid, spkis[etsi.KeyUsageAuthentication], spkis[etsi.KeyUsageSigning])
	if err != nil {
		return nil, err
	}
	sig, err := webSign(m.vendor.attKey, msg)
	if err != nil {
		return nil, err
	}
	res.Attestation = &etsi.Attestation{Signature: sig, Certificates: []etsi.Base64{m.vendor.attCert}}
	return res, nil
}

// webSign signs SHA-256(msg) as the card does: raw r‖s.
func webSign(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		return nil, err
	}
	return vmac.SignatureFromASN1(vmac.AlgECDSAP256, der)
}

// webPerson is a valid registration as the API takes it; the personal
// code encodes the date of birth.
func webPerson(msisdn string) map[string]any {
	return map[string]any{
		"given_names": "Jaak-Kristjan", "surname": "Jõeorg", "country": "EE", "national_id": "38001085718",
		"date_of_birth": "1980-01-08",
		"document": map[string]any{
			"type": "passport", "number": "K1234567", "issuer": "EE",
			"expires": time.Now().AddDate(5, 0, 0).Format(time.DateOnly),
		},
		"msisdn": msisdn,
	}
}

// webIdentity is the same person for Server.Register.
func webIdentity(msisdn string) Identity {
	return Identity{
		Person: Person{GivenNames: "Jaak-Kristjan", Surname: "Jõeorg", Country: "EE", NationalID: "38001085718",
			DateOfBirth: time.Date(1980, 1, 8, 0, 0, 0, 0, time.UTC)},
		Document: Document{Type: "passport", Number: "K1234567", Issuer: "EE",
			Expires: time.Date(time.Now().Year()+5, 1, 1, 0, 0, 0, 0, time.UTC)},
		MSISDN: msisdn,
	}
}

// apiCall makes one API request as user; body is marshalled to JSON
// unless it is a string, sent as it is.
func (e *webEnv) apiCall(t *testing.T, method, path, user, pass string, body any, header ...string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, e.apiSrv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	if !json.Valid(b) {
		t.Errorf("%s %s: answer is not JSON: %s", method, path, b)
	}
	return resp.StatusCode, resp.Header, b
}

// api makes one request as the test officer.
func (e *webEnv) api(t *testing.T, method, path string, body any, header ...string) (int, []byte) {
	t.Helper()
	code, _, b := e.apiCall(t, method, path, webUser, webPassword, body, header...)
	return code, b
}

func decodeAPIError(t *testing.T, b []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		t.Fatalf("error body %s: %v", b, err)
	}
	return e
}

func decodeMobileID(t *testing.T, b []byte) apiMobileID {
	t.Helper()
	var m apiMobileID
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("Mobile ID %s: %v", b, err)
	}
	return m
}

func TestAPIAuthentication(t *testing.T) {
	e := newWebEnv(t, false)
	tests := []struct {
		name       string
		method     string
		path       string
		user, pass string
		header     []string
		code       int
		challenge  bool
	}{
		{"no credentials", "GET", "/api/v1/mobileids?q=x", "", "", nil, http.StatusUnauthorized, true},
		{"wrong password", "GET", "/api/v1/mobileids?q=x", webUser, "wrong password!", nil, http.StatusUnauthorized, true},
		{"unknown officer", "GET", "/api/v1/mobileids?q=x", "nobody", webPassword, nil, http.StatusUnauthorized, true},
		{"other officer's password", "GET", "/api/v1/mobileids?q=x", "bert", webPassword, nil, http.StatusUnauthorized, true},
		{"officer", "GET", "/api/v1/mobileids?q=x", webUser, webPassword, nil, http.StatusOK, false},
		{"unknown endpoint without credentials", "GET", "/api/v1/people", "", "", nil, http.StatusUnauthorized, true},
		{"unknown endpoint", "GET", "/api/v1/people", webUser, webPassword, nil, http.StatusNotFound, false},
		{"wrong method", "DELETE", "/api/v1/mobileids/1", webUser, webPassword, nil, http.StatusMethodNotAllowed, false},
		{"cross-origin browser", "POST", "/api/v1/mobileids/1/resume", webUser, webPassword, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, b := e.apiCall(t, tt.method, tt.path, tt.user, tt.pass, nil, tt.header...)
			if code != tt.code {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, code, b, tt.code)
			}
			if got := h.Get("WWW-Authenticate") != ""; got != tt.challenge {
				t.Errorf("%s %s: WWW-Authenticate %q", tt.method, tt.path, h.Get("WWW-Authenticate"))
			}
			if code != http.StatusOK {
				decodeAPIError(t, b)
			}
			if strings.Contains(string(b), webPassword) {
				t.Errorf("%s %s: the answer contains the password", tt.method, tt.path)
			}
		})
	}
}

func TestAPIRegisterRefused(t *testing.T) {
	e := newWebEnv(t, false)
	e.mssp.noSIM["+37255500009"] = true
	with := func(f func(p map[string]any)) map[string]any {
		p := webPerson("+37255500001")
		f(p)
		return p
	}
	tests := []struct {
		name   string
		body   any
		header []string
		code   int
		error  string   // part of the error message
		fields []string // fields with errors, at least
	}{
		{"not JSON", "given_names=Jaak", nil, http.StatusBadRequest, "bad JSON", nil},
		{"not an object", `["Jaak"]`, nil, http.StatusBadRequest, "bad JSON", nil},
		{"unknown field", `{"given_names":"Jaak","nickname":"JK"}`, nil, http.StatusBadRequest, `unknown field "nickname"`, nil},
		{"unknown document field", `{"document":{"type":"passport","colour":"blue"}}`, nil, http.StatusBadRequest, `unknown field "colour"`, nil},
		{"two objects", `{} {}`, nil, http.StatusBadRequest, "data after the object", nil},
		{"empty", ``, nil, http.StatusBadRequest, "empty", nil},
		{"over 64 KiB", `{"given_names":"` + strings.Repeat("a", 64<<10) + `"}`, nil, http.StatusBadRequest, "over 64 KiB", nil},
		{"form encoded", webPerson("+37255500001"), []string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, "application/json", nil},
		{"nothing filled in", `{}`, nil, http.StatusBadRequest, "fields", []string{"given_names", "surname", "date_of_birth", "document_type", "document_number", "document_issuer", "document_expires", "msisdn"}},
		{"date of birth not ISO", with(func(p map[string]any) { p["date_of_birth"] = "08.01.1980" }), nil, http.StatusBadRequest, "fields", []string{"date_of_birth"}},
		{"bad expiry and number", with(func(p map[string]any) {
			p["document"].(map[string]any)["expires"] = "2030-02-30"
			p["msisdn"] = "12"
		}), nil, http.StatusBadRequest, "fields", []string{"document_expires", "msisdn"}},
		{"expired document", with(func(p map[string]any) {
			p["document"].(map[string]any)["expires"] = time.Now().AddDate(0, 0, -3).Format(time.DateOnly)
		}), nil, http.StatusBadRequest, "fields", []string{"document_expires"}},
		{"no SIM", webPerson("+37255500009"), nil, http.StatusBadRequest, "fields", []string{"msisdn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := e.api(t, "POST", "/api/v1/registrations", tt.body, tt.header...)
			if code != tt.code {
				t.Fatalf("POST /api/v1/registrations = %d %s, want %d", code, b, tt.code)
			}
			got := decodeAPIError(t, b)
			if !strings.Contains(got.Error, tt.error) {
				t.Errorf("error %q, want it to contain %q", got.Error, tt.error)
			}
			for _, f := range tt.fields {
				if got.Fields[f] == "" {
					t.Errorf("fields %v lack %q", got.Fields, f)
				}
			}
			if tt.fields == nil && got.Fields != nil {
				t.Errorf("fields %v, want none", got.Fields)
			}
		})
	}
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM registration_mobileid`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d Mobile IDs recorded (%v), want 0", n, err)
	}
	if got := e.audit(t, 0); len(got) != 0 {
		t.Errorf("audit = %q, want nothing", got)
	}
}

func TestAPILifecycle(t *testing.T) {
	e := newWebEnv(t, false)
	const msisdn = "+37255500001"

	code, h, b := e.apiCall(t, "POST", "/api/v1/registrations", webUser, webPassword, webPerson(msisdn))
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/registrations = %d %s, want 201", code, b)
	}
	m := decodeMobileID(t, b)
	if loc := h.Get("Location"); loc != fmt.Sprintf("/api/v1/mobileids/%d", m.ID) {
		t.Errorf("Location %q", loc)
	}
	want := apiMobileID{
		Person:   apiPerson{GivenNames: "Jaak-Kristjan", Surname: "Jõeorg", Country: "EE", NationalID: "38001085718", DateOfBirth: "1980-01-08"},
		Document: apiDocument{Type: "passport", Number: "K1234567", Issuer: "EE", Expires: time.Now().AddDate(5, 0, 0).Format(time.DateOnly)},
		MSISDN:   msisdn, State: StateRegistering, Step: StepKeys, Status: "Waiting for the user to choose PIN1 and PIN2 on the phone.",
		Officer: webUser, Desk: webDesk,
		Events: []apiEvent{{Step: "identified"}},
	}
	ignore := cmpopts.IgnoreFields(apiMobileID{}, "ID", "CreatedAt", "UpdatedAt")
	ignoreEvent := cmpopts.IgnoreFields(apiEvent{}, "At", "Message")
	if diff := cmp.Diff(want, m, ignore, ignoreEvent); diff != "" {
		t.Errorf("registered Mobile ID (-want +got):\n%s", diff)
	}
	if m.ID <= 0 || m.CreatedAt.IsZero() || m.CreatedAt.Location() != time.UTC {
		t.Errorf("id %d, created_at %v", m.ID, m.CreatedAt)
	}

	// The number has a Mobile ID in progress now.
	code, b = e.api(t, "POST", "/api/v1/registrations", webPerson(msisdn))
	if code != http.StatusBadRequest || decodeAPIError(t, b).Fields["msisdn"] == "" {
		t.Errorf("second registration of %s = %d %s, want 400 with msisdn", msisdn, code, b)
	}

	e.run(t)
	e.wait(t, m.ID, StateActive)
	path := fmt.Sprintf("/api/v1/mobileids/%d", m.ID)
	code, b = e.api(t, "GET", path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, code, b)
	}
	m = decodeMobileID(t, b)
	if m.State != StateActive || m.Step != StepDone || m.AuthSerial == "" || m.SignSerial == "" || m.ICCID == "" {
		t.Fatalf("GET %s = %+v, want active with serials and ICCID", path, m)
	}
	var steps []string
	for _, ev := range m.Events {
		steps = append(steps, ev.Step)
	}
	if want := []string{"identified", StepCertificates, StepBind, StepNotify, StepDone}; !slices.Equal(steps, want) {
		t.Errorf("events %q, want %q", steps, want)
	}

	for _, q := range []string{"38001085718", msisdn, "55500001", "jõeorg", "KRISTJAN"} {
		code, b := e.api(t, "GET", "/api/v1/mobileids?q="+url.QueryEscape(q), nil)
		var got apiSearchResp
		if err := json.Unmarshal(b, &got); code != http.StatusOK || err != nil {
			t.Fatalf("search %q = %d %s", q, code, b)
		}
		if q == "55500001" {
			// A part of a number is not a number.
			if len(got.MobileIDs) != 0 {
				t.Errorf("search %q found %d, want 0", q, len(got.MobileIDs))
			}
			continue
		}
		if len(got.MobileIDs) != 1 || got.MobileIDs[0].ID != m.ID || got.MobileIDs[0].Events != nil {
			t.Errorf("search %q = %s, want Mobile ID %d without events", q, b, m.ID)
		}
	}

	certs := func(want ca.Status) func(t *testing.T) {
		return func(t *testing.T) {
			for _, s := range []string{m.AuthSerial, m.SignSerial} {
				if got := e.certStatus(t, s); got != want {
					t.Errorf("certificate %s is %s, want %s", s, got, want)
				}
			}
		}
	}
	steps2 := []struct {
		name   string
		path   string
		body   any
		code   int
		state  string // after a 200
		field  string // with an error after a 400
		detail string // part of the error message
		check  func(t *testing.T)
	}{
		{"resume active", "resume", nil, http.StatusConflict, "", "", "cannot resume a Mobile ID that is active", certs(ca.StatusGood)},
		{"retry active", "retry", nil, http.StatusConflict, "", "", "cannot retry", nil},
		{"reset SIM of active", "reset-sim", nil, http.StatusConflict, "", "", "revoke the Mobile ID before", nil},
		{"suspend without reason", "suspend", map[string]string{}, http.StatusBadRequest, "", "reason", "", nil},
		{"suspend without body", "suspend", nil, http.StatusBadRequest, "", "", "empty", nil},
		{"suspend with unknown field", "suspend", `{"reason":"x","why":"y"}`, http.StatusBadRequest, "", "", "unknown field", nil},
		{"suspend", "suspend", map[string]string{"reason": "Phone left in a taxi"}, http.StatusOK, StateSuspended, "", "", certs(ca.StatusOnHold)},
		{"suspend suspended", "suspend", map[string]string{"reason": "again"}, http.StatusConflict, "", "", "cannot suspend a Mobile ID that is suspended", nil},
		{"resume", "resume", nil, http.StatusOK, StateActive, "", "", certs(ca.StatusGood)},
		{"resume with a body", "resume", `{"reason":"x"}`, http.StatusBadRequest, "", "", "unknown field", nil},
		{"revoke without reason", "revoke", map[string]string{}, http.StatusBadRequest, "", "reason", "", nil},
		{"revoke for an unknown reason", "revoke", map[string]string{"reason": "misplaced"}, http.StatusBadRequest, "", "reason", "", certs(ca.StatusGood)},
		{"revoke", "revoke", map[string]string{"reason": "stolen"}, http.StatusOK, StateRevoked, "", "", certs(ca.StatusRevoked)},
		{"revoke revoked", "revoke", map[string]string{"reason": "lost"}, http.StatusConflict, "", "", "cannot revoke a Mobile ID that is revoked", nil},
		{"resume revoked", "resume", `{}`, http.StatusConflict, "", "", "cannot resume", nil},
		{"reset SIM", "reset-sim", nil, http.StatusOK, StateRevoked, "", "", nil},
		{"unknown action", "delete", nil, http.StatusNotFound, "", "", "no such endpoint", nil},
	}
	for _, tt := range steps2 {
		t.Run(tt.name, func(t *testing.T) {
			p := path + "/" + tt.path
			code, b := e.api(t, "POST", p, tt.body)
			if code != tt.code {
				t.Fatalf("POST %s = %d %s, want %d", p, code, b, tt.code)
			}
			if code == http.StatusOK {
				if got := decodeMobileID(t, b); got.State != tt.state || got.ID != m.ID {
					t.Errorf("POST %s: Mobile ID %d is %s, want %d %s", p, got.ID, got.State, m.ID, tt.state)
				}
			} else {
				got := decodeAPIError(t, b)
				if !strings.Contains(got.Error, tt.detail) {
					t.Errorf("POST %s: error %q, want it to contain %q", p, got.Error, tt.detail)
				}
				if tt.field != "" && got.Fields[tt.field] == "" {
					t.Errorf("POST %s: fields %v, want %q", p, got.Fields, tt.field)
				}
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	if got, want := e.mssp.resets, []string{msisdn}; !slices.Equal(got, want) {
		t.Errorf("SIM resets %q, want %q", got, want)
	}

	for _, p := range []string{"/api/v1/mobileids/999", "/api/v1/mobileids/abc", "/api/v1/mobileids/-1"} {
		code, b := e.api(t, "GET", p, nil)
		if code != http.StatusNotFound {
			t.Errorf("GET %s = %d %s, want 404", p, code, b)
		}
		decodeAPIError(t, b)
	}
	if code, b := e.api(t, "POST", "/api/v1/mobileids/999/resume", nil); code != http.StatusNotFound {
		t.Errorf("resume of an unknown Mobile ID = %d %s, want 404", code, b)
	}

	who := webUser + " " + webDesk + " "
	if diff := cmp.Diff([]string{who + "register", who + "suspend", who + "resume", who + "revoke", who + "reset-sim"}, e.audit(t, m.ID)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

// deskClient is a browser at the desk: it keeps cookies and does not
// follow redirects, so that the tests see them.
func (e *webEnv) deskClient(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type deskResp struct {
	code     int
	header   http.Header
	body     string // unescaped
	location string // resolved, as a path
}

// deskDo makes one request to the desk; path is below /desk.
func (e *webEnv) deskDo(t *testing.T, c *http.Client, method, path string, form url.Values, header ...string) deskResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.deskSrv.URL+"/desk"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := deskResp{code: resp.StatusCode, header: resp.Header, body: html.UnescapeString(string(b))}
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := req.URL.Parse(loc)
		if err != nil {
			t.Fatalf("%s %s: Location %q: %v", method, path, loc, err)
		}
		r.location = u.Path
	}
	return r
}

// deskLogin logs the test officer in at the desk.
func (e *webEnv) deskLogin(t *testing.T) *http.Client {
	t.Helper()
	c := e.deskClient(t)
	r := e.deskDo(t, c, "POST", "/login", url.Values{"username": {webUser}, "password": {webPassword}})
	if r.code != http.StatusSeeOther || r.location != "/desk/" {
		t.Fatalf("login = %d to %q, want 303 to /desk/", r.code, r.location)
	}
	return c
}

func TestDeskRequiresLogin(t *testing.T) {
	e := newWebEnv(t, false)
	m, err := e.s.Register(context.Background(), Officer{Username: webUser, Desk: webDesk}, webIdentity("+37255500001"))
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(m.ID)
	c := e.deskClient(t)
	for _, tt := range []struct {
		method, path string
		location     string // the Location header as sent
	}{
		{"GET", "/", "./login"},
		{"GET", "/?q=38001085718", "./login"},
		{"GET", "/register", "./login"},
		{"POST", "/register", "./login"},
		{"GET", "/mobileid/" + id, "../login"},
		{"GET", "/mobileid/" + id + "/suspend", "../../login"},
		{"POST", "/mobileid/" + id + "/revoke", "../../login"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var form url.Values
			if tt.method == "POST" {
				form = url.Values{"reason": {"lost"}}
			}
			r := e.deskDo(t, c, tt.method, tt.path, form)
			if r.code != http.StatusSeeOther || r.header.Get("Location") != tt.location || r.location != "/desk/login" {
				t.Errorf("%s %s = %d to %q (%s), want 303 to %q (/desk/login)", tt.method, tt.path, r.code, r.header.Get("Location"), r.location, tt.location)
			}
			if strings.Contains(r.body, "Jõeorg") {
				t.Errorf("%s %s shows the person", tt.method, tt.path)
			}
		})
	}
	// A live view whose session ended reloads, and so reaches the login.
	r := e.deskDo(t, c, "GET", "/mobileid/"+id+"/live", nil, "HX-Request", "true")
	if r.code != http.StatusUnauthorized || r.header.Get("HX-Refresh") != "true" {
		t.Errorf("live view without a session = %d, HX-Refresh %q; want 401, true", r.code, r.header.Get("HX-Refresh"))
	}
	if got := e.audit(t, m.ID); len(got) != 1 {
		t.Errorf("audit %q, want only the registration", got)
	}
	// The assets need no session.
	for _, p := range []string{"/static/htmx.min.js", "/static/base.css", "/static/desk.css"} {
		if r := e.deskDo(t, c, "GET", p, nil); r.code != http.StatusOK || len(r.body) < 500 {
			t.Errorf("GET %s = %d, %d bytes", p, r.code, len(r.body))
		}
	}
}

func TestDeskLogin(t *testing.T) {
	e := newWebEnv(t, false)

	t.Run("wrong password", func(t *testing.T) {
		c := e.deskClient(t)
		r := e.deskDo(t, c, "POST", "/login", url.Values{"username": {webUser}, "password": {"not the password"}})
		if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "Unknown officer or wrong password.") {
			t.Errorf("login with a wrong password = %d\n%s", r.code, r.body)
		}
		if !strings.Contains(r.body, `value="anna"`) || strings.Contains(r.body, "not the password") {
			t.Errorf("login page after a wrong password does not keep the username, or shows the password")
		}
		if len(r.header.Values("Set-Cookie")) != 0 {
			t.Errorf("wrong password sets %q", r.header.Values("Set-Cookie"))
		}
		if r := e.deskDo(t, c, "GET", "/", nil); r.code != http.StatusSeeOther {
			t.Errorf("GET / after a wrong password = %d, want 303", r.code)
		}
	})

	t.Run("cookie", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"username": {webUser}, "password": {webPassword}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		e.s.DeskHandler().ServeHTTP(rec, req)
		plain := rec.Result().Cookies()
		req.TLS = &tls.ConnectionState{}
		req.Body = io.NopCloser(strings.NewReader(url.Values{"username": {webUser}, "password": {webPassword}}.Encode()))
		rec = httptest.NewRecorder()
		e.s.DeskHandler().ServeHTTP(rec, req)
		secure := rec.Result().Cookies()
		if len(plain) != 1 || len(secure) != 1 {
			t.Fatalf("cookies %v and %v, want one each", plain, secure)
		}
		for _, c := range []*http.Cookie{plain[0], secure[0]} {
			raw, err := base64.RawURLEncoding.DecodeString(c.Value)
			if c.Name != deskCookie || err != nil || len(raw) != 32 || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode ||
				c.MaxAge != 8*60*60 || c.Path != "" {
				t.Errorf("session cookie %v: want a random 32-byte value, HttpOnly, SameSite=Strict, 8 h, default path", c)
			}
		}
		if plain[0].Secure || !secure[0].Secure {
			t.Errorf("Secure %v over HTTP and %v over TLS, want false and true", plain[0].Secure, secure[0].Secure)
		}
		if plain[0].Value == secure[0].Value {
			t.Errorf("two logins got the same session id")
		}
	})

	t.Run("cross-origin", func(t *testing.T) {
		c := e.deskClient(t)
		r := e.deskDo(t, c, "POST", "/login", url.Values{"username": {webUser}, "password": {webPassword}}, "Sec-Fetch-Site", "cross-site")
		if r.code != http.StatusForbidden {
			t.Errorf("cross-origin login = %d, want 403", r.code)
		}
	})

	t.Run("session", func(t *testing.T) {
		c := e.deskLogin(t)
		r := e.deskDo(t, c, "GET", "/", nil)
		if r.code != http.StatusOK || !strings.Contains(r.body, webName) || !strings.Contains(r.body, webDesk) {
			t.Fatalf("search page = %d, want the officer's name and desk\n%s", r.code, r.body)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
			if r.header.Get(h) == "" {
				t.Errorf("search page lacks %s", h)
			}
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("search page Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
		}
		if r := e.deskDo(t, c, "GET", "/login", nil); r.code != http.StatusSeeOther || r.location != "/desk/" {
			t.Errorf("login page with a session = %d to %q, want 303 to /desk/", r.code, r.location)
		}

		u, _ := url.Parse(e.deskSrv.URL + "/desk/")
		old := c.Jar.Cookies(u)
		r = e.deskDo(t, c, "POST", "/logout", url.Values{})
		if r.code != http.StatusSeeOther || r.location != "/desk/login" {
			t.Errorf("logout = %d to %q, want 303 to /desk/login", r.code, r.location)
		}
		// The old cookie, kept by someone, is worthless now.
		stale := e.deskClient(t)
		stale.Jar.SetCookies(u, old)
		if r := e.deskDo(t, stale, "GET", "/", nil); r.code != http.StatusSeeOther {
			t.Errorf("GET / with the cookie of a closed session = %d, want 303", r.code)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		c := e.deskLogin(t)
		e.skew.Store(int64(8*time.Hour - time.Minute))
		if r := e.deskDo(t, c, "GET", "/", nil); r.code != http.StatusOK {
			t.Errorf("GET / after 7 h 59 min = %d, want 200", r.code)
		}
		e.skew.Store(int64(8 * time.Hour))
		if r := e.deskDo(t, c, "GET", "/", nil); r.code != http.StatusSeeOther || r.location != "/desk/login" {
			t.Errorf("GET / after 8 h = %d to %q, want 303 to /desk/login", r.code, r.location)
		}
		e.skew.Store(0)
		if r := e.deskDo(t, c, "GET", "/", nil); r.code != http.StatusSeeOther {
			t.Errorf("GET / with an expired session = %d, want 303", r.code)
		}
	})

	var logins, logouts int
	for _, a := range e.audit(t, 0) {
		switch a {
		case webUser + " " + webDesk + " login":
			logins++
		case webUser + " " + webDesk + " logout":
			logouts++
		default:
			t.Errorf("audit has %q", a)
		}
	}
	if logins != 4 || logouts != 1 {
		t.Errorf("audit has %d logins and %d logouts, want 4 and 1", logins, logouts)
	}
}

func TestDeskRegister(t *testing.T) {
	e := newWebEnv(t, false)
	c := e.deskLogin(t)
	fields := []string{"given_names", "surname", "country", "national_id", "date_of_birth", "document_type",
		"document_number", "document_issuer", "document_expires", "msisdn"}

	r := e.deskDo(t, c, "GET", "/register", nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET /register = %d", r.code)
	}
	for _, f := range fields {
		if !strings.Contains(r.body, `name="`+f+`"`) {
			t.Errorf("register form lacks %s", f)
		}
	}

	form := url.Values{
		"given_names": {"Jaak-Kristjan"}, "surname": {"Jõeorg"}, "country": {"EE"}, "national_id": {"38001085718"},
		"date_of_birth": {"1980-01-08"}, "document_type": {"passport"}, "document_number": {"K1234567"},
		"document_issuer": {"EE"}, "document_expires": {time.Now().AddDate(5, 0, 0).Format(time.DateOnly)},
		"msisdn": {"+372 5550 0001"},
	}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("given_names", "")
	bad.Set("date_of_birth", "8.1.1980")
	bad.Set("msisdn", "12")
	r = e.deskDo(t, c, "POST", "/register", bad)
	if r.code != http.StatusBadRequest {
		t.Fatalf("POST /register with bad fields = %d, want 400", r.code)
	}
	for _, want := range []string{
		`<p class="field-error" id="given_names-error">`,
		`<p class="field-error" id="date_of_birth-error">Enter the date as YYYY-MM-DD.</p>`,
		`<p class="field-error" id="msisdn-error">`,
		// What was typed stays in the form.
		`name="surname" type="text" value="Jõeorg"`,
		`name="date_of_birth" type="date" value="8.1.1980"`,
		`name="msisdn" type="tel" value="12"`,
		`<option value="passport" selected>`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("register form after bad fields lacks %s", want)
		}
	}
	for _, f := range []string{"surname", "country", "document_type", "document_number"} {
		if strings.Contains(r.body, `id="`+f+`-error"`) {
			t.Errorf("register form shows an error for %s", f)
		}
	}
	// Each message is next to its own field: right after its input.
	if i, j := strings.Index(r.body, `name="given_names"`), strings.Index(r.body, `id="given_names-error"`); i < 0 || j < i || strings.Contains(r.body[i:j], "<input") {
		t.Errorf("the given names' error is not next to their input")
	}

	r = e.deskDo(t, c, "POST", "/register", form)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/desk/mobileid/") {
		t.Fatalf("POST /register = %d to %q, want 303 to the Mobile ID\n%s", r.code, r.location, r.body)
	}
	page := strings.TrimPrefix(r.location, "/desk")
	var id int64
	fmt.Sscan(strings.TrimPrefix(page, "/mobileid/"), &id)
	r = e.deskDo(t, c, "GET", page, nil)
	for _, want := range []string{
		`<base href="../">`,
		"Jaak-Kristjan Jõeorg", "EE 38001085718", "1980-01-08", "passport K1234567", "+37255500001",
		`<span class="badge registering">registering</span>`,
		"<dt>Step</dt><dd>keys</dd>",
		`<li class="current">PINs and keys on the SIM</li>`,
		"Waiting for the user to choose PIN1 and PIN2 on the phone.",
		fmt.Sprintf(`hx-get="mobileid/%d/live" hx-trigger="every 1s"`, id),
		"None issued yet.",
		"<b>identified</b> Identity checked by anna at Tallinn-1",
		PINGuidance,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("Mobile ID page lacks %s", want)
		}
	}
	if r.code != http.StatusOK || strings.Contains(r.body, `class="actions"`) {
		t.Errorf("Mobile ID page = %d, offers actions while registering", r.code)
	}

	live := fmt.Sprintf("%s/live", page)
	r = e.deskDo(t, c, "GET", live, nil, "HX-Request", "true")
	if r.code != http.StatusOK || strings.Contains(r.body, "<html") || !strings.Contains(r.body, `hx-trigger="every 1s"`) {
		t.Errorf("live view while registering = %d, want a polling fragment\n%s", r.code, r.body)
	}

	e.run(t)
	m := e.wait(t, id, StateActive)
	r = e.deskDo(t, c, "GET", live, nil, "HX-Request", "true")
	for _, want := range []string{
		`<span class="badge active">active</span>`,
		"<dt>Step</dt><dd>done</dd>",
		"The Mobile ID is ready.",
		"<td>Authentication</td><td><code>" + m.AuthSerial + `</code></td><td class="cert-status">unknown</td>`,
		"<td>Signing</td><td><code>" + m.SignSerial + `</code></td><td class="cert-status">unknown</td>`,
		m.ICCID,
		"<b>certificates</b>", "<b>bind</b>", "<b>done</b>",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("live view once active lacks %s", want)
		}
	}
	if strings.Contains(r.body, "hx-trigger") {
		t.Errorf("live view once active still polls")
	}

	for _, q := range []string{"38001085718", "+37255500001", "kristjan"} {
		r := e.deskDo(t, c, "GET", "/?q="+url.QueryEscape(q), nil)
		if r.code != http.StatusOK || !strings.Contains(r.body, fmt.Sprintf(`<a href="mobileid/%d">Jõeorg, Jaak-Kristjan</a>`, id)) ||
			!strings.Contains(r.body, `<span class="badge active">active</span>`) {
			t.Errorf("search %q = %d, want the Mobile ID with its state\n%s", q, r.code, r.body)
		}
	}
	if r := e.deskDo(t, c, "GET", "/?q=nobody", nil); !strings.Contains(r.body, "No Mobile ID matches “nobody”.") {
		t.Errorf("search for nobody does not say so")
	}
	if r := e.deskDo(t, c, "GET", "/mobileid/999", nil); r.code != http.StatusNotFound {
		t.Errorf("GET /mobileid/999 = %d, want 404", r.code)
	}
	if got, want := e.audit(t, id), []string{webUser + " " + webDesk + " register"}; !slices.Equal(got, want) {
		t.Errorf("audit %q, want %q", got, want)
	}
}

func TestDeskActions(t *testing.T) {
	e := newWebEnv(t, true)
	e.run(t)
	c := e.deskLogin(t)
	const msisdn = "+37255500001"
	m, err := e.s.Register(context.Background(), Officer{Username: "bert", Desk: "Tartu-2"}, webIdentity(msisdn))
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, m.ID, StateActive)
	page := fmt.Sprintf("/mobileid/%d", m.ID)

	r := e.deskDo(t, c, "GET", page, nil)
	for _, want := range []string{`<td class="cert-status">good</td>`, `href="mobileid/` + fmt.Sprint(m.ID) + `/suspend">Suspend</a>`, ">Revoke</a>"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("active Mobile ID page lacks %s", want)
		}
	}
	if strings.Contains(r.body, ">Resume</a>") || strings.Contains(r.body, ">Retry</a>") {
		t.Errorf("active Mobile ID page offers resume or retry")
	}

	tests := []struct {
		name   string
		action string
		reason string
		code   int
		want   []string // on the answer's page, or on the Mobile ID's page after a redirect
		state  string
		certs  string
	}{
		{"resume active", "resume", "", http.StatusConflict, []string{"cannot resume a Mobile ID that is active", "Confirm: Resume"}, StateActive, "good"},
		{"suspend without reason", "suspend", "  ", http.StatusBadRequest, []string{"Give the reason for the suspension."}, StateActive, "good"},
		{"suspend", "suspend", "Phone left in a taxi", http.StatusSeeOther, []string{`<span class="badge suspended">suspended</span>`, "Suspended: Phone left in a taxi", ">Resume</a>"}, StateSuspended, "on_hold"},
		{"suspend suspended", "suspend", "again", http.StatusConflict, []string{"cannot suspend a Mobile ID that is suspended"}, StateSuspended, "on_hold"},
		{"revoke for no reason", "revoke", "", http.StatusBadRequest, []string{"Choose the reason for the revocation"}, StateSuspended, "on_hold"},
		{"revoke", "revoke", "stolen", http.StatusSeeOther, []string{`<span class="badge revoked">revoked</span>`, "Revoked: stolen.", ">Reset SIM</a>"}, StateRevoked, "revoked"},
		{"revoke revoked", "revoke", "lost", http.StatusConflict, []string{"cannot revoke a Mobile ID that is revoked", `<option value="lost" selected>`}, StateRevoked, "revoked"},
		{"retry revoked", "retry", "", http.StatusConflict, []string{"cannot retry a Mobile ID that is revoked"}, StateRevoked, "revoked"},
		{"reset SIM", "reset-sim", "", http.StatusSeeOther, []string{"The SIM's Mobile ID keys and PINs were erased."}, StateRevoked, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := page + "/" + tt.action
			confirm := e.deskDo(t, c, "GET", p, nil)
			if confirm.code != http.StatusOK || !strings.Contains(confirm.body, `<form class="card confirm" method="post" action="mobileid/`+fmt.Sprint(m.ID)+"/"+tt.action+`">`) {
				t.Fatalf("GET %s = %d, want a confirmation form\n%s", p, confirm.code, confirm.body)
			}
			r := e.deskDo(t, c, "POST", p, url.Values{"reason": {tt.reason}})
			if r.code != tt.code {
				t.Fatalf("POST %s = %d, want %d\n%s", p, r.code, tt.code, r.body)
			}
			if r.code == http.StatusSeeOther {
				if r.location != "/desk"+page {
					t.Fatalf("POST %s went to %q, want /desk%s", p, r.location, page)
				}
				r = e.deskDo(t, c, "GET", page, nil)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("after POST %s the page lacks %s", p, w)
				}
			}
			got, err := e.s.Get(context.Background(), m.ID)
			if err != nil || got.State != tt.state {
				t.Fatalf("after POST %s the Mobile ID is %v (%v), want %s", p, got.State, err, tt.state)
			}
			if tt.certs != "" {
				// The Mobile ID's page, reached after an action done, shows
				// the certificates as the CA has them.
				if n := strings.Count(r.body, `<td class="cert-status">`+tt.certs+`</td>`); r.code == http.StatusOK && n != 2 {
					t.Errorf("after POST %s the page shows %d certificates %s, want 2", p, n, tt.certs)
				}
				for _, s := range []string{got.AuthSerial, got.SignSerial} {
					if st := e.certStatus(t, s); string(st) != tt.certs {
						t.Errorf("after POST %s certificate %s is %s, want %s", p, s, st, tt.certs)
					}
				}
			}
		})
	}
	if r := e.deskDo(t, c, "GET", page+"/delete", nil); r.code != http.StatusNotFound {
		t.Errorf("GET %s/delete = %d, want 404", page, r.code)
	}
	if r := e.deskDo(t, c, "POST", "/mobileid/999/resume", url.Values{}); r.code != http.StatusNotFound {
		t.Errorf("resume of an unknown Mobile ID = %d, want 404", r.code)
	}
	if diff := cmp.Diff([]string{"bert Tartu-2 register", "anna Tallinn-1 suspend", "anna Tallinn-1 revoke", "anna Tallinn-1 reset-sim"}, e.audit(t, m.ID)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// A registration the user cancels fails; the officer retries it.
	const other = "+37255500002"
	e.mssp.setCancel(other, true)
	id2 := webIdentity(other)
	id2.Person = Person{GivenNames: "Mari", Surname: "Maasikas", Country: "EE", NationalID: "60001019906", DateOfBirth: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	m2, err := e.s.Register(context.Background(), Officer{Username: webUser, Desk: webDesk}, id2)
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, m2.ID, StateFailed)
	page2 := fmt.Sprintf("/mobileid/%d", m2.ID)
	r = e.deskDo(t, c, "GET", page2, nil)
	for _, want := range []string{`<span class="badge failed">failed</span>`, `<li class="failed">PINs and keys on the SIM</li>`,
		"The user cancelled the PIN choice on the phone.", ">Retry</a>", ">Reset SIM</a>"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("failed Mobile ID page lacks %s", want)
		}
	}
	if strings.Contains(r.body, "hx-trigger") {
		t.Errorf("failed Mobile ID page polls")
	}
	e.mssp.setCancel(other, false)
	if r := e.deskDo(t, c, "POST", page2+"/retry", url.Values{}); r.code != http.StatusSeeOther {
		t.Fatalf("retry = %d, want 303\n%s", r.code, r.body)
	}
	e.wait(t, m2.ID, StateActive)
	if diff := cmp.Diff([]string{"anna Tallinn-1 register", "anna Tallinn-1 retry"}, e.audit(t, m2.ID)); diff != "" {
		t.Errorf("audit of the retried registration (-want +got):\n%s", diff)
	}
}

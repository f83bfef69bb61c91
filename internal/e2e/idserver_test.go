package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/handset"
	"mobileid/internal/idserver"
	"mobileid/internal/mssp"
	"mobileid/internal/registration"
	"mobileid/internal/up"
	"mobileid/internal/vmac"
)

// idServer is an ID Server on the platform, with a registered user and
// two RPs.
type idServer struct {
	p      *platform
	rs     *rs
	srv    *idserver.Server
	rps    *idserver.RPs
	clock  *clock
	url    string
	msisdn string
	mid    *registration.MobileID
	phone  *handset.Phone
}

const (
	idNationalID = "47605030299"
	bankUUID     = "de305d54-75b4-431b-adb2-eb6b9e546014"
	shopUUID     = "0f6a0c5e-2b1d-4c8e-9d3a-7e5b4a1c2d3e"
)

func newIDServer(t *testing.T) *idServer {
	t.Helper()
	ctx := context.Background()
	p := newPlatform(t, 2, platformOptions{})
	x := &idServer{p: p, rs: newRS(t, p, p.ca), clock: &clock{}, msisdn: p.phones()[0]}
	m, err := x.rs.Register(ctx, officer, identity(x.msisdn, idNationalID))
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	x.mid = waitState(t, x.rs, m.ID, registration.StateActive)
	x.phone, _ = p.w.phones.Phone(x.msisdn)

	// The ID Server is an AP of its own at the MSSP.
	const apID, apPwd = "http://idserver.example/mid", "idserver-secret-1"
	if err := p.aps.Add(ctx, mssp.APConfig{AP: mssp.AP{ID: apID, Name: "Mobile ID"}, Password: apPwd}); err != nil {
		t.Fatal(err)
	}
	if x.rps, err = idserver.NewRPs(p.db, x.clock.now); err != nil {
		t.Fatal(err)
	}
	all := []idserver.Service{idserver.ServiceCertificate, idserver.ServiceAuthentication, idserver.ServiceSignature}
	if err := x.rps.Add(ctx, idserver.RPConfig{UUID: bankUUID, RP: idserver.RP{Name: "Demo Bank", Services: all}}); err != nil {
		t.Fatal(err)
	}
	if err := x.rps.Add(ctx, idserver.RPConfig{UUID: shopUUID, RP: idserver.RP{Name: "Demo Shop",
		Services: []idserver.Service{idserver.ServiceAuthentication}, Confirmation: "You logged in to {{.RP}}"}}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	x.srv, err = idserver.New(idserver.Config{
		APID: apID, APPassword: apPwd,
		Roots: pool(p.keys.Root), Intermediates: pool(p.keys.Issuing),
		TimeOut: 10 * time.Second, PollInterval: 50 * time.Millisecond,
		OCSPMaxAge: -1, // so that a suspension shows at once
	}, p.db, x.rps, &up.Directory{RS: x.rs.Server, CA: p.ca},
		&etsiclient.Client{BaseURL: p.url, HTTP: p.httpClient(nil)}, logger, x.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(x.srv.Handler())
	x.url = hs.URL + "/mid-api"
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { x.srv.Run(rctx) })
	t.Cleanup(func() {
		hs.Close()
		cancel()
		wg.Wait()
	})
	return x
}

// call sends a request and decodes the JSON answer into a map.
func (x *idServer) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req, _ := http.NewRequest(method, x.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s answered %d %q: %v", method, path, resp.StatusCode, data, err)
	}
	return resp.StatusCode, out
}

// request is a session start request of Demo Bank for the registered
// user.
func (x *idServer) request(hash []byte, hashType string) map[string]any {
	return map[string]any{
		"relyingPartyUUID": bankUUID, "relyingPartyName": "DEMO BANK",
		"phoneNumber": x.msisdn, "nationalIdentityNumber": idNationalID,
		"hash": base64.StdEncoding.EncodeToString(hash), "hashType": hashType,
		"language": "ENG", "displayText": "Log in?",
	}
}

// start starts a session and returns its ID.
func (x *idServer) start(t *testing.T, kind string, body map[string]any) string {
	t.Helper()
	code, out := x.call(t, http.MethodPost, "/"+kind, body)
	id, _ := out["sessionID"].(string)
	if code != http.StatusOK || id == "" {
		t.Fatalf("POST /%s = %d %v", kind, code, out)
	}
	return id
}

// wait long-polls a session until it is complete.
func (x *idServer) wait(t *testing.T, kind, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := x.call(t, http.MethodGet, "/"+kind+"/session/"+id+"?timeoutMs=5000", nil)
		if code != http.StatusOK {
			t.Fatalf("GET session %s = %d %v", id, code, out)
		}
		if out["state"] == "COMPLETE" {
			return out
		}
		if out["state"] != "RUNNING" || time.Now().After(deadline) {
			t.Fatalf("session %s = %v", id, out)
		}
	}
}

func randomHash(n int) []byte {
	h := make([]byte, n)
	rand.Read(h)
	return h
}

func (x *idServer) sessions(t *testing.T) int {
	return rows(t, x.p.db, `SELECT COUNT(*) FROM idserver_sessions`)
}

// idle waits until no session is running, so that the MSSP does not
// refuse the next one because the phone is still busy (406).
func (x *idServer) idle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); rows(t, x.p.db, `SELECT COUNT(*) FROM idserver_sessions WHERE state = 'RUNNING'`) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sessions still running after 30 s")
		}
	}
}

// TestIDServer runs the MID REST API against the whole platform with a
// user registered at a desk.
func TestIDServer(t *testing.T) {
	x := newIDServer(t)
	auth, _ := x.directoryCerts(t)

	t.Run("certificate", func(t *testing.T) {
		body := map[string]any{"relyingPartyUUID": bankUUID, "relyingPartyName": "Demo Bank",
			"phoneNumber": x.msisdn, "nationalIdentityNumber": idNationalID}
		code, out := x.call(t, http.MethodPost, "/certificate", body)
		_, sign := x.directoryCerts(t)
		if code != http.StatusOK || out["result"] != "OK" || out["cert"] != base64.StdEncoding.EncodeToString(sign.Raw) {
			t.Errorf("certificate = %d %v, want OK with the signing certificate", code, out)
		}
		for _, c := range []struct{ phone, id string }{{x.p.phones()[1], idNationalID}, {x.msisdn, "38001085718"}} {
			body["phoneNumber"], body["nationalIdentityNumber"] = c.phone, c.id
			if code, out := x.call(t, http.MethodPost, "/certificate", body); code != http.StatusOK || out["result"] != "NOT_FOUND" || out["cert"] != nil {
				t.Errorf("certificate(%s, %s) = %d %v, want NOT_FOUND", c.phone, c.id, code, out)
			}
		}
	})

	t.Run("authentication", func(t *testing.T) {
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		hash := sha256.Sum256([]byte("nonce " + t.Name()))
		screens := x.watchScreen(t)
		id := x.start(t, "authentication", x.request(hash[:], "SHA256"))
		out := x.wait(t, "authentication", id)
		texts := screens()
		if out["result"] != "OK" {
			t.Fatalf("authentication = %v", out)
		}
		cert := x.checkSignature(t, out, crypto.SHA256, hash[:])
		if !cert.Equal(auth) {
			t.Errorf("cert = %s, want the authentication certificate", cert.Subject)
		}
		if out["cert"] != base64.StdEncoding.EncodeToString(auth.Raw) {
			t.Errorf("cert field is not the authentication certificate")
		}
		vc := idserver.VerificationCode(hash[:])
		want := "Demo Bank: Log in?\nVerification code: " + vc
		if !strings.Contains(texts, want) {
			t.Errorf("phone screens %q, want %q", texts, want)
		}
	})

	t.Run("signature", func(t *testing.T) {
		hash := sha512.Sum512([]byte("document " + t.Name()))
		body := x.request(hash[:], "SHA512")
		body["displayText"] = "Sign the loan contract"
		id := x.start(t, "signature", body)
		out := x.wait(t, "signature", id)
		if out["result"] != "OK" || out["cert"] != nil {
			t.Fatalf("signature = %v, want OK without cert", out)
		}
		_, sign := x.directoryCerts(t)
		sig, _ := out["signature"].(map[string]any)
		v, _ := base64.StdEncoding.DecodeString(fmt.Sprint(sig["value"]))
		if err := vmac.VerifyDigest(sign.PublicKey, crypto.SHA512, hash[:], v); err != nil {
			t.Errorf("signature does not verify with the signing certificate: %v", err)
		}
		if want := algorithm(sign, "SHA512"); sig["algorithm"] != want {
			t.Errorf("algorithm = %v, want %s", sig["algorithm"], want)
		}
	})

	t.Run("long poll", func(t *testing.T) {
		x.phone.SetBehaviour(handset.ThinkTime(1500 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		hash := randomHash(32)
		id := x.start(t, "authentication", x.request(hash, "SHA256"))
		begin := time.Now()
		code, out := x.call(t, http.MethodGet, "/authentication/session/"+id+"?timeoutMs=1", nil)
		if d := time.Since(begin); code != http.StatusOK || out["state"] != "RUNNING" || d < 900*time.Millisecond || d > 1400*time.Millisecond {
			t.Errorf("poll with timeoutMs=1 = %d %v after %v, want RUNNING after the 1 s minimum", code, out, d)
		}
		begin = time.Now()
		code, out = x.call(t, http.MethodGet, "/authentication/session/"+id+"?timeoutMs=99999999", nil)
		if d := time.Since(begin); code != http.StatusOK || out["result"] != "OK" || d > 20*time.Second {
			t.Errorf("long poll = %d %v after %v, want OK as soon as the user confirmed", code, out, d)
		}
	})

	t.Run("wrong national ID", func(t *testing.T) {
		body := x.request(randomHash(32), "SHA256")
		body["nationalIdentityNumber"] = "38001085718"
		if out := x.wait(t, "authentication", x.start(t, "authentication", body)); out["result"] != "NOT_MID_CLIENT" || out["signature"] != nil {
			t.Errorf("wrong national ID = %v, want NOT_MID_CLIENT", out)
		}
	})

	t.Run("user cancels", func(t *testing.T) {
		x.phone.SetBehaviour(handset.Behaviour{Action: handset.Cancel})
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		if out := x.wait(t, "signature", x.start(t, "signature", x.request(randomHash(32), "SHA256"))); out["result"] != "USER_CANCELLED" {
			t.Errorf("cancel = %v, want USER_CANCELLED", out)
		}
	})

	t.Run("confirmation", func(t *testing.T) {
		body := x.request(randomHash(48), "SHA384")
		body["relyingPartyUUID"], body["relyingPartyName"] = shopUUID, "Demo Shop"
		if out := x.wait(t, "authentication", x.start(t, "authentication", body)); out["result"] != "OK" {
			t.Fatalf("authentication = %v", out)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(x.phone.Screen().Text, "You logged in to Demo Shop"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("phone screen = %q, want the confirmation", x.phone.Screen().Text)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		before := x.sessions(t)
		good := func() map[string]any { return x.request(randomHash(32), "SHA256") }
		with := func(k string, v any) map[string]any {
			b := good()
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		cases := []struct {
			name, path string
			body       any
			code       int
			msg        string
		}{
			{"not JSON", "/authentication", "{", 400, "Request body must be a JSON object"},
			{"no UUID", "/authentication", with("relyingPartyUUID", nil), 400, "relyingPartyUUID must not be null"},
			{"UUID upper case", "/authentication", with("relyingPartyUUID", strings.ToUpper(bankUUID)), 400, "relyingPartyUUID must be a UUID in lower case"},
			{"no name", "/signature", with("relyingPartyName", nil), 400, "relyingPartyName must not be null"},
			{"phone without +", "/authentication", with("phoneNumber", strings.TrimPrefix(x.msisdn, "+")), 400, "phoneNumber must be + and 8 to 15 digits"},
			{"no national ID", "/authentication", with("nationalIdentityNumber", nil), 400, "nationalIdentityNumber must not be null"},
			{"hash not base64", "/authentication", with("hash", "not base64!"), 400, "Hash must be Base64 encoded"},
			{"hash length", "/authentication", with("hashType", "SHA512"), 400, "The length of the hash must match the type of hash"},
			{"hash type", "/authentication", with("hashType", "SHA1"), 400, "hashType must be SHA256, SHA384 or SHA512"},
			{"language", "/authentication", with("language", "FIN"), 400, "language must be EST, ENG, RUS or LIT"},
			{"display text", "/authentication", with("displayText", strings.Repeat("x", 101)), 400,
				"displayText must not be longer than 100 GSM-7 characters, at most 5 of them from the extension table"},
			{"display text UCS-2", "/authentication", func() map[string]any {
				b := with("displayText", strings.Repeat("ж", 51))
				b["displayTextFormat"] = "UCS-2"
				return b
			}(), 400, "displayText must not be longer than 50 UCS-2 characters"},
			{"format", "/authentication", with("displayTextFormat", "UTF-8"), 400, "displayTextFormat must be GSM-7 or UCS-2"},
			{"unknown UUID", "/authentication", with("relyingPartyUUID", "00000000-0000-0000-0000-000000000000"), 401, "Failed to authorize user"},
			{"wrong name", "/authentication", with("relyingPartyName", "Other Bank"), 401, "Failed to authorize user"},
			{"service not allowed", "/signature", func() map[string]any {
				b := good()
				b["relyingPartyUUID"], b["relyingPartyName"] = shopUUID, "Demo Shop"
				return b
			}(), 401, "Failed to authorize user"},
			{"body too large", "/authentication", `{"displayText":"` + strings.Repeat("x", 20000) + `"}`, 400, "Request body must not be longer than 16384 bytes"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, out := x.call(t, http.MethodPost, c.path, c.body)
				if code != c.code || out["error"] != c.msg || len(fmt.Sprint(out["traceId"])) != 16 || out["time"] == nil {
					t.Errorf("POST %s = %d %v, want %d %q", c.path, code, out, c.code, c.msg)
				}
			})
		}
		if code, out := x.call(t, http.MethodGet, "/authentication", nil); code != http.StatusMethodNotAllowed || out["error"] != "Method Not Allowed" {
			t.Errorf("GET /authentication = %d %v, want 405", code, out)
		}
		if code, out := x.call(t, http.MethodGet, "/signature/session/"+"0f6a0c5e-2b1d-4c8e-9d3a-7e5b4a1c2d3f", nil); code != http.StatusNotFound || out["error"] != "SessionID not found" {
			t.Errorf("GET unknown session = %d %v, want 404", code, out)
		}
		if after := x.sessions(t); after != before {
			t.Errorf("refused requests created %d sessions", after-before)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		body := x.request(randomHash(32), "SHA256")
		body["nationalIdentityNumber"] = "38001085718"
		id := x.start(t, "authentication", body)
		x.wait(t, "authentication", id)
		if code, _ := x.call(t, http.MethodGet, "/signature/session/"+id, nil); code != http.StatusNotFound {
			t.Errorf("authentication session read as a signature session = %d, want 404", code)
		}
		x.clock.advance(idserver.SessionLifetime)
		defer x.clock.advance(-idserver.SessionLifetime)
		if code, out := x.call(t, http.MethodGet, "/authentication/session/"+id, nil); code != http.StatusNotFound || out["error"] != "SessionID not found" {
			t.Errorf("session after 5 minutes = %d %v, want 404", code, out)
		}
	})

	t.Run("phone off", func(t *testing.T) {
		x.phone.SetPower(false)
		defer x.phone.SetPower(true)
		if out := x.wait(t, "authentication", x.start(t, "authentication", x.request(randomHash(32), "SHA256"))); out["result"] != "PHONE_ABSENT" {
			t.Errorf("phone off = %v, want PHONE_ABSENT", out)
		}
	})

	t.Run("suspended", func(t *testing.T) {
		ctx := context.Background()
		if _, err := x.rs.Suspend(ctx, officer, x.mid.ID, "phone lost"); err != nil {
			t.Fatal(err)
		}
		body := map[string]any{"relyingPartyUUID": bankUUID, "relyingPartyName": "Demo Bank",
			"phoneNumber": x.msisdn, "nationalIdentityNumber": idNationalID}
		if code, out := x.call(t, http.MethodPost, "/certificate", body); code != http.StatusOK || out["result"] != "NOT_ACTIVE" || out["cert"] != nil {
			t.Errorf("certificate while suspended = %d %v, want NOT_ACTIVE", code, out)
		}
		if out := x.wait(t, "authentication", x.start(t, "authentication", x.request(randomHash(32), "SHA256"))); out["result"] != "NOT_MID_CLIENT" {
			t.Errorf("authentication while suspended = %v, want NOT_MID_CLIENT", out)
		}
		if _, err := x.rs.Resume(ctx, officer, x.mid.ID); err != nil {
			t.Fatal(err)
		}
		if out := x.wait(t, "authentication", x.start(t, "authentication", x.request(randomHash(32), "SHA256"))); out["result"] != "OK" {
			t.Errorf("authentication after resuming = %v, want OK", out)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		if _, err := x.rs.Revoke(context.Background(), officer, x.mid.ID, "lost"); err != nil {
			t.Fatal(err)
		}
		if out := x.wait(t, "authentication", x.start(t, "authentication", x.request(randomHash(32), "SHA256"))); out["result"] != "NOT_MID_CLIENT" {
			t.Errorf("revoked = %v, want NOT_MID_CLIENT", out)
		}
	})
}

// directoryCerts returns the registered user's certificates.
func (x *idServer) directoryCerts(t *testing.T) (auth, sign *x509.Certificate) {
	t.Helper()
	p, err := (&up.Directory{RS: x.rs.Server, CA: x.p.ca}).Find(context.Background(), x.msisdn)
	if err != nil {
		t.Fatal(err)
	}
	auth, err = x509.ParseCertificate(p.AuthCert)
	if err != nil {
		t.Fatal(err)
	}
	sign, err = x509.ParseCertificate(p.SignCert)
	if err != nil {
		t.Fatal(err)
	}
	return auth, sign
}

// checkSignature checks a completed authentication as an RP must: the
// signature verifies over the hash with the returned certificate, which
// chains to the CA.
func (x *idServer) checkSignature(t *testing.T, out map[string]any, h crypto.Hash, hash []byte) *x509.Certificate {
	t.Helper()
	der, _ := base64.StdEncoding.DecodeString(fmt.Sprint(out["cert"]))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("cert: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(x.p.keys.Root), Intermediates: pool(x.p.keys.Issuing), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("cert does not chain to the CA: %v", err)
	}
	sig, _ := out["signature"].(map[string]any)
	v, _ := base64.StdEncoding.DecodeString(fmt.Sprint(sig["value"]))
	if err := vmac.VerifyDigest(cert.PublicKey, h, hash, v); err != nil {
		t.Errorf("signature does not verify with cert: %v", err)
	}
	if want := algorithm(cert, "SHA256"); sig["algorithm"] != want {
		t.Errorf("algorithm = %v, want %s", sig["algorithm"], want)
	}
	return cert
}

func algorithm(cert *x509.Certificate, hashType string) string {
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		return hashType + "WithECEncryption"
	}
	return hashType + "WithRSAEncryption"
}

// watchScreen records the texts the phone shows until the returned
// function is called, which returns them.
func (x *idServer) watchScreen(t *testing.T) func() string {
	var (
		mu    sync.Mutex
		texts []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			s := x.phone.Screen().Text
			mu.Lock()
			if len(texts) == 0 || texts[len(texts)-1] != s {
				texts = append(texts, s)
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() string {
		close(stop)
		wg.Wait()
		return strings.Join(texts, "\n---\n")
	}
}

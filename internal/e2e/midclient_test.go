package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mobileid/internal/handset"
	"mobileid/internal/idserver"
	"mobileid/internal/idserver/midgolden"
	"mobileid/internal/testenv"
)

// midGoldenDir holds the MID REST golden files that the ID Server's unit
// tests compare too (internal/idserver/testdata/mid/README.md).
const midGoldenDir = "../idserver/testdata/mid"

// demoUUID is SK's demo relying party, which the golden requests use.
const demoUUID = "00000000-0000-0000-0000-000000000000"

// goldenRequest returns a golden request body with the phone number and
// national ID of the platform's registered user in place of SK's demo
// user; every other field is sent as written.
func (x *idServer) goldenRequest(t *testing.T, name string) []byte {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(readMIDGolden(t, name), &body); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body["phoneNumber"], body["nationalIdentityNumber"] = x.msisdn, idNationalID
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readMIDGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(midGoldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawCall sends a request to the ID Server and returns the status and
// the body of the answer as they came.
func (x *idServer) rawCall(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, x.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// compareGolden reports each difference between an answer and a golden
// response.
func compareGolden(t *testing.T, what string, got []byte, golden string) {
	t.Helper()
	for _, d := range midgolden.Compare(got, readMIDGolden(t, golden)) {
		t.Errorf("%s against %s: %s", what, golden, d)
	}
}

// TestMIDGolden compares the answers that only the whole platform can
// give (a SIM's signature, a certificate with its OCSP status) with the
// golden files written from SK's description of MID REST; the ID
// Server's unit tests compare the others.
func TestMIDGolden(t *testing.T) {
	x := newIDServer(t)
	if err := x.rps.Add(context.Background(), idserver.RPConfig{UUID: demoUUID, RP: idserver.RP{Name: "DEMO",
		Services: []idserver.Service{idserver.ServiceCertificate, idserver.ServiceAuthentication, idserver.ServiceSignature}}}); err != nil {
		t.Fatal(err)
	}

	t.Run("certificate OK", func(t *testing.T) {
		code, out := x.rawCall(t, http.MethodPost, "/certificate", x.goldenRequest(t, "certificate-request.json"))
		if code != http.StatusOK {
			t.Errorf("POST /certificate = %d %s, want 200", code, out)
		}
		compareGolden(t, "POST /certificate", out, "certificate-ok.json")
	})

	for _, kind := range []string{idserver.KindAuthentication, idserver.KindSignature} {
		t.Run(kind+" OK", func(t *testing.T) {
			code, out := x.rawCall(t, http.MethodPost, "/"+kind, x.goldenRequest(t, kind+"-request.json"))
			if code != http.StatusOK {
				t.Fatalf("POST /%s = %d %s, want 200", kind, code, out)
			}
			compareGolden(t, "POST /"+kind, out, kind+"-response.json")
			var started struct{ SessionID string }
			if err := json.Unmarshal(out, &started); err != nil || started.SessionID == "" {
				t.Fatalf("POST /%s = %s: %v", kind, out, err)
			}
			path := "/" + kind + "/session/" + started.SessionID + "?timeoutMs=5000"
			for deadline := time.Now().Add(60 * time.Second); ; {
				code, out = x.rawCall(t, http.MethodGet, path, nil)
				if code != http.StatusOK || !bytes.Contains(out, []byte(`"RUNNING"`)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s still RUNNING after 60 s", path)
				}
			}
			if code != http.StatusOK {
				t.Errorf("GET %s = %d %s, want 200", path, code, out)
			}
			compareGolden(t, "GET /"+kind+"/session", out, "session-"+kind+"-ok.json")
		})
	}

	t.Run("certificate NOT_ACTIVE", func(t *testing.T) {
		ctx := context.Background()
		if _, err := x.rs.Suspend(ctx, officer, x.mid.ID, "phone lost"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := x.rs.Resume(ctx, officer, x.mid.ID); err != nil {
				t.Fatal(err)
			}
		}()
		code, out := x.rawCall(t, http.MethodPost, "/certificate", x.goldenRequest(t, "certificate-request.json"))
		if code != http.StatusOK {
			t.Errorf("POST /certificate = %d %s, want 200", code, out)
		}
		compareGolden(t, "POST /certificate while suspended", out, "certificate-not-active.json")
	})
}

// midClientDir returns the folder of the MID client script with its pinned
// dependencies installed.
func midClientDir(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "midclient"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.NPMInstall(dir); err != nil {
		t.Fatalf("installing undersign: %v", err)
	}
	return dir
}

// TestMIDClientLibrary runs a MID REST client that relying parties use in
// the field, the Mobile-ID client of the npm package undersign, against
// the ID Server on the whole platform. The client is given the ID
// Server's base URL instead of SK's, and the RP's name and UUID; nothing
// else about it changes. It authenticates the registered user and checks
// the signature and the certificate as MID asks, fetches the signing
// certificate, has a hash signed, and gets NOT_MID_CLIENT for a national
// ID that is not the number's holder's.
func TestMIDClientLibrary(t *testing.T) {
	dir := midClientDir(t)
	x := newIDServer(t)
	auth, sign := x.directoryCerts(t)
	issuer := filepath.Join(t.TempDir(), "issuing-ca.pem")
	if err := os.WriteFile(issuer, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.p.keys.Issuing.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	// The phone waits a little before it answers, so that its screens,
	// with the verification code, can be seen.
	x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
	defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
	screens := x.watchScreen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "midclient.js", x.url+"/")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MID_RP_NAME=Demo Bank", "MID_RP_UUID="+bankUUID,
		"MID_PHONE="+x.msisdn, "MID_NATIONAL_ID="+idNationalID, "MID_OTHER_NATIONAL_ID=38001085718",
		"MID_ISSUER="+issuer)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	texts := screens()
	var res struct {
		Authentication struct {
			SessionID, VerificationCode, Serial, Subject string
			Signed, Issued, LibraryIssued                bool
		}
		Certificate struct {
			Serial                string
			Issued, LibraryIssued bool
		}
		Signature struct {
			SessionID, VerificationCode, Value string
			Signed                             bool
		}
		NotMIDClient      struct{ Code, Message, Error string }
		Error, Code, Step string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node midclient.js output %q: %v (exit: %v)\n%s", out, err, runErr, stderr.Bytes())
	}
	if runErr != nil || res.Error != "" {
		t.Fatalf("node midclient.js failed in step %q: %v: %s (code %q)\n%s", res.Step, runErr, res.Error, res.Code, stderr.Bytes())
	}

	a := res.Authentication
	if !a.Signed || !a.Issued {
		t.Errorf("authentication: signature verifies = %v, certificate issued by the CA = %v, want both", a.Signed, a.Issued)
	}
	if a.Serial != auth.SerialNumber.Text(16) {
		t.Errorf("authentication: the client got certificate %s of %q, want the authentication certificate %x", a.Serial, a.Subject, auth.SerialNumber)
	}
	if c := res.Certificate; !c.Issued || c.Serial != sign.SerialNumber.Text(16) {
		t.Errorf("certificate: the client got certificate %s, issued by the CA = %v, want the signing certificate %x", c.Serial, c.Issued, sign.SerialNumber)
	}
	// undersign decodes certificates into objects and encodes them again
	// to check an issuer's signature, with OID arcs held as JavaScript
	// numbers: it is why the CA's policy OIDs have small arcs (docs/ca.md).
	if !a.LibraryIssued || !res.Certificate.LibraryIssued {
		t.Errorf("undersign's Certificate#hasIssued rejects the certificates (authentication: %v, signing: %v), want it to accept both",
			a.LibraryIssued, res.Certificate.LibraryIssued)
	}
	if s := res.Signature; !s.Signed || s.Value == "" {
		t.Errorf("signature: %q verifies with the signing certificate = %v, want true", s.Value, s.Signed)
	}
	// The code the client shows the user is the one the phone shows.
	for _, c := range []struct{ kind, vc string }{{"authentication", a.VerificationCode}, {"signature", res.Signature.VerificationCode}} {
		if want := "Verification code: " + c.vc; len(c.vc) != 4 || !strings.Contains(texts, want) {
			t.Errorf("%s: the client shows verification code %q, the phone showed %q", c.kind, c.vc, texts)
		}
	}
	if n := res.NotMIDClient; n.Code != idserver.ResultNotMIDClient {
		t.Errorf("wrong national ID: the client reported %+v, want its %s error", n, idserver.ResultNotMIDClient)
	}
}

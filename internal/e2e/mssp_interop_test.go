package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mobileid/internal/cms"
	"mobileid/internal/testenv"
)

// The MSSP as clients we did not write see it: a field shell script
// (curl, sed, openssl), node-soap driven by the served WSDL, and
// hand-written JSON.

// dtbsPayment is the text the users of these tests sign.
const dtbsPayment = "Pay 42 EUR to ACME"

// writeAPFiles writes the AP's client certificate and key, the TLS root
// of the MSSP's server certificate and the CA root of the users'
// certificates into dir as PEM, under the names the field script uses.
func (p *platform) writeAPFiles(t *testing.T, dir string) (cert, key, tlsCA, root string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(p.apCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("mycert.crt", "CERTIFICATE", p.apCert.Certificate[0]),
		write("mycert.key", "PRIVATE KEY", keyDER),
		write("tls-ca.crt", "CERTIFICATE", p.tlsRoot.Raw),
		write("root.crt", "CERTIFICATE", p.keys.Root.Raw)
}

// checkAttached verifies sig against the CA root and checks that it
// carries text itself: Verify without content fails on a detached
// signature, and with content fails when the embedded one differs.
func (p *platform) checkAttached(t *testing.T, sig []byte, text string) *x509.Certificate {
	t.Helper()
	signer, err := cms.Verify(sig, nil, pool(p.keys.Root))
	if err != nil {
		t.Fatalf("cms.Verify: %v", err)
	}
	if _, err := cms.Verify(sig, []byte(text), pool(p.keys.Root)); err != nil {
		t.Errorf("cms.Verify with content %q: %v", text, err)
	}
	return signer
}

// TestMSSPFieldScript runs the shell script an AP would run against a
// commercial MSSP, unchanged but for the URL and the files: curl posts a
// hand-written SOAP request, sed picks the status code and signature out
// of the response text, and openssl verifies the CMS signature.
func TestMSSPFieldScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed", "base64", "openssl", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "field", "mobileid-sign.sh"))
	if err != nil {
		t.Fatal(err)
	}
	p := newPlatform(t, 1, platformOptions{})
	msisdn := p.phones()[0]
	authCert, _ := p.register(t, msisdn)

	// run runs the script in a fresh directory and returns it, with what
	// the script printed and its exit code.
	run := func(t *testing.T, pwd string) (dir, stdout, stderr string, exit int) {
		t.Helper()
		dir = t.TempDir()
		p.writeAPFiles(t, dir)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script, p.url, p.apID, msisdn, dtbsPayment, "en")
		cmd.Env = append(os.Environ(), "MID_DIR="+dir, "AP_PWD="+pwd, "LC_ALL=C")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatalf("mobileid-sign.sh: %v", err)
		}
		return dir, out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}

	t.Run("signature", func(t *testing.T) {
		dir, stdout, stderr, exit := run(t, p.apPwd)
		rsp, _ := os.ReadFile(filepath.Join(dir, "rsp.xml"))
		if exit != 0 {
			t.Fatalf("mobileid-sign.sh exited %d\nstdout: %s\nstderr: %s\nresponse: %s", exit, stdout, stderr, rsp)
		}
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(status)); got != "502" {
			t.Errorf("status code sed extracted = %q, want 502", got)
		}
		if stdout != dtbsPayment {
			t.Errorf("openssl cms -verify printed %q, want %q", stdout, dtbsPayment)
		}
		// OpenSSL 3 says "CMS Verification successful", earlier versions
		// "Verification successful".
		if got := strings.TrimSpace(stderr); strings.TrimPrefix(got, "CMS ") != "Verification successful" {
			t.Errorf("openssl cms -verify stderr = %q, want %q", got, "Verification successful")
		}
		if bytes.Contains(rsp, []byte(p.apPwd)) {
			t.Error("the response echoes AP_PWD")
		}
		// openssl trusts the chain; check that the signer is who we asked.
		der, err := os.ReadFile(filepath.Join(dir, "sig.der"))
		if err != nil {
			t.Fatal(err)
		}
		if signer := p.checkAttached(t, der, dtbsPayment); !signer.Equal(authCert) {
			t.Errorf("CMS signer = %s, want the authentication certificate (the profile is AuthProfile1)", signer.Subject)
		}
	})

	t.Run("wrong AP_PWD", func(t *testing.T) {
		_, stdout, stderr, exit := run(t, "not-"+p.apPwd)
		if exit != 2 || stdout != "" {
			t.Errorf("mobileid-sign.sh exited %d with stdout %q, want 2 and nothing", exit, stdout)
		}
		if want := "fault mss:_104 (UNAUTHORIZED_ACCESS)"; !strings.Contains(stderr, want) {
			t.Errorf("mobileid-sign.sh stderr = %q, want it to contain %q", stderr, want)
		}
	})
}

// soapNodeDir returns the folder of the node-soap client of package etsi
// with its pinned dependencies installed.
func soapNodeDir(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	dir, err := filepath.Abs(filepath.Join("..", "etsi", "testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.NPMInstall(dir); err != nil {
		t.Fatalf("installing node-soap: %v", err)
	}
	return dir
}

// TestMSSPNodeSOAP has node-soap, knowing only the WSDL the MSSP serves,
// ask a registered user for a signature in asynchClientServer mode over
// mutual TLS and poll MSS_StatusQuery until the signature is there.
func TestMSSPNodeSOAP(t *testing.T) {
	dir := soapNodeDir(t)
	p := newPlatform(t, 1, platformOptions{})
	msisdn := p.phones()[0]
	_, signCert := p.register(t, msisdn)
	cert, key, tlsCA, _ := p.writeAPFiles(t, t.TempDir())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "sign.js", p.url, p.apID, p.apPwd, msisdn, dtbsPayment)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MSS_MSSP_ID=http://mobileid.dev/mssp",
		"MSS_SIGNATURE_PROFILE=http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml",
		"MSS_USER_LANG=EN", "MSS_TIMEOUT=80",
		"MSS_FIRST_POLL_MS=100", "MSS_POLL_INTERVAL_MS=100", "MSS_MAX_POLLS=600",
		"MSS_TLS_CA="+tlsCA, "MSS_TLS_CERT="+cert, "MSS_TLS_KEY="+key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res struct {
		StatusCode    int    `json:"statusCode"`
		StatusMessage string `json:"statusMessage"`
		MSSPTransID   string `json:"msspTransID"`
		APTransID     string `json:"apTransID"`
		Polls         int    `json:"polls"`
		Signature     string `json:"signature"`
		Error         string `json:"error"`
		Fault         any    `json:"fault"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node sign.js output %q: %v (exit: %v)\n%s", out, err, runErr, stderr.Bytes())
	}
	if runErr != nil {
		t.Fatalf("node sign.js: %v: %+v\n%s", runErr, res, stderr.Bytes())
	}
	t.Logf("sign.js: status %d after %d status queries", res.StatusCode, res.Polls)
	if res.StatusCode != 502 || res.StatusMessage != "VALID_SIGNATURE" {
		t.Errorf("final status = %d %q, want 502 VALID_SIGNATURE", res.StatusCode, res.StatusMessage)
	}
	if res.Polls < 1 || res.MSSPTransID == "" {
		t.Errorf("sign.js made %d status queries for MSSP_TransID %q, want at least 1 for a transaction", res.Polls, res.MSSPTransID)
	}
	sig, err := base64.StdEncoding.DecodeString(res.Signature)
	if err != nil {
		t.Fatalf("Base64Signature %q: %v", res.Signature, err)
	}
	if signer := p.checkAttached(t, sig, dtbsPayment); !signer.Equal(signCert) {
		t.Errorf("CMS signer = %s, want the signing certificate", signer.Subject)
	}
}

// jsonSignReq is a Swisscom-style JSON MSS_SignatureReq, written out by
// hand as an AP without an ETSI library would.
const jsonSignReq = `{"MSS_SignatureReq":{
 "MajorVersion":"1","MinorVersion":"1",
 "AP_Info":{"AP_ID":%q,"AP_PWD":%q,"AP_TransID":%q,"Instant":%q},
 "MSSP_Info":{"MSSP_ID":{"URI":"http://mobileid.dev/mssp"}},
 "MessagingMode":"synch","TimeOut":"80",
 "MobileUser":{"MSISDN":%q},
 "DataToBeSigned":{"MimeType":"text/plain","Encoding":"UTF-8","Data":%q},
 "SignatureProfile":"http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml",
 "AdditionalServices":[{"Description":"http://mss.ficom.fi/TS102204/v1.0.0#userLang","UserLang":{"Value":"en"}}],
 "MSS_Format":"http://uri.etsi.org/TS102204/v1.1.2#PKCS7"
}}`

// jsonSignResp is the part of a JSON MSS_SignatureResp or fault the test
// reads.
type jsonSignResp struct {
	MSSSignatureResp *struct {
		APInfo struct {
			APTransID string `json:"AP_TransID"`
		} `json:"AP_Info"`
		MSSPTransID  string `json:"MSSP_TransID"`
		MSSSignature struct {
			Base64Signature string
		} `json:"MSS_Signature"`
		Status struct {
			StatusCode struct{ Value string }
		}
	} `json:"MSS_SignatureResp"`
	Fault *struct {
		Code struct {
			Value   string
			SubCode struct{ Value, ValueNs string }
		}
		Reason, Detail string
	}
}

// TestMSSPRESTJSON posts hand-written JSON to the REST mirror of
// MSS_Signature with the AP's client certificate: once right, once with
// a wrong AP_PWD.
func TestMSSPRESTJSON(t *testing.T) {
	p := newPlatform(t, 1, platformOptions{})
	msisdn := p.phones()[0]
	_, signCert := p.register(t, msisdn)
	client := p.httpClient(&p.apCert)

	post := func(t *testing.T, pwd, transID string) (int, http.Header, []byte) {
		t.Helper()
		body := fmt.Sprintf(jsonSignReq, p.apID, pwd, transID, p.clock.instant().Format(time.RFC3339), msisdn, dtbsPayment)
		req, err := http.NewRequest(http.MethodPost, p.url+"/rest/service/sign", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}

	t.Run("signature", func(t *testing.T) {
		code, h, body := post(t, p.apPwd, "json-1")
		if code != http.StatusOK {
			t.Fatalf("POST /rest/service/sign = HTTP %d %s, want 200", code, body)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		var r jsonSignResp
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("response %s: %v", body, err)
		}
		resp := r.MSSSignatureResp
		if resp == nil {
			t.Fatalf("response %s has no MSS_SignatureResp", body)
		}
		if resp.Status.StatusCode.Value != "502" || resp.APInfo.APTransID != "json-1" || resp.MSSPTransID == "" {
			t.Errorf("StatusCode %q, AP_TransID %q, MSSP_TransID %q; want 502, json-1 and an MSSP_TransID",
				resp.Status.StatusCode.Value, resp.APInfo.APTransID, resp.MSSPTransID)
		}
		if bytes.Contains(body, []byte(p.apPwd)) {
			t.Error("the response echoes AP_PWD")
		}
		sig, err := base64.StdEncoding.DecodeString(resp.MSSSignature.Base64Signature)
		if err != nil {
			t.Fatalf("Base64Signature: %v", err)
		}
		if signer := p.checkAttached(t, sig, dtbsPayment); !signer.Equal(signCert) {
			t.Errorf("CMS signer = %s, want the signing certificate", signer.Subject)
		}
	})

	t.Run("wrong AP_PWD", func(t *testing.T) {
		code, h, body := post(t, "not-"+p.apPwd, "json-2")
		if code != http.StatusInternalServerError {
			t.Fatalf("POST /rest/service/sign = HTTP %d %s, want 500", code, body)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		var r jsonSignResp
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("fault %s: %v", body, err)
		}
		f := r.Fault
		if f == nil {
			t.Fatalf("response %s has no Fault", body)
		}
		if f.Code.Value != "Sender" || f.Code.SubCode.Value != "_104" ||
			f.Code.SubCode.ValueNs != "http://uri.etsi.org/TS102204/v1.1.2#" || f.Reason != "UNAUTHORIZED_ACCESS" {
			t.Errorf("Fault = %s, want Sender/_104 UNAUTHORIZED_ACCESS", body)
		}
		if r.MSSSignatureResp != nil {
			t.Errorf("fault response also carries an MSS_SignatureResp: %s", body)
		}
	})
}

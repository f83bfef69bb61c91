package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mobileid/internal/store/storetest"
	"mobileid/internal/testenv"
)

// TestSplitDeployment starts every role as its own process over
// PostgreSQL with deploy/split/run.sh and the configuration files there,
// as docs/deploy.md describes, registers a person through the
// Registration Server's API and authenticates them through the ID
// Server's MID REST API.
func TestSplitDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts six processes")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.SkipOrFail(t, "no bash: %v", err)
	}
	dsn := storetest.PostgresDSN(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mobileid")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "mobileid")).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conf := splitConf(t, filepath.Join(root, "deploy", "split"), filepath.Join(tmp, "conf"))
	state := filepath.Join(tmp, "state")
	script := filepath.Join(root, "deploy", "split", "run.sh")
	run := func(arg string) (string, error) {
		cmd := exec.Command("bash", script, arg)
		cmd.Env = append(os.Environ(), "MOBILEID_DSN="+dsn, "MOBILEID_STATE="+state, "MOBILEID_SPLIT_CONF="+conf, "MOBILEID_BIN="+bin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("start")
	t.Cleanup(func() {
		if out, err := run("stop"); err != nil {
			t.Errorf("run.sh stop: %v\n%s", err, out)
		}
	})
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b)
		}
		t.Fatalf("run.sh start: %v\n%s", err, out)
	}
	for _, role := range []string{"ca", "network", "mssp", "registration", "idserver", "bank"} {
		if !strings.Contains(out, role+" ready on") {
			t.Errorf("run.sh start did not report %s ready:\n%s", role, out)
		}
	}
	secrets := readEnvFile(t, filepath.Join(state, "secrets.env"))
	rpText, _ := os.ReadFile(filepath.Join(state, "rp.txt"))
	uuid := regexp.MustCompile(`(?m)^relyingPartyUUID: (\S+)`).FindSubmatch(rpText)
	if uuid == nil {
		t.Fatalf("rp.txt has no relyingPartyUUID:\n%s", rpText)
	}
	regURL := "http://" + confValue(t, conf, "registration", "listen")
	midURL := "http://" + confValue(t, conf, "idserver", "listen") + "/mid-api"

	// Register a person at the desk's API; the phone's scripted user
	// chooses the PINs.
	const msisdn, nationalID = "+37250000004", "39103050021"
	body, _ := json.Marshal(map[string]any{
		"given_names": "Jaan", "surname": "Tamm", "country": "EE", "national_id": nationalID, "date_of_birth": "1991-03-05",
		"document": map[string]string{"type": "id-card", "number": "AB7654321", "issuer": "EE",
			"expires": time.Now().AddDate(3, 0, 0).Format("2006-01-02")},
		"msisdn": msisdn,
	})
	req, _ := http.NewRequest(http.MethodPost, regURL+"/api/v1/registrations", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("officer", secrets["OFFICER_PASSWORD"])
	var mid struct {
		ID     int64  `json:"id"`
		State  string `json:"state"`
		Status string `json:"status"`
	}
	if code := doJSON(t, req, &mid); code != http.StatusCreated && code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/registrations = %d %+v", code, mid)
	}
	for deadline := time.Now().Add(60 * time.Second); mid.State == "registering"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("registration still %s after 60 s: %s", mid.State, mid.Status)
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/mobileids/%d", regURL, mid.ID), nil)
		req.SetBasicAuth("officer", secrets["OFFICER_PASSWORD"])
		doJSON(t, req, &mid)
	}
	if mid.State != "active" {
		t.Fatalf("registration ended %s: %s", mid.State, mid.Status)
	}

	// One authentication through the ID Server, the MSSP, the Messaging
	// Server, the SMSC and the phone, each its own process.
	hash := make([]byte, 32)
	rand.Read(hash)
	body, _ = json.Marshal(map[string]string{
		"relyingPartyUUID": string(uuid[1]), "relyingPartyName": "Demo Bank", "phoneNumber": msisdn,
		"nationalIdentityNumber": nationalID, "hash": base64.StdEncoding.EncodeToString(hash),
		"hashType": "SHA256", "language": "ENG", "displayText": "Log in",
	})
	req, _ = http.NewRequest(http.MethodPost, midURL+"/authentication", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var started struct {
		SessionID string `json:"sessionID"`
	}
	if code := doJSON(t, req, &started); code != http.StatusOK {
		t.Fatalf("POST /authentication = %d", code)
	}
	req, _ = http.NewRequest(http.MethodGet, midURL+"/authentication/session/"+started.SessionID+"?timeoutMs=60000", nil)
	var st map[string]any
	if code := doJSON(t, req, &st); code != http.StatusOK || st["result"] != "OK" || st["cert"] == nil {
		t.Fatalf("authentication = %d %v, want OK with the certificate", code, st)
	}
}

// splitConf copies the configuration files to dir with every loopback
// port replaced by a free one (the same port everywhere it appears), and
// the phones' users approving at once, and returns dir.
func splitConf(t *testing.T, from, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(from, "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configuration files in %s: %v", from, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	ports := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := addr.ReplaceAllStringFunc(string(b), func(a string) string {
			if p, ok := ports[a]; ok {
				return p
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ports[a] = ln.Addr().String()
			ln.Close()
			return ports[a]
		})
		s = strings.Replace(s, "behaviour = console", "behaviour = approve", 1)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// confValue returns a key's value in a role's configuration file.
func confValue(t *testing.T, dir, role, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, role+".conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s.conf has no %s", role, key)
	return ""
}

// readEnvFile reads NAME=value lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

// doJSON sends req and decodes the JSON answer into v; it returns the
// status.
func doJSON(t *testing.T, req *http.Request, v any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s = %d %q: %v", req.Method, req.URL, resp.StatusCode, b, err)
	}
	return resp.StatusCode
}

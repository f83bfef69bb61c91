package up

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/handset"
)

// anyPorts listens on free loopback ports.
var anyPorts = Addrs{
	Console: "127.0.0.1:0", SMPP: "127.0.0.1:0", Phones: "127.0.0.1:0", CA: "127.0.0.1:0",
	MSSP: "127.0.0.1:0", Registration: "127.0.0.1:0", IDServer: "127.0.0.1:0", Bank: "127.0.0.1:0",
}

func start(t *testing.T, cfg Config) *System {
	t.Helper()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

// addrs returns the addresses a running system listens on, to start it
// again on the same ones.
func (s *System) addrs(t *testing.T) Addrs {
	host := func(u string) string {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return p.Host
	}
	return Addrs{
		Console: host(s.URLs.Console), Phones: host(s.URLs.Phones), CA: host(s.URLs.CA), MSSP: host(s.URLs.MSSP),
		Registration: host(s.URLs.Desk), IDServer: host(s.URLs.Issuer), Bank: host(s.URLs.Bank), SMPP: "127.0.0.1:0",
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// authenticate runs a MID REST authentication of the first demo person
// and returns the session's final status.
func authenticate(t *testing.T, s *System) map[string]any {
	t.Helper()
	p := s.People[0]
	hash := make([]byte, 32)
	rand.Read(hash)
	body, _ := json.Marshal(map[string]string{
		"relyingPartyUUID": s.BankRPUUID, "relyingPartyName": "Demo Bank",
		"phoneNumber": p.MSISDN, "nationalIdentityNumber": p.NationalID,
		"hash": base64.StdEncoding.EncodeToString(hash), "hashType": "SHA256", "language": "ENG", "displayText": "Log in",
	})
	resp, err := http.Post(s.URLs.MIDAPI+"/authentication", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var started map[string]any
	json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	id, _ := started["sessionID"].(string)
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("POST /authentication = %d %v", resp.StatusCode, started)
	}
	_, out := get(t, s.URLs.MIDAPI+"/authentication/session/"+id+"?timeoutMs=30000")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("session status %q: %v", out, err)
	}
	return st
}

func TestUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	s := start(t, Config{DataDir: dir, Addrs: anyPorts, Phones: 5, Out: &out})

	if len(s.People) != len(demoPeople) {
		t.Fatalf("%d demo people, want %d", len(s.People), len(demoPeople))
	}
	for _, p := range s.People {
		if p.State != "active" {
			t.Errorf("%s is %s, want active", p.Name, p.State)
		}
		if want := "PIN1 " + p.PIN1 + ", PIN2 " + p.PIN2; !strings.Contains(out.String(), want) {
			t.Errorf("first start output does not give %s's PINs (%s):\n%s", p.Name, want, out.String())
		}
		ph, _ := s.Phones.Phone(p.MSISDN)
		if note := ph.State().Note; !strings.Contains(note, p.PIN1) || !strings.Contains(note, p.Name) {
			t.Errorf("phone %s shows %q, want the name and PINs", p.MSISDN, note)
		}
	}
	for _, u := range []string{s.URLs.Console, s.URLs.Phones, s.URLs.Desk, s.URLs.Issuer + "/.well-known/openid-configuration", s.URLs.CA + "/ca/root.crt", s.URLs.Bank + "/"} {
		if code, _ := get(t, u); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", u, code)
		}
	}
	for _, u := range []string{s.URLs.Console, strings.TrimSuffix(s.URLs.Phones, "phones/"), s.URLs.CA + "/", s.URLs.Issuer + "/"} {
		if code, body := get(t, u+"readyz"); code != http.StatusOK || body != "ready\n" {
			t.Errorf("GET %sreadyz = %d %q", u, code, body)
		}
		if code, body := get(t, u+"metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("GET %smetrics = %d without the Go collector", u, code)
		}
	}
	if _, page := get(t, s.URLs.Console); !strings.Contains(page, s.People[0].NationalID) || !strings.Contains(page, s.URLs.Desk) {
		t.Errorf("landing page lacks the demo people or the desk URL:\n%s", page)
	}

	// The bank's login goes to the ID Server's authorization endpoint
	// with its registered redirect URI.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := noFollow.Get(s.URLs.Bank + "/login"); err != nil {
		t.Fatal(err)
	} else {
		loc := resp.Header.Get("Location")
		resp.Body.Close()
		if !strings.HasPrefix(loc, s.URLs.Issuer+"/authorize") || !strings.Contains(loc, url.QueryEscape(s.URLs.Bank+"/callback")) {
			t.Errorf("bank login = %d to %q, want the ID Server's /authorize", resp.StatusCode, loc)
		}
	}

	// A person at the phone approves.
	ph, _ := s.Phones.Phone(s.People[0].MSISDN)
	ph.SetBehaviour(handset.Behaviour{Action: handset.Approve})
	if st := authenticate(t, s); st["result"] != "OK" || st["cert"] == nil {
		t.Fatalf("authentication = %v, want OK with the certificate", st)
	}

	// The second start reuses everything: no new CA, no new people.
	root, _ := os.ReadFile(filepath.Join(dir, "ca", "root.pem"))
	addrs := s.addrs(t)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	out.Reset()
	s2 := start(t, Config{DataDir: dir, Addrs: addrs, Phones: 5, Out: &out})
	if again, _ := os.ReadFile(filepath.Join(dir, "ca", "root.pem")); !bytes.Equal(root, again) {
		t.Errorf("the second start made a new CA")
	}
	if strings.Contains(out.String(), "First start") || strings.Contains(out.String(), "registered") {
		t.Errorf("the second start did the first start's work:\n%s", out.String())
	}
	if len(s2.People) != len(demoPeople) || s2.People[0].PIN1 != s.People[0].PIN1 {
		t.Errorf("second start's people %+v, want the first start's", s2.People)
	}
	ph, _ = s2.Phones.Phone(s2.People[0].MSISDN)
	ph.SetBehaviour(handset.Behaviour{Action: handset.Approve})
	if st := authenticate(t, s2); st["result"] != "OK" {
		t.Fatalf("authentication after the restart = %v, want OK", st)
	}

	t.Run("data directory in use", func(t *testing.T) {
		_, err := Start(context.Background(), Config{DataDir: dir, Addrs: anyPorts})
		if err == nil || !strings.Contains(err.Error(), "in use by another mobileid process") {
			t.Errorf("Start on a data directory in use = %v", err)
		}
	})
}

func TestStartRefuses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o600)
	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, secretsFile), []byte("{not json"), 0o600)
	corruptDB := t.TempDir()
	os.WriteFile(filepath.Join(corruptDB, "mobileid.db"), bytes.Repeat([]byte("not a database "), 100), 0o600)

	withBusy := anyPorts
	withBusy.MSSP = busy.Addr().String()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"port in use", Config{DataDir: t.TempDir(), Addrs: withBusy}, "cannot listen on " + busy.Addr().String() + " for the MSSP"},
		{"data directory is a file", Config{DataDir: file, Addrs: anyPorts}, "data directory " + file},
		{"corrupt secrets", Config{DataDir: corrupt, Addrs: anyPorts}, "is not valid JSON"},
		{"corrupt database", Config{DataDir: corruptDB, Addrs: anyPorts}, "database in " + corruptDB + ": open sqlite database"},
		{"too few phones", Config{DataDir: t.TempDir(), Addrs: anyPorts, Phones: 2}, "number of phones"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadDir(c.cfg.DataDir)
			_, err := Start(context.Background(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Start = %v, want one line with %q", err, c.want)
			}
			after, _ := os.ReadDir(c.cfg.DataDir)
			if len(after) > len(before)+1 { // the lock file
				t.Errorf("Start left %d files in the data directory, had %d", len(after), len(before))
			}
		})
	}
}

func TestDemoPINs(t *testing.T) {
	pins := demoPINs([]byte("key one"))
	a1, a2 := pins("+37250000001")
	b1, b2 := pins("+37250000001")
	c1, c2 := demoPINs([]byte("key two"))("+37250000001")
	if a1 != b1 || a2 != b2 || len(a1) != 4 || len(a2) != 5 || strings.Trim(a1+a2, "0123456789") != "" {
		t.Errorf("demoPINs = %s, %s then %s, %s: want the same 4 and 5 digits", a1, a2, b1, b2)
	}
	if c1+c2 == a1+a2 {
		t.Errorf("another key gives the same PINs %s, %s", c1, c2)
	}
	if got := demoMSISDN(2); got != "+37250000003" {
		t.Errorf("demoMSISDN(2) = %s, want +37250000003", got)
	}
}

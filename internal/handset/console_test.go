package handset

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/vmac"
)

// console serves a network's console for a test.
func console(t *testing.T, n *Network) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func post(t *testing.T, u string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestConsolePage(t *testing.T) {
	b := newBatch(t, 30)
	n := b.load(t, Config{Uplink: newUplink()})
	srv := console(t, n)

	tests := []struct {
		name   string
		query  string
		phones int
		want   []string
	}{
		{"first page", "", PageSize, []string{"page 1 of 2", "+37250000001", "+37250000024", `sse-connect="events?page=1"`, "next ›"}},
		{"second page", "?page=2", 30 - PageSize, []string{"page 2 of 2", "+37250000030", "‹ prev"}},
		{"filter", "?q=%2B37250000017", 1, []string{"+37250000017", "1 of 30 phones"}},
		{"no match", "?q=999", 0, []string{"No phone matches."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+"/"+tt.query)
			body = html.UnescapeString(body)
			if code != http.StatusOK {
				t.Fatalf("GET /%s = %d", tt.query, code)
			}
			if got := strings.Count(body, `class="slot"`); got != tt.phones {
				t.Errorf("GET /%s shows %d phones, want %d", tt.query, got, tt.phones)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET /%s lacks %q", tt.query, w)
				}
			}
			for _, is := range b.issued {
				if strings.Contains(body, is.PUK) {
					t.Errorf("GET /%s shows the PUK of %s", tt.query, is.Record.MSISDN)
				}
			}
		})
	}
	for _, path := range []string{"/static/htmx.min.js", "/static/sse.js", "/static/style.css"} {
		if code, body := get(t, srv.URL+path); code != http.StatusOK || len(body) < 1000 {
			t.Errorf("GET %s = %d, %d bytes", path, code, len(body))
		}
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// stream reads the console's event stream until the test ends.
func stream(t *testing.T, u string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET %s: Content-Type %q", u, ct)
	}
	ch := make(chan sseEvent, 100)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ev.data = strings.Join(data, "\n")
					ch <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[len("data: "):])
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		for range ch {
		}
		wg.Wait()
	})
	return ch
}

// waitEvent waits for an event that contains every one of want.
func waitEvent(t *testing.T, ch <-chan sseEvent, name string, all *strings.Builder, want ...string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			data := html.UnescapeString(ev.data)
			all.WriteString(data)
			if ev.name == name && containsAll(data, want...) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("no event %s with %q within 10s", name, want)
		}
	}
}

// TestConsoleSign has a human at the console approve a signature: the
// prompt reaches the screen over the event stream, OK and the PIN digits
// are POSTed, and the card's answer goes back to the operator.
func TestConsoleSign(t *testing.T) {
	b := newBatch(t, 3)
	up := newUplink()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := b.load(t, Config{Uplink: up, Logger: logger})
	srv := console(t, n)
	msisdn := b.msisdn[1]
	id := strings.TrimPrefix(msisdn, "+")
	p := mustPhone(t, n, msisdn)
	const pin1, pin2 = "9173", "55821"
	if err := p.SetPINs(pin1, pin2); err != nil {
		t.Fatal(err)
	}
	o := newOperator(t, n, up, b, msisdn)
	rr := o.register()

	events := stream(t, srv.URL+"/events?q="+id)
	var seen strings.Builder
	waitEvent(t, events, "p"+id, &seen, msisdn) // the initial drawing

	if code, _ := post(t, srv.URL+"/phone/"+id+"/behaviour", url.Values{"b": {"console"}}, nil); code != http.StatusNoContent {
		t.Fatalf("POST behaviour = %d", code)
	}
	digest := make([]byte, 32)
	digest[0] = 1
	cmd, tpdus := o.wrap(signCmd(2, vmac.KeyAuth, digest))
	o.deliver(tpdus...)
	waitEvent(t, events, "p"+id, &seen, "Demo Bank", "Log in to your bank", "Verification code: 1462", "Confirm with PIN1?", `class="screen asking"`)

	key := func(k string) {
		t.Helper()
		if code, body := post(t, srv.URL+"/phone/"+id+"/key", url.Values{"k": {k}}, nil); code != http.StatusNoContent {
			t.Fatalf("POST key %s = %d %s", k, code, body)
		}
	}
	key("ok")
	waitEvent(t, events, "p"+id, &seen, "Enter PIN1", "Demo Bank")
	for _, d := range pin1[:3] {
		key(string(d))
	}
	// Too short: OK is refused and the prompt stays.
	if code, _ := post(t, srv.URL+"/phone/"+id+"/key", url.Values{"k": {"ok"}}, nil); code != http.StatusConflict {
		t.Errorf("OK with 3 digits = %d, want %d", code, http.StatusConflict)
	}
	key(pin1[3:])
	frag := waitEvent(t, events, "p"+id, &seen, "●●●●<")
	if strings.Contains(frag, pin1) {
		t.Errorf("screen shows the PIN: %s", frag)
	}
	key("ok")

	r, _ := o.await(cmd)
	sr, ok := r.(*vmac.SignResponse)
	if !ok || sr.Result != vmac.StatusOK {
		t.Fatalf("SIGN from the console = %#v, want OK", r)
	}
	pub, _ := x509.ParsePKIXPublicKey(rr.AuthKey.SPKI)
	if err := vmac.VerifyDigest(pub, crypto.SHA256, digest, sr.Signature); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}

	// Keys are refused when the phone asks nothing.
	if code, _ := post(t, srv.URL+"/phone/"+id+"/key", url.Values{"k": {"ok"}}, nil); code != http.StatusConflict {
		t.Errorf("OK on an idle phone = %d, want %d", code, http.StatusConflict)
	}

	// The console cancels the next one.
	cmd, tpdus = o.wrap(signCmd(3, vmac.KeySign, digest))
	o.deliver(tpdus...)
	waitEvent(t, events, "p"+id, &seen, "Sign with PIN2?")
	key("cancel")
	if r, _ := o.await(cmd); r.Status() != vmac.StatusUserCancel {
		t.Errorf("SIGN cancelled at the console = %v, want USER_CANCEL", r.Status())
	}

	// The PUK is shown on the phone's own console on request only.
	puk := b.issued[msisdn].PUK
	if code, body := post(t, srv.URL+"/phone/"+id+"/puk", nil, nil); code != http.StatusOK || !strings.Contains(body, puk) {
		t.Errorf("POST puk = %d %q, want the PUK", code, body)
	}
	logMu.Lock()
	out := logs.String() + seen.String()
	logMu.Unlock()
	for _, secret := range []string{pin1, pin2, puk} {
		if strings.Contains(out, secret) {
			t.Errorf("a PIN or the PUK appears in the logs or the event stream")
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestConsoleControls drives the switches and the PIN menu.
func TestConsoleControls(t *testing.T) {
	b := newBatch(t, 1)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	srv := console(t, n)
	msisdn := b.msisdn[0]
	id := strings.TrimPrefix(msisdn, "+")
	p := mustPhone(t, n, msisdn)
	o := newOperator(t, n, up, b, msisdn)
	o.register()

	// Block PIN1 with a scripted user, then unblock it from the menu.
	p.SetBehaviour(Behaviour{Action: WrongPIN})
	if r := o.do(signCmd(2, vmac.KeyAuth, make([]byte, 32))); r.Status() != vmac.StatusPINBlocked {
		t.Fatalf("SIGN with wrong PINs = %v", r.Status())
	}
	if _, body := get(t, srv.URL+"/phone/"+id); !strings.Contains(body, "Unblock PIN1") {
		t.Error("phone with a blocked PIN1 offers no unblock")
	}
	if code, body := post(t, srv.URL+"/phone/"+id+"/unblock", url.Values{"pin": {"1"}}, nil); code != http.StatusNoContent {
		t.Fatalf("POST unblock = %d %s", code, body)
	}
	if tries := p.State().Card.PIN1TriesLeft; tries != 3 {
		t.Errorf("PIN1 tries after unblock = %d, want 3", tries)
	}
	if code, _ := post(t, srv.URL+"/phone/"+id+"/behaviour", url.Values{"b": {"approve"}}, nil); code != http.StatusNoContent {
		t.Fatalf("POST behaviour = %d", code)
	}
	if r := o.do(signCmd(3, vmac.KeyAuth, make([]byte, 32))); r.Status() != vmac.StatusOK {
		t.Errorf("SIGN after unblock = %v, want OK", r.Status())
	}

	tests := []struct {
		path, field, value string
		check              func(PhoneState) bool
	}{
		{"power", "on", "0", func(s PhoneState) bool { return !s.PoweredOn }},
		{"power", "on", "1", func(s PhoneState) bool { return s.PoweredOn }},
		{"coverage", "on", "0", func(s PhoneState) bool { return !s.InCoverage }},
		{"coverage", "on", "1", func(s PhoneState) bool { return s.InCoverage }},
		{"behaviour", "b", "think:15s", func(s PhoneState) bool { return s.Behaviour == ThinkTime(15*time.Second) }},
		{"behaviour", "b", "default", func(s PhoneState) bool { return s.Behaviour == Behaviour{} }},
	}
	for _, tt := range tests {
		code, _ := post(t, srv.URL+"/phone/"+id+"/"+tt.path, url.Values{tt.field: {tt.value}}, nil)
		if code != http.StatusNoContent || !tt.check(p.State()) {
			t.Errorf("POST %s %s=%s = %d, state %+v", tt.path, tt.field, tt.value, code, p.State())
		}
	}
	if code, _ := post(t, srv.URL+"/phone/"+id+"/behaviour", url.Values{"b": {"maybe"}}, nil); code != http.StatusBadRequest {
		t.Errorf("POST an unknown behaviour = %d, want 400", code)
	}
	if code, _ := post(t, srv.URL+"/behaviour", url.Values{"b": {"cancel"}}, nil); code != http.StatusNoContent || n.DefaultBehaviour().Action != Cancel {
		t.Errorf("POST default behaviour = %d, default %v", code, n.DefaultBehaviour())
	}
	if code, _ := post(t, srv.URL+"/phone/none/power", url.Values{"on": {"0"}}, nil); code != http.StatusNotFound {
		t.Errorf("POST to an unknown phone = %d, want 404", code)
	}
}

// TestConsoleCrossOrigin checks that a page on another site cannot press
// a phone's keys.
func TestConsoleCrossOrigin(t *testing.T) {
	b := newBatch(t, 1)
	n := b.load(t, Config{Uplink: newUplink()})
	srv := console(t, n)
	id := strings.TrimPrefix(b.msisdn[0], "+")
	tests := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"same origin", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {srv.URL}}, http.StatusNoContent},
		{"cross site", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"foreign origin", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _ := post(t, srv.URL+"/phone/"+id+"/power", url.Values{"on": {"0"}}, tt.header)
			if code != tt.want {
				t.Errorf("POST power with %v = %d, want %d", tt.header, code, tt.want)
			}
		})
	}
	if p := mustPhone(t, n, b.msisdn[0]); p.State().PoweredOn {
		t.Error("same-origin POST did not switch the phone off")
	}
}

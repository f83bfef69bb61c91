package ca

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fuzzSetup returns a CA that can check requests (no store needed) and
// valid request bodies for both profiles.
func fuzzSetup(t testing.TB) (*CA, [][]byte) {
	v := newVendor(t, "Fuzz Vendor")
	reg := newRegistration(t, v, newECKey(t), newECKey(t))
	var seeds [][]byte
	for _, p := range []Profile{ProfileAuthentication, ProfileSigning} {
		b, _ := json.Marshal(wireRequest(reg.request(t, p)))
		seeds = append(seeds, b)
	}
	cfg, err := Config{BaseURL: testBaseURL, TrustedVendorRoots: v.pool}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cfg: cfg, now: time.Now}, seeds
}

// checkIssueBody is the property both tests below check: the decoder and
// the request checks never panic, a refusal carries a code and a reason,
// and what decodes re-encodes to the same request.
func checkIssueBody(t testing.TB, c *CA, body []byte) {
	req, err := decodeIssueRequest(body)
	if err != nil {
		return
	}
	if _, refusal := c.check(req); refusal != nil && (refusal.Code == "" || refusal.Reason == "") {
		t.Errorf("refusal without code or reason: %#v", refusal)
	}
	again, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	req2, err := decodeIssueRequest(again)
	if err != nil {
		t.Fatalf("decode re-encoded %s: %v", again, err)
	}
	if diff := cmp.Diff(req, req2); diff != "" {
		t.Errorf("decode(encode(req)) differs (-first +second):\n%s", diff)
	}
}

// FuzzIssueRequest fuzzes the body of POST /ca/issue. go test runs the
// seeds; active fuzzing (go test -fuzz) works but is slow here, because the
// package links SQLite and the fuzzer instruments every linked package.
// TestMutatedIssueRequests covers the same ground in every go test run.
func FuzzIssueRequest(f *testing.F) {
	c, seeds := fuzzSetup(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte(`{"profile":"signing","subject":{"country":"EE"},"key_ref":2,"public_key":"MAA="}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) { checkIssueBody(t, c, body) })
}

// TestMutatedIssueRequests checks checkIssueBody's property on valid
// bodies with a few bytes changed, deterministically.
func TestMutatedIssueRequests(t *testing.T) {
	t.Parallel()
	c, seeds := fuzzSetup(t)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		b := append([]byte(nil), seeds[r.IntN(len(seeds))]...)
		for range 1 + r.IntN(4) {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		checkIssueBody(t, c, b)
	}
}

// FuzzLifecycleRequests feeds arbitrary input to the parsers of the
// internal lifecycle API: revocation and release bodies, serials in paths
// and list queries. They never panic; a serial that parses is one the
// store can hold, and formats back to the same text.
func FuzzLifecycleRequests(f *testing.F) {
	f.Add(`{"serial":"1f","reason":1}`, "1f", "country=EE&national_id=38001085718&limit=5")
	f.Add(`{"serial":"1f","reason":6,"at":"2026-01-01T00:00:00Z"}`, "00ff", "profile=signing&status=revoked")
	f.Add(`{"serial":"x"}`, "0x1f", "limit=-1&limit=2")
	f.Add(`{}`, "", "%zz")
	f.Fuzz(func(t *testing.T, body, serial, query string) {
		var rr RevokeRequest
		if decodeStrict([]byte(body), &rr) == nil {
			parseSerial(rr.Serial)
		}
		var rel ReleaseRequest
		if decodeStrict([]byte(body), &rel) == nil {
			parseSerial(rel.Serial)
		}
		if n, err := parseSerial(serial); err == nil {
			if n.Sign() <= 0 || n.BitLen() > 160 {
				t.Errorf("parseSerial(%q) = %v, outside what a certificate can have", serial, n)
			}
			if got := n.Text(16); got != serial {
				t.Errorf("parseSerial(%q) formats back as %q", serial, got)
			}
		}
		parseListQuery(query)
	})
}

package tsa

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// testClock is a fixed instant a minute ago with a fraction of a second, so
// that truncation of genTime shows and the certificates are valid.
func testClock() time.Time {
	return time.Now().UTC().Add(-time.Minute).Truncate(time.Second).Add(737 * time.Millisecond)
}

// newTestTSA returns a TSA for cfg with a fixed clock and its own
// registry.
func newTestTSA(t testing.TB, cfg Config) (*TSA, *prometheus.Registry, time.Time) {
	t.Helper()
	now := testClock()
	reg := prometheus.NewRegistry()
	tsa, err := New(cfg, nil, reg, func() time.Time { return now })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tsa, reg, now
}

// makeQuery returns a DER TimeStampReq for data hashed with h, after mod
// has changed it.
func makeQuery(t testing.TB, h crypto.Hash, data []byte, mod func(*timeStampReq)) []byte {
	t.Helper()
	oid := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}[h]
	d := h.New()
	d.Write(data)
	req := timeStampReq{
		Version: 1,
		MessageImprint: messageImprint{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
			HashedMessage: d.Sum(nil),
		},
		Nonce:   big.NewInt(0x1234567890abcdef),
		CertReq: true,
	}
	if mod != nil {
		mod(&req)
	}
	der, err := asn1.Marshal(req)
	if err != nil {
		t.Fatalf("marshal TimeStampReq: %v", err)
	}
	return der
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatalf("asn1.Marshal: %v", err)
	}
	return b
}

func respond(t testing.TB, tsa *TSA, q []byte) []byte {
	t.Helper()
	resp, err := tsa.Respond(context.Background(), q)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	return resp
}

// responseCounts reads mobileid_tsa_responses_total from reg by status.
func responseCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mobileid_tsa_responses_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v != 0 {
				got[m.GetLabel()[0].GetValue()] = v
			}
		}
	}
	return got
}

func TestNew_RefusesBadConfig(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, elliptic.P256())
	other := newKey(t, elliptic.P256())
	tests := []struct {
		name string
		pki  *testPKI // nil means p
		mod  func(*Config)
		want error
	}{
		{name: "no certificate", mod: func(c *Config) { c.Cert = nil }, want: ErrNoCertificate},
		{name: "no key", mod: func(c *Config) { c.Key = nil }, want: ErrNoKey},
		{name: "no policy", mod: func(c *Config) { c.Policy = nil }, want: ErrNoPolicy},
		{name: "sub-second accuracy", mod: func(c *Config) { c.Accuracy = 500 * time.Millisecond }, want: ErrAccuracy},
		{name: "negative size", mod: func(c *Config) { c.MaxRequestBytes = -1 }, want: ErrMaxRequestBytes},
		{name: "key of another certificate", mod: func(c *Config) { c.Key = other }, want: ErrKeyMismatch},
		{name: "chain missing the issuer", mod: func(c *Config) { c.Chain = []*x509.Certificate{p.root} }, want: ErrChain},
		{name: "chain out of order", mod: func(c *Config) { c.Chain = []*x509.Certificate{p.ca, p.ca} }, want: ErrChain},
		{
			name: "EKU not critical",
			pki: newTestPKI(t, elliptic.P256(), func(c *x509.Certificate) {
				c.ExtraExtensions = []pkix.Extension{ekuExtension(t, false, oidKPTimeStamping)}
			}),
			want: ErrExtKeyUsage,
		},
		{
			name: "EKU with another purpose",
			pki: newTestPKI(t, elliptic.P256(), func(c *x509.Certificate) {
				c.ExtraExtensions = []pkix.Extension{ekuExtension(t, true, oidKPTimeStamping, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4})}
			}),
			want: ErrExtKeyUsage,
		},
		{
			name: "no EKU",
			pki:  newTestPKI(t, elliptic.P256(), func(c *x509.Certificate) { c.ExtraExtensions = nil }),
			want: ErrExtKeyUsage,
		},
		{
			name: "no digitalSignature",
			pki:  newTestPKI(t, elliptic.P256(), func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageContentCommitment }),
			want: ErrKeyUsage,
		},
		{name: "P-224 key", pki: newTestPKI(t, elliptic.P224()), want: ErrUnsupportedKey},
		{name: "RSA-1024 key", pki: newTestPKIWithKey(t, newRSAKey(t, 1024)), want: ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pki := tt.pki
			if pki == nil {
				pki = p
			}
			cfg := pki.config()
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			_, err := New(cfg, nil, nil, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("New = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNew_DuplicateRegistration(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, elliptic.P256())
	reg := prometheus.NewRegistry()
	if _, err := New(p.config(), nil, reg, nil); err != nil {
		t.Fatalf("first New: %v", err)
	}
	if _, err := New(p.config(), nil, reg, nil); err == nil {
		t.Errorf("second New on the same registry = nil error, want a registration error")
	}
}

// TestRespond_Granted issues a token for each hash, with and without
// certReq, on P-256 and P-384 TSA keys, and checks every field with
// timestamp.ParseResponse and with the independent decoder.
func TestRespond_Granted(t *testing.T) {
	t.Parallel()
	pkis := map[string]*testPKI{"P-256": newTestPKI(t, elliptic.P256()), "P-384": newTestPKI(t, elliptic.P384())}
	sign := map[string]struct {
		hash crypto.Hash
		alg  asn1.ObjectIdentifier
	}{"P-256": {crypto.SHA256, oidECDSAWithSHA256}, "P-384": {crypto.SHA384, oidECDSAWithSHA384}}
	data := []byte("Mobile ID signature container\n")
	for _, curve := range []string{"P-256", "P-384"} {
		p := pkis[curve]
		tsa, reg, now := newTestTSA(t, p.config())
		for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			for _, certReq := range []bool{true, false} {
				name := curve + "/" + h.String()
				if !certReq {
					name += "/no-certs"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					q := makeQuery(t, h, data, func(r *timeStampReq) { r.CertReq = certReq })
					resp := respond(t, tsa, q)

					ts, err := timestamp.ParseResponse(resp)
					if err != nil {
						t.Fatalf("timestamp.ParseResponse: %v", err)
					}
					d := h.New()
					d.Write(data)
					wantCerts := 0
					if certReq {
						wantCerts = 3
					}
					got := tokenFields{ts.HashAlgorithm, ts.HashedMessage, ts.Time, ts.Accuracy, ts.Policy.String(), ts.Nonce.String(), len(ts.Certificates)}
					want := tokenFields{h, d.Sum(nil), now.Truncate(time.Second), time.Second, testPolicy.String(), "1311768467294899695", wantCerts}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("token fields (-want +got):\n%s", diff)
					}
					if ts.SerialNumber.Sign() <= 0 || ts.SerialNumber.BitLen() > 160 {
						t.Errorf("serial %x is not a positive integer of at most 160 bits", ts.SerialNumber)
					}

					tok := decodeGranted(t, resp)
					tok.verify(t, p.tsa, sign[curve].hash, sign[curve].alg)
					if !certReq && tok.sd.Certificates != nil {
						t.Errorf("token without certReq has a certificates field of %d certificates, want none", len(tok.sd.Certificates))
					}
					if certReq {
						if !tok.certs[0].Equal(p.tsa) || !tok.certs[1].Equal(p.ca) || !tok.certs[2].Equal(p.root) {
							t.Errorf("token certificates are not TSA, issuing CA, root")
						}
						verifyChain(t, tok.certs[0], tok.certs[1:], p.root, now)
					}
				})
			}
		}
		t.Cleanup(func() {
			if diff := cmp.Diff(map[string]float64{"granted": 6}, responseCounts(t, reg)); diff != "" {
				t.Errorf("%s responses_total (-want +got):\n%s", curve, diff)
			}
		})
	}
}

// TestRespond_RSA checks that an RSA TSA key signs with
// sha256WithRSAEncryption and that its tokens verify.
func TestRespond_RSA(t *testing.T) {
	t.Parallel()
	p := newTestPKIWithKey(t, newRSAKey(t, 2048))
	tsa, _, now := newTestTSA(t, p.config())
	resp := respond(t, tsa, makeQuery(t, crypto.SHA384, []byte("x"), nil))
	ts, err := timestamp.ParseResponse(resp) // verifies the signature: certificates are included
	if err != nil {
		t.Fatalf("timestamp.ParseResponse: %v", err)
	}
	verifyChain(t, ts.Certificates[0], ts.Certificates[1:], p.root, now)
	if alg := decodeGranted(t, resp).sd.SignerInfos[0].SignatureAlgorithm.Algorithm; !alg.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}) {
		t.Errorf("signatureAlgorithm = %s, want sha256WithRSAEncryption", alg)
	}
}

func newRSAKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("rsa.GenerateKey: %v", err)
	}
	return k
}

type tokenFields struct {
	Hash     crypto.Hash
	Digest   []byte
	GenTime  time.Time
	Accuracy time.Duration
	Policy   string
	Nonce    string
	Certs    int
}

// verifyChain checks that the TSA certificate chains to root for
// time-stamping at genTime.
func verifyChain(t *testing.T, leaf *x509.Certificate, intermediates []*x509.Certificate, root *x509.Certificate, at time.Time) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}); err != nil {
		t.Errorf("TSA certificate does not verify for time-stamping: %v", err)
	}
}

func TestRespond_Nonce(t *testing.T) {
	t.Parallel()
	tsa, _, _ := newTestTSA(t, newTestPKI(t, elliptic.P256()).config())
	big160, _ := new(big.Int).SetString("ffffffffffffffffffffffffffffffffffffffff", 16)
	for _, tt := range []struct {
		name  string
		nonce *big.Int
	}{
		{"absent", nil},
		{"64-bit", big.NewInt(0x7edcba9876543210)},
		{"160-bit", big160},
		{"negative", big.NewInt(-5)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := respond(t, tsa, makeQuery(t, crypto.SHA256, []byte("x"), func(r *timeStampReq) { r.Nonce = tt.nonce }))
			got := decodeGranted(t, resp).info.Nonce
			if (got == nil) != (tt.nonce == nil) || got != nil && got.Cmp(tt.nonce) != 0 {
				t.Errorf("nonce = %v, want %v", got, tt.nonce)
			}
		})
	}
}

func TestRespond_Policy(t *testing.T) {
	t.Parallel()
	tsa, _, _ := newTestTSA(t, newTestPKI(t, elliptic.P256()).config())
	for _, tt := range []struct {
		name      string
		reqPolicy asn1.ObjectIdentifier
		granted   bool
	}{
		{"none requested", nil, true},
		{"ours requested", testPolicy, true},
		{"another requested", asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 3162}, false},
		{"a prefix of ours", testPolicy[:len(testPolicy)-1], false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := respond(t, tsa, makeQuery(t, crypto.SHA256, []byte("x"), func(r *timeStampReq) { r.ReqPolicy = tt.reqPolicy }))
			if !tt.granted {
				if status, bits, _ := decodeRejection(t, resp); status != 2 || !cmp.Equal(bits, []int{15}) {
					t.Errorf("status %d failInfo bits %v, want rejection (2) with unacceptedPolicy [15]", status, bits)
				}
				return
			}
			if got := decodeGranted(t, resp).info.Policy; !got.Equal(testPolicy) {
				t.Errorf("token policy = %s, want %s", got, testPolicy)
			}
		})
	}
}

func TestRespond_AccuracyAndGenTime(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, elliptic.P256())
	for _, tt := range []struct {
		accuracy   time.Duration
		wantS      int
		wantMillis int
		wantMicros int
	}{
		{0, 1, 0, 0}, // the default
		{2 * time.Second, 2, 0, 0},
		{1500 * time.Millisecond, 1, 500, 0},
		{time.Second + 250*time.Microsecond, 1, 0, 250},
	} {
		t.Run(tt.accuracy.String(), func(t *testing.T) {
			t.Parallel()
			cfg := p.config()
			cfg.Accuracy = tt.accuracy
			tsa, _, now := newTestTSA(t, cfg)
			info := decodeGranted(t, respond(t, tsa, makeQuery(t, crypto.SHA256, []byte("x"), nil))).info
			if a := info.Accuracy; a.Seconds != tt.wantS || a.Millis != tt.wantMillis || a.Micros != tt.wantMicros {
				t.Errorf("accuracy = %ds %dms %dµs, want %ds %dms %dµs", a.Seconds, a.Millis, a.Micros, tt.wantS, tt.wantMillis, tt.wantMicros)
			}
			if want := now.Truncate(time.Second); !info.GenTime.Equal(want) || info.GenTime.Location() != time.UTC {
				t.Errorf("genTime = %v, want %v UTC (clock %v truncated)", info.GenTime, want, now)
			}
		})
	}
}

func TestRespond_SerialsDiffer(t *testing.T) {
	t.Parallel()
	tsa, _, _ := newTestTSA(t, newTestPKI(t, elliptic.P256()).config())
	q := makeQuery(t, crypto.SHA256, []byte("same data, same time"), nil)
	seen := map[string]bool{}
	for range 50 {
		s := decodeGranted(t, respond(t, tsa, q)).info.SerialNumber
		if s.Sign() <= 0 {
			t.Fatalf("serial %v is not positive", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %x issued twice", s)
		}
		seen[s.String()] = true
	}
}

func TestRespond_Rejections(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, elliptic.P256())
	cfg := p.config()
	cfg.MaxRequestBytes = 200
	tsa, reg, _ := newTestTSA(t, cfg)
	valid := makeQuery(t, crypto.SHA256, []byte("x"), nil)
	setOID := func(oid asn1.ObjectIdentifier) func(*timeStampReq) {
		return func(r *timeStampReq) { r.MessageImprint.HashAlgorithm.Algorithm = oid }
	}
	tests := []struct {
		name  string
		query []byte
		want  timestamp.FailureInfo
	}{
		{"unknown hash OID", makeQuery(t, crypto.SHA256, nil, setOID(asn1.ObjectIdentifier{1, 2, 3, 4})), timestamp.BadAlgorithm},
		{"SHA-1", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) {
			r.MessageImprint.HashAlgorithm.Algorithm = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
			r.MessageImprint.HashedMessage = make([]byte, 20)
		}), timestamp.BadAlgorithm},
		{"MD5", makeQuery(t, crypto.SHA256, nil, setOID(asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5})), timestamp.BadAlgorithm},
		{"hash parameters not NULL", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) {
			r.MessageImprint.HashAlgorithm.Parameters = asn1.RawValue{FullBytes: []byte{0x02, 0x01, 0x00}}
		}), timestamp.BadAlgorithm},
		{"SHA-256 with a 20-octet digest", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) {
			r.MessageImprint.HashedMessage = r.MessageImprint.HashedMessage[:20]
		}), timestamp.BadDataFormat},
		{"SHA-512 OID with a SHA-256 digest", makeQuery(t, crypto.SHA256, nil, setOID(oidSHA512)), timestamp.BadDataFormat},
		{"empty digest", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) { r.MessageImprint.HashedMessage = nil }), timestamp.BadDataFormat},
		{"wrong policy", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) { r.ReqPolicy = asn1.ObjectIdentifier{1, 2, 3} }), timestamp.UnacceptedPolicy},
		{"extension", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) {
			r.Extensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}
		}), timestamp.UnacceptedExtension},
		{"version 2", makeQuery(t, crypto.SHA256, nil, func(r *timeStampReq) { r.Version = 2 }), timestamp.BadRequest},
		{"garbage DER", []byte("this is not DER at all"), timestamp.BadDataFormat},
		{"empty", nil, timestamp.BadDataFormat},
		{"truncated", valid[:len(valid)-1], timestamp.BadDataFormat},
		{"trailing data", append(append([]byte{}, valid...), 0), timestamp.BadDataFormat},
		{"DER of another structure", mustMarshal(t, pkix.AlgorithmIdentifier{Algorithm: oidSHA256}), timestamp.BadDataFormat},
		{"over MaxRequestBytes", make([]byte, 201), timestamp.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := respond(t, tsa, tt.query)
			status, bits, text := decodeRejection(t, resp)
			if status != int(timestamp.Rejection) || !cmp.Equal(bits, []int{int(tt.want)}) {
				t.Errorf("status %d failInfo bits %v, want %d with [%d] (%s)", status, bits, timestamp.Rejection, tt.want, failInfoName(tt.want))
			}
			if len(text) != 1 || text[0] == "" {
				t.Errorf("statusString = %q, want one reason", text)
			}
			if _, err := timestamp.ParseResponse(resp); err == nil || !strings.Contains(err.Error(), tt.want.String()) {
				t.Errorf("timestamp.ParseResponse = %v, want an error naming %q", err, tt.want.String())
			}
		})
	}
	t.Cleanup(func() {
		if diff := cmp.Diff(map[string]float64{"rejection": float64(len(tests))}, responseCounts(t, reg)); diff != "" {
			t.Errorf("responses_total (-want +got):\n%s", diff)
		}
	})
}

// TestRespond_CertificateNotValid checks that a TSA whose certificate has
// expired (or is not yet valid) issues nothing: its tokens would not verify.
func TestRespond_CertificateNotValid(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, elliptic.P256())
	for _, at := range []time.Time{p.tsa.NotBefore.Add(-time.Second), p.tsa.NotAfter.Add(time.Second)} {
		tsa, err := New(p.config(), nil, nil, func() time.Time { return at })
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		_, bits, _ := decodeRejection(t, respond(t, tsa, makeQuery(t, crypto.SHA256, nil, nil)))
		if !cmp.Equal(bits, []int{int(timestamp.SystemFailure)}) {
			t.Errorf("at %v: failInfo bits %v, want systemFailure [25]", at, bits)
		}
	}
}

// failingSigner is a TSA key whose HSM has gone away.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm: session closed")
}

func TestRespond_SignerFails(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, elliptic.P256())
	cfg := p.config()
	cfg.Key = failingSigner{p.tsaKey}
	tsa, _, _ := newTestTSA(t, cfg)
	status, bits, text := decodeRejection(t, respond(t, tsa, makeQuery(t, crypto.SHA256, nil, nil)))
	if status != 2 || !cmp.Equal(bits, []int{int(timestamp.SystemFailure)}) || strings.Contains(strings.Join(text, ""), "hsm") {
		t.Errorf("status %d bits %v text %q, want rejection, systemFailure, no internal detail", status, bits, text)
	}
}

func TestRespond_ContextDone(t *testing.T) {
	t.Parallel()
	tsa, _, _ := newTestTSA(t, newTestPKI(t, elliptic.P256()).config())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if resp, err := tsa.Respond(ctx, makeQuery(t, crypto.SHA256, nil, nil)); !errors.Is(err, context.Canceled) || resp != nil {
		t.Errorf("Respond(cancelled) = %d octets, %v; want nil, context.Canceled", len(resp), err)
	}
}

// TestRespond_Concurrent issues tokens from many goroutines, for the race
// detector.
func TestRespond_Concurrent(t *testing.T) {
	t.Parallel()
	tsa, reg, _ := newTestTSA(t, newTestPKI(t, elliptic.P256()).config())
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			nonce, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
			resp, err := tsa.Respond(context.Background(), makeQuery(t, crypto.SHA256, []byte{byte(i)}, func(r *timeStampReq) { r.Nonce = nonce }))
			if err == nil {
				var ts *timestamp.Timestamp
				if ts, err = timestamp.ParseResponse(resp); err == nil && ts.Nonce.Cmp(nonce) != 0 {
					err = errors.New("nonce not echoed")
				}
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if diff := cmp.Diff(map[string]float64{"granted": n}, responseCounts(t, reg)); diff != "" {
		t.Errorf("responses_total (-want +got):\n%s", diff)
	}
}

package ca

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// wantQCStatements is the qcStatements extension value for PDS URL
// "http://pds.test/en", written out by hand from ETSI EN 319 412-5 and
// RFC 3739, independently of the code that builds it.
var wantQCStatements = mustHex(`
30 4F
   30 08 06 06 04 00 8E 46 01 01                        -- QcCompliance
   30 08 06 06 04 00 8E 46 01 04                        -- QcSSCD
   30 13 06 06 04 00 8E 46 01 06                        -- QcType
         30 09 06 07 04 00 8E 46 01 06 01               --   id-etsi-qct-esign
   30 24 06 06 04 00 8E 46 01 05                        -- QcPDS
         30 1A 30 18
               16 12 68 74 74 70 3A 2F 2F 70 64 73 2E 74 65 73 74 2F 65 6E  -- IA5String http://pds.test/en
               13 02 65 6E                              -- PrintableString en
`)

func mustHex(s string) []byte {
	var clean strings.Builder
	for line := range strings.Lines(s) {
		line, _, _ = strings.Cut(line, "--")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		panic(err)
	}
	return b
}

// attr is one subject attribute with its ASN.1 string tag.
type attr struct {
	Type  string
	Tag   int
	Value string
}

func subjectAttrs(t *testing.T, raw []byte) []attr {
	t.Helper()
	var rdns []asn1.RawValue
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) != 0 {
		t.Fatalf("parse subject: %v", err)
	}
	var out []attr
	for _, rdn := range rdns {
		var set []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if _, err := asn1.UnmarshalWithParams(rdn.FullBytes, &set, "set"); err != nil {
			t.Fatalf("parse RDN: %v", err)
		}
		if len(set) != 1 {
			t.Errorf("RDN with %d attributes, want 1", len(set))
		}
		for _, a := range set {
			out = append(out, attr{a.Type.String(), a.Value.Tag, string(a.Value.Bytes)})
		}
	}
	return out
}

type ext struct {
	OID      string
	Critical bool
}

func extensions(c *x509.Certificate) []ext {
	var out []ext
	for _, e := range c.Extensions {
		out = append(out, ext{e.Id.String(), e.Critical})
	}
	slices.SortFunc(out, func(a, b ext) int { return strings.Compare(a.OID, b.OID) })
	return out
}

// The extensions every end-entity certificate has.
var commonExts = []ext{
	{"1.3.6.1.5.5.7.1.1", false}, // authorityInfoAccess
	{"2.5.29.14", false},         // subjectKeyIdentifier
	{"2.5.29.15", true},          // keyUsage
	{"2.5.29.31", false},         // cRLDistributionPoints
	{"2.5.29.32", false},         // certificatePolicies
	{"2.5.29.35", false},         // authorityKeyIdentifier
}

func withExts(more ...ext) []ext {
	out := append(slices.Clone(commonExts), more...)
	slices.SortFunc(out, func(a, b ext) int { return strings.Compare(a.OID, b.OID) })
	return out
}

func TestProfiles(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		ec := newRegistration(t, tc.vendor, newECKey(t), newECKey(t))
		rsa := newRegistration(t, tc.vendor, newRSAKey(t, 0), newRSAKey(t, 1))
		tests := []struct {
			name     string
			reg      *registration
			profile  Profile
			ku       x509.KeyUsage
			eku      []x509.ExtKeyUsage
			policy   string
			exts     []ext
			qc       []byte
			verifyAs x509.ExtKeyUsage
		}{
			{
				name: "authentication ECDSA", reg: ec, profile: ProfileAuthentication,
				ku:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
				eku:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
				policy: PolicyArc + ".1.1", exts: withExts(ext{"2.5.29.37", false}), verifyAs: x509.ExtKeyUsageClientAuth,
			},
			{
				name: "authentication RSA", reg: rsa, profile: ProfileAuthentication,
				ku:     x509.KeyUsageDigitalSignature,
				eku:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
				policy: PolicyArc + ".1.1", exts: withExts(ext{"2.5.29.37", false}), verifyAs: x509.ExtKeyUsageClientAuth,
			},
			{
				name: "signing ECDSA", reg: ec, profile: ProfileSigning,
				ku:     x509.KeyUsageContentCommitment,
				policy: PolicyArc + ".1.2", exts: withExts(ext{"1.3.6.1.5.5.7.1.3", false}), qc: wantQCStatements,
				verifyAs: x509.ExtKeyUsageAny,
			},
			{
				name: "signing RSA", reg: rsa, profile: ProfileSigning,
				ku:     x509.KeyUsageContentCommitment,
				policy: PolicyArc + ".1.2", exts: withExts(ext{"1.3.6.1.5.5.7.1.3", false}), qc: wantQCStatements,
				verifyAs: x509.ExtKeyUsageAny,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := tt.reg.request(t, tt.profile)
				rec, cert := tc.issue(t, req)
				now := tc.clock.Now()

				wantRec := &Certificate{
					Serial: cert.SerialNumber, Profile: tt.profile, SubjectCN: "JÕEORG,JAAK-KRISTJAN", Country: "EE",
					NationalID: "38001085718", ICCID: testICCID, DER: cert.Raw, NotBefore: now, NotAfter: now.AddDate(3, 0, 0),
					IssuedAt: now, Status: StatusGood,
				}
				if diff := cmp.Diff(wantRec, rec, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
					t.Errorf("Issue() record (-want +got):\n%s", diff)
				}
				if got, err := tc.Get(t.Context(), rec.Serial); err != nil {
					t.Errorf("Get() = %v", err)
				} else if diff := cmp.Diff(wantRec, got, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 }),
					cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
					t.Errorf("Get() (-want +got):\n%s", diff)
				}

				if cert.Version != 3 {
					t.Errorf("Version = %d, want 3", cert.Version)
				}
				if s := cert.SerialNumber; s.Sign() <= 0 || s.BitLen() > 128 || s.BitLen() < 64 {
					t.Errorf("SerialNumber = %x, want positive, up to 16 random bytes", s)
				}
				if cert.SignatureAlgorithm != x509.ECDSAWithSHA384 {
					t.Errorf("SignatureAlgorithm = %v, want ECDSA-SHA384", cert.SignatureAlgorithm)
				}
				if !bytes.Equal(cert.RawIssuer, tc.keys.Issuing.RawSubject) {
					t.Errorf("issuer = %v, want %v", cert.Issuer, tc.keys.Issuing.Subject)
				}
				if !bytes.Equal(cert.RawSubjectPublicKeyInfo, req.PublicKey) {
					t.Errorf("SubjectPublicKeyInfo is not the requested key")
				}
				if !cert.NotBefore.Equal(now) || !cert.NotAfter.Equal(now.AddDate(3, 0, 0)) {
					t.Errorf("validity %v – %v, want %v – 3 years later", cert.NotBefore, cert.NotAfter, now)
				}

				wantSubject := []attr{
					{"2.5.4.6", asn1.TagPrintableString, "EE"},
					{"2.5.4.3", asn1.TagUTF8String, "JÕEORG,JAAK-KRISTJAN"},
					{"2.5.4.4", asn1.TagUTF8String, "JÕEORG"},
					{"2.5.4.42", asn1.TagUTF8String, "JAAK-KRISTJAN"},
					{"2.5.4.5", asn1.TagPrintableString, "PNOEE-38001085718"},
				}
				if diff := cmp.Diff(wantSubject, subjectAttrs(t, cert.RawSubject)); diff != "" {
					t.Errorf("subject (-want +got):\n%s", diff)
				}

				if diff := cmp.Diff(tt.exts, extensions(cert)); diff != "" {
					t.Errorf("extensions (-want +got):\n%s", diff)
				}
				if cert.KeyUsage != tt.ku {
					t.Errorf("KeyUsage = %b, want %b", cert.KeyUsage, tt.ku)
				}
				if diff := cmp.Diff(tt.eku, cert.ExtKeyUsage); diff != "" || len(cert.UnknownExtKeyUsage) != 0 {
					t.Errorf("ExtKeyUsage (-want +got):\n%s unknown %v", diff, cert.UnknownExtKeyUsage)
				}
				if cert.BasicConstraintsValid {
					t.Errorf("end-entity certificate has basicConstraints")
				}
				urls := struct{ OCSP, Issuers, CRL []string }{cert.OCSPServer, cert.IssuingCertificateURL, cert.CRLDistributionPoints}
				wantURLs := struct{ OCSP, Issuers, CRL []string }{
					[]string{"http://ca.test/ocsp"}, []string{"http://ca.test/ca/issuing.crt"}, []string{"http://ca.test/crl/issuing.crl"},
				}
				if diff := cmp.Diff(wantURLs, urls); diff != "" {
					t.Errorf("AIA and CDP (-want +got):\n%s", diff)
				}
				var policies []string
				for _, p := range cert.Policies {
					policies = append(policies, p.String())
				}
				if diff := cmp.Diff([]string{tt.policy}, policies); diff != "" {
					t.Errorf("Policies (-want +got):\n%s", diff)
				}
				var bits struct {
					Algorithm pkix.AlgorithmIdentifier
					PublicKey asn1.BitString
				}
				asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &bits)
				h := sha256.Sum256(bits.PublicKey.Bytes)
				if !bytes.Equal(cert.SubjectKeyId, h[:20]) {
					t.Errorf("SubjectKeyId = %x, want %x (RFC 7093 method 1)", cert.SubjectKeyId, h[:20])
				}
				if !bytes.Equal(cert.AuthorityKeyId, tc.keys.Issuing.SubjectKeyId) {
					t.Errorf("AuthorityKeyId = %x, want %x", cert.AuthorityKeyId, tc.keys.Issuing.SubjectKeyId)
				}
				var qc []byte
				for _, e := range cert.Extensions {
					if e.Id.Equal(oidQCStatements) {
						qc = e.Value
					}
				}
				if !bytes.Equal(qc, tt.qc) {
					t.Errorf("qcStatements = %X\nwant %X", qc, tt.qc)
				}

				roots, inter := x509.NewCertPool(), x509.NewCertPool()
				roots.AddCert(tc.keys.Root)
				inter.AddCert(tc.keys.Issuing)
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
					KeyUsages: []x509.ExtKeyUsage{tt.verifyAs}}); err != nil {
					t.Errorf("Verify() = %v", err)
				}
			})
		}
		if got := testutil.ToFloat64(tc.m.issued.WithLabelValues("signing")); got != 2 {
			t.Errorf("mobileid_ca_issued_total{profile=signing} = %v, want 2", got)
		}
		if got := testutil.ToFloat64(tc.m.issued.WithLabelValues("authentication")); got != 2 {
			t.Errorf("mobileid_ca_issued_total{profile=authentication} = %v, want 2", got)
		}
		var issued int
		for _, r := range tc.audit.all() {
			if r.Attrs["event"] == "issue" {
				issued++
				for _, k := range []string{"serial", "profile", "subject_cn", "national_id", "not_after"} {
					if r.Attrs[k] == "" {
						t.Errorf("audit record %q has no %s", r.Msg, k)
					}
				}
			}
		}
		if issued != 4 {
			t.Errorf("%d issuance audit records, want 4", issued)
		}
	})
}

// TestValidityConfig checks the configured validity and that a leaf never
// outlives the issuing CA.
func TestValidityConfig(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		for _, tt := range []struct {
			name     string
			validity time.Duration
			want     func(now time.Time, issuing *x509.Certificate) time.Time
		}{
			{"one year", 365 * 24 * time.Hour, func(now time.Time, _ *x509.Certificate) time.Time { return now.Add(365 * 24 * time.Hour) }},
			{"beyond the issuing CA", 30 * 365 * 24 * time.Hour, func(_ time.Time, ca *x509.Certificate) time.Time { return ca.NotAfter }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tc := newTestCA(t, db, func(c *Config) { c.Validity = tt.validity })
				_, cert := tc.issue(t, newRegistration(t, nil, newECKey(t), newECKey(t)).request(t, ProfileAuthentication))
				if want := tt.want(tc.clock.Now(), tc.keys.Issuing); !cert.NotAfter.Equal(want) {
					t.Errorf("NotAfter = %v, want %v", cert.NotAfter, want)
				}
			})
		}
	})
}

func TestPolicyConfig(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		auth, sign := mustOID("1.2.3.4.1"), mustOID("1.2.3.4.2")
		tc := newTestCA(t, db, func(c *Config) { c.AuthenticationPolicy, c.SigningPolicy = auth, sign })
		reg := newRegistration(t, nil, newECKey(t), newECKey(t))
		for p, want := range map[Profile]string{ProfileAuthentication: "1.2.3.4.1", ProfileSigning: "1.2.3.4.2"} {
			_, cert := tc.issue(t, reg.request(t, p))
			if len(cert.Policies) != 1 || cert.Policies[0].String() != want {
				t.Errorf("%s: Policies = %v, want [%s]", p, cert.Policies, want)
			}
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		for _, tt := range []struct {
			name string
			cfg  Config
		}{
			{"no base URL", Config{}},
			{"relative base URL", Config{BaseURL: "ca.test"}},
			{"base URL with query", Config{BaseURL: "http://ca.test/?x=1"}},
			{"non-ASCII PDS URL", Config{BaseURL: testBaseURL, PDSURL: "http://pds.test/ü"}},
			{"same policies", Config{BaseURL: testBaseURL, AuthenticationPolicy: DefaultSigningPolicy}},
			{"attestation required without roots", Config{BaseURL: testBaseURL, RequireAttestation: true}},
		} {
			if _, err := New(tt.cfg, tc.keys, db, nil, tc.CA.audit, nil, nil); err == nil {
				t.Errorf("%s: New() = nil error", tt.name)
			}
		}
		if _, err := New(Config{BaseURL: testBaseURL}, tc.keys, db, nil, nil, nil, nil); err == nil {
			t.Errorf("New() without an audit logger = nil error")
		}
		bad := *tc.keys
		bad.IssuingKey = tc.keys.TSAKey
		if _, err := New(Config{BaseURL: testBaseURL}, &bad, db, nil, tc.CA.audit, nil, nil); err == nil {
			t.Errorf("New() with a key that does not match the issuing certificate = nil error")
		}
	})
}

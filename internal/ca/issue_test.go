package ca

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
	"mobileid/internal/vmac"
)

func TestIssueRefusals(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		reg := newRegistration(t, tc.vendor, newECKey(t), newECKey(t))
		other := newECKey(t)
		rsa1024 := newRSAKey(t, 2)
		untrusted := newVendor(t, "Untrusted Vendor")

		// withKey replaces the signing key with k, with a valid proof of
		// possession: the refusal must come from the key itself.
		withKey := func(k cardKey) func(t *testing.T, r *IssueRequest) {
			return func(t *testing.T, r *IssueRequest) {
				r.PublicKey = k.spki
				r.ProofOfPossession = k.pop(t, r.Challenge, r.KeyRef)
				r.Attestation = nil
			}
		}
		subject := func(f func(s *Subject)) func(t *testing.T, r *IssueRequest) {
			return func(t *testing.T, r *IssueRequest) { f(&r.Subject) }
		}
		edPub, _, _ := ed25519.GenerateKey(rand.Reader)
		edSPKI, _ := x509.MarshalPKIXPublicKey(edPub)

		tests := []struct {
			name   string
			mutate func(t *testing.T, r *IssueRequest)
			code   RefusalCode
		}{
			{"unknown profile", func(t *testing.T, r *IssueRequest) { r.Profile = "qualified" }, RefusedProfile},
			{"service profile", func(t *testing.T, r *IssueRequest) { r.Profile = ProfileTimeStamping }, RefusedProfile},
			{"lower-case country", subject(func(s *Subject) { s.Country = "ee" }), RefusedSubject},
			{"three-letter country", subject(func(s *Subject) { s.Country = "EST" }), RefusedSubject},
			{"empty country", subject(func(s *Subject) { s.Country = "" }), RefusedSubject},
			{"empty given name", subject(func(s *Subject) { s.GivenName = "" }), RefusedSubject},
			{"blank surname", subject(func(s *Subject) { s.Surname = "  " }), RefusedSubject},
			{"comma in surname", subject(func(s *Subject) { s.Surname = "SMITH,JONES" }), RefusedSubject},
			{"control character in name", subject(func(s *Subject) { s.GivenName = "JAAK\nKRISTJAN" }), RefusedSubject},
			{"trailing space in name", subject(func(s *Subject) { s.GivenName = "JAAK " }), RefusedSubject},
			{"invalid UTF-8 in name", subject(func(s *Subject) { s.Surname = "J\xffEORG" }), RefusedSubject},
			{"name too long", subject(func(s *Subject) { s.Surname = strings.Repeat("A", 65) }), RefusedSubject},
			{"empty national ID", subject(func(s *Subject) { s.NationalID = "" }), RefusedSubject},
			{"hyphen in national ID", subject(func(s *Subject) { s.NationalID = "380010-85718" }), RefusedSubject},
			{"lower case in national ID", subject(func(s *Subject) { s.NationalID = "38001085718x" }), RefusedSubject},
			{"national ID too long", subject(func(s *Subject) { s.NationalID = strings.Repeat("1", 33) }), RefusedSubject},
			{"RSA-1024 key", withKey(rsa1024), RefusedKey},
			{"Ed25519 key", func(t *testing.T, r *IssueRequest) { r.PublicKey = edSPKI }, RefusedKey},
			{"garbage key", func(t *testing.T, r *IssueRequest) { r.PublicKey = []byte{0x30, 0x03, 0x02, 0x01, 0x01} }, RefusedKey},
			{"no key", func(t *testing.T, r *IssueRequest) { r.PublicKey = nil }, RefusedKey},
			{"key reference of the other profile", func(t *testing.T, r *IssueRequest) {
				r.KeyRef = vmac.KeyAuth
				r.ProofOfPossession = reg.sign.pop(t, r.Challenge, vmac.KeyAuth)
			}, RefusedKeyRef},
			{"short challenge", func(t *testing.T, r *IssueRequest) {
				r.Challenge = r.Challenge[:8]
				r.ProofOfPossession = reg.sign.pop(t, r.Challenge, r.KeyRef)
			}, RefusedChallenge},
			{"wrong challenge", func(t *testing.T, r *IssueRequest) {
				r.Challenge = append([]byte(nil), r.Challenge...)
				r.Challenge[0] ^= 1
			}, RefusedProofOfPossession},
			{"PoP by another key", func(t *testing.T, r *IssueRequest) {
				r.ProofOfPossession = other.pop(t, r.Challenge, r.KeyRef)
			}, RefusedProofOfPossession},
			{"PoP for the other key reference", func(t *testing.T, r *IssueRequest) {
				r.ProofOfPossession = reg.sign.pop(t, r.Challenge, vmac.KeyAuth)
			}, RefusedProofOfPossession},
			{"PoP over the wrong key", func(t *testing.T, r *IssueRequest) {
				r.ProofOfPossession = reg.sign.sign(t, vmac.PoPMessage(r.Challenge, r.KeyRef, other.spki))
			}, RefusedProofOfPossession},
			{"no PoP", func(t *testing.T, r *IssueRequest) { r.ProofOfPossession = nil }, RefusedProofOfPossession},
			{"attestation by an untrusted vendor", func(t *testing.T, r *IssueRequest) {
				r.Attestation = untrusted.attest(t, r.Challenge, reg.auth.spki, reg.sign.spki)
			}, RefusedAttestation},
			{"attestation not covering the key", func(t *testing.T, r *IssueRequest) {
				r.Attestation = tc.vendor.attest(t, r.Challenge, reg.auth.spki, other.spki)
			}, RefusedAttestation},
			{"attestation covering the key as the other key", func(t *testing.T, r *IssueRequest) {
				r.Attestation = tc.vendor.attest(t, r.Challenge, reg.sign.spki, reg.auth.spki)
			}, RefusedAttestation},
			{"attestation for another challenge", func(t *testing.T, r *IssueRequest) {
				c := append([]byte(nil), r.Challenge...)
				c[1] ^= 1
				r.Attestation = tc.vendor.attest(t, c, reg.auth.spki, reg.sign.spki)
			}, RefusedAttestation},
			{"attestation with the ICCID changed", func(t *testing.T, r *IssueRequest) {
				a := *r.Attestation
				a.ICCID = "8937201234567890124"
				r.Attestation = &a
			}, RefusedAttestation},
			{"attestation with a bad ICCID", func(t *testing.T, r *IssueRequest) {
				a := *r.Attestation
				a.ICCID = "89372X"
				r.Attestation = &a
			}, RefusedAttestation},
			{"attestation certificate garbage", func(t *testing.T, r *IssueRequest) {
				a := *r.Attestation
				a.Certificate = []byte("not a certificate")
				r.Attestation = &a
			}, RefusedAttestation},
			{"attestation of one key twice", func(t *testing.T, r *IssueRequest) {
				r.Attestation = tc.vendor.attest(t, r.Challenge, reg.sign.spki, reg.sign.spki)
			}, RefusedAttestation},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := reg.request(t, ProfileSigning)
				tt.mutate(t, req)
				before := len(tc.audit.all())
				cert, err := tc.Issue(t.Context(), req)
				var refusal *RefusalError
				if !errors.As(err, &refusal) || !errors.Is(err, ErrRefused) {
					t.Fatalf("Issue() = %v, %v; want a refusal", cert, err)
				}
				if refusal.Code != tt.code {
					t.Errorf("Issue() refused with %s (%s), want %s", refusal.Code, refusal.Reason, tt.code)
				}
				if n := userCertRows(t, db); n != 0 {
					t.Errorf("%d certificates stored after a refusal", n)
				}
				recs := tc.audit.all()[before:]
				if len(recs) != 1 || recs[0].Attrs["event"] != "refuse" || recs[0].Attrs["code"] != string(tt.code) {
					t.Errorf("audit records %+v, want one refusal", recs)
				}
			})
		}
		if got := testutil.ToFloat64(tc.m.refused.WithLabelValues(string(RefusedProofOfPossession))); got != 5 {
			t.Errorf("mobileid_ca_refused_total{code=bad_proof_of_possession} = %v, want 5", got)
		}
		// The unmodified request passes: the refusals above were for the
		// reasons given.
		tc.issue(t, reg.request(t, ProfileSigning))
	})
}

func TestAttestationPolicy(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		required := newTestCA(t, db, func(c *Config) { c.RequireAttestation = true })
		reg := newRegistration(t, required.vendor, newECKey(t), newRSAKey(t, 0))
		req := reg.request(t, ProfileAuthentication)
		req.Attestation = nil
		var refusal *RefusalError
		if _, err := required.Issue(t.Context(), req); !errors.As(err, &refusal) || refusal.Code != RefusedAttestationRequired {
			t.Errorf("Issue() without attestation = %v, want %s", err, RefusedAttestationRequired)
		}
		for _, p := range []Profile{ProfileAuthentication, ProfileSigning} {
			rec, _ := required.issue(t, reg.request(t, p))
			if rec.ICCID != testICCID {
				t.Errorf("ICCID = %q, want %q", rec.ICCID, testICCID)
			}
		}

		// A CA without vendor roots cannot judge an attestation, so it
		// refuses rather than ignore it.
		noRoots := newTestCA(t, db, func(c *Config) { c.TrustedVendorRoots = nil })
		if _, err := noRoots.Issue(t.Context(), reg.request(t, ProfileSigning)); !errors.As(err, &refusal) || refusal.Code != RefusedAttestation {
			t.Errorf("Issue() with attestation and no roots = %v, want %s", err, RefusedAttestation)
		}
		req = reg.request(t, ProfileSigning)
		req.Attestation = nil
		noRoots.issue(t, req)
	})
}

func TestSerialCollision(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		reg := newRegistration(t, nil, newECKey(t), newECKey(t))
		first, _ := tc.issue(t, reg.request(t, ProfileAuthentication))

		fresh := big.NewInt(0x1234567890)
		serials := []*big.Int{first.Serial, fresh}
		tc.newSerial = func() (*big.Int, error) {
			s := serials[0]
			serials = serials[1:]
			return s, nil
		}
		second, cert := tc.issue(t, reg.request(t, ProfileSigning))
		if second.Serial.Cmp(fresh) != 0 || cert.SerialNumber.Cmp(fresh) != 0 {
			t.Errorf("serial after a collision = %x, want %x", second.Serial, fresh)
		}

		tc.newSerial = func() (*big.Int, error) { return first.Serial, nil }
		if _, err := tc.Issue(t.Context(), reg.request(t, ProfileSigning)); err == nil || errors.Is(err, ErrRefused) {
			t.Errorf("Issue() with only colliding serials = %v, want a store error", err)
		}
		if n := userCertRows(t, db); n != 2 {
			t.Errorf("%d certificates stored, want 2", n)
		}
		got, err := tc.Get(t.Context(), first.Serial)
		if err != nil || got.Profile != ProfileAuthentication {
			t.Errorf("Get(first) = %+v, %v; the collision must not replace it", got, err)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		reg := newRegistration(t, tc.vendor, newECKey(t), newECKey(t))
		auth, _ := tc.issue(t, reg.request(t, ProfileAuthentication))
		tc.clock.Advance(1e9)
		sign, _ := tc.issue(t, reg.request(t, ProfileSigning))
		tc.clock.Advance(1e9)
		otherReq := newRegistration(t, nil, newECKey(t), newECKey(t)).request(t, ProfileAuthentication)
		otherReq.Subject = Subject{Country: "LV", GivenName: "Anna", Surname: "Bērziņa", NationalID: "32345678901"}
		other, _ := tc.issue(t, otherReq)
		if err := tc.Revoke(t.Context(), sign.Serial, ReasonCertificateHold, tc.clock.Now()); err != nil {
			t.Fatal(err)
		}

		serials := func(cs []*Certificate) []string {
			var out []string
			for _, c := range cs {
				out = append(out, serialKey(c.Serial))
			}
			return out
		}
		for _, tt := range []struct {
			name   string
			filter ListFilter
			want   []*Certificate
		}{
			{"person", ListFilter{Country: "EE", NationalID: "38001085718"}, []*Certificate{sign, auth}},
			{"person and profile", ListFilter{Country: "EE", NationalID: "38001085718", Profile: ProfileSigning}, []*Certificate{sign}},
			{"on hold", ListFilter{Status: StatusOnHold}, []*Certificate{sign}},
			{"ICCID", ListFilter{ICCID: testICCID}, []*Certificate{sign, auth}},
			{"profile, limit 1", ListFilter{Profile: ProfileAuthentication, Limit: 1}, []*Certificate{other}},
			{"nobody", ListFilter{NationalID: "1"}, nil},
		} {
			got, err := tc.List(t.Context(), tt.filter)
			if err != nil {
				t.Fatalf("List(%+v) = %v", tt.filter, err)
			}
			if diff := cmp.Diff(serials(tt.want), serials(got)); diff != "" {
				t.Errorf("%s: List(%+v) (-want +got):\n%s", tt.name, tt.filter, diff)
			}
		}
		got, _ := tc.List(t.Context(), ListFilter{Status: StatusOnHold})
		if len(got) == 1 && (got[0].Status != StatusOnHold || got[0].Reason != ReasonCertificateHold || got[0].RevokedAt.IsZero()) {
			t.Errorf("held certificate listed as %+v", got[0])
		}
		if _, err := tc.Get(t.Context(), big.NewInt(42)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
	})
}

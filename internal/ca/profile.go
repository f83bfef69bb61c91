package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mobileid/internal/vmac"
)

// Profile names a certificate profile. The string is what the store, the
// HTTP API and the metrics use.
type Profile string

// Profiles. Issue accepts only ProfileAuthentication and ProfileSigning;
// the other two mark the CA's own service certificates in the store, so
// that CertStatus knows them and they can be revoked like any other.
const (
	// ProfileAuthentication certifies the card's authentication key
	// (key reference 1, PIN1): keyUsage digitalSignature (plus
	// keyAgreement for an EC key), extKeyUsage clientAuth.
	ProfileAuthentication Profile = "authentication"
	// ProfileSigning certifies the card's signing key (key reference 2,
	// PIN2): keyUsage contentCommitment only, and the ETSI EN 319 412-5
	// QC statements.
	ProfileSigning Profile = "signing"
	// ProfileOCSPResponder is the delegated OCSP responder certificate.
	ProfileOCSPResponder Profile = "ocsp-responder"
	// ProfileTimeStamping is the RFC 3161 time-stamping certificate.
	ProfileTimeStamping Profile = "time-stamping"
)

// keyRef is the card key a profile certifies. Tying them stops a
// registration from getting a non-repudiation certificate for the key
// that PIN1 unlocks.
func (p Profile) keyRef() (vmac.KeyRef, bool) {
	switch p {
	case ProfileAuthentication:
		return vmac.KeyAuth, true
	case ProfileSigning:
		return vmac.KeySign, true
	}
	return 0, false
}

// PolicyArc is the OID arc of the default certificate policies: below the
// private enterprise number that RFC 5612 sets aside for documentation,
// as the default TSA policy is. Below it, .1.1 is the authentication
// policy and .1.2 the signing policy. A deployment sets policies under its
// own enterprise number (Config.AuthenticationPolicy, SigningPolicy).
//
// The arcs are small on purpose. An arc of 2.25 and a UUID would need no
// registration, but its 128-bit number breaks relying parties that hold
// arcs as JavaScript numbers or 64-bit integers: a MID client library in
// the field re-encodes such a certificate to other bytes and then cannot
// check who issued it.
const PolicyArc = "1.3.6.1.4.1.32473"

// Default certificate policies, used when Config leaves them unset. They
// differ so that a relying party can tell from the policy alone which key
// and PIN produced a signature.
var (
	DefaultAuthenticationPolicy = mustOID(PolicyArc + ".1.1")
	DefaultSigningPolicy        = mustOID(PolicyArc + ".1.2")
)

// anyPolicy (RFC 5280 §4.2.1.4) goes into the issuing CA certificate so
// that changing the end-entity policy OIDs never needs a new CA.
var anyPolicy = mustOID("2.5.29.32.0")

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// Attribute and extension OIDs that crypto/x509 has no names for.
var (
	oidCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSurname      = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName    = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

	oidQCStatements   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	oidQcCompliance   = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}
	oidQcSSCD         = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 4}
	oidQcPDS          = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 5}
	oidQcType         = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}
	oidQcTypeESign    = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 1}
	oidOCSPNoCheck    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	oidExtKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
)

// Subject is the natural person a certificate names (ETSI EN 319 412-1).
type Subject struct {
	// Country is the ISO 3166-1 alpha-2 code of the country that issued
	// NationalID, in capitals ("EE").
	Country string `json:"country"`
	// GivenName and Surname are kept exactly as given, including case:
	// the registration desk copies them from the identity document.
	GivenName string `json:"given_name"`
	Surname   string `json:"surname"`
	// NationalID is the personal identification number, digits and
	// capital letters only ("38001085718").
	NationalID string `json:"national_id"`
}

// CommonName is the certificate's CN, "SURNAME,GIVENNAME" as in Estonian
// ID certificates, e.g. "JÕEORG,JAAK-KRISTJAN".
func (s Subject) CommonName() string { return s.Surname + "," + s.GivenName }

// SemanticsIdentifier is the serialNumber attribute in the ETSI EN
// 319 412-1 §5.1.3 form for a national personal number: "PNO", the
// country, "-", the number ("PNOEE-38001085718").
func (s Subject) SemanticsIdentifier() string { return "PNO" + s.Country + "-" + s.NationalID }

// maxNameLen bounds each name part; the same limit X.520 sets for a
// common name (ub-common-name), which no real name reaches.
const maxNameLen = 64

// maxNationalIDLen is generous: national numbers are 8–20 characters.
const maxNationalIDLen = 32

// validate checks the subject; the returned error is a refusal.
func (s Subject) validate() *RefusalError {
	if len(s.Country) != 2 || !isUpperASCII(s.Country) {
		return refuse(RefusedSubject, fmt.Sprintf("country %q is not two capital letters (ISO 3166-1 alpha-2)", s.Country))
	}
	for _, n := range []struct{ field, v string }{{"given name", s.GivenName}, {"surname", s.Surname}} {
		if msg := checkName(n.v); msg != "" {
			return refuse(RefusedSubject, n.field+" "+msg)
		}
	}
	if s.NationalID == "" || len(s.NationalID) > maxNationalIDLen {
		return refuse(RefusedSubject, fmt.Sprintf("national ID must have 1–%d characters", maxNationalIDLen))
	}
	for _, r := range s.NationalID {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'Z') {
			return refuse(RefusedSubject, "national ID may contain only digits and capital letters A–Z")
		}
	}
	return nil
}

func isUpperASCII(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// checkName returns what is wrong with a name part, or "". A comma would
// make the "SURNAME,GIVENNAME" common name ambiguous; control characters
// and surrounding spaces are data-entry mistakes that would otherwise be
// certified for years.
func checkName(v string) string {
	switch {
	case strings.TrimSpace(v) == "":
		return "is empty"
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case utf8.RuneCountInString(v) > maxNameLen:
		return fmt.Sprintf("is longer than %d characters", maxNameLen)
	case strings.TrimSpace(v) != v:
		return "has leading or trailing spaces"
	case strings.ContainsRune(v, ','):
		return "contains a comma"
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return "contains a control character"
		}
	}
	return ""
}

// subjectDER encodes the subject DN in the order of Estonian ID
// certificates: C, CN, SN, GN, serialNumber. Names are UTF8String (RFC
// 5280 §4.1.2.6: new certificates use it for DirectoryString); C and
// serialNumber are PrintableString, as X.520 requires. pkix.Name would
// reorder the attributes and pick string types on its own.
func subjectDER(s Subject) ([]byte, error) {
	attr := func(oid asn1.ObjectIdentifier, v, kind string) (pkix.RelativeDistinguishedNameSET, error) {
		b, err := asn1.MarshalWithParams(v, kind)
		if err != nil {
			return nil, err
		}
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: asn1.RawValue{FullBytes: b}}}, nil
	}
	var rdns pkix.RDNSequence
	for _, a := range []struct {
		oid  asn1.ObjectIdentifier
		v    string
		kind string
	}{
		{oidCountry, s.Country, "printable"},
		{oidCommonName, s.CommonName(), "utf8"},
		{oidSurname, s.Surname, "utf8"},
		{oidGivenName, s.GivenName, "utf8"},
		{oidSerialNumber, s.SemanticsIdentifier(), "printable"},
	} {
		rdn, err := attr(a.oid, a.v, a.kind)
		if err != nil {
			return nil, fmt.Errorf("encode subject: %w", err)
		}
		rdns = append(rdns, rdn)
	}
	return asn1.Marshal(rdns)
}

// qcStatement is QCStatement of RFC 3739 §3.2.6.
type qcStatement struct {
	ID   asn1.ObjectIdentifier
	Info asn1.RawValue `asn1:"optional"`
}

// pdsLocation is PdsLocation of ETSI EN 319 412-5 §4.3.4.
type pdsLocation struct {
	URL      string `asn1:"ia5"`
	Language string `asn1:"printable"`
}

// qcStatementsExtension builds id-pe-qcStatements for the signing
// profile: QcCompliance, QcSSCD, QcType esign and QcPDS (pdsURL, "en").
// crypto/x509 has no support for it. It is non-critical, as EN 319 412-5
// §4.1 requires, so software that does not know it still validates.
func qcStatementsExtension(pdsURL string) (pkix.Extension, error) {
	qcType, err := asn1.Marshal([]asn1.ObjectIdentifier{oidQcTypeESign})
	if err != nil {
		return pkix.Extension{}, err
	}
	pds, err := asn1.Marshal([]pdsLocation{{URL: pdsURL, Language: "en"}})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode PDS location: %w", err)
	}
	v, err := asn1.Marshal([]qcStatement{
		{ID: oidQcCompliance},
		{ID: oidQcSSCD},
		{ID: oidQcType, Info: asn1.RawValue{FullBytes: qcType}},
		{ID: oidQcPDS, Info: asn1.RawValue{FullBytes: pds}},
	})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode QC statements: %w", err)
	}
	return pkix.Extension{Id: oidQCStatements, Value: v}, nil
}

// criticalEKU builds an extKeyUsage extension marked critical, which
// crypto/x509 cannot do (it always writes it non-critical) and RFC 3161
// §2.3 requires for a TSA certificate.
func criticalEKU(oids ...asn1.ObjectIdentifier) (pkix.Extension, error) {
	v, err := asn1.Marshal(oids)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode extKeyUsage: %w", err)
	}
	return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v}, nil
}

// ocspNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1) with the NULL
// value: relying parties need not ask about the responder's own
// certificate, which is why it is short-lived.
var ocspNoCheck = pkix.Extension{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}

// userKey is a parsed card key with the name used in logs and metrics.
type userKey struct {
	pub  crypto.PublicKey
	ec   bool
	name string // "ECDSA P-256" or "RSA-2048"
}

// parseUserKey accepts exactly the card's algorithms, in canonical DER:
// the certificate is built from the parsed key, and it must hold the very
// bytes the proof of possession and the attestation cover.
func parseUserKey(spki []byte) (userKey, *RefusalError) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return userKey{}, refuse(RefusedKey, "public key is not a valid SubjectPublicKeyInfo")
	}
	var k userKey
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return userKey{}, refuse(RefusedKey, fmt.Sprintf("ECDSA key on %s: only P-256 is accepted", p.Curve.Params().Name))
		}
		k = userKey{pub: p, ec: true, name: "ECDSA P-256"}
	case *rsa.PublicKey:
		if n := p.N.BitLen(); n != 2048 {
			return userKey{}, refuse(RefusedKey, fmt.Sprintf("RSA key of %d bits: only RSA-2048 is accepted", n))
		}
		k = userKey{pub: p, name: "RSA-2048"}
	default:
		return userKey{}, refuse(RefusedKey, fmt.Sprintf("%T: only ECDSA P-256 and RSA-2048 keys are accepted", pub))
	}
	canon, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil || string(canon) != string(spki) {
		return userKey{}, refuse(RefusedKey, "public key is not in canonical DER")
	}
	return k, nil
}

// subjectKeyID is RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256
// over the subjectPublicKey bits, as crypto/x509 computes it for CAs.
func subjectKeyID(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, fmt.Errorf("parse SubjectPublicKeyInfo: %w", err)
	}
	h := sha256.Sum256(info.PublicKey.Bytes)
	return h[:20], nil
}

// leafTemplate is the certificate template for an end-entity certificate
// of profile p; SerialNumber is left for the caller.
func (c *CA) leafTemplate(p Profile, subj Subject, key userKey, spki []byte, now time.Time) (*x509.Certificate, error) {
	rawSubject, err := subjectDER(subj)
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(spki)
	if err != nil {
		return nil, err
	}
	notBefore := now.Truncate(time.Second)
	notAfter := notBefore.AddDate(3, 0, 0)
	if c.cfg.Validity > 0 {
		notAfter = notBefore.Add(c.cfg.Validity)
	}
	// A certificate that outlives its issuer fails path validation for
	// the rest of its life; end it with the issuer instead.
	if ca := c.keys.Issuing.NotAfter; notAfter.After(ca) {
		notAfter = ca
	}
	t := &x509.Certificate{
		RawSubject:            rawSubject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		SubjectKeyId:          skid,
		OCSPServer:            []string{c.cfg.BaseURL + "/ocsp"},
		IssuingCertificateURL: []string{c.cfg.BaseURL + "/ca/issuing.crt"},
		CRLDistributionPoints: []string{c.cfg.BaseURL + "/crl/issuing.crl"},
	}
	switch p {
	case ProfileAuthentication:
		t.KeyUsage = x509.KeyUsageDigitalSignature
		if key.ec {
			// Lets the key also do ECDH (TLS, document decryption).
			t.KeyUsage |= x509.KeyUsageKeyAgreement
		}
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		t.Policies = []x509.OID{c.cfg.AuthenticationPolicy}
	case ProfileSigning:
		t.KeyUsage = x509.KeyUsageContentCommitment
		t.Policies = []x509.OID{c.cfg.SigningPolicy}
		t.ExtraExtensions = []pkix.Extension{c.qcStatements}
	default:
		return nil, fmt.Errorf("build template: profile %q", p)
	}
	return t, nil
}

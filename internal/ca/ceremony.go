package ca

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KEKEnv is the environment variable from which the wiring reads the
// key-encryption key: 64 hex digits (32 bytes), e.g. made with
// `openssl rand -hex 32`. It belongs in the environment or a secrets
// store, never next to the key files it protects.
const KEKEnv = "MOBILEID_CA_KEY"

// Files of a key ceremony, in the ceremony directory. Certificates are
// PEM "CERTIFICATE"; keys are PEM blocks of type KeyPEMType.
const (
	RootCertFile    = "root.pem"
	RootKeyFile     = "root.key" // in InitOptions.RootKeyDir; never read by Load
	IssuingCertFile = "issuing.pem"
	IssuingKeyFile  = "issuing.key"
	OCSPCertFile    = "ocsp.pem"
	OCSPKeyFile     = "ocsp.key"
	TSACertFile     = "tsa.pem"
	TSAKeyFile      = "tsa.key"
)

// KeyPEMType is the PEM type of a sealed private key. Its bytes are the
// AES-256-GCM encryption under the key-encryption key of the PKCS #8 DER
// key: a 12-byte random nonce, the ciphertext and the 16-byte tag. The
// additional authenticated data is the key's role ("root", "issuing",
// "ocsp", "tsa"), so a key file renamed to another role does not open. The
// headers (Role, Cipher) are informative only.
const KeyPEMType = "MOBILEID ENCRYPTED PRIVATE KEY"

// Key roles: the file name stems and the AAD of the sealed keys.
const (
	roleRoot    = "root"
	roleIssuing = "issuing"
	roleOCSP    = "ocsp"
	roleTSA     = "tsa"
)

// ParseKEK decodes a key-encryption key written as 64 hex digits, as in
// the MOBILEID_CA_KEY environment variable. Surrounding space is ignored
// so that a value pasted from a file with a newline works.
func ParseKEK(s string) ([]byte, error) {
	kek, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(kek) != 32 {
		return nil, ErrBadKEK
	}
	return kek, nil
}

// InitOptions configures a key ceremony.
type InitOptions struct {
	// Organization and Country (ISO 3166-1 alpha-2) go into every CA
	// certificate's subject; the common names are derived from
	// Organization ("<Organization> Root CA", "… Issuing CA", "… OCSP
	// Responder", "… Time-Stamping Authority").
	Organization string
	Country      string
	// BaseURL is where the CA's public endpoints will be reachable, e.g.
	// "http://ca.example.org" (no trailing slash). It is written into the
	// certificates' AIA and CRL distribution points, so it must be the
	// same as Config.BaseURL. Plain http is usual: CRLs, certificates and
	// OCSP answers are signed, and clients fetching them over https could
	// loop on validating the server's own certificate.
	BaseURL string
	// Validity overrides; zero means the default: root 20 years, issuing
	// CA 10 years, OCSP responder 1 year (renewable with
	// RenewOCSPResponder, since the issuing key stays online), TSA 5 years.
	// Each must end before the certificate above it.
	RootValidity, IssuingValidity, OCSPValidity, TSAValidity time.Duration
	// RootKeyDir is where root.key is written; empty means the ceremony
	// directory. Pointing it at removable media keeps the root key off
	// the CA host from the start.
	RootKeyDir string
	// Now is the certificates' notBefore; zero means the current time.
	Now time.Time
}

// Keys is what the running CA, the OCSP responder and the TSA need from
// the ceremony. It never holds the root private key.
type Keys struct {
	Root       *x509.Certificate
	Issuing    *x509.Certificate
	IssuingKey crypto.Signer
	OCSP       *x509.Certificate // delegated responder (id-kp-OCSPSigning, ocsp-nocheck)
	OCSPKey    crypto.Signer
	TSA        *x509.Certificate // id-kp-timeStamping, critical
	TSAKey     crypto.Signer
}

// Init runs the key ceremony in dir: it generates the root CA (ECDSA
// P-384, self-signed), the issuing CA (ECDSA P-384, pathLenConstraint 0),
// the delegated OCSP responder (ECDSA P-256) and the time-stamping unit
// (ECDSA P-384), and writes their certificates and sealed keys (see the
// file constants and KeyPEMType). It refuses, with ErrCeremonyExists and
// without writing anything, if any of the files is already there. On a
// write error it removes what it wrote.
func Init(dir string, kek []byte, opts InitOptions) error {
	if len(kek) != 32 {
		return ErrBadKEK
	}
	if err := opts.validate(); err != nil {
		return fmt.Errorf("init CA: %w", err)
	}
	rootKeyDir := opts.RootKeyDir
	if rootKeyDir == "" {
		rootKeyDir = dir
	}
	type file struct {
		path string
		data []byte
		perm fs.FileMode
	}
	files := []file{
		{path: filepath.Join(dir, RootCertFile), perm: 0o644},
		{path: filepath.Join(rootKeyDir, RootKeyFile), perm: 0o600},
		{path: filepath.Join(dir, IssuingCertFile), perm: 0o644},
		{path: filepath.Join(dir, IssuingKeyFile), perm: 0o600},
		{path: filepath.Join(dir, OCSPCertFile), perm: 0o644},
		{path: filepath.Join(dir, OCSPKeyFile), perm: 0o600},
		{path: filepath.Join(dir, TSACertFile), perm: 0o644},
		{path: filepath.Join(dir, TSAKeyFile), perm: 0o600},
	}
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return fmt.Errorf("init CA: %w: %s", ErrCeremonyExists, f.path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init CA: %w", err)
		}
	}

	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.Truncate(time.Second)
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate root key: %w", err)
	}
	name := func(cn string) pkix.Name {
		return pkix.Name{Country: []string{opts.Country}, Organization: []string{opts.Organization}, CommonName: opts.Organization + " " + cn}
	}
	root, err := createCert(&x509.Certificate{
		Subject:               name("Root CA"),
		NotBefore:             now,
		NotAfter:              validUntil(now, opts.RootValidity, 20),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, &rootKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("create root certificate: %w", err)
	}
	issuingKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate issuing key: %w", err)
	}
	issuing, err := createCert(&x509.Certificate{
		Subject:               name("Issuing CA"),
		NotBefore:             now,
		NotAfter:              validUntil(now, opts.IssuingValidity, 10),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		IssuingCertificateURL: []string{opts.BaseURL + "/ca/root.crt"},
		Policies:              []x509.OID{anyPolicy},
	}, root, &issuingKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("create issuing CA certificate: %w", err)
	}
	ocspKey, ocsp, err := newOCSPResponder(issuing, issuingKey, name("OCSP Responder"), opts.BaseURL, now, opts.OCSPValidity)
	if err != nil {
		return err
	}
	tsaKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate TSA key: %w", err)
	}
	eku, err := criticalEKU(oidKPTimeStamping)
	if err != nil {
		return err
	}
	tsa, err := createCert(&x509.Certificate{
		Subject:               name("Time-Stamping Authority"),
		NotBefore:             now,
		NotAfter:              validUntil(now, opts.TSAValidity, 5),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtraExtensions:       []pkix.Extension{eku},
		OCSPServer:            []string{opts.BaseURL + "/ocsp"},
		IssuingCertificateURL: []string{opts.BaseURL + "/ca/issuing.crt"},
		CRLDistributionPoints: []string{opts.BaseURL + "/crl/issuing.crl"},
	}, issuing, &tsaKey.PublicKey, issuingKey)
	if err != nil {
		return fmt.Errorf("create TSA certificate: %w", err)
	}
	for _, c := range []struct {
		what          string
		child, parent *x509.Certificate
	}{{"issuing CA", issuing, root}, {"OCSP responder", ocsp, issuing}, {"TSA", tsa, issuing}} {
		if c.child.NotAfter.After(c.parent.NotAfter) {
			return fmt.Errorf("init CA: the %s certificate would outlive its issuer (%s > %s): shorten its validity",
				c.what, c.child.NotAfter.Format(time.DateOnly), c.parent.NotAfter.Format(time.DateOnly))
		}
	}

	var sealErr error
	seal := func(role string, k crypto.Signer) []byte {
		b, err := sealKey(kek, role, k)
		if err != nil {
			sealErr = err
		}
		return b
	}
	files[0].data = certPEM(root)
	files[1].data = seal(roleRoot, rootKey)
	files[2].data = certPEM(issuing)
	files[3].data = seal(roleIssuing, issuingKey)
	files[4].data = certPEM(ocsp)
	files[5].data = seal(roleOCSP, ocspKey)
	files[6].data = certPEM(tsa)
	files[7].data = seal(roleTSA, tsaKey)
	if sealErr != nil {
		return sealErr
	}

	for _, d := range []string{dir, rootKeyDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("init CA: %w", err)
		}
	}
	for i, f := range files {
		if err := writeNewFile(f.path, f.data, f.perm); err != nil {
			for _, w := range files[:i] {
				os.Remove(w.path)
			}
			return fmt.Errorf("init CA: %w", err)
		}
	}
	return nil
}

func (o *InitOptions) validate() error {
	switch {
	case strings.TrimSpace(o.Organization) == "":
		return errors.New("no organisation name")
	case len(o.Country) != 2 || !isUpperASCII(o.Country):
		return fmt.Errorf("country %q is not two capital letters", o.Country)
	}
	u, err := normaliseBaseURL(o.BaseURL)
	if err != nil {
		return err
	}
	o.BaseURL = u
	for _, d := range []time.Duration{o.RootValidity, o.IssuingValidity, o.OCSPValidity, o.TSAValidity} {
		if d < 0 {
			return errors.New("negative validity")
		}
	}
	return nil
}

// validUntil is notBefore plus the override, or plus the default years.
func validUntil(notBefore time.Time, override time.Duration, years int) time.Time {
	if override > 0 {
		return notBefore.Add(override)
	}
	return notBefore.AddDate(years, 0, 0)
}

// newOCSPResponder makes a delegated OCSP responder key and certificate.
func newOCSPResponder(issuing *x509.Certificate, issuingKey crypto.Signer, subject pkix.Name, baseURL string, now time.Time, validity time.Duration) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate OCSP responder key: %w", err)
	}
	cert, err := createCert(&x509.Certificate{
		Subject:               subject,
		NotBefore:             now,
		NotAfter:              validUntil(now, validity, 1),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions:       []pkix.Extension{ocspNoCheck},
		IssuingCertificateURL: []string{baseURL + "/ca/issuing.crt"},
	}, issuing, &key.PublicKey, issuingKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create OCSP responder certificate: %w", err)
	}
	return key, cert, nil
}

// createCert signs tmpl with a fresh serial number; a nil parent makes it
// self-signed.
func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// randomSerial returns 16 random bytes as a positive integer: 128 bits of
// entropy, so that serial numbers cannot be predicted (the defence against
// chosen-prefix collisions) and collide practically never.
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if s := new(big.Int).SetBytes(b[:]); s.Sign() > 0 {
			return s, nil
		}
	}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// sealKey encrypts k's PKCS #8 encoding under kek (see KeyPEMType).
func sealKey(kek []byte, role string, k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode %s key: %w", role, err)
	}
	defer clear(der)
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{
		Type:    KeyPEMType,
		Headers: map[string]string{"Role": role, "Cipher": "AES-256-GCM"},
		Bytes:   aead.Seal(nil, nil, der, []byte(role)),
	}), nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, ErrBadKEK
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("set up key encryption: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("set up key encryption: %w", err)
	}
	return aead, nil
}

// writeNewFile writes a file that must not exist yet and syncs it, so
// that a crash right after a ceremony does not leave empty key files.
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Load reads what the running CA needs from a ceremony directory: the
// root certificate, and the issuing CA, OCSP responder and TSA
// certificates with their keys. It never opens root.key. It checks that
// each key belongs to its certificate and that the certificates chain.
// A wrong key-encryption key gives an error wrapping ErrWrongKEK.
func Load(dir string, kek []byte) (*Keys, error) {
	if len(kek) != 32 {
		return nil, ErrBadKEK
	}
	var k Keys
	var err error
	if k.Root, err = readCert(filepath.Join(dir, RootCertFile)); err != nil {
		return nil, err
	}
	if k.Issuing, k.IssuingKey, err = readPair(dir, roleIssuing, kek); err != nil {
		return nil, err
	}
	if k.OCSP, k.OCSPKey, err = readPair(dir, roleOCSP, kek); err != nil {
		return nil, err
	}
	if k.TSA, k.TSAKey, err = readPair(dir, roleTSA, kek); err != nil {
		return nil, err
	}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("load CA keys from %s: %w", dir, err)
	}
	return &k, nil
}

// check verifies the chain root → issuing → {OCSP, TSA}. Keys built by
// hand (tests, an HSM) get the same checks from New.
func (k *Keys) check() error {
	switch {
	case k == nil || k.Root == nil || k.Issuing == nil || k.IssuingKey == nil:
		return errors.New("missing root certificate, issuing certificate or issuing key")
	case !k.Issuing.IsCA || k.Issuing.KeyUsage&x509.KeyUsageCertSign == 0 || k.Issuing.KeyUsage&x509.KeyUsageCRLSign == 0:
		return errors.New("issuing certificate is not a CA allowed to sign certificates and CRLs")
	case len(k.Issuing.SubjectKeyId) == 0:
		return errors.New("issuing certificate has no subject key identifier (needed for CRLs)")
	}
	if err := k.Issuing.CheckSignatureFrom(k.Root); err != nil {
		return fmt.Errorf("issuing certificate is not signed by the root: %w", err)
	}
	if err := matchKey(k.Issuing, k.IssuingKey); err != nil {
		return fmt.Errorf("issuing key: %w", err)
	}
	for _, s := range []struct {
		what string
		c    *x509.Certificate
		key  crypto.Signer
	}{{"OCSP responder", k.OCSP, k.OCSPKey}, {"TSA", k.TSA, k.TSAKey}} {
		if s.c == nil {
			continue
		}
		if err := s.c.CheckSignatureFrom(k.Issuing); err != nil {
			return fmt.Errorf("%s certificate is not signed by the issuing CA: %w", s.what, err)
		}
		if s.key == nil {
			return fmt.Errorf("%s certificate without its key", s.what)
		}
		if err := matchKey(s.c, s.key); err != nil {
			return fmt.Errorf("%s key: %w", s.what, err)
		}
	}
	return nil
}

func matchKey(c *x509.Certificate, k crypto.Signer) error {
	pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(c.PublicKey) {
		return errors.New("does not match its certificate")
	}
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("read certificate %s: no PEM CERTIFICATE block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	return c, nil
}

// readPair reads <role>.pem and <role>.key from dir.
func readPair(dir, role string, kek []byte) (*x509.Certificate, crypto.Signer, error) {
	c, err := readCert(filepath.Join(dir, role+".pem"))
	if err != nil {
		return nil, nil, err
	}
	k, err := readKey(filepath.Join(dir, role+".key"), role, kek)
	if err != nil {
		return nil, nil, err
	}
	return c, k, nil
}

// readKey opens a sealed key file.
func readKey(path, role string, kek []byte) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, err := openKey(b, role, kek)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return k, nil
}

// openKey decrypts a KeyPEMType block sealed for role.
func openKey(pemBytes []byte, role string, kek []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != KeyPEMType {
		return nil, fmt.Errorf("no PEM %q block", KeyPEMType)
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	der, err := aead.Open(nil, nil, block.Bytes, []byte(role))
	if err != nil {
		return nil, ErrWrongKEK
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse decrypted key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

// RenewOCSPResponder replaces the OCSP responder key and certificate in
// dir with new ones issued by the issuing CA, valid for validity (zero
// means 1 year). The subject and URLs are those of the current responder
// certificate. Running CAs and responders pick the new pair up when they
// next call Load; the old certificate stays valid until it expires, so
// nothing breaks in between.
func RenewOCSPResponder(dir string, kek []byte, validity time.Duration) error {
	keys, err := Load(dir, kek)
	if err != nil {
		return fmt.Errorf("renew OCSP responder: %w", err)
	}
	baseURL := strings.TrimSuffix(firstOr(keys.OCSP.IssuingCertificateURL, ""), "/ca/issuing.crt")
	now := time.Now().Truncate(time.Second)
	key, cert, err := newOCSPResponder(keys.Issuing, keys.IssuingKey, keys.OCSP.Subject, baseURL, now, validity)
	if err != nil {
		return err
	}
	if cert.NotAfter.After(keys.Issuing.NotAfter) {
		return errors.New("renew OCSP responder: the certificate would outlive the issuing CA")
	}
	sealed, err := sealKey(kek, roleOCSP, key)
	if err != nil {
		return err
	}
	// Key first: a reader that sees the new key with the old certificate
	// fails Load's key check and retries, rather than serving a mismatch.
	for _, f := range []struct {
		name string
		data []byte
		perm fs.FileMode
	}{{OCSPKeyFile, sealed, 0o600}, {OCSPCertFile, certPEM(cert), 0o644}} {
		path := filepath.Join(dir, f.name)
		tmp := path + ".new"
		os.Remove(tmp)
		if err := writeNewFile(tmp, f.data, f.perm); err != nil {
			return fmt.Errorf("renew OCSP responder: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("renew OCSP responder: %w", err)
		}
	}
	return nil
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"mobileid/internal/ota"
	"mobileid/internal/simbatch"
)

// DefaultTAR is the TAR of the VMAC applet on cards from our factory. It
// lies outside the B0 00 xx range that TS 101 220 gives to remote file
// and applet management.
var DefaultTAR = ota.TAR{0x4D, 0x49, 0x44} // "MID"

// DefaultKeyID is the KIc and KID octet of the factory's OTA key set: key
// version 1, AES (CBC for ciphering, CMAC for the checksum).
const DefaultKeyID = 0x12

// VendorCA is the SIM vendor's CA that certifies each card's attestation
// key. Operators trust its certificate to accept keys made on our cards.
type VendorCA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// NewVendorCA creates a vendor CA with an ECDSA P-256 key, valid for 20
// years from now.
func NewVendorCA(name string, now time.Time) (*VendorCA, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"mobileid SIM factory"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	key, der, err := newCertifiedKey(tmpl, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("sim: create vendor CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &VendorCA{Cert: cert, key: key}, nil
}

// newCertifiedKey generates an ECDSA P-256 key and certifies it with
// tmpl, signed by parent's key, or self-signed when parent is nil.
func newCertifiedKey(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if tmpl.SerialNumber, err = randSerial(); err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	return key, der, nil
}

func randSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] &= 0x7F
	b[0] |= 0x01 // positive and of full length
	return new(big.Int).SetBytes(b), nil
}

// CertPEM returns the vendor CA certificate in PEM.
func (v *VendorCA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Cert.Raw})
}

const sealedKeyPEM = "MOBILEID SEALED PRIVATE KEY"

// SealedKeyPEM returns the vendor CA's private key encrypted under the
// factory key (AES-256-GCM with a key derived for this purpose), so that it
// is never at rest in clear.
func (v *VendorCA) SealedKeyPEM(factoryKey []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(v.key)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	k, err := imageKey(factoryKey, "vendor-ca")
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: sealedKeyPEM, Bytes: aead.Seal(nonce, nonce, der, v.Cert.Raw)}), nil
}

// LoadVendorCA reads a vendor CA written by CertPEM and SealedKeyPEM.
func LoadVendorCA(certPEM, keyPEM, factoryKey []byte) (*VendorCA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("sim: vendor CA certificate: no CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sim: vendor CA certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != sealedKeyPEM {
		return nil, fmt.Errorf("sim: vendor CA key: no %s block", sealedKeyPEM)
	}
	k, err := imageKey(factoryKey, "vendor-ca")
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	if len(kb.Bytes) < aead.NonceSize() {
		return nil, errors.New("sim: vendor CA key truncated")
	}
	der, err := aead.Open(nil, kb.Bytes[:aead.NonceSize()], kb.Bytes[aead.NonceSize():], cert.Raw)
	if err != nil {
		return nil, errors.New("sim: vendor CA key does not open under this factory key")
	}
	defer clear(der)
	key, err := parseSigner(der)
	if err != nil {
		return nil, fmt.Errorf("sim: vendor CA key: %w", err)
	}
	return &VendorCA{Cert: cert, key: key}, nil
}

// Factory personalises cards: OTA keys, TAR, attestation key and
// certificate, PUK, all sealed into a card image.
type Factory struct {
	CA *VendorCA
	// FactoryKey seals the card images; handsets need it to load them.
	FactoryKey []byte
	// TAR and KeyID default to DefaultTAR and DefaultKeyID.
	TAR   ota.TAR
	KeyID byte
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
}

// Issued is one personalised card: the operator's record, the sealed card
// image, and the PUK as printed on the card holder for the subscriber.
// The PUK goes to the subscriber's mailer and nowhere else.
type Issued struct {
	Record simbatch.Record
	Image  []byte
	PUK    string
}

// Issue personalises one card. It is safe to call from several goroutines.
func (f *Factory) Issue(iccid, imsi, msisdn string) (*Issued, error) {
	tar, kid := f.TAR, f.KeyID
	if tar == (ota.TAR{}) {
		tar = DefaultTAR
	}
	if kid == 0 {
		kid = DefaultKeyID
	}
	now := time.Now()
	if f.Now != nil {
		now = f.Now()
	}
	rec := simbatch.Record{ICCID: iccid, IMSI: imsi, MSISDN: msisdn, TAR: tar, KIc: kid, KID: kid,
		KIcKey: make([]byte, 16), KIDKey: make([]byte, 16)}
	if _, err := rand.Read(rec.KIcKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(rec.KIDKey); err != nil {
		return nil, err
	}
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "VMAC card " + iccid, SerialNumber: iccid, Organization: f.CA.Cert.Subject.Organization},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  f.CA.Cert.NotAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	attKey, certDER, err := newCertifiedKey(tmpl, f.CA.Cert, f.CA.key)
	if err != nil {
		return nil, fmt.Errorf("sim: attestation key: %w", err)
	}
	attDER, err := x509.MarshalPKCS8PrivateKey(attKey)
	if err != nil {
		return nil, err
	}
	puk, err := randomDigits(rand.Reader, PUKLen)
	if err != nil {
		return nil, err
	}
	pukSecret, err := newSecret(rand.Reader, puk, PUKTries)
	if err != nil {
		return nil, err
	}
	sealKey, err := imageKey(f.FactoryKey, iccid)
	if err != nil {
		return nil, err
	}
	d := cardData{
		ICCID: iccid, IMSI: imsi, MSISDN: msisdn, TAR: tar, KIc: kid, KID: kid,
		KIcKey: rec.KIcKey, KIDKey: rec.KIDKey,
		AttestationKey: attDER, AttestationCert: certDER, PUK: pukSecret,
	}
	card, err := newCard(d, sealKey, Options{})
	if err != nil {
		return nil, err
	}
	img, err := card.Image()
	if err != nil {
		return nil, err
	}
	return &Issued{Record: rec, Image: img, PUK: puk}, nil
}

// randomDigits returns n uniformly random decimal digits.
func randomDigits(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(r, big.NewInt(10))
		if err != nil {
			return "", err
		}
		b[i] = byte('0' + v.Int64())
	}
	return string(b), nil
}

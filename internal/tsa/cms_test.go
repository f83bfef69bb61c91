package tsa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// This file decodes and verifies a TimeStampToken without the library
// that made it, so that the unit tests check the CMS structure (and the
// signature of tokens without certificates, which timestamp.Parse does not
// verify) independently. OpenSSL checks the same tokens in openssl_test.go.

var (
	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningCertV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidECDSAWithSHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
)

type cmsSignedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     []asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             []asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []cmsSignerInfo `asn1:"set"`
}

type cmsSignerInfo struct {
	Version            int
	SID                issuerAndSerialNumber
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerialNumber struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type cmsAttribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type essSigningCertificateV2 struct {
	Certs []essCertIDv2
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  struct {
		Issuer []asn1.RawValue
		Serial *big.Int
	} `asn1:"optional"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        time.Time `asn1:"generalized"`
	Accuracy       struct {
		Seconds int `asn1:"optional"`
		Millis  int `asn1:"optional,tag:0"`
		Micros  int `asn1:"optional,tag:1"`
	} `asn1:"optional"`
	Ordering   bool             `asn1:"optional,default:false"`
	Nonce      *big.Int         `asn1:"optional"`
	TSA        asn1.RawValue    `asn1:"optional,tag:0"`
	Extensions []pkix.Extension `asn1:"optional,tag:1"`
}

// decodedToken is a granted TimeStampResp taken apart.
type decodedToken struct {
	info   tstInfo
	rawTST []byte
	sd     cmsSignedData
	certs  []*x509.Certificate
}

// decodeGranted decodes a granted TimeStampResp, failing the test on any
// deviation from RFC 3161 §2.4.2 and RFC 5652 that it can see.
func decodeGranted(t *testing.T, resp []byte) *decodedToken {
	t.Helper()
	var r timeStampResp
	if rest, err := asn1.Unmarshal(resp, &r); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal TimeStampResp: %v (%d trailing octets)", err, len(rest))
	}
	if r.Status.Status != 0 {
		t.Fatalf("PKIStatus = %d, want 0 (granted)", r.Status.Status)
	}
	var ci contentInfo
	if _, err := asn1.Unmarshal(r.TimeStampToken.FullBytes, &ci); err != nil {
		t.Fatalf("unmarshal ContentInfo: %v", err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		t.Fatalf("token content type = %s, want signedData", ci.ContentType)
	}
	d := &decodedToken{}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &d.sd); err != nil {
		t.Fatalf("unmarshal SignedData: %v", err)
	}
	if d.sd.Version != 3 {
		t.Errorf("SignedData version = %d, want 3 (RFC 5652 §5.1, eContentType not id-data)", d.sd.Version)
	}
	if got := d.sd.EncapContentInfo.EContentType; !got.Equal(oidTSTInfo) {
		t.Fatalf("eContentType = %s, want id-ct-TSTInfo", got)
	}
	d.rawTST = d.sd.EncapContentInfo.EContent
	if rest, err := asn1.Unmarshal(d.rawTST, &d.info); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal TSTInfo: %v", err)
	}
	for _, raw := range d.sd.Certificates {
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			t.Fatalf("certificate in token: %v", err)
		}
		d.certs = append(d.certs, c)
	}
	if len(d.sd.SignerInfos) != 1 {
		t.Fatalf("%d SignerInfos, want 1", len(d.sd.SignerInfos))
	}
	return d
}

// verify checks the one SignerInfo against the TSA certificate: the
// signer identifier, the signed attributes (content type, message digest,
// signing-certificate-v2) and the signature.
func (d *decodedToken) verify(t *testing.T, tsaCert *x509.Certificate, signHash crypto.Hash, sigAlg asn1.ObjectIdentifier) {
	t.Helper()
	si := d.sd.SignerInfos[0]
	if !bytes.Equal(si.SID.Issuer.FullBytes, tsaCert.RawIssuer) || si.SID.Serial.Cmp(tsaCert.SerialNumber) != 0 {
		t.Errorf("SignerInfo sid does not name the TSA certificate")
	}
	if !si.SignatureAlgorithm.Algorithm.Equal(sigAlg) {
		t.Errorf("signatureAlgorithm = %s, want %s", si.SignatureAlgorithm.Algorithm, sigAlg)
	}
	// The signature covers the DER of the attributes as a SET OF
	// (RFC 5652 §5.4), not the [0] IMPLICIT encoding in the SignerInfo.
	set := append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	var attrs []cmsAttribute
	if _, err := asn1.UnmarshalWithParams(set, &attrs, "set"); err != nil {
		t.Fatalf("unmarshal signed attributes: %v", err)
	}
	seen := map[string]bool{}
	for _, a := range attrs {
		if len(a.Values) != 1 {
			t.Fatalf("attribute %s has %d values, want 1", a.Type, len(a.Values))
		}
		v := a.Values[0].FullBytes
		seen[a.Type.String()] = true
		switch {
		case a.Type.Equal(oidAttrContentType):
			var ct asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(v, &ct); err != nil || !ct.Equal(oidTSTInfo) {
				t.Errorf("content-type attribute = %s (%v), want id-ct-TSTInfo", ct, err)
			}
		case a.Type.Equal(oidAttrMessageDigest):
			var md []byte
			if _, err := asn1.Unmarshal(v, &md); err != nil {
				t.Fatalf("unmarshal message-digest: %v", err)
			}
			h := signHash.New()
			h.Write(d.rawTST)
			if !bytes.Equal(md, h.Sum(nil)) {
				t.Errorf("message-digest attribute does not match the TSTInfo")
			}
		case a.Type.Equal(oidAttrSigningCertV2):
			var sc essSigningCertificateV2
			if _, err := asn1.Unmarshal(v, &sc); err != nil {
				t.Fatalf("unmarshal signing-certificate-v2: %v", err)
			}
			id := sc.Certs[0]
			h := crypto.SHA256
			if alg := id.HashAlgorithm.Algorithm; alg != nil {
				h = hashForOID(t, alg)
			}
			hh := h.New()
			hh.Write(tsaCert.Raw)
			if !bytes.Equal(id.CertHash, hh.Sum(nil)) {
				t.Errorf("ESSCertIDv2 certHash does not match the TSA certificate")
			}
			if id.IssuerSerial.Serial == nil || id.IssuerSerial.Serial.Cmp(tsaCert.SerialNumber) != 0 {
				t.Errorf("ESSCertIDv2 issuerSerial = %v, want %v", id.IssuerSerial.Serial, tsaCert.SerialNumber)
			}
		}
	}
	for _, oid := range []asn1.ObjectIdentifier{oidAttrContentType, oidAttrMessageDigest, oidAttrSigningCertV2} {
		if !seen[oid.String()] {
			t.Errorf("signed attribute %s missing", oid)
		}
	}
	h := signHash.New()
	h.Write(set)
	if !ecdsa.VerifyASN1(tsaCert.PublicKey.(*ecdsa.PublicKey), h.Sum(nil), si.Signature) {
		t.Errorf("signature over the signed attributes does not verify with the TSA key")
	}
}

func hashForOID(t *testing.T, oid asn1.ObjectIdentifier) crypto.Hash {
	t.Helper()
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256
	case oid.Equal(oidSHA384):
		return crypto.SHA384
	case oid.Equal(oidSHA512):
		return crypto.SHA512
	}
	t.Fatalf("unexpected hash OID %s", oid)
	return 0
}

// decodeRejection decodes a rejection and returns its status and the
// numbers of the failInfo bits that are set.
func decodeRejection(t *testing.T, resp []byte) (status int, bits []int, text []string) {
	t.Helper()
	var r struct {
		Status struct {
			Status       int
			StatusString []string       `asn1:"optional,utf8"`
			FailInfo     asn1.BitString `asn1:"optional"`
		}
		TimeStampToken asn1.RawValue `asn1:"optional"`
	}
	if rest, err := asn1.Unmarshal(resp, &r); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal TimeStampResp: %v (%d trailing octets)", err, len(rest))
	}
	if len(r.TimeStampToken.FullBytes) != 0 {
		t.Errorf("rejection carries a TimeStampToken")
	}
	fi := r.Status.FailInfo
	for i := 0; i < fi.BitLength; i++ {
		if fi.At(i) == 1 {
			bits = append(bits, i)
		}
	}
	// DER: a named bit list has no trailing zero bits (X.690 §11.2.2), and
	// its octets are exactly those needed.
	if fi.BitLength > 0 && (fi.At(fi.BitLength-1) != 1 || len(fi.Bytes) != (fi.BitLength+7)/8) {
		t.Errorf("failInfo %x/%d bits is not minimal DER", fi.Bytes, fi.BitLength)
	}
	return r.Status.Status, bits, r.Status.StatusString
}

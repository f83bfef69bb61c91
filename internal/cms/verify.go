package cms

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// Verify checks the DER ContentInfo(SignedData) der and returns the signer's
// certificate. It checks that
//
//   - there is exactly one SignerInfo, identified by issuerAndSerialNumber,
//     whose certificate is among the SignedData's certificates;
//   - the signed attributes hold a content-type equal to eContentType and a
//     message-digest equal to the hash of the content;
//   - a signing-certificate-v2 attribute, if present, names the signer's
//     certificate first;
//   - the signature over the signed attributes verifies with the signer's
//     key, under a signature algorithm matching the key and digest algorithm;
//   - the signer's certificate chains to roots, using the other
//     certificates as intermediates, at the current time and for any
//     extended key usage.
//
// content is the signed data for a detached signature. For an attached one
// it may be nil; if not nil it must equal the embedded content. Revocation
// is not checked.
func Verify(der []byte, content []byte, roots *x509.CertPool) (*x509.Certificate, error) {
	if roots == nil {
		return nil, errors.New("cms: no trust roots")
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return nil, err
	}
	si := &sd.SignerInfos[0]

	var eci encapContentInfo
	if err := unmarshalDER(sd.EncapContentInfo.FullBytes, &eci, "EncapsulatedContentInfo"); err != nil {
		return nil, err
	}
	switch {
	case eci.EContent != nil && content != nil && !bytes.Equal(eci.EContent, content):
		return nil, errors.New("cms: content differs from the embedded content")
	case eci.EContent != nil:
		content = eci.EContent
	case content == nil:
		return nil, errors.New("cms: detached signature and no content given")
	}

	certs, err := parseCertificates(sd.Certificates)
	if err != nil {
		return nil, err
	}
	signer, err := findSigner(si.SID, certs)
	if err != nil {
		return nil, err
	}

	h, ok := hashByOID(si.DigestAlgorithm.Algorithm)
	if !ok {
		return nil, fmt.Errorf("cms: unsupported digest algorithm %v", si.DigestAlgorithm.Algorithm)
	}
	if err := checkSignatureAlgorithm(si.SignatureAlgorithm.Algorithm, signer.PublicKey, h); err != nil {
		return nil, err
	}
	if err := checkSignedAttributes(si, eci.EContentType, content, h, signer); err != nil {
		return nil, err
	}
	sa := bytes.Clone(si.SignedAttrs.FullBytes)
	sa[0] = 0x31 // the signature covers the attributes tagged as SET OF
	d := h.New()
	d.Write(sa)
	if err := checkSignature(signer.PublicKey, h, d.Sum(nil), si.Signature); err != nil {
		return nil, err
	}

	inter := x509.NewCertPool()
	for _, c := range certs {
		if c != signer {
			inter.AddCert(c)
		}
	}
	if _, err := signer.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("cms: signer certificate: %w", err)
	}
	return signer, nil
}

func parseCertificates(raw asn1.RawValue) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	b := raw.Bytes
	for len(b) > 0 {
		var c asn1.RawValue
		rest, err := asn1.Unmarshal(b, &c)
		if err != nil {
			return nil, fmt.Errorf("cms: certificates: %w", err)
		}
		b = rest
		if c.Class != asn1.ClassUniversal || c.Tag != asn1.TagSequence {
			continue // another CertificateChoices alternative
		}
		cert, err := x509.ParseCertificate(c.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("cms: certificates: %w", err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

func findSigner(sid asn1.RawValue, certs []*x509.Certificate) (*x509.Certificate, error) {
	var ias issuerAndSerial
	if err := unmarshalDER(sid.FullBytes, &ias, "signer identifier (only issuerAndSerialNumber is supported)"); err != nil {
		return nil, err
	}
	if ias.Serial == nil {
		return nil, errors.New("cms: signer identifier has no serial number")
	}
	for _, c := range certs {
		if c.SerialNumber.Cmp(ias.Serial) == 0 && bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) {
			return c, nil
		}
	}
	return nil, errors.New("cms: signer certificate not in the SignedData")
}

func checkSignatureAlgorithm(oid asn1.ObjectIdentifier, pub crypto.PublicKey, h crypto.Hash) error {
	want, err := signatureAlgorithm(pub, h)
	if err != nil {
		return err
	}
	if oid.Equal(want.Algorithm) {
		return nil
	}
	if _, isRSA := pub.(*rsa.PublicKey); isRSA && oid.Equal(oidRSAEncryption) {
		return nil
	}
	return fmt.Errorf("cms: signature algorithm %v does not match a %T key with %v", oid, pub, h)
}

func checkSignedAttributes(si *signerInfo, eContentType asn1.ObjectIdentifier, content []byte, h crypto.Hash, signer *x509.Certificate) error {
	if len(si.SignedAttrs.FullBytes) == 0 {
		return errNoSignedAttrs
	}
	attrs, err := parseAttributes(si.SignedAttrs.Bytes)
	if err != nil {
		return err
	}

	v, err := singleValue(attrs, oidAttrContentType)
	if err != nil {
		return err
	}
	if v == nil {
		return errors.New("cms: no content-type attribute")
	}
	var ct asn1.ObjectIdentifier
	if err := unmarshalDER(v, &ct, "content-type attribute"); err != nil {
		return err
	}
	if !ct.Equal(eContentType) {
		return fmt.Errorf("cms: content-type attribute %v differs from eContentType %v", ct, eContentType)
	}

	if v, err = singleValue(attrs, oidAttrMessageDigest); err != nil {
		return err
	}
	if v == nil {
		return errors.New("cms: no message-digest attribute")
	}
	var md []byte
	if err := unmarshalDER(v, &md, "message-digest attribute"); err != nil {
		return err
	}
	d := h.New()
	d.Write(content)
	if !bytes.Equal(md, d.Sum(nil)) {
		return errors.New("cms: message digest does not match the content")
	}

	if v, err = singleValue(attrs, oidAttrSigningTime); err != nil {
		return err
	}
	if v != nil {
		var t time.Time
		if err := unmarshalDER(v, &t, "signing-time attribute"); err != nil {
			return err
		}
	}

	if v, err = singleValue(attrs, oidAttrSigningCertificateV2); err != nil {
		return err
	}
	if v != nil {
		return checkSigningCertificate(v, signer)
	}
	return nil
}

func checkSigningCertificate(v []byte, signer *x509.Certificate) error {
	var sc signingCertificateV2In
	if err := unmarshalDER(v, &sc, "signing-certificate-v2 attribute"); err != nil {
		return err
	}
	if len(sc.Certs) == 0 {
		return errors.New("cms: signing-certificate-v2 attribute is empty")
	}
	id := sc.Certs[0]
	h := crypto.SHA256
	if len(id.HashAlgorithm.Algorithm) > 0 {
		var ok bool
		if h, ok = hashByOID(id.HashAlgorithm.Algorithm); !ok {
			return fmt.Errorf("cms: signing-certificate-v2: unsupported hash %v", id.HashAlgorithm.Algorithm)
		}
	}
	d := h.New()
	d.Write(signer.Raw)
	if !bytes.Equal(id.CertHash, d.Sum(nil)) {
		return errors.New("cms: signing-certificate-v2 does not name the signer certificate")
	}
	return nil
}

// AddTimestamp returns signedData, a DER ContentInfo(SignedData), with the
// RFC 3161 time-stamp token (a DER ContentInfo) added to its SignerInfo as
// the unsigned attribute id-aa-signatureTimeStampToken, turning CAdES-BES
// into CAdES-T. The token's message imprint must be the hash of the
// SignerInfo's signature value; the token's own signature is not verified.
func AddTimestamp(signedData, token []byte) ([]byte, error) {
	sd, err := parseSignedData(signedData)
	if err != nil {
		return nil, err
	}
	si := &sd.SignerInfos[0]
	if err := checkTimestampToken(token, si.Signature); err != nil {
		return nil, err
	}
	var attrs [][]byte
	if len(si.UnsignedAttrs.FullBytes) > 0 {
		b := si.UnsignedAttrs.Bytes
		for len(b) > 0 {
			var a asn1.RawValue
			rest, err := asn1.Unmarshal(b, &a)
			if err != nil {
				return nil, fmt.Errorf("cms: unsigned attributes: %w", err)
			}
			attrs = append(attrs, a.FullBytes)
			b = rest
		}
	}
	a, err := marshalRawAttribute(oidAttrTimeStampToken, token)
	if err != nil {
		return nil, err
	}
	attrs = append(attrs, a)
	si.UnsignedAttrs = asn1.RawValue{FullBytes: tlv(asn1.ClassContextSpecific, 1, setOf(attrs))}
	return marshalSignedData(sd)
}

// checkTimestampToken checks that token is a ContentInfo(SignedData) with a
// TSTInfo whose message imprint is the hash of sig.
func checkTimestampToken(token, sig []byte) error {
	tsd, err := parseSignedData(token)
	if err != nil {
		return fmt.Errorf("cms: time-stamp token: %w", err)
	}
	var eci encapContentInfo
	if err := unmarshalDER(tsd.EncapContentInfo.FullBytes, &eci, "time-stamp token content"); err != nil {
		return err
	}
	if !eci.EContentType.Equal(oidTSTInfo) || eci.EContent == nil {
		return fmt.Errorf("cms: time-stamp token content type %v is not an embedded TSTInfo", eci.EContentType)
	}
	var info tstInfo
	if err := unmarshalDER(eci.EContent, &info, "TSTInfo"); err != nil {
		return err
	}
	h, ok := hashByOID(info.MessageImprint.HashAlgorithm.Algorithm)
	if !ok {
		return fmt.Errorf("cms: time-stamp token: unsupported imprint hash %v", info.MessageImprint.HashAlgorithm.Algorithm)
	}
	d := h.New()
	d.Write(sig)
	if !bytes.Equal(info.MessageImprint.HashedMessage, d.Sum(nil)) {
		return errors.New("cms: time-stamp token does not cover the signature value")
	}
	return nil
}

package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// Request describes a signature to prepare.
type Request struct {
	// Content is the signed data. It may be nil only when Detached is set
	// and Digest is given.
	Content []byte
	// Digest is the message digest the relying party sent, used when
	// Content is nil. Its length selects the hash: 32, 48 or 64 bytes for
	// SHA-256, SHA-384 or SHA-512.
	Digest []byte
	// Detached leaves eContent out of the SignedData (digest signing);
	// otherwise Content is embedded (text signing).
	Detached bool
	// Signer is the user's signing certificate, with an ECDSA or RSA key.
	Signer *x509.Certificate
	// Chain holds the issuing CA and optionally the root; they are put in
	// the SignedData's certificates with Signer.
	Chain []*x509.Certificate
	// SigningTime is put in the signing-time attribute, in UTC and
	// truncated to the second. The zero value means now.
	SigningTime time.Time
}

// Pending is a prepared signature waiting for the SIM's signature value.
type Pending struct {
	hash        crypto.Hash
	signer      *x509.Certificate
	certs       [][]byte
	content     []byte // eContent, nil when detached
	detached    bool
	signedAttrs []byte // DER SET OF Attribute, tagged as SET
	digest      []byte
}

// Prepare checks req and builds the CAdES-BES signed attributes.
func Prepare(req *Request) (*Pending, error) {
	if req == nil || req.Signer == nil {
		return nil, errors.New("cms: no signer certificate")
	}
	switch req.Signer.PublicKey.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
	default:
		return nil, fmt.Errorf("cms: unsupported signer key type %T", req.Signer.PublicKey)
	}
	p := &Pending{signer: req.Signer, detached: req.Detached}

	var md []byte
	switch {
	case req.Content != nil && req.Digest != nil:
		return nil, errors.New("cms: both Content and Digest are set")
	case req.Content != nil:
		p.hash = crypto.SHA256
		sum := sha256.Sum256(req.Content)
		md = sum[:]
		if !req.Detached {
			p.content = bytes.Clone(req.Content)
		}
	case req.Digest != nil:
		if !req.Detached {
			return nil, errors.New("cms: an attached signature needs Content, not Digest")
		}
		h, ok := hashByLen(len(req.Digest))
		if !ok {
			return nil, fmt.Errorf("cms: digest length %d is not that of SHA-256, SHA-384 or SHA-512", len(req.Digest))
		}
		p.hash = h
		md = bytes.Clone(req.Digest)
	default:
		return nil, errors.New("cms: neither Content nor Digest is set")
	}

	seen := map[string]bool{}
	for _, c := range append([]*x509.Certificate{req.Signer}, req.Chain...) {
		if c == nil {
			return nil, errors.New("cms: nil certificate in chain")
		}
		if !seen[string(c.Raw)] {
			seen[string(c.Raw)] = true
			p.certs = append(p.certs, c.Raw)
		}
	}

	st := req.SigningTime
	if st.IsZero() {
		st = time.Now()
	}
	st = st.UTC().Truncate(time.Second)

	attrs, err := signedAttributes(md, st, req.Signer)
	if err != nil {
		return nil, err
	}
	p.signedAttrs = tlv(asn1.ClassUniversal, asn1.TagSet, setOf(attrs))
	h := p.hash.New()
	h.Write(p.signedAttrs)
	p.digest = h.Sum(nil)
	return p, nil
}

func signedAttributes(md []byte, st time.Time, cert *x509.Certificate) ([][]byte, error) {
	ct, err := marshalAttribute(oidAttrContentType, oidData)
	if err != nil {
		return nil, err
	}
	mdAttr, err := marshalAttribute(oidAttrMessageDigest, md)
	if err != nil {
		return nil, err
	}
	// encoding/asn1 writes UTCTime for 1950–2049 and GeneralizedTime
	// otherwise, as RFC 5652 §11.3 requires.
	stAttr, err := marshalAttribute(oidAttrSigningTime, st)
	if err != nil {
		return nil, err
	}
	certHash := sha256.Sum256(cert.Raw)
	directoryName := tlv(asn1.ClassContextSpecific, 4, cert.RawIssuer)
	sc := signingCertificateV2{Certs: []essCertIDv2{{
		CertHash: certHash[:],
		IssuerSerial: issuerSerial{
			Issuer: asn1.RawValue{FullBytes: tlv(asn1.ClassUniversal, asn1.TagSequence, directoryName)},
			Serial: cert.SerialNumber,
		},
	}}}
	scAttr, err := marshalAttribute(oidAttrSigningCertificateV2, sc)
	if err != nil {
		return nil, err
	}
	return [][]byte{ct, mdAttr, stAttr, scAttr}, nil
}

// Digest returns the hash, with [Pending.Hash], of the DER-encoded signed
// attributes: the value the SIM signs.
func (p *Pending) Digest() []byte { return bytes.Clone(p.digest) }

// Hash returns the hash algorithm of [Pending.Digest]: SHA-256, unless the
// request carried a precomputed SHA-384 or SHA-512 message digest, since CMS
// uses the SignerInfo's one digest algorithm for both.
func (p *Pending) Hash() crypto.Hash { return p.hash }

// SignedAttributes returns the DER SET OF signed attributes that
// [Pending.Digest] is the hash of.
func (p *Pending) SignedAttributes() []byte { return bytes.Clone(p.signedAttrs) }

// Finish checks sig, a DER ECDSA-Sig-Value or a PKCS #1 v1.5 signature over
// [Pending.Digest], against the signer's public key and returns the DER
// ContentInfo carrying the SignedData.
func (p *Pending) Finish(sig []byte) ([]byte, error) {
	if err := checkSignature(p.signer.PublicKey, p.hash, p.digest, sig); err != nil {
		return nil, err
	}
	return p.FinishVerified(sig)
}

// FinishVerified is Finish for a caller that has already verified sig over
// [Pending.Digest] with the signer's key, as a signature server does before
// it assembles anything; it does not verify sig again.
func (p *Pending) FinishVerified(sig []byte) ([]byte, error) {
	sigAlg, err := signatureAlgorithm(p.signer.PublicKey, p.hash)
	if err != nil {
		return nil, err
	}

	digestAlg := pkix.AlgorithmIdentifier{Algorithm: hashOID(p.hash)}
	sid, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: p.signer.RawIssuer}, Serial: p.signer.SerialNumber})
	if err != nil {
		return nil, fmt.Errorf("cms: encoding signer identifier: %w", err)
	}
	si := signerInfo{
		Version:            1, // issuerAndSerialNumber
		SID:                asn1.RawValue{FullBytes: sid},
		DigestAlgorithm:    digestAlg,
		SignedAttrs:        asn1.RawValue{FullBytes: append([]byte{0xa0}, p.signedAttrs[1:]...)},
		SignatureAlgorithm: sigAlg,
		Signature:          bytes.Clone(sig),
	}
	da, err := asn1.Marshal(digestAlg)
	if err != nil {
		return nil, fmt.Errorf("cms: encoding digest algorithm: %w", err)
	}
	eci := encapContentInfo{EContentType: oidData}
	if !p.detached {
		eci.EContent = p.content
		if eci.EContent == nil {
			eci.EContent = []byte{}
		}
	}
	ecib, err := asn1.Marshal(eci)
	if err != nil {
		return nil, fmt.Errorf("cms: encoding EncapsulatedContentInfo: %w", err)
	}
	sd := &signedData{
		// Version 1: only X.509 certificates, id-data content and
		// version 1 SignerInfos (RFC 5652 §5.1).
		Version:          1,
		DigestAlgorithms: asn1.RawValue{FullBytes: tlv(asn1.ClassUniversal, asn1.TagSet, da)},
		EncapContentInfo: asn1.RawValue{FullBytes: ecib},
		Certificates:     asn1.RawValue{FullBytes: tlv(asn1.ClassContextSpecific, 0, setOf(p.certs))},
		SignerInfos:      []signerInfo{si},
	}
	return marshalSignedData(sd)
}

// signatureAlgorithm returns the SignerInfo signatureAlgorithm for a key and
// hash.
func signatureAlgorithm(pub crypto.PublicKey, h crypto.Hash) (pkix.AlgorithmIdentifier, error) {
	for _, e := range hashes {
		if e.hash != h {
			continue
		}
		switch pub.(type) {
		case *ecdsa.PublicKey:
			return pkix.AlgorithmIdentifier{Algorithm: e.ecdsa}, nil
		case *rsa.PublicKey:
			return pkix.AlgorithmIdentifier{Algorithm: e.rsa, Parameters: asn1.NullRawValue}, nil
		}
	}
	return pkix.AlgorithmIdentifier{}, fmt.Errorf("cms: no signature algorithm for %T with %v", pub, h)
}

// checkSignature verifies sig over the digest of the signed attributes.
func checkSignature(pub crypto.PublicKey, h crypto.Hash, digest, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("cms: ECDSA signature over the signed attributes does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, h, digest, sig); err != nil {
			return fmt.Errorf("cms: RSA signature over the signed attributes does not verify: %w", err)
		}
	default:
		return fmt.Errorf("cms: unsupported signer key type %T", pub)
	}
	return nil
}

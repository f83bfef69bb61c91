package ocsp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// The object identifiers of the response.
var (
	oidBasicResponse   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidNonce           = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidSHA1            = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidOCSPNoCheck     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
)

// The ASN.1 structures of RFC 6960 §4.2.1, as far as this responder fills
// them.
type (
	responseASN1 struct {
		Status   asn1.Enumerated
		Response responseBytes `asn1:"explicit,tag:0"`
	}
	responseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	basicResponse struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	responseData struct {
		// Version is absent: v1 is the DEFAULT, which DER omits.
		ResponderID        asn1.RawValue
		ProducedAt         time.Time `asn1:"generalized"`
		Responses          []singleResponse
		ResponseExtensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	singleResponse struct {
		CertID     certID
		CertStatus asn1.RawValue
		ThisUpdate time.Time `asn1:"generalized"`
		NextUpdate time.Time `asn1:"generalized,explicit,tag:0"`
	}
	certID struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   asn1.RawValue
	}
	revokedInfo struct {
		RevocationTime time.Time `asn1:"generalized"`
		// CRLReason unspecified (0) is omitted, as in CRLs (RFC 5280 §5.3.1).
		Reason asn1.Enumerated `asn1:"explicit,tag:0,optional"`
	}
)

// signer signs BasicOCSPResponses for one issuer.
type signer struct {
	key         crypto.Signer
	hash        crypto.Hash
	sigAlg      pkix.AlgorithmIdentifier
	responderID asn1.RawValue   // byKey
	certs       []asn1.RawValue // the responder certificate
	notAfter    time.Time       // of the responder certificate
	// issuer holds, per hashAlg, the CertID hash algorithm and the hashes
	// of the issuer's name and key.
	issuer [numHashes]struct {
		alg               pkix.AlgorithmIdentifier
		nameHash, keyHash []byte
	}
}

func newSigner(issuer, cert *x509.Certificate, key crypto.Signer) (*signer, error) {
	h, sigAlg, err := signatureAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	s := &signer{key: key, hash: h, sigAlg: sigAlg, notAfter: cert.NotAfter,
		certs: []asn1.RawValue{{FullBytes: cert.Raw}}}

	certKey, err := subjectPublicKey(cert)
	if err != nil {
		return nil, fmt.Errorf("parse responder certificate key: %w", err)
	}
	keyHash := sha1.Sum(certKey)
	if s.responderID.FullBytes, err = asn1.MarshalWithParams(keyHash[:], "explicit,tag:2"); err != nil {
		return nil, fmt.Errorf("encode responder id: %w", err)
	}

	issuerKey, err := subjectPublicKey(issuer)
	if err != nil {
		return nil, fmt.Errorf("parse issuer key: %w", err)
	}
	for i, c := range []struct {
		oid  asn1.ObjectIdentifier
		hash crypto.Hash
	}{hashSHA1: {oidSHA1, crypto.SHA1}, hashSHA256: {oidSHA256, crypto.SHA256}} {
		s.issuer[i].alg = pkix.AlgorithmIdentifier{Algorithm: c.oid, Parameters: asn1.NullRawValue}
		hn := c.hash.New()
		hn.Write(issuer.RawSubject)
		s.issuer[i].nameHash = hn.Sum(nil)
		hk := c.hash.New()
		hk.Write(issuerKey)
		s.issuer[i].keyHash = hk.Sum(nil)
	}
	return s, nil
}

// subjectPublicKey returns the subjectPublicKey BIT STRING of cert, the
// input of the CertID and ResponderID key hashes (RFC 6960 §4.1.1).
func subjectPublicKey(cert *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	return spki.PublicKey.RightAlign(), nil
}

// signatureAlgorithm chooses how to sign with a key: RSA PKCS #1 v1.5 with
// SHA-256, or ECDSA with the hash that matches the curve.
func signatureAlgorithm(pub crypto.PublicKey) (crypto.Hash, pkix.AlgorithmIdentifier, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return crypto.SHA256, pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, nil
	case *ecdsa.PublicKey:
		switch pub.Curve.Params().BitSize {
		case 256:
			return crypto.SHA256, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, nil
		case 384:
			return crypto.SHA384, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}, nil
		case 521:
			return crypto.SHA512, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA512}, nil
		}
	}
	return 0, pkix.AlgorithmIdentifier{}, errors.New("ocsp: responder key must be RSA or ECDSA P-256, P-384 or P-521")
}

// answer is what the Source said about a serial.
type answer struct {
	status    int
	revokedAt time.Time
	reason    int
}

// sign returns a successful OCSPResponse for req. It also returns
// thisUpdate and nextUpdate, for the HTTP caching headers.
func (s *signer) sign(req *request, a answer, now time.Time, validity time.Duration) (der []byte, thisUpdate, nextUpdate time.Time, err error) {
	thisUpdate = now.UTC().Truncate(time.Second)
	nextUpdate = thisUpdate.Add(validity)
	if na := s.notAfter.UTC().Truncate(time.Second); nextUpdate.After(na) {
		// A response must not outlive the certificate that vouches for it.
		nextUpdate = na
	}

	var status asn1.RawValue
	switch a.status {
	case statusGood:
		status.FullBytes = []byte{0x80, 0x00} // good [0] IMPLICIT NULL
	case statusUnknown:
		status.FullBytes = []byte{0x82, 0x00} // unknown [2] IMPLICIT NULL
	case statusRevoked:
		b, err := asn1.Marshal(revokedInfo{RevocationTime: a.revokedAt.UTC(), Reason: asn1.Enumerated(a.reason)})
		if err != nil {
			return nil, thisUpdate, nextUpdate, fmt.Errorf("encode revokedInfo: %w", err)
		}
		b[0] = 0xa1 // revoked [1] IMPLICIT RevokedInfo: retag the SEQUENCE
		status.FullBytes = b
	}

	is := &s.issuer[req.hash]
	rd := responseData{
		ResponderID: s.responderID,
		ProducedAt:  thisUpdate,
		Responses: []singleResponse{{
			CertID: certID{
				HashAlgorithm:  is.alg,
				IssuerNameHash: is.nameHash,
				IssuerKeyHash:  is.keyHash,
				SerialNumber:   asn1.RawValue{FullBytes: req.serialTLV},
			},
			CertStatus: status,
			ThisUpdate: thisUpdate,
			NextUpdate: nextUpdate,
		}},
	}
	if req.nonce != nil {
		rd.ResponseExtensions = []pkix.Extension{{Id: oidNonce, Value: req.nonce}}
	}
	tbs, err := asn1.Marshal(rd)
	if err != nil {
		return nil, thisUpdate, nextUpdate, fmt.Errorf("encode ResponseData: %w", err)
	}
	h := s.hash.New()
	h.Write(tbs)
	sig, err := s.key.Sign(rand.Reader, h.Sum(nil), s.hash)
	if err != nil {
		return nil, thisUpdate, nextUpdate, fmt.Errorf("sign ResponseData: %w", err)
	}
	basic, err := asn1.Marshal(basicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: s.sigAlg,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
		Certs:              s.certs,
	})
	if err != nil {
		return nil, thisUpdate, nextUpdate, fmt.Errorf("encode BasicOCSPResponse: %w", err)
	}
	der, err = asn1.Marshal(responseASN1{Response: responseBytes{ResponseType: oidBasicResponse, Response: basic}})
	if err != nil {
		return nil, thisUpdate, nextUpdate, fmt.Errorf("encode OCSPResponse: %w", err)
	}
	return der, thisUpdate, nextUpdate, nil
}

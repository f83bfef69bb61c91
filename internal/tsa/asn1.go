package tsa

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/digitorus/timestamp"
)

// Object identifiers used by the TSA.
var (
	oidSHA256      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSignedData  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
)

// timeStampReq is the TimeStampReq of RFC 3161 §2.4.1.
type timeStampReq struct {
	Version        int
	MessageImprint messageImprint
	ReqPolicy      asn1.ObjectIdentifier `asn1:"optional"`
	Nonce          *big.Int              `asn1:"optional"`
	CertReq        bool                  `asn1:"optional,default:false"`
	Extensions     []pkix.Extension      `asn1:"optional,tag:0"`
}

// messageImprint is the MessageImprint of RFC 3161 §2.4.1.
type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

// query is an accepted TimeStampReq.
type query struct {
	hash    crypto.Hash
	digest  []byte
	nonce   *big.Int
	certReq bool
}

// rejection is why a query gets no token: the PKIFailureInfo bit and the
// statusString sent to the client.
type rejection struct {
	fail timestamp.FailureInfo
	text string
}

// parseQuery checks the size of a query, then decodes and checks the
// TimeStampReq in the order OpenSSL's TSA does, so that a request with
// several faults gets the same failInfo from both.
func (t *TSA) parseQuery(der []byte) (*query, *rejection) {
	// ServeHTTP refuses large bodies with 413; this holds other callers of
	// Respond to the same bound.
	if len(der) > t.maxRequest {
		return nil, &rejection{timestamp.BadRequest, fmt.Sprintf("request larger than %d octets", t.maxRequest)}
	}
	var req timeStampReq
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil {
		return nil, &rejection{timestamp.BadDataFormat, "malformed TimeStampReq"}
	}
	if len(rest) != 0 {
		return nil, &rejection{timestamp.BadDataFormat, "trailing data after TimeStampReq"}
	}
	if req.Version != 1 {
		return nil, &rejection{timestamp.BadRequest, fmt.Sprintf("unsupported TimeStampReq version %d", req.Version)}
	}
	alg := req.MessageImprint.HashAlgorithm
	var h crypto.Hash
	switch {
	case alg.Algorithm.Equal(oidSHA256):
		h = crypto.SHA256
	case alg.Algorithm.Equal(oidSHA384):
		h = crypto.SHA384
	case alg.Algorithm.Equal(oidSHA512):
		h = crypto.SHA512
	default:
		return nil, &rejection{timestamp.BadAlgorithm, fmt.Sprintf("unsupported hash algorithm %s", alg.Algorithm)}
	}
	if p := alg.Parameters.FullBytes; len(p) != 0 && !bytes.Equal(p, asn1.NullBytes) {
		return nil, &rejection{timestamp.BadAlgorithm, "hash algorithm parameters other than NULL"}
	}
	if n := len(req.MessageImprint.HashedMessage); n != h.Size() {
		return nil, &rejection{timestamp.BadDataFormat, fmt.Sprintf("%s digest of %d octets, want %d", h, n, h.Size())}
	}
	if req.ReqPolicy != nil && !req.ReqPolicy.Equal(t.policy) {
		return nil, &rejection{timestamp.UnacceptedPolicy, fmt.Sprintf("policy %s not supported", req.ReqPolicy)}
	}
	// RFC 3161 §2.4.1: an extension the TSA does not recognise, critical
	// or not, must be refused; this TSA recognises none.
	if len(req.Extensions) != 0 {
		return nil, &rejection{timestamp.UnacceptedExtension, fmt.Sprintf("extension %s not supported", req.Extensions[0].Id)}
	}
	return &query{
		hash:    h,
		digest:  req.MessageImprint.HashedMessage,
		nonce:   req.Nonce,
		certReq: req.CertReq,
	}, nil
}

// pkiStatusInfo is the PKIStatusInfo of RFC 3161 §2.4.2. StatusString holds
// raw values because encoding/asn1 would write PrintableString where
// PKIFreeText requires UTF8String.
type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional,omitempty"`
	FailInfo     asn1.BitString  `asn1:"optional"`
}

// timeStampResp is the TimeStampResp of RFC 3161 §2.4.2.
type timeStampResp struct {
	Status         pkiStatusInfo
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

// marshal encodes the rejection as a TimeStampResp with one failInfo bit.
// The bit string is the shortest that holds the bit, as DER requires of a
// named bit list (X.690 §11.2.2).
func (r *rejection) marshal() []byte {
	bit := int(r.fail)
	fail := asn1.BitString{Bytes: make([]byte, bit/8+1), BitLength: bit + 1}
	fail.Bytes[bit/8] = 0x80 >> (bit % 8)
	resp := timeStampResp{Status: pkiStatusInfo{
		Status:       int(timestamp.Rejection),
		StatusString: []asn1.RawValue{{Tag: asn1.TagUTF8String, Bytes: []byte(r.text)}},
		FailInfo:     fail,
	}}
	der, err := asn1.Marshal(resp)
	if err != nil {
		// Every field is built here from constants and valid UTF-8; a
		// failure is a bug, not an input problem.
		panic(fmt.Sprintf("tsa: marshal rejection: %v", err))
	}
	return der
}

// failInfoName names a failure bit as RFC 3161 does, for logs.
func failInfoName(f timestamp.FailureInfo) string {
	switch f {
	case timestamp.BadAlgorithm:
		return "badAlg"
	case timestamp.BadRequest:
		return "badRequest"
	case timestamp.BadDataFormat:
		return "badDataFormat"
	case timestamp.TimeNotAvailable:
		return "timeNotAvailable"
	case timestamp.UnacceptedPolicy:
		return "unacceptedPolicy"
	case timestamp.UnacceptedExtension:
		return "unacceptedExtension"
	case timestamp.AddInfoNotAvailable:
		return "addInfoNotAvailable"
	case timestamp.SystemFailure:
		return "systemFailure"
	}
	return fmt.Sprintf("bit %d", int(f))
}

// contentInfo is the ContentInfo of RFC 5652 §3. Content keeps the [0]
// wrapper: encoding/asn1 honours "explicit" when decoding a RawValue but not
// when encoding one.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0"`
}

// signedData is the SignedData of RFC 5652 §5.1 with its fields kept raw,
// so that it re-encodes octet for octet except for what is changed.
type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

// encapContentInfo is the EncapsulatedContentInfo of RFC 5652 §5.2.
type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,optional,tag:0"`
}

// tstInfoPrefix is the start of the TSTInfo of RFC 3161 §2.4.2;
// encoding/asn1 ignores the fields after it.
type tstInfoPrefix struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
}

// errNotToken means the library returned something other than a granted
// TimeStampResp with a SignedData over a TSTInfo.
var errNotToken = errors.New("tsa: response is not a granted time-stamp token")

// finishToken takes a granted TimeStampResp made by the library without
// certificates, puts certs (if any) into the certificates field of its
// SignedData, and returns it with the serial number of the token.
//
// The library can include a chain itself, but then checks the chain's
// signatures on every token (two ECDSA P-384 verifications, ten times the
// cost of the token; New checks the chain once), and without certificates
// it still writes an empty certificates field. The field is outside the
// signed attributes, so it may be set after signing.
func finishToken(resp []byte, certs []*x509.Certificate) ([]byte, *big.Int, error) {
	var r timeStampResp
	if _, err := asn1.Unmarshal(resp, &r); err != nil {
		return nil, nil, fmt.Errorf("unmarshal TimeStampResp: %w", err)
	}
	if r.Status.Status != int(timestamp.Granted) {
		return nil, nil, errNotToken
	}
	var ci contentInfo
	if _, err := asn1.Unmarshal(r.TimeStampToken.FullBytes, &ci); err != nil {
		return nil, nil, fmt.Errorf("unmarshal ContentInfo: %w", err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, nil, errNotToken
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, nil, fmt.Errorf("unmarshal SignedData: %w", err)
	}
	var eci encapContentInfo
	if _, err := asn1.Unmarshal(sd.EncapContentInfo.FullBytes, &eci); err != nil {
		return nil, nil, fmt.Errorf("unmarshal EncapsulatedContentInfo: %w", err)
	}
	if !eci.EContentType.Equal(oidTSTInfo) {
		return nil, nil, errNotToken
	}
	var info tstInfoPrefix
	if _, err := asn1.Unmarshal(eci.EContent, &info); err != nil {
		return nil, nil, fmt.Errorf("unmarshal TSTInfo: %w", err)
	}

	sd.Certificates = asn1.RawValue{}
	if len(certs) != 0 {
		var raw []byte
		for _, c := range certs {
			raw = append(raw, c.Raw...)
		}
		sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: raw}
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal SignedData: %w", err)
	}
	ci.Content = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}
	ciDER, err := asn1.Marshal(ci)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal ContentInfo: %w", err)
	}
	out, err := asn1.Marshal(timeStampResp{
		Status:         pkiStatusInfo{Status: int(timestamp.Granted)},
		TimeStampToken: asn1.RawValue{FullBytes: ciDER},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("marshal TimeStampResp: %w", err)
	}
	return out, info.SerialNumber, nil
}

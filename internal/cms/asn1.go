package cms

import (
	"bytes"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

var (
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}

	oidAttrContentType          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidAttrSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidAttrTimeStampToken       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}

	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// hashes lists the supported digest algorithms with their OIDs and the
// matching signature algorithm OIDs.
var hashes = []struct {
	hash  crypto.Hash
	oid   asn1.ObjectIdentifier
	rsa   asn1.ObjectIdentifier
	ecdsa asn1.ObjectIdentifier
}{
	{crypto.SHA256, oidSHA256, oidSHA256WithRSA, oidECDSAWithSHA256},
	{crypto.SHA384, oidSHA384, oidSHA384WithRSA, oidECDSAWithSHA384},
	{crypto.SHA512, oidSHA512, oidSHA512WithRSA, oidECDSAWithSHA512},
}

func hashOID(h crypto.Hash) asn1.ObjectIdentifier {
	for _, e := range hashes {
		if e.hash == h {
			return e.oid
		}
	}
	return nil
}

func hashByOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, e := range hashes {
		if e.oid.Equal(oid) {
			return e.hash, true
		}
	}
	return 0, false
}

func hashByLen(n int) (crypto.Hash, bool) {
	for _, e := range hashes {
		if e.hash.Size() == n {
			return e.hash, true
		}
	}
	return 0, false
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, wrapped and unwrapped by hand
}

// signedData keeps most fields raw so that a parsed SignedData re-encodes to
// the same bytes (AddTimestamp relies on this).
type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue // SET OF AlgorithmIdentifier
	EncapContentInfo asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,optional,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue // SET OF AttributeValue
}

// essCertIDv2 is ESSCertIDv2 (RFC 5035) with the hashAlgorithm, whose
// default is SHA-256, left out as DER requires.
type essCertIDv2 struct {
	CertHash     []byte
	IssuerSerial issuerSerial
}

type issuerSerial struct {
	Issuer asn1.RawValue // GeneralNames
	Serial *big.Int
}

type signingCertificateV2 struct {
	Certs []essCertIDv2
}

// essCertIDv2In is ESSCertIDv2 as parsed, with every optional field.
type essCertIDv2In struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  asn1.RawValue `asn1:"optional"`
}

type signingCertificateV2In struct {
	Certs    []essCertIDv2In
	Policies asn1.RawValue `asn1:"optional"`
}

// tstInfo is the beginning of an RFC 3161 TSTInfo; the rest is ignored.
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
}

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

// tlv encodes a constructed element with the given class and tag.
func tlv(class, tag int, content []byte) []byte {
	b, err := asn1.Marshal(asn1.RawValue{Class: class, Tag: tag, IsCompound: true, Bytes: content})
	if err != nil {
		panic("cms: " + err.Error()) // cannot happen for a RawValue
	}
	return b
}

// setOf sorts the DER encodings of the elements as DER requires for a SET OF
// and returns their concatenation.
func setOf(elems [][]byte) []byte {
	elems = slices.Clone(elems)
	slices.SortFunc(elems, bytes.Compare)
	return bytes.Join(elems, nil)
}

// marshalAttribute encodes an Attribute with a single value.
func marshalAttribute(typ asn1.ObjectIdentifier, value any) ([]byte, error) {
	v, err := asn1.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("cms: encoding attribute %v: %w", typ, err)
	}
	return marshalRawAttribute(typ, v)
}

func marshalRawAttribute(typ asn1.ObjectIdentifier, value []byte) ([]byte, error) {
	b, err := asn1.Marshal(attribute{Type: typ, Values: asn1.RawValue{FullBytes: tlv(asn1.ClassUniversal, asn1.TagSet, value)}})
	if err != nil {
		return nil, fmt.Errorf("cms: encoding attribute %v: %w", typ, err)
	}
	return b, nil
}

// parseAttributes splits the content of a SET OF Attribute. Each type must
// occur once.
func parseAttributes(b []byte) ([]attribute, error) {
	var attrs []attribute
	for len(b) > 0 {
		var a attribute
		rest, err := asn1.Unmarshal(b, &a)
		if err != nil {
			return nil, fmt.Errorf("cms: attribute: %w", err)
		}
		if a.Values.Class != asn1.ClassUniversal || a.Values.Tag != asn1.TagSet {
			return nil, fmt.Errorf("cms: attribute %v: values are not a SET", a.Type)
		}
		for _, o := range attrs {
			if o.Type.Equal(a.Type) {
				return nil, fmt.Errorf("cms: attribute %v occurs twice", a.Type)
			}
		}
		attrs = append(attrs, a)
		b = rest
	}
	return attrs, nil
}

// singleValue returns the only value of the attribute of type typ, or nil if
// there is no such attribute.
func singleValue(attrs []attribute, typ asn1.ObjectIdentifier) ([]byte, error) {
	for _, a := range attrs {
		if !a.Type.Equal(typ) {
			continue
		}
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(a.Values.Bytes, &v)
		if err != nil {
			return nil, fmt.Errorf("cms: attribute %v: %w", typ, err)
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("cms: attribute %v has more than one value", typ)
		}
		return v.FullBytes, nil
	}
	return nil, nil
}

// unmarshalDER parses b into v and rejects trailing data.
func unmarshalDER(b []byte, v any, what string) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		return fmt.Errorf("cms: %s: %w", what, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("cms: %s: trailing data", what)
	}
	return nil
}

// parseSignedData parses a DER ContentInfo carrying a SignedData.
func parseSignedData(der []byte) (*signedData, error) {
	var ci contentInfo
	if err := unmarshalDER(der, &ci, "ContentInfo"); err != nil {
		return nil, err
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("cms: content type %v is not SignedData", ci.ContentType)
	}
	if ci.Content.Class != asn1.ClassContextSpecific || ci.Content.Tag != 0 || !ci.Content.IsCompound {
		return nil, errors.New("cms: ContentInfo content is not [0] EXPLICIT")
	}
	sd := new(signedData)
	if err := unmarshalDER(ci.Content.Bytes, sd, "SignedData"); err != nil {
		return nil, err
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("cms: %d SignerInfos, want 1", len(sd.SignerInfos))
	}
	return sd, nil
}

// marshalSignedData wraps sd in a ContentInfo.
func marshalSignedData(sd *signedData) ([]byte, error) {
	inner, err := asn1.Marshal(*sd)
	if err != nil {
		return nil, fmt.Errorf("cms: encoding SignedData: %w", err)
	}
	content := asn1.RawValue{FullBytes: tlv(asn1.ClassContextSpecific, 0, inner)}
	out, err := asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: content})
	if err != nil {
		return nil, fmt.Errorf("cms: encoding ContentInfo: %w", err)
	}
	return out, nil
}

var errNoSignedAttrs = errors.New("cms: SignerInfo has no signed attributes")

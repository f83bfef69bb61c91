package ocsp

// DER tags (class, constructed bit and number in one octet) that occur in
// an OCSPRequest.
const (
	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagNull        = 0x05
	tagOID         = 0x06
	tagSequence    = 0x30
	tagExplicit0   = 0xa0 // [0] EXPLICIT: version, optionalSignature, singleRequestExtensions
	tagExplicit1   = 0xa1 // [1] EXPLICIT: requestorName
	tagExplicit2   = 0xa2 // [2] EXPLICIT: requestExtensions
)

// The content octets of the object identifiers the parser compares
// against. Keeping them encoded lets a request be checked without decoding
// any OID.
const (
	oidSHA1DER     = "\x2b\x0e\x03\x02\x1a"                 // 1.3.14.3.2.26
	oidSHA256DER   = "\x60\x86\x48\x01\x65\x03\x04\x02\x01" // 2.16.840.1.101.3.4.2.1
	oidNonceDER    = "\x2b\x06\x01\x05\x05\x07\x30\x01\x02" // 1.3.6.1.5.5.7.48.1.2
	maxNonceLength = 128                                    // RFC 9654 §2.1
)

// hashAlg identifies the hash of a CertID.
type hashAlg int

const (
	hashSHA1 hashAlg = iota
	hashSHA256
	hashOther // any other algorithm: we cannot match its CertID

	numHashes = int(hashOther) // the number of hashes we answer for
)

// malformedError says why a request is malformed. It is a string type so
// that the reasons can be constants, returned without allocating.
type malformedError string

func (e malformedError) Error() string { return "ocsp: malformed request: " + string(e) }

// Unwrap makes every reason match ErrMalformedRequest.
func (e malformedError) Unwrap() error { return ErrMalformedRequest }

// request is a parsed OCSPRequest. Its byte slices point into the DER that
// was parsed.
type request struct {
	hash      hashAlg
	nameHash  []byte
	keyHash   []byte
	serial    []byte // content octets of the serialNumber INTEGER, minimal
	serialTLV []byte // the whole serialNumber INTEGER
	nonce     []byte // extnValue of the nonce extension; nil when absent
}

// derReader reads a sequence of DER elements. It exists because the cache
// hit path must validate a request without the allocations of
// encoding/asn1; the rules are DER's: definite, minimal lengths and
// low-number tags only.
type derReader []byte

// next reads one element and returns its tag and content octets.
func (d *derReader) next() (tag byte, content []byte, ok bool) {
	b := *d
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, nil, false
	}
	n, off := int(b[1]), 2
	if n >= 0x80 {
		// Three length octets allow 16 MiB, far more than any request.
		nb := n & 0x7f
		if nb == 0 || nb > 3 || len(b) < 2+nb || b[2] == 0 {
			return 0, nil, false
		}
		n = 0
		for _, c := range b[2 : 2+nb] {
			n = n<<8 | int(c)
		}
		if n < 0x80 {
			return 0, nil, false
		}
		off = 2 + nb
	}
	if len(b)-off < n {
		return 0, nil, false
	}
	*d = b[off+n:]
	return b[0], b[off : off+n], true
}

// read reads one element that must carry tag.
func (d *derReader) read(tag byte) (content []byte, ok bool) {
	t, c, ok := d.next()
	if !ok || t != tag {
		return nil, false
	}
	return c, true
}

// peek reports whether the next element carries tag.
func (d derReader) peek(tag byte) bool { return len(d) > 0 && d[0] == tag }

// readOnly reads content that must be exactly one element with tag.
func readOnly(content []byte, tag byte) ([]byte, bool) {
	d := derReader(content)
	c, ok := d.read(tag)
	return c, ok && len(d) == 0
}

// validOID reports whether c is the content of a well-formed OBJECT
// IDENTIFIER: base-128 arcs, minimal, the last one complete.
func validOID(c []byte) bool {
	if len(c) == 0 || c[len(c)-1]&0x80 != 0 {
		return false
	}
	start := true
	for _, b := range c {
		if start && b == 0x80 {
			return false
		}
		start = b&0x80 == 0
	}
	return true
}

// validInteger reports whether c is the content of a minimally encoded
// INTEGER.
func validInteger(c []byte) bool {
	switch {
	case len(c) == 0:
		return false
	case len(c) == 1:
		return true
	case c[0] == 0x00 && c[1]&0x80 == 0, c[0] == 0xff && c[1]&0x80 != 0:
		return false
	}
	return true
}

// parseRequest parses and validates an OCSPRequest (RFC 6960 §4.1.1):
//
//	OCSPRequest ::= SEQUENCE {
//	    tbsRequest              TBSRequest,
//	    optionalSignature   [0] EXPLICIT Signature OPTIONAL }
//	TBSRequest ::= SEQUENCE {
//	    version             [0] EXPLICIT Version DEFAULT v1,
//	    requestorName       [1] EXPLICIT GeneralName OPTIONAL,
//	    requestList             SEQUENCE OF Request,
//	    requestExtensions   [2] EXPLICIT Extensions OPTIONAL }
//	Request ::= SEQUENCE {
//	    reqCert                     CertID,
//	    singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//	CertID ::= SEQUENCE {
//	    hashAlgorithm       AlgorithmIdentifier,
//	    issuerNameHash      OCTET STRING,
//	    issuerKeyHash       OCTET STRING,
//	    serialNumber        CertificateSerialNumber }
//
// It does not allocate.
func parseRequest(der []byte) (request, error) {
	var req request
	top := derReader(der)
	ocspReq, ok := top.read(tagSequence)
	if !ok || len(top) != 0 {
		return req, malformedError("not a DER OCSPRequest")
	}
	outer := derReader(ocspReq)
	tbs, ok := outer.read(tagSequence)
	if !ok {
		return req, malformedError("bad tbsRequest")
	}
	if outer.peek(tagExplicit0) {
		// RFC 5019 §2.1.2 lets a responder ignore the signature.
		if _, ok := outer.read(tagExplicit0); !ok {
			return req, malformedError("bad optionalSignature")
		}
	}
	if len(outer) != 0 {
		return req, malformedError("trailing data in OCSPRequest")
	}

	t := derReader(tbs)
	if t.peek(tagExplicit0) {
		v, ok := t.read(tagExplicit0)
		if !ok {
			return req, malformedError("bad version")
		}
		if n, ok := readOnly(v, tagInteger); !ok || len(n) != 1 || n[0] != 0 {
			return req, malformedError("unsupported version")
		}
	}
	if t.peek(tagExplicit1) {
		// A GeneralName we do not use; it must still be one element.
		name, ok := t.read(tagExplicit1)
		n := derReader(name)
		if _, _, ok2 := n.next(); !ok || !ok2 || len(n) != 0 {
			return req, malformedError("bad requestorName")
		}
	}
	list, ok := t.read(tagSequence)
	if !ok {
		return req, malformedError("bad requestList")
	}
	if t.peek(tagExplicit2) {
		exts, ok := t.read(tagExplicit2)
		if !ok {
			return req, malformedError("bad requestExtensions")
		}
		if err := parseExtensions(exts, &req.nonce); err != nil {
			return req, err
		}
	}
	if len(t) != 0 {
		return req, malformedError("trailing data in tbsRequest")
	}

	l := derReader(list)
	one, ok := l.read(tagSequence)
	if !ok {
		return req, malformedError("no Request in requestList")
	}
	if len(l) != 0 {
		return req, malformedError("more than one Request")
	}
	r := derReader(one)
	certID, ok := r.read(tagSequence)
	if !ok {
		return req, malformedError("bad CertID")
	}
	if r.peek(tagExplicit0) {
		exts, ok := r.read(tagExplicit0)
		if !ok {
			return req, malformedError("bad singleRequestExtensions")
		}
		var nonce []byte // a nonce belongs in requestExtensions; here it is just an extension we know
		if err := parseExtensions(exts, &nonce); err != nil {
			return req, err
		}
	}
	if len(r) != 0 {
		return req, malformedError("trailing data in Request")
	}
	if err := parseCertID(certID, &req); err != nil {
		return req, err
	}
	return req, nil
}

// parseCertID fills the CertID fields of req.
func parseCertID(certID []byte, req *request) error {
	c := derReader(certID)
	algID, ok := c.read(tagSequence)
	if !ok {
		return malformedError("bad hashAlgorithm")
	}
	a := derReader(algID)
	oid, ok := a.read(tagOID)
	if !ok || !validOID(oid) {
		return malformedError("bad hashAlgorithm OID")
	}
	if len(a) != 0 {
		// The SHA family takes NULL parameters or none (RFC 5754 §2).
		if p, ok := a.read(tagNull); !ok || len(p) != 0 || len(a) != 0 {
			return malformedError("bad hashAlgorithm parameters")
		}
	}
	switch string(oid) {
	case oidSHA1DER:
		req.hash = hashSHA1
	case oidSHA256DER:
		req.hash = hashSHA256
	default:
		req.hash = hashOther
	}
	if req.nameHash, ok = c.read(tagOctetString); !ok {
		return malformedError("bad issuerNameHash")
	}
	if req.keyHash, ok = c.read(tagOctetString); !ok {
		return malformedError("bad issuerKeyHash")
	}
	rest := len(c)
	if req.serial, ok = c.read(tagInteger); !ok || !validInteger(req.serial) {
		return malformedError("bad serialNumber")
	}
	req.serialTLV = certID[len(certID)-rest : len(certID)-len(c)]
	if len(c) != 0 {
		return malformedError("trailing data in CertID")
	}
	return nil
}

// parseExtensions validates an [n] EXPLICIT Extensions and stores the
// extnValue of a nonce extension in *nonce:
//
//	Extension ::= SEQUENCE {
//	    extnID      OBJECT IDENTIFIER,
//	    critical    BOOLEAN DEFAULT FALSE,
//	    extnValue   OCTET STRING }
func parseExtensions(explicit []byte, nonce *[]byte) error {
	exts, ok := readOnly(explicit, tagSequence)
	if !ok || len(exts) == 0 {
		return malformedError("bad Extensions")
	}
	d := derReader(exts)
	for len(d) > 0 {
		ext, ok := d.read(tagSequence)
		if !ok {
			return malformedError("bad Extension")
		}
		e := derReader(ext)
		oid, ok := e.read(tagOID)
		if !ok || !validOID(oid) {
			return malformedError("bad extnID")
		}
		critical := false
		if e.peek(tagBoolean) {
			b, _ := e.read(tagBoolean)
			if len(b) != 1 || (b[0] != 0x00 && b[0] != 0xff) {
				return malformedError("bad critical flag")
			}
			critical = b[0] == 0xff
		}
		value, ok := e.read(tagOctetString)
		if !ok || len(e) != 0 {
			return malformedError("bad extnValue")
		}
		if string(oid) != oidNonceDER {
			if critical {
				// RFC 6960 §4.4: a critical extension that is not understood
				// must not be ignored.
				return malformedError("unsupported critical extension")
			}
			continue
		}
		if *nonce != nil {
			return malformedError("duplicate nonce")
		}
		// RFC 9654 wraps the nonce in an OCTET STRING; RFC 2560 clients put
		// the bare value in extnValue. Either is echoed as it came.
		n := value
		if inner, ok := readOnly(value, tagOctetString); ok {
			n = inner
		}
		if len(n) < 1 || len(n) > maxNonceLength {
			return malformedError("nonce length out of range")
		}
		*nonce = value
	}
	return nil
}

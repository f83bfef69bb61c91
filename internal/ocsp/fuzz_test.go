package ocsp

import (
	"context"
	"crypto"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// FuzzRespond feeds arbitrary bytes to Respond: it must never panic and
// always return a parseable OCSP response, successful exactly when it
// reports no error. Whatever parseRequest accepts, x/crypto's ParseRequest
// must read the same way. The seeds in testdata/fuzz/FuzzRespond are
// requests for the PKI labelled "fuzz" (its keys are fixed): good (serial
// 1), revoked (2), unknown, with nonces, and malformed variants.
func FuzzRespond(f *testing.F) {
	p := newTestPKI(f, "fuzz")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	src.set(2, fakeStatus{status: xocsp.Revoked, revokedAt: time.Now().Add(-time.Hour), reason: xocsp.KeyCompromise})
	r, _ := newTestResponder(f, p, src, nil)
	f.Add(simpleRequest(f, p.issuing, 1, crypto.SHA1, nil))
	f.Add(simpleRequest(f, p.issuing, 2, crypto.SHA256, []byte("0123456789abcdef")))

	f.Fuzz(func(t *testing.T, der []byte) {
		resp, err := r.Respond(context.Background(), der)
		status := responseStatus(t, resp)
		if (err == nil) != (status == xocsp.Success) {
			t.Fatalf("Respond() error = %v with response status %v", err, status)
		}
		req, perr := parseRequest(der)
		if status == xocsp.Success {
			if perr != nil {
				t.Fatalf("answered a request that parseRequest rejects: %v", perr)
			}
			parsed, err := xocsp.ParseResponse(resp, p.issuing)
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			var serial *big.Int
			if _, err := asn1.Unmarshal(req.serialTLV, &serial); err != nil || parsed.SerialNumber.Cmp(serial) != 0 {
				t.Fatalf("answer for serial %v, asked for %v (%v)", parsed.SerialNumber, serial, err)
			}
		}
		if perr != nil || req.hash == hashOther {
			return
		}
		xreq, err := xocsp.ParseRequest(der)
		if err != nil {
			if !hasRequestorOrSignature(der) {
				t.Fatalf("parseRequest accepts what xocsp.ParseRequest rejects: %v", err)
			}
			return
		}
		want := map[hashAlg]crypto.Hash{hashSHA1: crypto.SHA1, hashSHA256: crypto.SHA256}[req.hash]
		var serial *big.Int
		if _, err := asn1.Unmarshal(req.serialTLV, &serial); err != nil {
			t.Fatal(err)
		}
		if xreq.HashAlgorithm != want || string(xreq.IssuerNameHash) != string(req.nameHash) ||
			string(xreq.IssuerKeyHash) != string(req.keyHash) || xreq.SerialNumber.Cmp(serial) != 0 {
			t.Fatalf("parseRequest = %v %x %x %v; xocsp.ParseRequest = %v %x %x %v", want, req.nameHash, req.keyHash, serial,
				xreq.HashAlgorithm, xreq.IssuerNameHash, xreq.IssuerKeyHash, xreq.SerialNumber)
		}
	})
}

// hasRequestorOrSignature reports whether a request that parseRequest
// accepted has a requestorName or a signature, which x/crypto rejects (it
// reads requestorName as a Name rather than a GeneralName).
func hasRequestorOrSignature(der []byte) bool {
	top := derReader(der)
	outer, _ := top.read(tagSequence)
	o := derReader(outer)
	tbs, _ := o.read(tagSequence)
	if o.peek(tagExplicit0) {
		return true
	}
	t := derReader(tbs)
	if t.peek(tagExplicit0) {
		t.next()
	}
	return t.peek(tagExplicit1)
}

package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/digitorus/timestamp"
)

// FuzzRespond feeds arbitrary queries to Respond. Every query must get a
// TimeStampResp that decodes with nothing left over and re-encodes to the
// same octets; it is granted exactly when the query is acceptable, a granted
// token parses (and verifies) with timestamp.ParseResponse and carries the
// query's imprint and nonce, and a rejection has exactly one known failInfo
// bit. The seeds in testdata/fuzz/FuzzRespond are queries made by
// "openssl ts -query".
func FuzzRespond(f *testing.F) {
	tsa, _, _ := newTestTSA(f, newTestPKI(f, elliptic.P256()).config())
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		f.Add(makeQuery(f, h, []byte("seed"), nil))
	}
	f.Add(makeQuery(f, crypto.SHA256, nil, func(r *timeStampReq) { r.ReqPolicy = testPolicy; r.CertReq = false }))
	f.Add(makeQuery(f, crypto.SHA256, nil, func(r *timeStampReq) { r.Version = 2 }))
	f.Add(makeQuery(f, crypto.SHA256, nil, func(r *timeStampReq) {
		r.Extensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{5, 0}}}
	}))
	f.Add(makeQuery(f, crypto.SHA256, nil, func(r *timeStampReq) {
		r.MessageImprint.HashAlgorithm.Parameters = asn1.RawValue{}
	}))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00}) // BER indefinite length

	known := []int{int(timestamp.BadAlgorithm), int(timestamp.BadRequest), int(timestamp.BadDataFormat),
		int(timestamp.UnacceptedPolicy), int(timestamp.UnacceptedExtension)}
	f.Fuzz(func(t *testing.T, q []byte) {
		resp, err := tsa.Respond(context.Background(), q)
		if err != nil {
			t.Fatalf("Respond: %v", err)
		}
		var r timeStampResp
		rest, err := asn1.Unmarshal(resp, &r)
		if err != nil || len(rest) != 0 {
			t.Fatalf("response %x does not decode: %v (%d trailing octets)", resp, err, len(rest))
		}
		if re, err := asn1.Marshal(r); err != nil || !bytes.Equal(re, resp) {
			t.Fatalf("response re-encodes to %x (%v), want %x", re, err, resp)
		}
		accepted, rej := tsa.parseQuery(q)
		switch r.Status.Status {
		case int(timestamp.Granted):
			if rej != nil {
				t.Fatalf("granted a query rejected with %s", failInfoName(rej.fail))
			}
			ts, err := timestamp.ParseResponse(resp)
			if err != nil {
				t.Fatalf("timestamp.ParseResponse of a granted response: %v", err)
			}
			if !bytes.Equal(ts.HashedMessage, accepted.digest) || ts.HashAlgorithm != accepted.hash {
				t.Errorf("token imprint %v %x, want %v %x", ts.HashAlgorithm, ts.HashedMessage, accepted.hash, accepted.digest)
			}
			if (ts.Nonce == nil) != (accepted.nonce == nil) || ts.Nonce != nil && ts.Nonce.Cmp(accepted.nonce) != 0 {
				t.Errorf("token nonce %v, want %v", ts.Nonce, accepted.nonce)
			}
		case int(timestamp.Rejection):
			if rej == nil {
				t.Fatalf("rejected an acceptable query")
			}
			var bits []int
			for i := range r.Status.FailInfo.BitLength {
				if r.Status.FailInfo.At(i) == 1 {
					bits = append(bits, i)
				}
			}
			if len(bits) != 1 || !slices.Contains(known, bits[0]) || bits[0] != int(rej.fail) {
				t.Errorf("failInfo bits %v, want [%d]", bits, rej.fail)
			}
		default:
			t.Fatalf("PKIStatus %d, want granted or rejection", r.Status.Status)
		}
	})
}

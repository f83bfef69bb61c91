package mssp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"mobileid/internal/etsi"
)

// TestNumberPrefix starts the test MSISDNs: +9990092 followed by a
// three-digit status code answers with that status without any phone,
// as Swisscom's +41000092<code> numbers do. The country code 999 is
// reserved in E.164, so no subscriber has such a number. See
// docs/mssp.md for what each code does.
const TestNumberPrefix = "+9990092"

// TestNumberStatus reports whether msisdn is a test number and the status
// it asks for.
func TestNumberStatus(msisdn string) (etsi.Code, bool) {
	rest, ok := strings.CutPrefix(msisdn, TestNumberPrefix)
	if !ok || len(rest) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return etsi.Code(n), true
}

// testSigner signs for the test numbers with a key made at start-up and a
// self-signed certificate that says it is for tests only; no relying
// party trusts it.
type testSigner struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestSigner(now time.Time) (*testSigner, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mssp: test signer: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "TEST ONLY - mobileid test number", Organization: []string{"mobileid test numbers"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("mssp: test signer: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mssp: test signer: %w", err)
	}
	return &testSigner{key: key, cert: cert}, nil
}

// sign signs digest the way a SIM with an ECDSA key does: raw r‖s.
func (ts *testSigner) sign(digest []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, digest)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// testTransaction answers a request to a test number with the status the
// number asks for: a fault code ends the transaction with that fault; 500
// and 502 with a signature by the test key in the requested format; 501,
// 503 and 505 without one; 504 leaves it outstanding until it times out
// (208). Other codes are a 101 fault.
func (e *Engine) testTransaction(ctx context.Context, aps *APs, s *start, code etsi.Code) (*Transaction, error) {
	s.kind, s.exclusive, s.req.TestCode = kindTest, false, code
	switch {
	case code == etsi.CodeOutstandingTransaction:
		return e.begin(ctx, aps, s)
	case code == etsi.CodeSignature || code == etsi.CodeValidSignature:
		in := &toSign{Format: s.req.Format, Text: s.req.Text, Digest: s.req.Digest, Hash: s.req.Hash, Cert: e.test.cert, SigningTime: s.req.SigningTime}
		digest, _, err := digestToSign(in)
		if err != nil {
			return nil, faultDetail(etsi.CodeInappropriateData, 0, "%v", err)
		}
		raw, err := e.test.sign(digest)
		if err != nil {
			return nil, err
		}
		var ts Timestamper
		if s.req.Timestamp {
			ts = e.cfg.Timestamper
		}
		sig, err := assemble(ctx, in, raw, ts)
		if err != nil {
			return nil, fmt.Errorf("mssp: test signature: %w", err)
		}
		s.final = &finalState{state: StateValidated, code: code, msg: "test number", result: &txResult{Signature: sig}}
	case code == etsi.CodeRevokedCertificate || code == etsi.CodeInvalidSignature || code == etsi.CodeConstraintMismatch:
		s.final = &finalState{state: StateFailed, code: code, msg: "test number"}
	case code.Known() && code.IsFault():
		s.final = failed(code, 0, "test number")
	default:
		return nil, faultDetail(etsi.CodeWrongParam, 0, "%s%03d is not a test status", TestNumberPrefix, int(code))
	}
	return e.begin(ctx, aps, s)
}

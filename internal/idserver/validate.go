// This file is the ID Server's own check of what the MSSP returns: the
// signature, the certificate against the directory, the chain and the
// certificate's status. The MSSP checks too, but the ID Server answers for
// the identity it reports, so it does not take the MSSP's word for it.

package idserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"mobileid/internal/vmac"
)

// DefaultOCSPMaxAge is how long good OCSP answers are reused when
// Config.OCSPMaxAge is zero: short, so that a suspension or revocation
// reaches relying parties within seconds.
const DefaultOCSPMaxAge = 10 * time.Second

const (
	ocspTimeout         = 10 * time.Second
	maxOCSPResponse     = 64 << 10
	maxOCSPCacheEntries = 100000
	ocspClockSkew       = 5 * time.Minute
)

// Outcomes of a validation other than success, each a MID result or an
// internal error.
var (
	// errSignature means the signature does not verify over the hash.
	errSignature = errors.New("signature does not verify over the hash")
	// errIdentity means the certificate is not the one the directory has
	// for the person and key, or is revoked, suspended or unknown.
	errIdentity = errors.New("certificate does not belong to the person")
)

// certStatus is a certificate's revocation status.
type certStatus int

const (
	statusGood certStatus = iota + 1
	statusRevoked
	statusUnknown
)

// ocspChecker asks the responder named in a certificate about it, caching
// good answers for maxAge. It is safe for concurrent use.
type ocspChecker struct {
	client *http.Client
	now    func() time.Time
	maxAge time.Duration

	mu    sync.Mutex
	cache map[[32]byte]time.Time // good until
	// verified holds, per certificate, the last good answer whose
	// signature was checked. A responder signs a good answer once and
	// sends the same bytes until its nextUpdate draws near, so an answer
	// asked for again after maxAge is usually the one verified before;
	// then only what depends on the time is checked again. Verifying the
	// CA's P-384 signature again would give the same result, for a
	// millisecond and more of CPU.
	verified map[[32]byte]*ocspAnswer
}

// ocspAnswer is what the checks of an OCSP response need, once its
// signatures have been verified.
type ocspAnswer struct {
	sum                    [32]byte // SHA-256 of the response
	status                 int
	thisUpdate, nextUpdate time.Time
	// delegated is set when a responder certificate other than the
	// issuer signed the answer; it must be valid at the time of use.
	delegated               bool
	signerFrom, signerUntil time.Time
	signerCanSign           bool // it has id-kp-OCSPSigning
}

func newOCSPChecker(client *http.Client, now func() time.Time, maxAge time.Duration) *ocspChecker {
	if client == nil {
		client = &http.Client{Timeout: ocspTimeout}
	}
	return &ocspChecker{client: client, now: now, maxAge: maxAge, cache: map[[32]byte]time.Time{}, verified: map[[32]byte]*ocspAnswer{}}
}

// answer parses and verifies an OCSP response about cert, or finds it
// verified before.
func (c *ocspChecker) answer(key [32]byte, body []byte, cert, issuer *x509.Certificate) (*ocspAnswer, error) {
	sum := sha256.Sum256(body)
	c.mu.Lock()
	a := c.verified[key]
	c.mu.Unlock()
	if a != nil && a.sum == sum {
		return a, nil
	}
	resp, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return nil, err
	}
	a = &ocspAnswer{sum: sum, status: resp.Status, thisUpdate: resp.ThisUpdate, nextUpdate: resp.NextUpdate}
	if rc := resp.Certificate; rc != nil && !rc.Equal(issuer) {
		// The parser checked the issuer's signature on a delegated
		// responder certificate, not what it is for.
		a.delegated, a.signerFrom, a.signerUntil = true, rc.NotBefore, rc.NotAfter
		a.signerCanSign = slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning)
	}
	if a.status == ocsp.Good {
		c.mu.Lock()
		if len(c.verified) >= maxOCSPCacheEntries {
			clear(c.verified)
		}
		c.verified[key] = a
		c.mu.Unlock()
	}
	return a, nil
}

func ocspKey(cert, issuer *x509.Certificate) [32]byte {
	h := sha256.New()
	h.Write(issuer.RawSubjectPublicKeyInfo)
	h.Write(cert.SerialNumber.Bytes())
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// check returns the status of cert, issued by issuer.
func (c *ocspChecker) check(ctx context.Context, cert, issuer *x509.Certificate) (certStatus, error) {
	key := ocspKey(cert, issuer)
	now := c.now()
	c.mu.Lock()
	until, ok := c.cache[key]
	if ok && !now.Before(until) {
		delete(c.cache, key)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		return statusGood, nil
	}
	if len(cert.OCSPServer) == 0 {
		return 0, fmt.Errorf("check status of %x: the certificate names no OCSP responder", cert.SerialNumber)
	}
	url := cert.OCSPServer[0]
	ctx, cancel := context.WithTimeout(ctx, ocspTimeout)
	defer cancel()
	body, err := c.post(ctx, url, cert, issuer)
	if err != nil {
		return 0, fmt.Errorf("ask OCSP responder %s about %x: %w", url, cert.SerialNumber, err)
	}
	resp, err := c.answer(key, body, cert, issuer)
	if err != nil {
		return 0, fmt.Errorf("parse OCSP response from %s about %x: %w", url, cert.SerialNumber, err)
	}
	now = c.now()
	if resp.delegated && (!resp.signerCanSign || now.Before(resp.signerFrom) || now.After(resp.signerUntil)) {
		return 0, fmt.Errorf("OCSP response from %s about %x: responder certificate not valid for OCSP signing", url, cert.SerialNumber)
	}
	if !resp.nextUpdate.IsZero() && now.After(resp.nextUpdate) || resp.thisUpdate.After(now.Add(ocspClockSkew)) {
		return 0, fmt.Errorf("OCSP response from %s about %x is not current", url, cert.SerialNumber)
	}
	switch resp.status {
	case ocsp.Good:
		if c.maxAge > 0 {
			until := now.Add(c.maxAge)
			if !resp.nextUpdate.IsZero() && resp.nextUpdate.Before(until) {
				until = resp.nextUpdate
			}
			c.mu.Lock()
			if len(c.cache) >= maxOCSPCacheEntries {
				clear(c.cache)
			}
			c.cache[key] = until
			c.mu.Unlock()
		}
		return statusGood, nil
	case ocsp.Revoked:
		return statusRevoked, nil
	}
	return statusUnknown, nil
}

func (c *ocspChecker) post(ctx context.Context, url string, cert, issuer *x509.Certificate) ([]byte, error) {
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(body) > maxOCSPResponse {
		return nil, fmt.Errorf("response longer than %d bytes", maxOCSPResponse)
	}
	return body, nil
}

// signatureAlgorithm returns MID's name of the algorithm of a signature
// made with cert's key over a hash of hashType, e.g.
// SHA256WithECEncryption.
func signatureAlgorithm(cert *x509.Certificate, hashType string) string {
	switch cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return hashType + "WithECEncryption"
	case *rsa.PublicKey:
		return hashType + "WithRSAEncryption"
	}
	return ""
}

// validate checks a signature the MSSP returned for a session: it must
// verify over the session's hash with certDER, certDER must be the
// certificate the directory has for the person and key, chain to the
// roots and be good according to OCSP. It returns errSignature or
// errIdentity for what is the user's or the data's doing, and other
// errors for what is the service's.
func (s *Server) validate(ctx context.Context, sess *session, want []byte, sig, certDER []byte) (*x509.Certificate, error) {
	if len(want) == 0 || !bytes.Equal(certDER, want) {
		return nil, errIdentity
	}
	c, err := parseAndChain(s, certDER)
	if err != nil {
		return nil, err
	}
	cert := c.leaf
	if err := vmac.VerifyDigest(cert.PublicKey, hashTypes[sess.HashType].hash, sess.Hash, sig); err != nil {
		return nil, errSignature
	}
	st, err := s.ocsp.check(ctx, cert, c.issuer)
	if err != nil {
		return nil, err
	}
	if st != statusGood {
		return nil, errIdentity
	}
	return cert, nil
}

// chained is a certificate with the issuer its chain to the roots found,
// and the time during which every certificate of that chain is valid.
type chained struct {
	leaf, issuer        *x509.Certificate
	notBefore, notAfter time.Time
}

// maxChainCacheEntries bounds the cache of verified chains: one entry per
// certificate in use, for as many users as authenticate within a while.
const maxChainCacheEntries = 100000

// chainCache remembers the certificates whose chain to the configured
// roots has been verified. Whether a certificate chains to fixed roots
// through fixed intermediates depends only on its bytes and on the time,
// and the time matters only through the validity periods of the chain's
// certificates, which an entry keeps: a hit outside them is verified
// again, and fails. So a hit answers exactly what crypto/x509 would,
// without its signature verifications with the CA's keys (P-384: over a
// millisecond each). Revocation is not a property of the chain; OCSP
// answers it on every use. It is safe for concurrent use.
type chainCache struct {
	mu sync.Mutex
	m  map[[32]byte]*chained
}

func (c *chainCache) get(key [32]byte, now time.Time) *chained {
	c.mu.Lock()
	e := c.m[key]
	c.mu.Unlock()
	if e == nil || now.Before(e.notBefore) || now.After(e.notAfter) {
		return nil
	}
	return e
}

func (c *chainCache) put(key [32]byte, e *chained) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxChainCacheEntries {
		c.m = make(map[[32]byte]*chained)
	}
	c.m[key] = e
}

// parseAndChain parses a DER certificate and verifies its chain to the
// configured roots, or finds it verified before.
func parseAndChain(s *Server, der []byte) (*chained, error) {
	key := sha256.Sum256(der)
	now := s.now()
	if c := s.chains.get(key, now); c != nil {
		return c, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots: s.cfg.Roots, Intermediates: s.cfg.Intermediates, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("verify certificate chain: %w", err)
	}
	chain := chains[0]
	if len(chain) < 2 {
		return nil, errors.New("verify certificate chain: the certificate is a root")
	}
	c := &chained{leaf: cert, issuer: chain[1], notBefore: cert.NotBefore, notAfter: cert.NotAfter}
	for _, ca := range chain[1:] {
		if ca.NotBefore.After(c.notBefore) {
			c.notBefore = ca.NotBefore
		}
		if ca.NotAfter.Before(c.notAfter) {
			c.notAfter = ca.NotAfter
		}
	}
	s.chains.put(key, c)
	return c, nil
}

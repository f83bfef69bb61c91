package mssp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

// Errors wrapped by a RevocationChecker when it has no usable answer.
var (
	// ErrRevocationUnavailable means the status could not be had: no
	// responder, a network or HTTP error, an OCSP error status, or a
	// response that does not parse or verify.
	ErrRevocationUnavailable = errors.New("mssp: revocation status unavailable")
	// ErrStaleRevocation means the answer's nextUpdate has passed: it
	// says nothing about the certificate now.
	ErrStaleRevocation = errors.New("mssp: revocation status is stale")
)

// RevocationStatus is a certificate's revocation status.
type RevocationStatus int

// Revocation statuses. The zero value is none of them, so that a checker
// that forgets to set one is not taken to say "good".
const (
	RevocationGood RevocationStatus = iota + 1
	// RevocationRevoked includes a certificate on hold (suspended).
	RevocationRevoked
	// RevocationUnknown means the responder does not know the certificate.
	RevocationUnknown
)

// String returns "good", "revoked", "unknown" or RevocationStatus(n).
func (s RevocationStatus) String() string {
	switch s {
	case RevocationGood:
		return "good"
	case RevocationRevoked:
		return "revoked"
	case RevocationUnknown:
		return "unknown"
	}
	return "RevocationStatus(" + strconv.Itoa(int(s)) + ")"
}

// RevocationChecker says whether a certificate is revoked.
type RevocationChecker interface {
	// Check returns the status of cert, issued by issuer. An error
	// wrapping ErrStaleRevocation or ErrRevocationUnavailable says why
	// there is no status.
	Check(ctx context.Context, cert, issuer *x509.Certificate) (RevocationStatus, error)
}

// Limits of an OCSPChecker.
const (
	// DefaultOCSPMaxAge is how long a good answer is reused when
	// NewOCSPChecker is given a zero maxAge.
	DefaultOCSPMaxAge = 60 * time.Second
	// ocspTimeout bounds one request to a responder. The request is shared
	// by every caller waiting for it, so no caller's context can be its
	// deadline.
	ocspTimeout = 10 * time.Second
	// maxOCSPResponse bounds the size of a response; ours are under 1 KiB
	// with the responder certificate.
	maxOCSPResponse = 64 << 10
	// maxOCSPCacheEntries bounds the number of cached answers.
	maxOCSPCacheEntries = 100_000
	// ocspClockSkew is how far in the future a thisUpdate may be: the
	// responder's clock may run ahead of ours.
	ocspClockSkew = 5 * time.Minute
)

// OCSPChecker is a RevocationChecker that asks the certificate's OCSP
// responder (RFC 6960, by POST, with a SHA-1 CertID as RFC 5019 requires
// of clients) and verifies the answer: it must be signed by the issuer or
// by a responder certificate that the issuer issued for id-kp-OCSPSigning
// and that is valid now.
//
// A good answer is reused until its nextUpdate or for the checker's
// maximum age, whichever comes first, and so is a certificate on hold,
// which can be released. A revocation for any other reason is final and is
// kept until the certificate expires. Unknown answers and errors are not
// kept. Callers that miss the cache for the same certificate at the same
// time share one request. An OCSPChecker is safe for concurrent use.
type OCSPChecker struct {
	// URL, if not empty, is the responder asked for every certificate
	// instead of the one in its authorityInfoAccess. Set it before the
	// first Check.
	URL string

	client *http.Client
	now    func() time.Time
	maxAge time.Duration

	mu    sync.Mutex
	cache map[ocspKey]ocspEntry
	calls map[ocspKey]*ocspCall
}

// ocspKey names a certificate: its issuer's key and its serial number.
type ocspKey struct {
	issuer [sha256.Size]byte
	serial string
}

type ocspEntry struct {
	status RevocationStatus
	until  time.Time
}

// ocspCall is a request in flight; status and err are set before done is
// closed.
type ocspCall struct {
	done   chan struct{}
	status RevocationStatus
	err    error
}

// NewOCSPChecker returns an OCSPChecker that sends requests with client
// (nil means http.DefaultClient; each request is bounded to 10 s anyway)
// and reads the time from now (nil means time.Now). Good answers are
// reused for at most maxAge: zero means DefaultOCSPMaxAge, and a negative
// maxAge disables the cache.
func NewOCSPChecker(client *http.Client, now func() time.Time, maxAge time.Duration) *OCSPChecker {
	if client == nil {
		client = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	if maxAge == 0 {
		maxAge = DefaultOCSPMaxAge
	}
	return &OCSPChecker{
		client: client,
		now:    now,
		maxAge: maxAge,
		cache:  make(map[ocspKey]ocspEntry),
		calls:  make(map[ocspKey]*ocspCall),
	}
}

// Check implements RevocationChecker.
func (c *OCSPChecker) Check(ctx context.Context, cert, issuer *x509.Certificate) (RevocationStatus, error) {
	if cert == nil || issuer == nil {
		return 0, fmt.Errorf("mssp: check revocation: %w: no certificate or issuer", ErrRevocationUnavailable)
	}
	key := ocspKey{issuer: sha256.Sum256(issuer.RawSubjectPublicKeyInfo), serial: string(cert.SerialNumber.Bytes())}
	now := c.now()

	c.mu.Lock()
	if e, ok := c.cache[key]; ok {
		if now.Before(e.until) {
			c.mu.Unlock()
			return e.status, nil
		}
		delete(c.cache, key)
	}
	call, ok := c.calls[key]
	if !ok {
		call = &ocspCall{done: make(chan struct{})}
		c.calls[key] = call
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ocspTimeout)
		go func() {
			defer cancel()
			c.fetch(fctx, key, call, cert, issuer)
		}()
	}
	c.mu.Unlock()

	select {
	case <-call.done:
		return call.status, call.err
	case <-ctx.Done():
		return 0, fmt.Errorf("mssp: check revocation: %w: %w", ErrRevocationUnavailable, ctx.Err())
	}
}

// fetch asks the responder, caches the answer and completes call.
func (c *OCSPChecker) fetch(ctx context.Context, key ocspKey, call *ocspCall, cert, issuer *x509.Certificate) {
	status, until, err := c.query(ctx, cert, issuer)
	c.mu.Lock()
	delete(c.calls, key)
	if err == nil && c.maxAge > 0 && c.now().Before(until) {
		if len(c.cache) >= maxOCSPCacheEntries {
			c.evict()
		}
		c.cache[key] = ocspEntry{status: status, until: until}
	}
	c.mu.Unlock()
	call.status, call.err = status, err
	close(call.done)
}

// evict makes room in the cache: it drops the expired entries, and random
// ones if that is not enough. c.mu is held.
func (c *OCSPChecker) evict() {
	now := c.now()
	for k, e := range c.cache {
		if !now.Before(e.until) {
			delete(c.cache, k)
		}
	}
	for k := range c.cache {
		if len(c.cache) < maxOCSPCacheEntries {
			break
		}
		delete(c.cache, k)
	}
}

// query asks the responder about cert and returns its status and until
// when it may be reused (zero if not at all).
func (c *OCSPChecker) query(ctx context.Context, cert, issuer *x509.Certificate) (RevocationStatus, time.Time, error) {
	url := c.URL
	if url == "" {
		if len(cert.OCSPServer) == 0 {
			return 0, time.Time{}, fmt.Errorf("mssp: check revocation of %x: %w: the certificate names no OCSP responder", cert.SerialNumber, ErrRevocationUnavailable)
		}
		url = cert.OCSPServer[0]
	}
	body, err := c.post(ctx, url, cert, issuer)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("mssp: ask OCSP responder %s about %x: %w: %w", url, cert.SerialNumber, ErrRevocationUnavailable, err)
	}
	resp, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("mssp: parse OCSP response from %s about %x: %w: %w", url, cert.SerialNumber, ErrRevocationUnavailable, err)
	}
	now := c.now()
	if err := checkResponder(resp, issuer, now); err != nil {
		return 0, time.Time{}, fmt.Errorf("mssp: check OCSP response from %s about %x: %w: %w", url, cert.SerialNumber, ErrRevocationUnavailable, err)
	}
	switch {
	case !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate):
		return 0, time.Time{}, fmt.Errorf("mssp: check OCSP response from %s about %x: %w: nextUpdate %s has passed",
			url, cert.SerialNumber, ErrStaleRevocation, resp.NextUpdate.UTC().Format(time.RFC3339))
	case resp.ThisUpdate.After(now.Add(ocspClockSkew)):
		return 0, time.Time{}, fmt.Errorf("mssp: check OCSP response from %s about %x: %w: thisUpdate %s is in the future",
			url, cert.SerialNumber, ErrRevocationUnavailable, resp.ThisUpdate.UTC().Format(time.RFC3339))
	}

	fresh := now.Add(c.maxAge)
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(fresh) {
		fresh = resp.NextUpdate
	}
	switch resp.Status {
	case ocsp.Good:
		return RevocationGood, fresh, nil
	case ocsp.Revoked:
		if resp.RevocationReason == ocsp.CertificateHold {
			return RevocationRevoked, fresh, nil
		}
		return RevocationRevoked, cert.NotAfter, nil
	}
	return RevocationUnknown, time.Time{}, nil
}

// post sends the OCSP request for cert and returns the response body.
func (c *OCSPChecker) post(ctx context.Context, url string, cert, issuer *x509.Certificate) ([]byte, error) {
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
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

// checkResponder checks what ocsp.ParseResponseForCert leaves out: a
// delegated responder certificate, whose issuer signature the parser has
// checked, must be for id-kp-OCSPSigning and valid at now.
func checkResponder(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	rc := resp.Certificate
	if rc == nil || rc.Equal(issuer) {
		return nil
	}
	if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return errors.New("responder certificate lacks id-kp-OCSPSigning")
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return fmt.Errorf("responder certificate is not valid at %s", now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Validator validates a signature returned by a SIM against the user's
// certificate, the CA chain and the certificate's revocation status, and
// maps the outcome to a TS 102 204 status code. Its fields must not change
// once it is in use, since it remembers the chains it has verified. A
// Validator is safe for concurrent use.
type Validator struct {
	// Roots are the trusted CA certificates. Required: a nil pool fails
	// every validation rather than fall back to the system roots.
	Roots *x509.CertPool
	// Intermediates are the issuing CAs; may be nil if Roots issues the
	// users' certificates directly.
	Intermediates *x509.CertPool
	// Revocation answers for the certificates; required when revocation is
	// checked.
	Revocation RevocationChecker
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// chains caches verified chains: building one checks two P-384
	// signatures, most of the cost of a validation, and a chain verified
	// once stays valid while each of its certificates is, since the pools
	// do not change.
	mu     sync.Mutex
	chains map[[sha256.Size]byte]verifiedChain
}

// verifiedChain is the issuer of a verified certificate and the time span
// in which all the certificates of its chain are valid.
type verifiedChain struct {
	issuer              *x509.Certificate
	notBefore, notAfter time.Time
}

// maxVerifiedChains bounds the Validator's chain cache.
const maxVerifiedChains = 100_000

// issuer returns the issuer of cert in a chain to the roots valid at now.
func (v *Validator) issuer(cert *x509.Certificate, now time.Time) (*x509.Certificate, error) {
	key := sha256.Sum256(cert.Raw)
	v.mu.Lock()
	c, ok := v.chains[key]
	v.mu.Unlock()
	if ok && !now.Before(c.notBefore) && !now.After(c.notAfter) {
		return c.issuer, nil
	}

	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         v.Roots,
		Intermediates: v.Intermediates,
		CurrentTime:   now,
		// Authentication certificates carry clientAuth and signing ones
		// no extended key usage at all; the key usage is checked apart.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, err
	}
	chain := chains[0]
	if len(chain) < 2 {
		return nil, errors.New("the certificate is itself a trusted CA")
	}
	c = verifiedChain{issuer: chain[1], notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, ca := range chain[1:] {
		if ca.NotBefore.After(c.notBefore) {
			c.notBefore = ca.NotBefore
		}
		if ca.NotAfter.Before(c.notAfter) {
			c.notAfter = ca.NotAfter
		}
	}
	v.mu.Lock()
	if v.chains == nil {
		v.chains = make(map[[sha256.Size]byte]verifiedChain)
	}
	for k := range v.chains {
		if len(v.chains) < maxVerifiedChains {
			break
		}
		delete(v.chains, k)
	}
	v.chains[key] = c
	v.mu.Unlock()
	return c.issuer, nil
}

// Validate checks rawSig, a signature in the card's format (raw r‖s for
// ECDSA, PKCS #1 v1.5 for RSA) over digest made with hash, and returns a
// status code and a short English reason, for logs and StatusMessage. The
// checks, and the code of the first that fails:
//
//   - the signature verifies with cert's public key, else 503
//     INVALID_SIGNATURE;
//   - cert is valid now, else 503 INVALID_SIGNATURE: FiCom counts an expired
//     certificate as an invalid signature, and so does a certificate that
//     is not yet valid here;
//   - cert chains to Roots now, else 425 ERROR_CERTIFICATE (an unknown
//     issuer, an expired CA, a malformed certificate);
//   - cert has the key usage the profile needs, contentCommitment
//     (nonRepudiation) when needNonRepudiation is set and digitalSignature
//     otherwise, else 505 CONSTRAINT_MISMATCH. A certificate without a key
//     usage extension is refused too: every certificate our CA issues has
//     one;
//   - unless checkRevocation is false, in which case the answer is 500
//     SIGNATURE (made, not validated), the certificate is not revoked or
//     on hold (501 REVOKED_CERTIFICATE) and its status is known: 424
//     CRL_EXPIRED for a stale answer, 423 CRL_PB for no answer or an
//     unknown certificate.
//
// If all pass, the code is 502 VALID_SIGNATURE. A nil cert is 422
// NO_CERT_FOUND; a Validator without Roots, or without Revocation when it
// is needed, gives 900 INTERNAL_ERROR.
func (v *Validator) Validate(ctx context.Context, cert *x509.Certificate, hash crypto.Hash, digest, rawSig []byte, needNonRepudiation, checkRevocation bool) (etsi.Code, string) {
	if cert == nil {
		return etsi.CodeNoCertFound, "no certificate to validate the signature with"
	}
	if err := vmac.VerifyDigest(cert.PublicKey, hash, digest, rawSig); err != nil {
		return etsi.CodeInvalidSignature, "signature does not verify with the certificate: " + err.Error()
	}
	if v.Roots == nil {
		return etsi.CodeInternalError, "no trusted CA configured"
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	switch {
	case now.After(cert.NotAfter):
		return etsi.CodeInvalidSignature, "certificate expired at " + cert.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(cert.NotBefore):
		return etsi.CodeInvalidSignature, "certificate is not valid before " + cert.NotBefore.UTC().Format(time.RFC3339)
	}
	issuer, err := v.issuer(cert, now)
	if err != nil {
		return etsi.CodeErrorCertificate, "certificate does not chain to a trusted CA: " + err.Error()
	}

	want, name := x509.KeyUsageDigitalSignature, "digitalSignature"
	if needNonRepudiation {
		want, name = x509.KeyUsageContentCommitment, "nonRepudiation"
	}
	if cert.KeyUsage&want == 0 {
		return etsi.CodeConstraintMismatch, "certificate key usage lacks " + name
	}

	if !checkRevocation {
		return etsi.CodeSignature, "signature and certificate are valid; revocation not checked"
	}
	if v.Revocation == nil {
		return etsi.CodeInternalError, "no revocation checker configured"
	}
	status, err := v.Revocation.Check(ctx, cert, issuer)
	switch {
	case errors.Is(err, ErrStaleRevocation):
		return etsi.CodeCRLExpired, "revocation status is stale: " + err.Error()
	case err != nil:
		return etsi.CodeCRLPB, "revocation status unavailable: " + err.Error()
	}
	switch status {
	case RevocationGood:
		return etsi.CodeValidSignature, "signature is valid"
	case RevocationRevoked:
		return etsi.CodeRevokedCertificate, "certificate is revoked or on hold"
	}
	return etsi.CodeCRLPB, "revocation status of the certificate is " + status.String()
}

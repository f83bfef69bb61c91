package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xocsp "golang.org/x/crypto/ocsp"
)

// Certificate statuses, as a Source returns them.
const (
	statusGood    = xocsp.Good
	statusRevoked = xocsp.Revoked
	statusUnknown = xocsp.Unknown
)

// Defaults for the zero values of Config.
const (
	DefaultValidity        = time.Hour
	DefaultMaxRequestBytes = 4096
	DefaultCacheEntries    = 100_000
)

// Errors returned, wrapped, by Respond along with the OCSP error response
// to send, and by New.
var (
	// ErrMalformedRequest means the request is not a valid OCSPRequest we
	// can answer: bad DER or base64, more than one Request, a bad nonce, an
	// unsupported critical extension or version. The answer is
	// malformedRequest.
	ErrMalformedRequest = errors.New("ocsp: malformed request")
	// ErrUnauthorized means the CertID does not name our issuer, or is
	// hashed with an algorithm we do not support. The answer is
	// unauthorized.
	ErrUnauthorized = errors.New("ocsp: not authorized for this certificate")
	// ErrInternal means the Source failed, returned an impossible answer,
	// or signing failed. The answer is internalError.
	ErrInternal = errors.New("ocsp: internal error")
	// ErrConfig means New was given an unusable Config.
	ErrConfig = errors.New("ocsp: invalid config")
)

// Source answers for the certificates of one issuer. It is implemented by
// the CA.
type Source interface {
	// CertStatus returns the status of the certificate with serial: 0 good,
	// 1 revoked, 2 unknown (the values of x/crypto/ocsp Good, Revoked and
	// Unknown). For a revoked certificate it also returns when it was
	// revoked and the RFC 5280 CRLReason; a suspended certificate is revoked
	// with reason certificateHold (6). An error makes the answer
	// internalError.
	CertStatus(ctx context.Context, serial *big.Int) (status int, revokedAt time.Time, reason int, err error)
}

// Config configures a Responder.
type Config struct {
	// Issuer is the CA whose certificates we answer for.
	Issuer *x509.Certificate
	// Cert is the delegated responder certificate: issued by Issuer, with
	// the extended key usage id-kp-OCSPSigning and, so that clients need
	// not check its own status, the id-pkix-ocsp-nocheck extension.
	Cert *x509.Certificate
	// Key is the private key of Cert. RSA and ECDSA (P-256, P-384, P-521)
	// keys are supported.
	Key crypto.Signer
	// Validity is nextUpdate − thisUpdate of every answer; DefaultValidity
	// if zero.
	Validity time.Duration
	// CacheMargin is how long before nextUpdate a cached good answer is
	// replaced by a newly signed one; Validity/4 if zero. It must be less
	// than Validity.
	CacheMargin time.Duration
	// MaxRequestBytes is the largest request accepted; a larger POST body
	// gets HTTP 413 and a longer GET path HTTP 414. DefaultMaxRequestBytes
	// if zero.
	MaxRequestBytes int
	// CacheEntries bounds the number of serials with cached answers;
	// DefaultCacheEntries if zero.
	CacheEntries int
}

// Responder answers OCSP requests for the certificates of one issuer. It
// is an http.Handler and is safe for concurrent use.
type Responder struct {
	cfg    Config
	src    Source
	log    *slog.Logger
	now    func() time.Time
	signer *signer
	cache  *cache
	m      *metrics

	maxEncoded int       // the longest base64 GET path that can decode within MaxRequestBytes
	bufs       sync.Pool // *[]byte of maxEncoded+MaxRequestBytes+4 bytes, for request bodies and GET paths
	hdr        headers
}

// New returns a Responder that answers for cfg.Issuer with the status that
// src reports. logger and reg may be nil (no logs, metrics not
// registered); now may be nil for time.Now.
func New(cfg Config, src Source, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Responder, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	switch {
	case cfg.Issuer == nil || cfg.Cert == nil || cfg.Key == nil:
		return nil, fmt.Errorf("%w: Issuer, Cert and Key are required", ErrConfig)
	case src == nil:
		return nil, fmt.Errorf("%w: no Source", ErrConfig)
	case cfg.Validity < 0 || cfg.CacheMargin < 0 || cfg.MaxRequestBytes < 0 || cfg.CacheEntries < 0:
		return nil, fmt.Errorf("%w: negative Validity, CacheMargin, MaxRequestBytes or CacheEntries", ErrConfig)
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.CacheMargin == 0 {
		cfg.CacheMargin = cfg.Validity / 4
	}
	if cfg.CacheMargin >= cfg.Validity {
		return nil, fmt.Errorf("%w: CacheMargin %v is not less than Validity %v", ErrConfig, cfg.CacheMargin, cfg.Validity)
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.CacheEntries == 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if err := checkResponderCert(cfg, now()); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(cfg.Cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidOCSPNoCheck) }) {
		// Not fatal: a client may then check the responder certificate's
		// own status, through CRLs or by asking us.
		logger.Warn("ocsp responder certificate lacks id-pkix-ocsp-nocheck", "subject", cfg.Cert.Subject.String())
	}
	s, err := newSigner(cfg.Issuer, cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := &Responder{
		cfg:        cfg,
		src:        src,
		log:        logger,
		now:        now,
		signer:     s,
		cache:      newCache(cfg.CacheEntries),
		m:          m,
		maxEncoded: base64.StdEncoding.EncodedLen(cfg.MaxRequestBytes),
		hdr:        newHeaders(),
	}
	// Room for a body of MaxRequestBytes+1 (to see that it is too long), or
	// for a GET path and its decoding, which unpadded can exceed
	// MaxRequestBytes by 2 (and is then rejected).
	size := r.maxEncoded + cfg.MaxRequestBytes + 4
	r.bufs.New = func() any {
		b := make([]byte, size)
		return &b
	}
	return r, nil
}

// checkResponderCert checks that cfg.Cert can sign answers for cfg.Issuer
// that clients will accept (RFC 6960 §4.2.2.2).
func checkResponderCert(cfg Config, now time.Time) error {
	if err := cfg.Cert.CheckSignatureFrom(cfg.Issuer); err != nil {
		return fmt.Errorf("%w: responder certificate is not issued by Issuer: %w", ErrConfig, err)
	}
	if !slices.Contains(cfg.Cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return fmt.Errorf("%w: responder certificate lacks extended key usage id-kp-OCSPSigning", ErrConfig)
	}
	pub, ok := cfg.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cfg.Cert.PublicKey) {
		return fmt.Errorf("%w: Key does not match the responder certificate", ErrConfig)
	}
	if now.Before(cfg.Cert.NotBefore) || !now.Before(cfg.Cert.NotAfter) {
		return fmt.Errorf("%w: responder certificate is not valid now (%v to %v)", ErrConfig, cfg.Cert.NotBefore, cfg.Cert.NotAfter)
	}
	return nil
}

// result is the outcome of one request.
type result struct {
	der     []byte // the OCSPResponse; shared, never to be modified
	outcome outcome
	err     error // why der is an error response; nil for answers
	// cached is set for a good answer without a nonce: served from the
	// cache or just signed for it.
	cached                 *cachedResponse
	nonce                  bool
	thisUpdate, nextUpdate time.Time
}

// Respond answers one DER OCSPRequest with a DER OCSPResponse. It always
// returns a response to send. For a protocol error that response is an
// OCSP error (malformedRequest, unauthorized or internalError) and err,
// wrapping ErrMalformedRequest, ErrUnauthorized or ErrInternal, says why.
func (r *Responder) Respond(ctx context.Context, der []byte) ([]byte, error) {
	res := r.respond(ctx, der)
	// A copy, because der may be the cached answer that other requests share.
	return bytes.Clone(res.der), res.err
}

// Invalidate drops any cached answer for serial at once, so that the next
// request asks the Source. The CA calls it after it commits a revocation
// (or any other status change). An answer that was being signed while
// Invalidate ran may still go to its request, but is not cached.
func (r *Responder) Invalidate(serial *big.Int) {
	if serial == nil {
		return
	}
	der, err := asn1.Marshal(serial)
	if err != nil {
		return // cannot happen for a *big.Int
	}
	d := derReader(der)
	content, ok := d.read(tagInteger)
	if !ok {
		return
	}
	r.cache.invalidate(content)
}

// respond is Respond without the copy. The request bytes are not retained.
func (r *Responder) respond(ctx context.Context, der []byte) result {
	return r.count(r.respondUncounted(ctx, der))
}

// count counts res in the metrics.
func (r *Responder) count(res result) result {
	r.m.byOutcome[res.outcome].Inc()
	return res
}

func (r *Responder) respondUncounted(ctx context.Context, der []byte) result {
	if len(der) > r.cfg.MaxRequestBytes {
		return r.malformed(malformedError("request too large"))
	}
	req, err := parseRequest(der)
	if err != nil {
		return r.malformed(err)
	}
	if req.hash == hashOther {
		return r.unauthorized("CertID hash algorithm is not SHA-1 or SHA-256")
	}
	is := &r.signer.issuer[req.hash]
	if !bytes.Equal(req.nameHash, is.nameHash) || !bytes.Equal(req.keyHash, is.keyHash) {
		return r.unauthorized("CertID names another issuer")
	}
	if req.nonce != nil {
		// An answer with a nonce is unique to its request: never cached.
		res := r.answer(ctx, &req)
		res.nonce = true
		return res
	}

	if cr := r.cache.get(req.serial, req.hash, r.now()); cr != nil {
		r.m.cacheHits.Inc()
		return result{der: cr.der, outcome: outcomeGood, cached: cr}
	}
	f, gen := r.cache.begin(req.serial)
	res := r.answer(ctx, &req)
	var cr *cachedResponse
	if res.outcome == outcomeGood {
		cr = newCachedResponse(res.der, res.thisUpdate, res.nextUpdate, r.cfg.CacheMargin)
		res.cached = cr
	}
	r.cache.end(req.serial, f, gen, req.hash, cr, r.now())
	return res
}

// answer asks the Source about req and signs the answer.
func (r *Responder) answer(ctx context.Context, req *request) result {
	var serial *big.Int
	if _, err := asn1.Unmarshal(req.serialTLV, &serial); err != nil {
		// parseRequest accepted the INTEGER; this cannot happen.
		return r.malformed(fmt.Errorf("decode serial number: %w: %w", ErrMalformedRequest, err))
	}
	status, revokedAt, reason, err := r.src.CertStatus(ctx, serial)
	if err != nil {
		return r.internal(fmt.Errorf("%w: query status of serial %x: %w", ErrInternal, serial, err))
	}
	a := answer{status: status, revokedAt: revokedAt, reason: reason}
	var o outcome
	switch {
	case status == statusGood:
		o = outcomeGood
	case status == statusUnknown:
		o = outcomeUnknown
	case status == statusRevoked && !revokedAt.IsZero() && validReason(reason):
		o = outcomeRevoked
	default:
		return r.internal(fmt.Errorf("%w: source answered status %d, revoked at %v, reason %d for serial %x",
			ErrInternal, status, revokedAt, reason, serial))
	}
	der, thisUpdate, nextUpdate, err := r.signer.sign(req, a, r.now(), r.cfg.Validity)
	if err != nil {
		return r.internal(fmt.Errorf("%w: serial %x: %w", ErrInternal, serial, err))
	}
	return result{der: der, outcome: o, thisUpdate: thisUpdate, nextUpdate: nextUpdate}
}

// validReason reports whether reason is a CRLReason (RFC 5280 §5.3.1);
// 7 is unused.
func validReason(reason int) bool {
	return reason >= xocsp.Unspecified && reason <= xocsp.AACompromise && reason != 7
}

func (r *Responder) malformed(err error) result {
	r.log.Debug("malformed ocsp request", "err", err)
	return result{der: xocsp.MalformedRequestErrorResponse, outcome: outcomeMalformed, err: err}
}

func (r *Responder) unauthorized(why string) result {
	r.log.Debug("unauthorized ocsp request", "reason", why)
	return result{der: xocsp.UnauthorizedErrorResponse, outcome: outcomeUnauthorized,
		err: fmt.Errorf("%w: %s", ErrUnauthorized, why)}
}

func (r *Responder) internal(err error) result {
	r.log.Error("ocsp answer failed", "err", err)
	return result{der: xocsp.InternalErrorErrorResponse, outcome: outcomeInternal, err: err}
}

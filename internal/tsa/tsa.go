// Package tsa implements the Time-Stamp Authority of the Mobile ID CA: the
// server side of the Time-Stamp Protocol of RFC 3161, over HTTP (RFC 3161
// §3.4) or called directly.
//
// A TSA takes a DER TimeStampReq and always answers with a DER
// TimeStampResp: either a granted response carrying a TimeStampToken (a CMS
// SignedData over a TSTInfo, signed by the TSA key) or a rejection carrying a
// PKIFailureInfo. Requests are checked the way OpenSSL's own TSA checks them
// (crypto/ts/ts_rsp_sign.c), so that clients see the failure codes they
// already know: a version other than 1 is badRequest, a hash algorithm other
// than SHA-256, SHA-384 or SHA-512 (or one with parameters other than NULL)
// is badAlg, a digest of the wrong length or undecodable DER is
// badDataFormat, a reqPolicy other than ours is unacceptedPolicy, and any
// request extension is unacceptedExtension.
//
// The token itself is built by github.com/digitorus/timestamp
// (CreateResponseWithOpts), which produces the SignedData with content type
// id-ct-TSTInfo, the signing-certificate-v2 (ESSCertIDv2) signed attribute
// that verifiers such as "openssl ts -verify" require, and a signature
// algorithm that follows the key (ECDSA with SHA-256 for P-256, SHA-384 for
// P-384, SHA-512 for P-521; RSA PKCS #1 v1.5 with SHA-256). This package
// does three things itself with encoding/asn1, where the library falls
// short. It parses requests, because the library's ParseRequest cannot tell
// an unknown hash algorithm from a malformed request, accepts SHA-1 and does
// not check the digest length. It encodes rejections, because the library's
// CreateErrorResponse writes some PKIFailureInfo bit strings (unacceptedPolicy
// among them) with a superfluous trailing octet and no statusString. And it
// sets the certificates of the SignedData after signing, because the
// library, when given a chain, verifies the chain's signatures on every
// token (ten times the cost of the token itself) and, when asked for none,
// still writes an empty certificates field.
//
// Three properties follow from the library and are part of the contract:
//
//   - genTime has a resolution of one second (encoding/asn1 writes no
//     fraction of a second). The TSA truncates the clock to the second, so the
//     true time lies in [genTime, genTime+1s), and it refuses an Accuracy
//     below one second, which would be a false claim.
//   - The serial number is 160 bits from crypto/rand, as a non-negative
//     INTEGER (at most 21 octets in DER; RFC 3161 requires clients to accept
//     160 bits). No state is kept, so serials stay unique across restarts and
//     replicas without coordination.
//   - The library adds a CMS signingTime attribute from time.Now, not from
//     the clock given to New; genTime is the time the token asserts.
package tsa

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/prometheus/client_golang/prometheus"
)

// Media types of RFC 3161 §3.4.
const (
	// ContentTypeQuery is the media type of a DER TimeStampReq.
	ContentTypeQuery = "application/timestamp-query"
	// ContentTypeReply is the media type of a DER TimeStampResp.
	ContentTypeReply = "application/timestamp-reply"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultAccuracy is the accuracy stated in tokens when Config.Accuracy
	// is zero.
	DefaultAccuracy = time.Second
	// DefaultMaxRequestBytes is the largest query accepted when
	// Config.MaxRequestBytes is zero. A TimeStampReq with a SHA-512 imprint,
	// a policy and a 64-bit nonce is about 100 octets.
	DefaultMaxRequestBytes = 4096
)

// Errors returned by New for a configuration it refuses.
var (
	// ErrNoCertificate means Config.Cert is nil.
	ErrNoCertificate = errors.New("tsa: no TSA certificate")
	// ErrNoKey means Config.Key is nil.
	ErrNoKey = errors.New("tsa: no TSA key")
	// ErrNoPolicy means Config.Policy is empty.
	ErrNoPolicy = errors.New("tsa: no TSA policy")
	// ErrKeyMismatch means Config.Key is not the key of Config.Cert.
	ErrKeyMismatch = errors.New("tsa: key does not match the certificate")
	// ErrExtKeyUsage means the certificate does not carry id-kp-timeStamping
	// as its only extended key usage in a critical extension (RFC 3161 §2.3).
	ErrExtKeyUsage = errors.New("tsa: certificate lacks a critical extended key usage of id-kp-timeStamping alone")
	// ErrKeyUsage means the certificate does not allow digitalSignature.
	ErrKeyUsage = errors.New("tsa: certificate lacks the digitalSignature key usage")
	// ErrUnsupportedKey means the key is neither ECDSA on P-256, P-384 or
	// P-521 nor RSA of at least 2048 bits.
	ErrUnsupportedKey = errors.New("tsa: unsupported key type")
	// ErrChain means Config.Chain is not the issuing chain of the
	// certificate, starting with its issuer.
	ErrChain = errors.New("tsa: chain does not issue the certificate")
	// ErrAccuracy means Config.Accuracy is below one second, finer than the
	// whole-second genTime can honour.
	ErrAccuracy = errors.New("tsa: accuracy below one second")
	// ErrMaxRequestBytes means Config.MaxRequestBytes is negative.
	ErrMaxRequestBytes = errors.New("tsa: negative maximum request size")
)

// Config holds what a TSA signs with and states in its tokens.
type Config struct {
	// Cert is the TSA certificate. It must carry id-kp-timeStamping as its
	// only extended key usage, in a critical extension, and the
	// digitalSignature key usage.
	Cert *x509.Certificate
	// Key is the private key of Cert. It may be an HSM or any other
	// crypto.Signer; it is called once per token.
	Key crypto.Signer
	// Chain is the issuing CA certificate, optionally followed by its own
	// issuers up to the root. It is included with Cert in tokens whose request
	// set certReq.
	Chain []*x509.Certificate
	// Policy is the TSA policy under which every token is issued. A request
	// may name this policy or none.
	Policy asn1.ObjectIdentifier
	// Accuracy is stated in every token; it must cover the clock error plus
	// up to one second of genTime truncation. Zero means DefaultAccuracy.
	Accuracy time.Duration
	// MaxRequestBytes bounds the size of a query. Zero means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int
}

// TSA is an RFC 3161 Time-Stamp Authority. It is an http.Handler and is safe
// for concurrent use; it keeps no state between requests.
type TSA struct {
	cert       *x509.Certificate
	key        crypto.Signer
	certs      []*x509.Certificate // the TSA certificate and Chain, for certReq
	policy     asn1.ObjectIdentifier
	accuracy   time.Duration
	maxRequest int
	signHash   crypto.Hash
	log        *slog.Logger
	now        func() time.Time
	responses  *prometheus.CounterVec
}

// Values of the status label of mobileid_tsa_responses_total. The first two
// count TimeStampResp bodies by PKIStatus; the others count HTTP requests
// refused before a query was read, which get no TimeStampResp.
const (
	statusGranted          = "granted"
	statusRejection        = "rejection"
	statusMethodNotAllowed = "http_405"
	statusTooLarge         = "http_413"
	statusUnsupportedMedia = "http_415"
)

// New checks cfg and returns a TSA. A nil logger discards logs, a nil reg
// registers no metrics and a nil now means time.Now.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*TSA, error) {
	signHash, err := checkConfig(&cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mobileid_tsa_responses_total",
		Help: "Time-stamp responses by status: granted or rejection (PKIStatus of the TimeStampResp), or http_405, http_413, http_415 for HTTP requests refused before parsing.",
	}, []string{"status"})
	for _, s := range []string{statusGranted, statusRejection, statusMethodNotAllowed, statusTooLarge, statusUnsupportedMedia} {
		responses.WithLabelValues(s)
	}
	if reg != nil {
		if err := reg.Register(responses); err != nil {
			return nil, fmt.Errorf("register tsa metrics: %w", err)
		}
	}
	accuracy := cfg.Accuracy
	if accuracy == 0 {
		accuracy = DefaultAccuracy
	}
	maxRequest := cfg.MaxRequestBytes
	if maxRequest == 0 {
		maxRequest = DefaultMaxRequestBytes
	}
	return &TSA{
		cert:       cfg.Cert,
		key:        cfg.Key,
		certs:      append([]*x509.Certificate{cfg.Cert}, cfg.Chain...),
		policy:     append(asn1.ObjectIdentifier(nil), cfg.Policy...),
		accuracy:   accuracy,
		maxRequest: maxRequest,
		signHash:   signHash,
		log:        logger,
		now:        now,
		responses:  responses,
	}, nil
}

// checkConfig validates cfg and returns the digest the key signs with.
func checkConfig(cfg *Config) (crypto.Hash, error) {
	switch {
	case cfg.Cert == nil:
		return 0, ErrNoCertificate
	case cfg.Key == nil:
		return 0, ErrNoKey
	case len(cfg.Policy) == 0:
		return 0, ErrNoPolicy
	case cfg.Accuracy != 0 && cfg.Accuracy < time.Second:
		return 0, fmt.Errorf("check accuracy %v: %w", cfg.Accuracy, ErrAccuracy)
	case cfg.MaxRequestBytes < 0:
		return 0, ErrMaxRequestBytes
	}
	if err := checkTimeStampingEKU(cfg.Cert); err != nil {
		return 0, err
	}
	if cfg.Cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return 0, ErrKeyUsage
	}
	pub, ok := cfg.Cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cfg.Key.Public()) {
		return 0, ErrKeyMismatch
	}
	signHash, err := signingHash(cfg.Key.Public())
	if err != nil {
		return 0, err
	}
	// Checked once here, so that a wrong chain is a start-up error and no
	// token carries certificates that do not chain.
	child := cfg.Cert
	for i, parent := range cfg.Chain {
		if err := child.CheckSignatureFrom(parent); err != nil {
			return 0, fmt.Errorf("check chain certificate %d (%s): %w: %w", i, parent.Subject, ErrChain, err)
		}
		child = parent
	}
	return signHash, nil
}

// checkTimeStampingEKU enforces RFC 3161 §2.3: exactly one extended key
// usage, id-kp-timeStamping, in a critical extension. crypto/x509 does not
// expose criticality in ExtKeyUsage, so the raw extension is consulted.
func checkTimeStampingEKU(cert *x509.Certificate) error {
	critical := false
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidExtKeyUsage) {
			critical = ext.Critical
		}
	}
	if !critical || len(cert.UnknownExtKeyUsage) != 0 ||
		len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping {
		return ErrExtKeyUsage
	}
	return nil
}

// signingHash picks the digest that matches the strength of the key, so
// that a P-384 key is not weakened by SHA-256.
func signingHash(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		case elliptic.P521():
			return crypto.SHA512, nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return crypto.SHA256, nil
		}
	}
	return 0, fmt.Errorf("check key %T: %w", pub, ErrUnsupportedKey)
}

// Respond answers a DER TimeStampReq with a DER TimeStampResp. Every query,
// however malformed, gets a response: refusals are rejections with a
// PKIFailureInfo (systemFailure when signing fails), and the error is nil.
// The only error is ctx being done before the query is handled, in which
// case there is no response.
func (t *TSA) Respond(ctx context.Context, query []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("respond to time-stamp query: %w", err)
	}
	req, rej := t.parseQuery(query)
	if rej != nil {
		return t.reject(ctx, rej), nil
	}
	resp, err := t.grant(req)
	if err != nil {
		// The cause stays in the log: it may name key or HSM internals.
		t.log.ErrorContext(ctx, "time-stamp token not issued", "err", err)
		return t.reject(ctx, &rejection{timestamp.SystemFailure, "internal error"}), nil
	}
	t.responses.WithLabelValues(statusGranted).Inc()
	t.log.DebugContext(ctx, "time-stamp token issued",
		"serial", resp.serial.Text(16), "gen_time", resp.genTime, "hash", req.hash.String(), "cert_req", req.certReq)
	return resp.der, nil
}

// issued is a granted TimeStampResp and what the log records about it.
type issued struct {
	der     []byte
	serial  *big.Int
	genTime time.Time
}

// grant signs a token for req.
func (t *TSA) grant(req *query) (*issued, error) {
	// Truncation keeps genTime no later than the real time of issue; the
	// lost fraction is within the accuracy, which New holds to >= 1s.
	genTime := t.now().UTC().Truncate(time.Second)
	if genTime.Before(t.cert.NotBefore) || genTime.After(t.cert.NotAfter) {
		return nil, fmt.Errorf("check TSA certificate validity at %s: valid from %s to %s",
			genTime.Format(time.RFC3339), t.cert.NotBefore.Format(time.RFC3339), t.cert.NotAfter.Format(time.RFC3339))
	}
	ts := timestamp.Timestamp{
		HashAlgorithm: req.hash,
		HashedMessage: req.digest,
		Time:          genTime,
		Accuracy:      t.accuracy,
		Policy:        t.policy,
		Nonce:         req.nonce,
	}
	der, err := ts.CreateResponseWithOpts(t.cert, t.key, t.signHash)
	if err != nil {
		return nil, fmt.Errorf("create time-stamp response: %w", err)
	}
	var certs []*x509.Certificate
	if req.certReq {
		certs = t.certs
	}
	// finishToken also reads the serial back, which feeds the log (the
	// library draws it internally) and catches a token that does not decode
	// before a client does.
	der, serial, err := finishToken(der, certs)
	if err != nil {
		return nil, fmt.Errorf("finish time-stamp token: %w", err)
	}
	return &issued{der: der, serial: serial, genTime: genTime}, nil
}

// reject counts, logs and encodes a rejection.
func (t *TSA) reject(ctx context.Context, rej *rejection) []byte {
	t.responses.WithLabelValues(statusRejection).Inc()
	t.log.InfoContext(ctx, "time-stamp query rejected", "fail_info", failInfoName(rej.fail), "reason", rej.text)
	return rej.marshal()
}

// Package ocsp is the OCSP responder of the Mobile ID CA: it answers
// RFC 6960 status requests for the certificates of one issuing CA, in the
// RFC 5019 lightweight profile that phones, browsers and TLS stacks use.
//
// # Requests
//
// Requests arrive by HTTP POST (body application/ocsp-request) or by GET
// with the base64 DER in the last path segment (RFC 6960 Appendix A.1);
// the handler may be mounted under a prefix with http.StripPrefix. A GET
// URL may be URL-escaped ("%2F", "%2B", "%3D") or not, and may lack its
// "=" padding. Mount the handler so that no router "cleans" the path: an
// unescaped base64 "/" can produce "//", which http.ServeMux redirects.
//
// Every request is parsed in full by a small strict DER reader of this
// package rather than by golang.org/x/crypto/ocsp, which ignores the
// extensions and all but the first request. An OCSPRequest must hold
// exactly one Request (RFC 5019 §2.1.1); a CertID may be hashed with SHA-1
// or SHA-256. A request signature is accepted but not checked, as
// RFC 5019 §2.1.2 allows. A nonce (id-pkix-ocsp-nonce) of 1 to 128 octets
// (RFC 9654) is echoed; an unknown critical extension makes the request
// malformed.
//
// # Answers
//
// Protocol errors are OCSP responses with HTTP status 200, as RFC 6960
// asks: malformedRequest for bad DER or base64, several Requests or a bad
// nonce; unauthorized for a CertID of another issuer, or one hashed with
// an algorithm other than SHA-1 and SHA-256 (we cannot tell whose
// certificate it names); internalError when the Source fails or signing
// fails. internalError rather than tryLater, because a Source error does
// not say whether retrying can help, and clients treat both the same.
//
// Answers (good, revoked with time and reason, unknown) are
// BasicOCSPResponses signed by the delegated responder certificate
// (id-kp-OCSPSigning, issued by the CA), which is included in the response
// so that clients can check it against the CA. The ResponderID is byKey,
// the SHA-1 hash of the responder's public key: 22 octets instead of a
// whole distinguished name, and it stays right if the certificate is
// renewed with the same key. thisUpdate and producedAt are the signing
// time, nextUpdate is Config.Validity later (never after the responder
// certificate expires).
//
// The responses are encoded here, not by x/crypto's CreateResponse,
// because that function puts extensions into singleExtensions: RFC 6960
// §4.4.1 wants the nonce in responseExtensions, which is where OpenSSL
// looks for it. golang.org/x/crypto/ocsp and OpenSSL check the encoding in
// the tests.
//
// # Cache
//
// Good answers to requests without a nonce are signed once and kept per
// serial (and CertID hash) until nextUpdate − Config.CacheMargin; the
// cache is a bounded map that evicts expired and then random entries.
// Revoked and unknown answers are never cached, and a request with a nonce
// is always answered afresh, because the answer must carry its nonce.
// Invalidate drops a serial's cached answer at once; the CA calls it after
// it commits a revocation. A per-serial generation counter keeps an answer
// that was being signed while Invalidate ran out of the cache: that answer
// may still be returned to the request in flight, but never to a later
// one.
//
// For GET, good and revoked answers without a nonce carry the RFC 5019 §6
// HTTP caching headers: Cache-Control max-age up to nextUpdate, ETag (a
// SHA-256 of the response), Last-Modified (thisUpdate) and Expires
// (nextUpdate); If-None-Match is honoured. An HTTP cache in front of the
// responder keeps a good answer until nextUpdate whatever Invalidate does,
// so Config.Validity bounds how long a revocation can stay hidden behind
// one. All other responses are sent with Cache-Control: no-cache.
//
// # Metrics
//
// mobileid_ocsp_responses_total{status} counts responses by outcome (good,
// revoked, unknown, malformed, unauthorized, internal);
// mobileid_ocsp_cache_hits_total counts good answers served from the
// cache.
package ocsp

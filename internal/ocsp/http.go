package ocsp

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// headers are header values shared by all responses. net/http only reads
// header slices, so sharing them saves an allocation per response.
type headers struct {
	contentType []string
	noCache     []string
	allow       []string
}

func newHeaders() headers {
	return headers{
		contentType: []string{"application/ocsp-response"},
		noCache:     []string{"no-cache"},
		allow:       []string{"GET, POST"},
	}
}

// cacheControl is a Cache-Control value computed for one second of the
// clock, kept by a cachedResponse so that the hits within that second
// share it.
type cacheControl struct {
	unix int64
	hdr  []string
}

// ServeHTTP answers an OCSP request sent by POST (the DER as body) or by
// GET (the base64 DER, URL-escaped or not, as the path; mount the handler
// with http.StripPrefix). The reply is application/ocsp-response with
// HTTP status 200, also for OCSP errors; other methods get 405, a body
// over Config.MaxRequestBytes 413 and a longer GET path 414. The
// Content-Type of a POST is not checked: the body must parse either way.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	buf := *bp

	var res result
	switch req.Method {
	case http.MethodPost:
		limit := r.cfg.MaxRequestBytes
		if req.ContentLength > int64(limit) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		n, err := io.ReadFull(req.Body, buf[:limit+1])
		switch {
		case err == nil:
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		case !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
			http.Error(w, "cannot read request", http.StatusBadRequest)
			return
		}
		res = r.respond(req.Context(), buf[:n])
	case http.MethodGet:
		path := strings.TrimLeft(req.URL.Path, "/")
		if len(path) > r.maxEncoded {
			http.Error(w, "request too large", http.StatusRequestURITooLong)
			return
		}
		der, ok := decodeBase64(path, buf)
		if !ok {
			res = r.count(r.malformed(malformedError("bad base64 in GET path")))
			break
		}
		res = r.respond(req.Context(), der)
	default:
		w.Header()["Allow"] = r.hdr.allow
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	h := w.Header()
	h["Content-Type"] = r.hdr.contentType
	// RFC 5019 §6: answers fetched by GET are for HTTP caches to keep until
	// nextUpdate. Unknown is not, so that a newly issued certificate is
	// soon known; nor is an answer with a nonce, which is for one request.
	if req.Method != http.MethodGet || res.nonce || (res.outcome != outcomeGood && res.outcome != outcomeRevoked) {
		h["Cache-Control"] = r.hdr.noCache
		if res.cached != nil {
			h["Content-Length"] = res.cached.contentLength
		} else {
			h["Content-Length"] = []string{strconv.Itoa(len(res.der))}
		}
		w.WriteHeader(http.StatusOK)
		w.Write(res.der)
		return
	}
	cr := res.cached
	if cr == nil {
		// A revoked answer, signed just now and not cached.
		cr = newCachedResponse(res.der, res.thisUpdate, res.nextUpdate, 0)
	}
	h["Cache-Control"] = cr.cacheControl(r.now())
	h["Etag"] = cr.etagHeader
	h["Last-Modified"] = cr.lastModified
	h["Expires"] = cr.expires
	if inm := req.Header["If-None-Match"]; len(inm) > 0 && matchETag(inm, cr.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = cr.contentLength
	w.WriteHeader(http.StatusOK)
	w.Write(cr.der)
}

// cacheControl returns the Cache-Control header for now: cacheable until
// nextUpdate (RFC 5019 §6.2).
func (cr *cachedResponse) cacheControl(now time.Time) []string {
	unix := now.Unix()
	if cc := cr.cc.Load(); cc != nil && cc.unix == unix {
		return cc.hdr
	}
	maxAge := int64(cr.nextUpdate.Sub(now) / time.Second)
	maxAge = max(maxAge, 0)
	var b [64]byte
	v := append(strconv.AppendInt(append(b[:0], "max-age="...), maxAge, 10), ", public, no-transform, must-revalidate"...)
	cc := &cacheControl{unix: unix, hdr: []string{string(v)}}
	cr.cc.Store(cc)
	return cc.hdr
}

// matchETag reports whether an If-None-Match header lists etag, by the
// weak comparison that RFC 9110 §13.1.2 prescribes.
func matchETag(inm []string, etag string) bool {
	for _, v := range inm {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// decodeBase64 decodes the base64 of a GET path into buf, which has room
// for the encoded path and its decoding. Padding is optional; a space is
// taken for a "+" that a client form-encoded.
func decodeBase64(path string, buf []byte) ([]byte, bool) {
	path = strings.TrimRight(path, "=")
	if len(path) == 0 || len(path)+base64.RawStdEncoding.DecodedLen(len(path)) > len(buf) {
		return nil, false
	}
	// Copying the path into buf spares the allocation of []byte(path).
	src := buf[:copy(buf, path)]
	for i, c := range src {
		if c == ' ' {
			src[i] = '+'
		}
	}
	dst := buf[len(src):]
	n, err := base64.RawStdEncoding.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

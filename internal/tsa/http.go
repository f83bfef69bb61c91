package tsa

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// ServeHTTP implements the HTTP transport of RFC 3161 §3.4: a POST with a
// body of type application/timestamp-query is answered 200 with an
// application/timestamp-reply body, which may be a rejection.
//
// Requests that are not time-stamp queries at the HTTP level get an HTTP
// error and no TimeStampResp: 405 for a method other than POST, 413 for a
// body over MaxRequestBytes, and 415 for another Content-Type. A 415 rather
// than a badDataFormat rejection tells the operator of a misconfigured
// client what is wrong without decoding DER, and spends nothing on parsing
// traffic that is not TSP.
func (t *TSA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		t.responses.WithLabelValues(statusMethodNotAllowed).Inc()
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "time-stamp queries must be POSTed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ContentTypeQuery {
		t.responses.WithLabelValues(statusUnsupportedMedia).Inc()
		w.Header().Set("Accept-Post", ContentTypeQuery)
		http.Error(w, "Content-Type must be "+ContentTypeQuery, http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > int64(t.maxRequest) {
		t.tooLarge(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(t.maxRequest)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			t.tooLarge(w)
			return
		}
		t.log.InfoContext(r.Context(), "time-stamp query not read", "err", err)
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	resp, err := t.Respond(r.Context(), body)
	if err != nil {
		// The client has gone or the server is shutting down.
		http.Error(w, "request cancelled", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeReply)
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	// Each token is unique (serial, genTime); a cached one would be a replay.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(resp); err != nil {
		t.log.InfoContext(r.Context(), "time-stamp reply not sent", "err", err)
	}
}

// tooLarge refuses a body over MaxRequestBytes.
func (t *TSA) tooLarge(w http.ResponseWriter) {
	t.responses.WithLabelValues(statusTooLarge).Inc()
	http.Error(w, "time-stamp query larger than "+strconv.Itoa(t.maxRequest)+" octets", http.StatusRequestEntityTooLarge)
}

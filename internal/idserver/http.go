package idserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Long poll limits of GET …/session/{id}?timeoutMs=, as in MID.
const (
	DefaultPollTimeout = 10 * time.Second
	MinPollTimeout     = time.Second
	MaxPollTimeout     = 120 * time.Second
)

// recheckInterval is how often a long poll reads the session again, for
// the changes other nodes make, which notify does not reach.
const recheckInterval = time.Second

// timeLayout is MID's "time" field: UTC to the second, without a zone.
const timeLayout = "2006-01-02T15:04:05"

// Handler returns the MID REST API, under /mid-api/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/mid-api/certificate", s.only(http.MethodPost, s.serveCertificate))
	mux.HandleFunc("/mid-api/authentication", s.only(http.MethodPost, s.serveStart(KindAuthentication)))
	mux.HandleFunc("/mid-api/signature", s.only(http.MethodPost, s.serveStart(KindSignature)))
	mux.HandleFunc("/mid-api/authentication/session/{id}", s.only(http.MethodGet, s.serveStatus(KindAuthentication)))
	mux.HandleFunc("/mid-api/signature/session/{id}", s.only(http.MethodGet, s.serveStatus(KindSignature)))
	mux.HandleFunc("/mid-api/authentication/session/", s.only(http.MethodGet, s.missingSession))
	mux.HandleFunc("/mid-api/signature/session/", s.only(http.MethodGet, s.missingSession))
	mux.HandleFunc("/mid-api/version", s.only(http.MethodGet, s.serveVersion))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "Not Found"}, traceID(), s.now())
	})
	return mux
}

// only answers requests with another method than m (or OPTIONS) with 405.
func (s *Server) only(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.Method {
		case m:
			h(w, r)
		case http.MethodOptions:
			w.Header().Set("Allow", m+", "+http.MethodOptions)
			w.WriteHeader(http.StatusOK)
		default:
			w.Header().Set("Allow", m+", "+http.MethodOptions)
			writeError(w, &apiError{http.StatusMethodNotAllowed, "Method Not Allowed"}, traceID(), s.now())
		}
	}
}

func (s *Server) missingSession(w http.ResponseWriter, r *http.Request) {
	writeError(w, badRequest("Required sessionId is missing"), traceID(), s.now())
}

// traceID returns a new trace ID: 16 hex digits, which also go to the
// logs, so that an RP's report can be found there.
func traceID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type errorJSON struct {
	Error   string `json:"error"`
	Time    string `json:"time"`
	TraceID string `json:"traceId"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError, trace string, now time.Time) {
	writeJSON(w, e.status, errorJSON{Error: e.msg, Time: now.UTC().Format(timeLayout), TraceID: trace})
}

var errInternal = &apiError{http.StatusInternalServerError, "Internal error"}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, badRequest("Request body must not be longer than %d bytes", maxBody)
	}
	if err != nil {
		return nil, badRequest("Request body could not be read")
	}
	return body, nil
}

// remoteAddr returns the address the request came from.
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// authorize finds the RP of a request and checks that it may use svc from
// the request's address and has a token left. Every refusal but the rate
// limit is the same 401.
func (s *Server) authorize(ctx context.Context, r *http.Request, id *identRequest, svc Service) (*RP, *apiError) {
	rp, err := s.rps.Get(ctx, id.UUID)
	if errors.Is(err, ErrUnknownRP) {
		return nil, errUnauthorized
	}
	if err != nil {
		s.log.Error("look up RP", "err", err)
		return nil, errInternal
	}
	if !strings.EqualFold(rp.Name, id.RPName) || !rp.Allows(svc) || !rp.AllowsIP(remoteAddr(r)) {
		return nil, errUnauthorized
	}
	if !s.rps.Allow(rp) {
		return nil, &apiError{http.StatusTooManyRequests, "Too many requests"}
	}
	return rp, nil
}

type certificateJSON struct {
	Result  string `json:"result"`
	Cert    string `json:"cert,omitempty"`
	Time    string `json:"time"`
	TraceID string `json:"traceId"`
}

// Results of POST /certificate.
const (
	CertOK        = "OK"
	CertNotFound  = "NOT_FOUND"
	CertNotActive = "NOT_ACTIVE"
)

func (s *Server) serveCertificate(w http.ResponseWriter, r *http.Request) {
	trace, now := traceID(), s.now()
	body, aerr := readBody(w, r)
	var id *identRequest
	if aerr == nil {
		id, aerr = parseCertificate(body)
	}
	var rp *RP
	if aerr == nil {
		rp, aerr = s.authorize(r.Context(), r, id, ServiceCertificate)
	}
	if aerr != nil {
		writeError(w, aerr, trace, now)
		return
	}
	result, cert, err := s.certificate(r.Context(), id)
	if err != nil {
		s.log.Error("certificate", "trace", trace, "rp", rp.ID, "err", err)
		writeError(w, errInternal, trace, now)
		return
	}
	s.log.Info("certificate", "trace", trace, "rp", rp.ID, "result", result)
	out := certificateJSON{Result: result, Time: now.UTC().Format(timeLayout), TraceID: trace}
	if cert != nil {
		out.Cert = base64.StdEncoding.EncodeToString(cert)
	}
	writeJSON(w, http.StatusOK, out)
}

// certificate returns the signing certificate of the person id names, if
// the phone number's Mobile ID is theirs: OK with the certificate,
// NOT_ACTIVE when it is suspended or revoked, NOT_FOUND otherwise.
func (s *Server) certificate(ctx context.Context, id *identRequest) (string, []byte, error) {
	p, err := s.dir.Find(ctx, id.Phone)
	if errors.Is(err, ErrNotFound) {
		return CertNotFound, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if p.NationalID != id.NationalID || len(p.SignCert) == 0 {
		return CertNotFound, nil, nil
	}
	cert, err := parseAndChain(s, p.SignCert)
	if err != nil {
		return "", nil, err
	}
	st, err := s.ocsp.check(ctx, cert.leaf, cert.issuer)
	if err != nil {
		return "", nil, err
	}
	if st != statusGood {
		return CertNotActive, nil, nil
	}
	return CertOK, p.SignCert, nil
}

type sessionIDJSON struct {
	SessionID string `json:"sessionID"`
}

func (s *Server) serveStart(kind string) http.HandlerFunc {
	svc := Service(kind)
	return func(w http.ResponseWriter, r *http.Request) {
		trace, now := traceID(), s.now()
		body, aerr := readBody(w, r)
		var req *sessionRequest
		if aerr == nil {
			req, aerr = parseSession(body)
		}
		var rp *RP
		if aerr == nil {
			rp, aerr = s.authorize(r.Context(), r, &req.identRequest, svc)
		}
		if aerr != nil {
			writeError(w, aerr, trace, now)
			return
		}
		// MID sends EST to Lithuanian and LIT to Estonian numbers in
		// English.
		if req.Language == "EST" && strings.HasPrefix(req.Phone, "+370") || req.Language == "LIT" && strings.HasPrefix(req.Phone, "+372") {
			req.Language = "ENG"
		}
		sess, err := s.createSession(r.Context(), rp, kind, req)
		if err != nil {
			s.log.Error("start session", "trace", trace, "rp", rp.ID, "err", err)
			writeError(w, errInternal, trace, now)
			return
		}
		s.log.Info("session started", "trace", trace, "rp", rp.ID, "kind", kind, "session", sess.ID)
		writeJSON(w, http.StatusOK, sessionIDJSON{SessionID: sess.ID})
	}
}

type signatureJSON struct {
	Value     string `json:"value"`
	Algorithm string `json:"algorithm"`
}

type statusJSON struct {
	State     string         `json:"state"`
	Result    string         `json:"result,omitempty"`
	Signature *signatureJSON `json:"signature,omitempty"`
	Cert      string         `json:"cert,omitempty"`
	Time      string         `json:"time"`
	TraceID   string         `json:"traceId"`
}

// pollTimeout returns the long poll time of a timeoutMs parameter,
// clamped silently as MID does.
func pollTimeout(v string) time.Duration {
	if v == "" {
		return DefaultPollTimeout
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return DefaultPollTimeout
	}
	return min(max(time.Duration(min(max(ms, 0), int64(MaxPollTimeout/time.Millisecond)))*time.Millisecond, MinPollTimeout), MaxPollTimeout)
}

func (s *Server) serveStatus(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		trace := traceID()
		id := r.PathValue("id")
		notFound := &apiError{http.StatusNotFound, "SessionID not found"}
		if id == "" {
			writeError(w, badRequest("Required sessionId is missing"), trace, s.now())
			return
		}
		if !validUUID(id) {
			writeError(w, notFound, trace, s.now())
			return
		}
		ctx := r.Context()
		deadline := time.NewTimer(pollTimeout(r.URL.Query().Get("timeoutMs")))
		defer deadline.Stop()
		// The watch comes first, so that no change after the look below
		// goes unnoticed. A session whose worker runs here is RUNNING
		// until the worker says otherwise, and is not read.
		changed, superseded, done := s.watchSession(id)
		defer done()
		var err error
		sess := s.runningSession(id)
		if sess == nil {
			if sess, err = s.getSession(ctx, id); err != nil {
				s.log.Error("read session", "trace", trace, "session", id, "err", err)
				writeError(w, errInternal, trace, s.now())
				return
			}
		}
		now := s.now()
		if sess == nil || sess.Kind != kind || !now.Before(sess.Expires) {
			writeError(w, notFound, trace, now)
			return
		}
		rp, err := s.statusRP(ctx, sess.RPKey)
		if err != nil || !rp.AllowsIP(remoteAddr(r)) {
			writeError(w, errUnauthorized, trace, now)
			return
		}
		// A session whose worker runs in this process is woken by it; one
		// that runs elsewhere (another node, or none after a restart) is
		// read again every recheckInterval.
		var recheck *time.Ticker
		defer func() {
			if recheck != nil {
				recheck.Stop()
			}
		}()
		for sess.State == StateRunning {
			var tick <-chan time.Time
			if !s.runsHere(id) {
				if recheck == nil {
					recheck = time.NewTicker(recheckInterval)
				}
				tick = recheck.C
			}
			select {
			case <-changed:
				var final *session
				if changed, final = s.rewatch(id, changed); final != nil {
					sess = final
					continue
				}
			case <-tick:
			case <-superseded:
				s.writeStatus(w, sess, trace, s.now())
				return
			case <-deadline.C:
				s.writeStatus(w, sess, trace, s.now())
				return
			case <-ctx.Done():
				return
			}
			if sess, err = s.getSession(ctx, id); err != nil {
				s.log.Error("read session", "trace", trace, "session", id, "err", err)
				writeError(w, errInternal, trace, s.now())
				return
			}
			if now = s.now(); sess == nil || !now.Before(sess.Expires) {
				writeError(w, notFound, trace, now)
				return
			}
		}
		s.writeStatus(w, sess, trace, s.now())
	}
}

// writeStatus answers a status request with the session's state: RUNNING,
// COMPLETE with its result, or 500 for an internal error.
func (s *Server) writeStatus(w http.ResponseWriter, sess *session, trace string, now time.Time) {
	if sess.State == StateComplete && sess.Result == ResultInternalError {
		writeError(w, errInternal, trace, now)
		return
	}
	out := statusJSON{State: sess.State, Time: now.UTC().Format(timeLayout), TraceID: trace}
	if sess.State == StateComplete {
		out.Result = sess.Result
		if sess.Result == ResultOK {
			out.Signature = &signatureJSON{Value: base64.StdEncoding.EncodeToString(sess.SigValue), Algorithm: sess.SigAlg}
			if sess.Kind == KindAuthentication {
				out.Cert = base64.StdEncoding.EncodeToString(sess.Cert)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	io.WriteString(w, "Version: "+s.cfg.Version+". Built: "+s.cfg.Built.UTC().Format("02.01.2006 15:04")+"\n")
}

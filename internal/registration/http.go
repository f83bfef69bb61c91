package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxAPIBody bounds a request body of the JSON API; a registration is
// well under a kilobyte.
const maxAPIBody = 64 << 10

// maxReasonLen bounds the reason for a suspension, which goes into the
// audit trail and onto the desk.
const maxReasonLen = 200

// APIHandler returns the JSON API for the systems of registration
// authorities: registrations, look-ups and the lifecycle actions, under
// /api/v1/ (mount it at "/api/v1/" without stripping the prefix). Every
// request authenticates an officer with HTTP Basic; every answer is JSON,
// errors as {"error": "…", "fields": {…}}. docs/api/registration.md
// describes it.
//
// Requests a browser sends from another origin are refused, so that a
// page elsewhere cannot act with credentials the browser remembers for
// the API.
func (s *Server) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/registrations", apiMethod("POST", s.apiRegister))
	mux.HandleFunc("/api/v1/mobileids", apiMethod("GET", s.apiSearch))
	mux.HandleFunc("/api/v1/mobileids/{id}", apiMethod("GET", s.apiGet))
	mux.HandleFunc("/api/v1/mobileids/{id}/{action}", apiMethod("POST", s.apiAction))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "no such endpoint", nil)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusForbidden, "cross-origin request refused", nil)
	}))
	return cop.Handler(s.apiAuth(mux))
}

// officerKey is the context key of the authenticated *Officer.
type officerKey struct{}

func officerFrom(ctx context.Context) Officer {
	o, _ := ctx.Value(officerKey{}).(*Officer)
	if o == nil {
		return Officer{}
	}
	return *o
}

// apiAuth authenticates the officer of every request, before routing, so
// that a caller without credentials learns nothing of the endpoints.
func (s *Server) apiAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="mobileid registration", charset="UTF-8"`)
			writeAPIError(w, http.StatusUnauthorized, "HTTP Basic authentication of an officer is required", nil)
			return
		}
		o, err := s.Login(r.Context(), user, pass)
		switch {
		case errors.Is(err, ErrLogin):
			s.log.Warn("API login refused", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Basic realm="mobileid registration", charset="UTF-8"`)
			writeAPIError(w, http.StatusUnauthorized, "unknown officer or wrong password", nil)
			return
		case err != nil:
			s.log.Error("API login", "err", err)
			writeAPIError(w, http.StatusInternalServerError, "cannot check the credentials", nil)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), officerKey{}, o)))
	})
}

// apiMethod answers other methods than the endpoint's with 405 in JSON,
// which the ServeMux would answer in plain text.
func apiMethod(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeAPIError(w, http.StatusMethodNotAllowed, "use "+method, nil)
			return
		}
		h(w, r)
	}
}

// apiError is the body of every error answer.
type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"cannot encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeAPIError(w http.ResponseWriter, status int, msg string, fields map[string]string) {
	writeJSON(w, status, apiError{Error: msg, Fields: fields})
}

// apiFail answers err with the status its kind calls for.
func (s *Server) apiFail(w http.ResponseWriter, err error) {
	var (
		fe  FieldErrors
		bad *badRequest
	)
	switch {
	case errors.As(err, &fe):
		writeAPIError(w, http.StatusBadRequest, "Some fields are invalid: see fields.", fe)
	case errors.As(err, &bad):
		writeAPIError(w, bad.status, bad.msg, nil)
	case errors.Is(err, ErrNotFound):
		writeAPIError(w, http.StatusNotFound, officerMessage(err), nil)
	case errors.Is(err, ErrState):
		writeAPIError(w, http.StatusConflict, officerMessage(err), nil)
	default:
		s.log.Error("registration API", "err", err)
		writeAPIError(w, http.StatusInternalServerError, officerMessage(err), nil)
	}
}

// officerMessage is err's text for an officer, without the package
// prefix. The errors of this package carry no secrets: credentials never
// reach an error, and the MSSP's faults are mapped to sentences.
func officerMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "registration: ")
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:]
}

// badRequest is a request the API cannot read.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

// decodeJSON reads the request body into v: one JSON object, nothing
// after it, no unknown fields, at most maxAPIBody bytes. With optional, an
// empty body is accepted as an empty object.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	if r.ContentLength == 0 {
		if optional {
			return nil
		}
		return &badRequest{http.StatusBadRequest, "the request body is empty"}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		if optional && r.ContentLength < 0 {
			// A chunked body without a type: empty is fine.
			if n, _ := r.Body.Read(make([]byte, 1)); n == 0 {
				return nil
			}
		}
		return &badRequest{http.StatusUnsupportedMediaType, "the request body must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &badRequest{http.StatusBadRequest, fmt.Sprintf("the request body is over %d KiB", maxAPIBody>>10)}
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return &badRequest{http.StatusBadRequest, "the request body is empty"}
	case err != nil:
		return &badRequest{http.StatusBadRequest, "bad JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if errors.As(err, &tooBig) {
			return &badRequest{http.StatusBadRequest, fmt.Sprintf("the request body is over %d KiB", maxAPIBody>>10)}
		}
		return &badRequest{http.StatusBadRequest, "bad JSON: data after the object"}
	}
	return nil
}

// identityForm is an identity as typed: the desk's form fields and the
// API's JSON, before the dates are read.
type identityForm struct {
	GivenNames, Surname, Country, NationalID, DateOfBirth string
	DocumentType, DocumentNumber, DocumentIssuer          string
	DocumentExpires, MSISDN                               string
}

// identity reads the dates of f; it returns FieldErrors for those it
// cannot read.
func (f *identityForm) identity() (Identity, FieldErrors) {
	bad := FieldErrors{}
	parseDate := func(field, v string) time.Time {
		v = strings.TrimSpace(v)
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			bad[field] = "Enter the date as YYYY-MM-DD."
		}
		return t
	}
	id := Identity{
		Person: Person{
			GivenNames: f.GivenNames, Surname: f.Surname, Country: f.Country, NationalID: f.NationalID,
			DateOfBirth: parseDate("date_of_birth", f.DateOfBirth),
		},
		Document: Document{
			Type: DocumentType(f.DocumentType), Number: f.DocumentNumber, Issuer: f.DocumentIssuer,
			Expires: parseDate("document_expires", f.DocumentExpires),
		},
		MSISDN: f.MSISDN,
	}
	return id, bad
}

// register records the identity in f. A date it cannot read is reported
// with the other fields' errors, and nothing is recorded.
func (s *Server) register(ctx context.Context, o Officer, f *identityForm) (*MobileID, error) {
	id, bad := f.identity()
	if len(bad) == 0 {
		return s.Register(ctx, o, id)
	}
	id.Normalize()
	var more FieldErrors
	if errors.As(id.Validate(s.ids, s.now()), &more) {
		for k, v := range more {
			if _, ok := bad[k]; !ok {
				bad[k] = v
			}
		}
	}
	return nil, bad
}

// Lifecycle actions, as named in URLs.
const (
	actionSuspend  = "suspend"
	actionResume   = "resume"
	actionRevoke   = "revoke"
	actionRetry    = "retry"
	actionResetSIM = "reset-sim"
	actionRenew    = "renew"
	actionSwapSIM  = "swap-sim"
)

// act runs a lifecycle action for o. An unknown action is ErrNotFound; a
// missing or unknown reason is FieldErrors for the field "reason".
func (s *Server) act(ctx context.Context, o Officer, id int64, action, reason string) (*MobileID, error) {
	switch action {
	case actionSuspend:
		reason = strings.Join(strings.Fields(reason), " ")
		switch {
		case reason == "":
			return nil, FieldErrors{"reason": "Give the reason for the suspension."}
		case utf8.RuneCountInString(reason) > maxReasonLen:
			return nil, FieldErrors{"reason": fmt.Sprintf("Keep the reason under %d characters.", maxReasonLen)}
		case strings.ContainsFunc(reason, unicode.IsControl):
			return nil, FieldErrors{"reason": "The reason contains a control character."}
		}
		return s.Suspend(ctx, o, id, reason)
	case actionResume:
		return s.Resume(ctx, o, id)
	case actionRevoke:
		if _, ok := RevocationReasons[reason]; !ok {
			return nil, FieldErrors{"reason": "Choose the reason for the revocation: " + strings.Join(revocationReasonNames(), ", ") + "."}
		}
		return s.Revoke(ctx, o, id, reason)
	case actionRetry:
		return s.Retry(ctx, o, id)
	case actionResetSIM:
		return s.ResetSIM(ctx, o, id)
	case actionRenew:
		return s.Renew(ctx, o, id)
	case actionSwapSIM:
		switch reason {
		case "lost", "stolen":
			return s.SwapSIM(ctx, o, id, true)
		case "replaced":
			return s.SwapSIM(ctx, o, id, false)
		}
		return nil, FieldErrors{"reason": "Say what happened to the old SIM: lost or replaced."}
	}
	return nil, ErrNotFound
}

// revocationReasonNames returns the keys of RevocationReasons, the usual
// ones first.
func revocationReasonNames() []string {
	order := []string{"lost", "stolen", "death", "request"}
	var names, rest []string
	for _, n := range order {
		if _, ok := RevocationReasons[n]; ok {
			names = append(names, n)
		}
	}
	for n := range RevocationReasons {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// apiRegistrationReq is the body of POST /api/v1/registrations.
type apiRegistrationReq struct {
	GivenNames  string `json:"given_names"`
	Surname     string `json:"surname"`
	Country     string `json:"country"`
	NationalID  string `json:"national_id"`
	DateOfBirth string `json:"date_of_birth"`
	Document    struct {
		Type    string `json:"type"`
		Number  string `json:"number"`
		Issuer  string `json:"issuer"`
		Expires string `json:"expires"`
	} `json:"document"`
	MSISDN string `json:"msisdn"`
}

func (s *Server) apiRegister(w http.ResponseWriter, r *http.Request) {
	var req apiRegistrationReq
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.apiFail(w, err)
		return
	}
	m, err := s.register(r.Context(), officerFrom(r.Context()), &identityForm{
		GivenNames: req.GivenNames, Surname: req.Surname, Country: req.Country, NationalID: req.NationalID,
		DateOfBirth: req.DateOfBirth, DocumentType: req.Document.Type, DocumentNumber: req.Document.Number,
		DocumentIssuer: req.Document.Issuer, DocumentExpires: req.Document.Expires, MSISDN: req.MSISDN,
	})
	if err != nil {
		s.apiFail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/mobileids/"+strconv.FormatInt(m.ID, 10))
	writeJSON(w, http.StatusCreated, mobileIDJSON(m))
}

func (s *Server) apiGet(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.apiFail(w, ErrNotFound)
		return
	}
	m, err := s.Get(r.Context(), id)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, mobileIDJSON(m))
}

// apiSearchResp is the answer of GET /api/v1/mobileids.
type apiSearchResp struct {
	MobileIDs []apiMobileID `json:"mobileids"`
}

func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) {
	found, err := s.Search(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	resp := apiSearchResp{MobileIDs: []apiMobileID{}}
	for _, m := range found {
		resp.MobileIDs = append(resp.MobileIDs, mobileIDJSON(m))
	}
	writeJSON(w, http.StatusOK, resp)
}

// apiActionReq is the body of the lifecycle actions; only suspend and
// revoke take a reason.
type apiActionReq struct {
	Reason string `json:"reason"`
}

func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	action := r.PathValue("action")
	if !ok || !slices.Contains([]string{actionSuspend, actionResume, actionRevoke, actionRetry, actionResetSIM}, action) {
		s.apiFail(w, &badRequest{http.StatusNotFound, "no such endpoint"})
		return
	}
	var req apiActionReq
	var err error
	if action == actionSuspend || action == actionRevoke {
		err = decodeJSON(w, r, &req, false)
	} else {
		err = decodeJSON(w, r, &struct{}{}, true)
	}
	if err != nil {
		s.apiFail(w, err)
		return
	}
	m, err := s.act(r.Context(), officerFrom(r.Context()), id, action, req.Reason)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, mobileIDJSON(m))
}

// pathID reads the Mobile ID number in the path.
func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// apiMobileID is a Mobile ID in the API.
type apiMobileID struct {
	ID         int64       `json:"id"`
	Person     apiPerson   `json:"person"`
	Document   apiDocument `json:"document"`
	MSISDN     string      `json:"msisdn"`
	ICCID      string      `json:"iccid"`
	State      string      `json:"state"`
	Step       string      `json:"step"`
	Status     string      `json:"status"`
	Officer    string      `json:"officer"`
	Desk       string      `json:"desk"`
	AuthSerial string      `json:"auth_serial"`
	SignSerial string      `json:"sign_serial"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	// Events are omitted in search results, which do not read them.
	Events []apiEvent `json:"events,omitempty"`
}

type apiPerson struct {
	GivenNames  string `json:"given_names"`
	Surname     string `json:"surname"`
	Country     string `json:"country"`
	NationalID  string `json:"national_id"`
	DateOfBirth string `json:"date_of_birth"`
}

type apiDocument struct {
	Type    string `json:"type"`
	Number  string `json:"number"`
	Issuer  string `json:"issuer"`
	Expires string `json:"expires"`
}

type apiEvent struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step"`
	Message string    `json:"message"`
}

func mobileIDJSON(m *MobileID) apiMobileID {
	j := apiMobileID{
		ID: m.ID,
		Person: apiPerson{
			GivenNames: m.Person.GivenNames, Surname: m.Person.Surname, Country: m.Person.Country,
			NationalID: m.Person.NationalID, DateOfBirth: m.Person.DateOfBirth.Format(time.DateOnly),
		},
		Document: apiDocument{
			Type: string(m.Document.Type), Number: m.Document.Number, Issuer: m.Document.Issuer,
			Expires: m.Document.Expires.Format(time.DateOnly),
		},
		MSISDN: m.MSISDN, ICCID: m.ICCID, State: m.State, Step: m.Step, Status: m.Status,
		Officer: m.Officer, Desk: m.Desk, AuthSerial: m.AuthSerial, SignSerial: m.SignSerial,
		CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC(),
	}
	for _, e := range m.Events {
		j.Events = append(j.Events, apiEvent{At: e.At.UTC(), Step: e.Step, Message: e.Message})
	}
	return j
}

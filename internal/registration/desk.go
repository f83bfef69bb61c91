package registration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"mobileid/internal/webassets"
)

//go:embed web/templates/*.html web/static
var deskFS embed.FS

const (
	// deskCookie holds an officer's session id at the desk.
	deskCookie = "mobileid_desk"
	// deskSessionLife is how long a desk session lasts from the login: a
	// working day, after which the officer logs in again.
	deskSessionLife = 8 * time.Hour
	// certStatusTimeout bounds the look-up of a certificate's status, so
	// that a slow CA or OCSP responder does not hold up the desk.
	certStatusTimeout = 3 * time.Second
)

// desk is the web UI of registration officers: its templates and the
// sessions of the officers logged in.
type desk struct {
	s    *Server
	tmpl *template.Template

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]*deskSession // by SHA-256 of the cookie's value
}

type deskSession struct {
	officer Officer
	expires time.Time
}

// DeskHandler returns the registration desk: officers log in, search for
// people and Mobile IDs, register identities, follow each registration
// live and run the lifecycle actions, each after a confirmation page.
// Pages are html/template with htmx, all embedded.
//
// It serves relative URLs, so it can be mounted under a prefix with
// http.StripPrefix as long as the prefix ends in a slash; the session
// cookie is scoped to that prefix. Sessions live in the returned handler
// for 8 hours from the login: call DeskHandler once per process. State
// changing requests are POSTs refused when they come from another origin,
// and the session cookie is SameSite=Strict as well.
func (s *Server) DeskHandler() http.Handler {
	d := &desk{s: s, tmpl: deskTemplates(), sessions: map[[sha256.Size]byte]*deskSession{}}
	mux := http.NewServeMux()
	static, _ := fs.Sub(deskFS, "web/static")
	mux.Handle("GET /static/desk.css", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /static/", http.StripPrefix("/static", webassets.Handler()))
	mux.HandleFunc("GET /login", d.serveLogin)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("POST /logout", d.logout)
	mux.Handle("GET /{$}", d.auth(d.serveSearch))
	mux.Handle("GET /register", d.auth(d.serveRegister))
	mux.Handle("POST /register", d.auth(d.register))
	mux.Handle("GET /mobileid/{id}", d.auth(d.serveMobileID))
	mux.Handle("GET /mobileid/{id}/live", d.auth(d.serveLive))
	mux.Handle("GET /mobileid/{id}/{action}", d.auth(d.serveConfirm))
	mux.Handle("POST /mobileid/{id}/{action}", d.auth(d.act))
	return http.NewCrossOriginProtection().Handler(deskHeaders(mux))
}

// deskTemplates parses the embedded templates; they are part of the
// binary, so a failure is a bug that every test shows.
func deskTemplates() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"when": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
		"day":  func(t time.Time) string { return t.Format(time.DateOnly) },
	}).ParseFS(deskFS, "web/templates/*.html"))
}

func deskHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// deskBase returns the way from the page at r's path up to the desk's root,
// which every page puts in <base href> and every redirect in front of its
// target: the desk does not know the prefix it is mounted under, and
// http.Redirect would resolve a relative target against the path with the
// prefix stripped.
func deskBase(r *http.Request) string {
	if n := strings.Count(r.URL.Path, "/") - 1; n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// deskRedirect sends the browser to target, a path relative to the desk's
// root, with 303 See Other so that a POST is followed by a GET.
func deskRedirect(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Location", deskBase(r)+target)
	w.WriteHeader(http.StatusSeeOther)
}

// officer returns the officer of the request's session.
func (d *desk) officer(r *http.Request) (*Officer, bool) {
	c, err := r.Cookie(deskCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	key := sha256.Sum256([]byte(c.Value))
	now := d.s.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	sess := d.sessions[key]
	if sess == nil {
		return nil, false
	}
	if !now.Before(sess.expires) {
		delete(d.sessions, key)
		return nil, false
	}
	o := sess.officer
	return &o, true
}

// auth runs h for the officer of the session, and sends everyone else to
// the login page. A request of htmx (a live view polling) makes the page
// reload instead, which then goes to the login page itself: a redirect
// would put the login page inside the view.
func (d *desk) auth(h func(http.ResponseWriter, *http.Request, Officer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, ok := d.officer(r)
		if !ok {
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Refresh", "true")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			deskRedirect(w, r, "login")
			return
		}
		h(w, r, *o)
	})
}

// deskPage is what the templates draw; each page uses its part.
type deskPage struct {
	Base    string
	Title   string
	Officer *Officer
	Error   string

	// Login.
	Username string

	// Search.
	Query    string
	Searched bool
	Results  []*MobileID

	// Register.
	Form     identityForm
	Fields   FieldErrors
	DocTypes []deskOption

	// A Mobile ID and its actions.
	M        *MobileID
	Live     bool
	Steps    []deskStep
	Certs    []deskCert
	Actions  []deskAction
	Guidance string
	Action   *deskAction
	Reason   string
	Reasons  []deskOption
}

// deskField is an input of the register form with what was typed in it
// and what is wrong with it.
type deskField struct{ Name, Label, Type, Hint, Value, Error string }

// Field returns the register form's input name, for the "field" template.
func (p *deskPage) Field(name, label, typ, hint string) deskField {
	f := &p.Form
	v := map[string]string{
		"given_names": f.GivenNames, "surname": f.Surname, "country": f.Country, "national_id": f.NationalID,
		"date_of_birth": f.DateOfBirth, "document_type": f.DocumentType, "document_number": f.DocumentNumber,
		"document_issuer": f.DocumentIssuer, "document_expires": f.DocumentExpires, "msisdn": f.MSISDN,
	}[name]
	return deskField{Name: name, Label: label, Type: typ, Hint: hint, Value: v, Error: p.Fields[name]}
}

// deskOption is an option of a select.
type deskOption struct{ Value, Label string }

// deskStep is a step of a registration on the progress bar.
type deskStep struct {
	Label string
	State string // "done", "current", "failed" or ""
}

// deskCert is a certificate of a Mobile ID with its current status.
type deskCert struct {
	Label, Serial, Status string
}

// deskAction is a lifecycle action offered on a Mobile ID's page.
type deskAction struct {
	Name    string // as in the URL
	Label   string
	Explain string
	Danger  bool
	From    []string // the states it applies to
}

func deskActions() []deskAction {
	return []deskAction{
		{actionSuspend, "Suspend", "Both certificates are put on hold: the Mobile ID stops working until it is resumed.", false, []string{StateActive}},
		{actionResume, "Resume", "The holds on both certificates are lifted: the Mobile ID works again.", false, []string{StateSuspended}},
		{actionRevoke, "Revoke", "Both certificates are revoked and the Mobile ID is taken out of use. This cannot be undone.", true, []string{StateActive, StateSuspended}},
		{actionRenew, "Renew", "The SIM's keys and PINs are erased, the user chooses new PINs, new certificates are issued, and then the old certificates are revoked.", false, []string{StateActive}},
		{actionSwapSIM, "SIM swap", "The operator has given the person a new SIM for the same number (the MSSP and the network have it): the old certificates are revoked and the person chooses PINs and gets keys on the new SIM.", true, []string{StateActive, StateSuspended}},
		{actionRetry, "Retry", "The registration continues from the step that failed; a failed key generation asks the user for the PINs again.", false, []string{StateFailed}},
		{actionResetSIM, "Reset SIM", "The Mobile ID keys and PINs on the SIM are erased, so that the number can be registered again.", true, []string{StateFailed, StateRevoked}},
	}
}

func findDeskAction(name string) (deskAction, bool) {
	for _, a := range deskActions() {
		if a.Name == name {
			return a, true
		}
	}
	return deskAction{}, false
}

// documentTypeOptions are the document types the register form offers.
func documentTypeOptions() []deskOption {
	return []deskOption{
		{"passport", "Passport"},
		{"id-card", "ID card"},
		{"residence-permit", "Residence permit"},
		{"driving-licence", "Driving licence"},
	}
}

// revocationOptions are the revocation reasons the revoke form offers.
func revocationOptions() []deskOption {
	labels := map[string]string{
		"lost":    "Lost: the phone or SIM is lost",
		"stolen":  "Stolen: the phone or SIM was stolen",
		"death":   "Death of the holder",
		"request": "At the holder's request",
	}
	var out []deskOption
	for _, n := range revocationReasonNames() {
		l := labels[n]
		if l == "" {
			l = n
		}
		out = append(out, deskOption{n, l})
	}
	return out
}

// render draws a page, or answers 500 if the template fails; nothing is
// written before the page is complete.
func (d *desk) render(w http.ResponseWriter, r *http.Request, status int, name string, p *deskPage) {
	p.Base = deskBase(r)
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		d.s.log.Error("registration: render desk page", "page", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages show personal data: no cache keeps them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (d *desk) serveLogin(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.officer(r); ok {
		deskRedirect(w, r, "")
		return
	}
	d.render(w, r, http.StatusOK, "login", &deskPage{Title: "Log in"})
}

func (d *desk) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	user := r.PostFormValue("username")
	o, err := d.s.Login(r.Context(), user, r.PostFormValue("password"))
	switch {
	case errors.Is(err, ErrLogin):
		d.s.log.Warn("desk login refused", "remote", r.RemoteAddr)
		d.render(w, r, http.StatusUnauthorized, "login", &deskPage{Title: "Log in", Username: user, Error: "Unknown officer or wrong password."})
		return
	case err != nil:
		d.s.log.Error("registration: desk login", "err", err)
		d.render(w, r, http.StatusInternalServerError, "login", &deskPage{Title: "Log in", Username: user, Error: "Passwords cannot be checked now; try again."})
		return
	}
	var raw [32]byte
	rand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := d.s.now()
	d.mu.Lock()
	// Expired sessions are dropped here, where new ones are made, so the
	// map does not grow with officers who never log out.
	for k, sess := range d.sessions {
		if !now.Before(sess.expires) {
			delete(d.sessions, k)
		}
	}
	if c, err := r.Cookie(deskCookie); err == nil {
		delete(d.sessions, sha256.Sum256([]byte(c.Value)))
	}
	d.sessions[sha256.Sum256([]byte(id))] = &deskSession{officer: *o, expires: now.Add(deskSessionLife)}
	d.mu.Unlock()
	// No Path: the browser scopes the cookie to the directory of the
	// login page, which is the desk's root under whatever prefix.
	http.SetCookie(w, &http.Cookie{
		Name: deskCookie, Value: id, MaxAge: int(deskSessionLife / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	d.auditDesk(r.Context(), *o, "login")
	deskRedirect(w, r, "")
}

func (d *desk) logout(w http.ResponseWriter, r *http.Request) {
	o, ok := d.officer(r)
	if c, err := r.Cookie(deskCookie); err == nil {
		d.mu.Lock()
		delete(d.sessions, sha256.Sum256([]byte(c.Value)))
		d.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: deskCookie, Value: "", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	if ok {
		d.auditDesk(r.Context(), *o, "logout")
	}
	deskRedirect(w, r, "login")
}

// auditDesk records a login or logout in the audit trail. Its failure
// does not stop the officer: the session is what it is already.
func (d *desk) auditDesk(ctx context.Context, o Officer, action string) {
	err := d.s.db.InTx(ctx, func(tx *sql.Tx) error {
		return d.s.auditTx(ctx, tx, o, action, 0, "desk", d.s.now())
	})
	if err != nil {
		d.s.log.Error("registration: audit desk "+action, "err", err)
	}
}

func (d *desk) serveSearch(w http.ResponseWriter, r *http.Request, o Officer) {
	p := &deskPage{Title: "Search", Officer: &o, Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if p.Query != "" {
		var err error
		p.Searched = true
		if p.Results, err = d.s.Search(r.Context(), p.Query); err != nil {
			d.s.log.Error("registration: desk search", "err", err)
			p.Error = "The search failed; try again."
			d.render(w, r, http.StatusInternalServerError, "search", p)
			return
		}
	}
	d.render(w, r, http.StatusOK, "search", p)
}

func (d *desk) serveRegister(w http.ResponseWriter, r *http.Request, o Officer) {
	d.render(w, r, http.StatusOK, "register", &deskPage{Title: "Register", Officer: &o, DocTypes: documentTypeOptions()})
}

func (d *desk) register(w http.ResponseWriter, r *http.Request, o Officer) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	f := identityForm{
		GivenNames: r.PostFormValue("given_names"), Surname: r.PostFormValue("surname"),
		Country: r.PostFormValue("country"), NationalID: r.PostFormValue("national_id"),
		DateOfBirth: r.PostFormValue("date_of_birth"), DocumentType: r.PostFormValue("document_type"),
		DocumentNumber: r.PostFormValue("document_number"), DocumentIssuer: r.PostFormValue("document_issuer"),
		DocumentExpires: r.PostFormValue("document_expires"), MSISDN: r.PostFormValue("msisdn"),
	}
	m, err := d.s.register(r.Context(), o, &f)
	if err == nil {
		deskRedirect(w, r, "mobileid/"+strconv.FormatInt(m.ID, 10))
		return
	}
	p := &deskPage{Title: "Register", Officer: &o, DocTypes: documentTypeOptions(), Form: f}
	var fe FieldErrors
	status := http.StatusBadRequest
	if errors.As(err, &fe) {
		p.Fields = fe
		p.Error = "Correct the fields marked below; nothing was recorded."
	} else {
		d.s.log.Error("registration: desk register", "err", err)
		p.Error = officerMessage(err)
		status = http.StatusInternalServerError
	}
	d.render(w, r, status, "register", p)
}

// mobileIDPage reads the Mobile ID in the path and fills in what its page
// and its live part show. A missing one answers 404 and returns nil.
func (d *desk) mobileIDPage(w http.ResponseWriter, r *http.Request, o Officer) *deskPage {
	id, ok := pathID(r)
	var m *MobileID
	err := ErrNotFound
	if ok {
		m, err = d.s.Get(r.Context(), id)
	}
	if errors.Is(err, ErrNotFound) {
		d.render(w, r, http.StatusNotFound, "search", &deskPage{Title: "Not found", Officer: &o, Error: "There is no such Mobile ID."})
		return nil
	}
	if err != nil {
		d.s.log.Error("registration: desk read Mobile ID", "err", err)
		http.Error(w, "cannot read the Mobile ID", http.StatusInternalServerError)
		return nil
	}
	p := &deskPage{Title: m.Person.GivenNames + " " + m.Person.Surname, Officer: &o, M: m, Live: m.State == StateRegistering, Guidance: PINGuidance}
	p.Steps = deskProgress(m)
	p.Certs = d.certs(r.Context(), m)
	for _, a := range deskActions() {
		for _, st := range a.From {
			if st == m.State {
				p.Actions = append(p.Actions, a)
			}
		}
	}
	return p
}

// deskProgress places a Mobile ID on the steps of a registration.
func deskProgress(m *MobileID) []deskStep {
	steps := []struct{ step, label string }{
		{"identified", "Identity checked"},
		{StepKeys, "PINs and keys on the SIM"},
		{StepCertificates, "Certificates"},
		{StepBind, "Signature Server"},
		{StepNotify, "User told"},
		{StepDone, "Ready"},
	}
	// A renewal erases the SIM's keys first and revokes the old
	// certificates before it tells the user.
	if m.Step == StepReset || m.Step == StepSupersede || hasEvent(m, "renew") && m.Step != StepDone {
		steps = []struct{ step, label string }{
			{StepReset, "Old keys erased"},
			{StepKeys, "New PINs and keys on the SIM"},
			{StepCertificates, "New certificates"},
			{StepBind, "Signature Server"},
			{StepSupersede, "Old certificates revoked"},
			{StepNotify, "User told"},
			{StepDone, "Ready"},
		}
	}
	cur := 1
	for i, s := range steps {
		if s.step == m.Step {
			cur = i
		}
	}
	out := make([]deskStep, len(steps))
	for i, s := range steps {
		out[i].Label = s.label
		switch {
		case i < cur || m.Step == StepDone:
			out[i].State = "done"
		case i == cur && m.State == StateFailed:
			out[i].State = "failed"
		case i == cur:
			out[i].State = "current"
		}
	}
	return out
}

// hasEvent reports whether m's latest action is step: the events since the
// last registration or renewal decide.
func hasEvent(m *MobileID, step string) bool {
	for i := len(m.Events) - 1; i >= 0; i-- {
		switch m.Events[i].Step {
		case step:
			return true
		case "identified", "renew":
			return false
		}
	}
	return false
}

// certs looks up the status of m's certificates.
func (d *desk) certs(ctx context.Context, m *MobileID) []deskCert {
	var out []deskCert
	for _, c := range []deskCert{{"Authentication", m.AuthSerial, ""}, {"Signing", m.SignSerial, ""}} {
		if c.Serial == "" {
			continue
		}
		c.Status = "unknown"
		if d.s.CertStatus != nil {
			cctx, cancel := context.WithTimeout(ctx, certStatusTimeout)
			st, err := d.s.CertStatus(cctx, c.Serial)
			cancel()
			switch {
			case err != nil:
				d.s.log.Warn("registration: certificate status", "serial", c.Serial, "err", err)
			case st != "":
				c.Status = st
			}
		}
		out = append(out, c)
	}
	return out
}

func (d *desk) serveMobileID(w http.ResponseWriter, r *http.Request, o Officer) {
	if p := d.mobileIDPage(w, r, o); p != nil {
		d.render(w, r, http.StatusOK, "mobileid", p)
	}
}

// serveLive draws the changing part of a Mobile ID's page, which the page
// polls for while the registration runs. The part drawn once the Mobile ID
// is no longer registering does not poll, which ends the polling.
func (d *desk) serveLive(w http.ResponseWriter, r *http.Request, o Officer) {
	if p := d.mobileIDPage(w, r, o); p != nil {
		d.render(w, r, http.StatusOK, "live", p)
	}
}

// serveConfirm asks the officer to confirm an action, with its reason
// where it takes one.
func (d *desk) serveConfirm(w http.ResponseWriter, r *http.Request, o Officer) {
	a, ok := findDeskAction(r.PathValue("action"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	p := d.mobileIDPage(w, r, o)
	if p == nil {
		return
	}
	p.Action, p.Reasons = &a, revocationOptions()
	d.render(w, r, http.StatusOK, "confirm", p)
}

// act runs a confirmed action and shows the Mobile ID; an action refused
// shows the confirmation page again with the reason.
func (d *desk) act(w http.ResponseWriter, r *http.Request, o Officer) {
	a, ok := findDeskAction(r.PathValue("action"))
	id, okID := pathID(r)
	if !ok || !okID {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	reason := r.PostFormValue("reason")
	_, err := d.s.act(r.Context(), o, id, a.Name, reason)
	if err == nil {
		deskRedirect(w, r, "mobileid/"+strconv.FormatInt(id, 10))
		return
	}
	var (
		fe     FieldErrors
		status int
		msg    string
	)
	switch {
	case errors.As(err, &fe):
		status, msg = http.StatusBadRequest, fe["reason"]
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, "There is no such Mobile ID."
	case errors.Is(err, ErrState):
		status, msg = http.StatusConflict, officerMessage(err)
	default:
		d.s.log.Error("registration: desk action", "action", a.Name, "mobileid", id, "err", err)
		status, msg = http.StatusInternalServerError, officerMessage(err)
	}
	p := d.mobileIDPage(w, r, o)
	if p == nil {
		return
	}
	p.Action, p.Reasons, p.Reason, p.Error = &a, revocationOptions(), reason, msg
	d.render(w, r, status, "confirm", p)
}

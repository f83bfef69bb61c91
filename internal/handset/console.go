package handset

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"mobileid/internal/sim"
	"mobileid/internal/webassets"
)

//go:embed web/templates/*.html web/static
var webFS embed.FS // the console's own templates and stylesheet; htmx comes from webassets

// PageSize is the most phones the console shows at a time.
const PageSize = 24

// ssePing keeps idle event streams open through proxies.
const ssePing = 25 * time.Second

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"dots": func(n int) string { return strings.Repeat("●", n) },
		"keys": func() []string { return []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"} },
	}).ParseFS(webFS, "web/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse console templates: %w", err)
	}
	return t, nil
}

// choice is a behaviour the console offers.
type choice struct{ Value, Label string }

// choices returns the behaviours the console offers, with extra (a
// behaviour set through the API that is not among them) added.
func choices(extra string) []choice {
	c := []choice{
		{"approve", "approve"},
		{"think:3s", "approve after 3 s"},
		{"think:15s", "approve after 15 s"},
		{"wrong-pin", "wrong PIN"},
		{"cancel", "cancel"},
		{"never", "never answer"},
		{"console", "me, here"},
	}
	if extra == "" || extra == "default" {
		return c
	}
	for _, v := range c {
		if v.Value == extra {
			return c
		}
	}
	return append(c, choice{extra, extra})
}

// Handler returns the web console: every phone drawn as a phone, kept up
// to date over server-sent events, with its keys, PIN pad, inbox and
// switches. It serves relative URLs, so it can be mounted under a prefix
// with http.StripPrefix as long as the prefix ends in a slash. State
// changing requests are POSTs refused when they come from another origin.
func (n *Network) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/style.css", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /static/", http.StripPrefix("/static", webassets.Handler()))
	mux.HandleFunc("GET /{$}", n.servePage)
	mux.HandleFunc("GET /events", n.serveEvents)
	mux.HandleFunc("GET /phone/{id}", n.servePhone)
	mux.HandleFunc("POST /phone/{id}/key", n.phoneAction(pressKey))
	mux.HandleFunc("POST /phone/{id}/pin", n.phoneAction(func(p *Phone, r *http.Request) error {
		return p.EnterPIN(r.PostFormValue("pin"))
	}))
	mux.HandleFunc("POST /phone/{id}/power", n.phoneAction(func(p *Phone, r *http.Request) error {
		p.SetPower(r.PostFormValue("on") == "1")
		return nil
	}))
	mux.HandleFunc("POST /phone/{id}/coverage", n.phoneAction(func(p *Phone, r *http.Request) error {
		p.SetCoverage(r.PostFormValue("on") == "1")
		return nil
	}))
	mux.HandleFunc("POST /phone/{id}/behaviour", n.phoneAction(func(p *Phone, r *http.Request) error {
		b, err := ParseBehaviour(r.PostFormValue("b"))
		if err == nil {
			p.SetBehaviour(b)
		}
		return err
	}))
	mux.HandleFunc("POST /phone/{id}/unblock", n.phoneAction(func(p *Phone, r *http.Request) error {
		which := sim.PIN1
		if r.PostFormValue("pin") == "2" {
			which = sim.PIN2
		}
		return p.Unblock(which)
	}))
	mux.HandleFunc("POST /phone/{id}/puk", n.servePUK)
	mux.HandleFunc("POST /behaviour", n.serveDefaultBehaviour)
	return http.NewCrossOriginProtection().Handler(securityHeaders(mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func pressKey(p *Phone, r *http.Request) error {
	switch k := r.PostFormValue("k"); k {
	case "ok":
		return p.PressOK()
	case "cancel":
		return p.PressCancel()
	case "clear":
		return p.ClearPIN()
	default:
		d, err := strconv.Atoi(k)
		if err != nil || len(k) != 1 {
			return ErrNoPrompt
		}
		return p.PressDigit(d)
	}
}

// phoneAction runs an action on the phone named in the path. The answer
// is empty: the phone's new drawing reaches every viewer through the
// event stream, and a drawing in the answer could arrive after a newer
// one from the stream and put the older state back on the screen.
func (n *Network) phoneAction(act func(*Phone, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := n.byID[r.PathValue("id")]
		if p == nil {
			http.NotFound(w, r)
			return
		}
		if err := act(p, r); err != nil {
			status := http.StatusConflict
			if errors.Is(err, ErrBadBehaviour) {
				status = http.StatusBadRequest
			}
			// Error texts here are fixed strings of this package and of
			// sim; none contains a PIN or PUK.
			http.Error(w, err.Error(), status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// servePhone draws one phone, as the event stream sends it.
func (n *Network) servePhone(w http.ResponseWriter, r *http.Request) {
	p := n.byID[r.PathValue("id")]
	if p == nil {
		http.NotFound(w, r)
		return
	}
	var buf bytes.Buffer
	if err := n.tmpl.ExecuteTemplate(&buf, "phone", n.view(p)); err != nil {
		n.log.Error("handset: render phone", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// servePUK shows the PUK from the subscriber's mailer, only in the answer
// to this request on the phone's own console; it is never part of the
// phone's drawing or of the event stream.
func (n *Network) servePUK(w http.ResponseWriter, r *http.Request) {
	p := n.byID[r.PathValue("id")]
	if p == nil {
		http.NotFound(w, r)
		return
	}
	puk, err := p.mailerPUK()
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	template.HTMLEscape(w, []byte("PUK "+puk))
}

func (n *Network) serveDefaultBehaviour(w http.ResponseWriter, r *http.Request) {
	b, err := ParseBehaviour(r.PostFormValue("b"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.SetDefaultBehaviour(b)
	w.WriteHeader(http.StatusNoContent)
}

// phoneView is what the phone template draws.
type phoneView struct {
	ID string
	PhoneState
	Dots       string
	Choices    []choice
	Current    string // the phone's behaviour as a choice; "" for the default
	Default    string // the network's default, for the selector's label
	PIN1Locked bool
	PIN2Locked bool
	Idle       bool // nothing from the SIM on the screen
	PINMode    bool // a PIN prompt is on the screen
	PadOn      bool // the PIN pad types into a console prompt
}

func (n *Network) view(p *Phone) phoneView {
	st := p.State()
	v := phoneView{ID: p.id, PhoneState: st, Default: n.effective(Behaviour{}).String()}
	if st.Behaviour.Action != Inherit {
		v.Current = st.Behaviour.String()
	}
	v.Choices = choices(v.Current)
	v.PIN1Locked = st.Card.Registered && st.Card.PIN1TriesLeft == 0
	v.PIN2Locked = st.Card.Registered && st.Card.PIN2TriesLeft == 0
	v.Idle = st.Screen.Mode == ScreenIdle
	v.PINMode = st.Screen.Mode == ScreenPIN
	v.PadOn = v.PINMode && st.Screen.Waiting
	return v
}

// selection is the phones one page of the console shows.
type selection struct {
	Query  string
	Page   int
	Pages  int
	Total  int
	Phones []*Phone
}

// selectPhones filters by a part of the number and cuts out one page.
func (n *Network) selectPhones(q url.Values) selection {
	s := selection{Query: strings.TrimSpace(q.Get("q"))}
	digits := strings.TrimPrefix(s.Query, "+")
	var match []*Phone
	for _, p := range n.phones {
		if strings.Contains(p.id, digits) {
			match = append(match, p)
		}
	}
	s.Total = len(match)
	s.Pages = max(1, (len(match)+PageSize-1)/PageSize)
	s.Page, _ = strconv.Atoi(q.Get("page"))
	s.Page = min(max(s.Page, 1), s.Pages)
	lo := (s.Page - 1) * PageSize
	s.Phones = match[lo:min(lo+PageSize, len(match))]
	return s
}

type pageView struct {
	selection
	Views    []phoneView
	Events   string
	Prev     string
	Next     string
	Default  string
	Choices  []choice
	Count    int
	Filtered bool
}

func (n *Network) pageURL(q string, page int) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "./"
	}
	return "?" + v.Encode()
}

func (n *Network) servePage(w http.ResponseWriter, r *http.Request) {
	sel := n.selectPhones(r.URL.Query())
	def := n.effective(Behaviour{}).String()
	pv := pageView{selection: sel, Default: def, Choices: choices(def),
		Count: len(n.phones), Filtered: sel.Query != ""}
	ev := url.Values{}
	if sel.Query != "" {
		ev.Set("q", sel.Query)
	}
	ev.Set("page", strconv.Itoa(sel.Page))
	pv.Events = "events?" + ev.Encode()
	if sel.Page > 1 {
		pv.Prev = n.pageURL(sel.Query, sel.Page-1)
	}
	if sel.Page < sel.Pages {
		pv.Next = n.pageURL(sel.Query, sel.Page+1)
	}
	for _, p := range sel.Phones {
		pv.Views = append(pv.Views, n.view(p))
	}
	var buf bytes.Buffer
	if err := n.tmpl.ExecuteTemplate(&buf, "page", pv); err != nil {
		n.log.Error("handset: render console", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// serveEvents streams the phones of one console page: an event named
// after each phone carrying its new drawing whenever it changes. Changes
// are coalesced, so a slow browser gets the latest state rather than a
// backlog, and no phone ever waits for a browser.
func (n *Network) serveEvents(w http.ResponseWriter, r *http.Request) {
	sel := n.selectPhones(r.URL.Query())
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	s := n.hub.subscribe(sel.Phones)
	defer n.hub.unsubscribe(s)
	// A page drawn before the stream opened may have missed changes, and
	// a reconnecting browser certainly has: start with every phone.
	for _, p := range sel.Phones {
		s.mark(p)
	}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	var buf bytes.Buffer
	for {
		buf.Reset()
		select {
		case <-r.Context().Done():
			return
		case <-n.ctx.Done():
			return
		case <-ping.C:
			buf.WriteString(": ping\n\n")
		case <-s.wake:
			for _, p := range s.take() {
				if err := n.writeEvent(&buf, p); err != nil {
					n.log.Error("handset: render phone", "err", err)
					return
				}
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeEvent appends one server-sent event with the phone's drawing; each
// line of HTML becomes a data line, which the browser joins again.
func (n *Network) writeEvent(buf *bytes.Buffer, p *Phone) error {
	var html bytes.Buffer
	if err := n.tmpl.ExecuteTemplate(&html, "phone", n.view(p)); err != nil {
		return err
	}
	fmt.Fprintf(buf, "event: p%s\n", p.id)
	for line := range strings.SplitSeq(strings.TrimRight(html.String(), "\n"), "\n") {
		buf.WriteString("data: ")
		buf.WriteString(strings.TrimRight(line, "\r"))
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
	return nil
}

// hub tells event streams which phones changed.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	want map[*Phone]bool
	wake chan struct{} // capacity 1: a pending wake-up is enough

	mu    sync.Mutex
	dirty []*Phone
	seen  map[*Phone]bool
}

func (h *hub) subscribe(phones []*Phone) *subscriber {
	s := &subscriber{want: make(map[*Phone]bool, len(phones)), wake: make(chan struct{}, 1), seen: make(map[*Phone]bool)}
	for _, p := range phones {
		s.want[p] = true
	}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// changed marks p for every stream that shows it. It never blocks.
func (h *hub) changed(p *Phone) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.want[p] {
			s.mark(p)
		}
	}
}

func (s *subscriber) mark(p *Phone) {
	s.mu.Lock()
	if !s.seen[p] {
		s.seen[p] = true
		s.dirty = append(s.dirty, p)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the phones changed since the last call, in the order they
// first changed.
func (s *subscriber) take() []*Phone {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirty
	s.dirty = nil
	clear(s.seen)
	return d
}

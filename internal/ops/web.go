package ops

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mobileid/internal/webassets"
)

//go:embed web/templates/*.html web/static
var webFS embed.FS

// web is the console's pages and their live fragments.
type web struct {
	c    *Console
	tmpl *template.Template
}

func newWeb(c *Console) (*web, error) {
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Local().Format("15:04:05.000")
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Local().Format("2006-01-02 15:04:05.000")
		},
		"day": func(t time.Time) string { return t.Local().Format(time.DateOnly) },
		"ms":  func(d time.Duration) string { return fmt.Sprintf("%.1f ms", millis(d)) },
		"plus": func(d time.Duration) string {
			if d < time.Second {
				return fmt.Sprintf("+%.1f ms", millis(d))
			}
			return fmt.Sprintf("+%.3f s", d.Seconds())
		},
		"reason": ReasonName,
		"deref":  func(p *uint64) uint64 { return *p },
		// smsPage makes a transaction's segments drawable by the "sms"
		// template of the live view.
		"smsPage": func(p *page) *page { return &page{Base: p.Base, SMS: p.Related, HasSMS: true} },
	}).ParseFS(webFS, "web/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ops: templates: %w", err)
	}
	return &web{c: c, tmpl: tmpl}, nil
}

func (w *web) handler() http.Handler {
	c := w.c
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/ops.css", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /static/", http.StripPrefix("/static", webassets.Handler()))
	mux.HandleFunc("GET /{$}", w.serveLive)
	mux.HandleFunc("GET /transactions/{id}", w.serveTransaction)
	mux.HandleFunc("GET /sms/{seq}", w.serveSMS)
	mux.HandleFunc("GET /certificates", w.serveCertificates)
	mux.HandleFunc("GET /metrics", w.serveMetrics)
	mux.HandleFunc("GET /fragments/transactions", w.fragment("transactions", w.transactionsView))
	mux.HandleFunc("GET /fragments/sms", w.fragment("sms", w.smsView))
	mux.HandleFunc("GET /fragments/transactions/{id}", w.serveTransactionLive)
	mux.HandleFunc("GET /fragments/certificates", w.fragment("certificates", w.certificatesView))
	mux.HandleFunc("GET /fragments/metrics", w.fragment("metrics", w.metricsView))
	mux.HandleFunc("GET /api/transactions", c.apiTransactions)
	mux.HandleFunc("GET /api/transactions/{id}", c.apiTransaction)
	mux.HandleFunc("GET /api/sms", c.apiSMS)
	mux.HandleFunc("GET /api/certificates", c.apiCertificates)
	return headers(mux)
}

// headers adds the security headers of every answer. Nothing is cached:
// every page shows the system as it is now.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// base returns the way from the page at r's path up to the console's
// root, for <base href>: the console does not know its prefix.
func base(r *http.Request) string {
	if n := strings.Count(r.URL.Path, "/") - 1; n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// page is what the templates draw; each view uses its part.
type page struct {
	Base    string
	Title   string
	Nav     string
	Refresh int64 // milliseconds
	Error   string

	Transactions []txRow
	SMS          []SMS
	Dropped      uint64
	HasSMS       bool
	Certificates []Certificate
	Metrics      []MetricGroup

	Tx      *Transaction
	Steps   []Step
	Related []SMS
	Segment *SMS
}

// txRow is a transaction in the live list with its steps.
type txRow struct {
	T     Transaction
	Steps []Step
}

func (w *web) newPage(r *http.Request, title, nav string) *page {
	return &page{Base: base(r), Title: title, Nav: nav, Refresh: w.c.cfg.Refresh.Milliseconds()}
}

func (w *web) render(rw http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	var b bytes.Buffer
	if err := w.tmpl.ExecuteTemplate(&b, name, p); err != nil {
		w.c.log.Error("render", "template", name, "err", err)
		http.Error(rw, "Internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(code)
	rw.Write(b.Bytes())
}

// fragment serves the live part of a view for htmx.
func (w *web) fragment(name string, fill func(*http.Request, *page)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		p := w.newPage(r, "", "")
		fill(r, p)
		w.render(rw, r, http.StatusOK, name, p)
	}
}

func (w *web) serveLive(rw http.ResponseWriter, r *http.Request) {
	p := w.newPage(r, "Live", "live")
	w.transactionsView(r, p)
	w.smsView(r, p)
	w.render(rw, r, http.StatusOK, "live", p)
}

func (w *web) transactionsView(r *http.Request, p *page) {
	c := w.c
	if c.src.Transactions == nil {
		return
	}
	txs, err := c.recent(r, c.cfg.ListLimit)
	if err != nil {
		c.log.Warn("list transactions", "err", err)
		p.Error = "Cannot list the transactions: " + err.Error()
		return
	}
	traffic := c.traffic()
	for i := range txs {
		t := &txs[i]
		p.Transactions = append(p.Transactions, txRow{T: *t, Steps: shortSteps(steps(t, related(t, traffic, c.now())))})
	}
}

func (w *web) smsView(r *http.Request, p *page) {
	if s := w.c.src.SMS; s != nil {
		p.HasSMS, p.SMS, p.Dropped = true, s.Recent(w.c.cfg.ListLimit), s.Dropped()
	}
}

func (w *web) certificatesView(r *http.Request, p *page) {
	c := w.c
	if c.src.Certificates == nil {
		return
	}
	certs, err := c.certificates(r, certLimit)
	if err != nil {
		c.log.Warn("list certificates", "err", err)
		p.Error = "Cannot list the certificates: " + err.Error()
		return
	}
	p.Certificates = certs
}

func (w *web) metricsView(r *http.Request, p *page) { p.Metrics = w.c.metrics() }

func (w *web) serveCertificates(rw http.ResponseWriter, r *http.Request) {
	p := w.newPage(r, "Certificates", "certificates")
	w.certificatesView(r, p)
	w.render(rw, r, http.StatusOK, "certificates-page", p)
}

func (w *web) serveMetrics(rw http.ResponseWriter, r *http.Request) {
	p := w.newPage(r, "Metrics", "metrics")
	w.metricsView(r, p)
	w.render(rw, r, http.StatusOK, "metrics-page", p)
}

// transactionPage fills a transaction's page; it answers 404 itself and
// returns nil when there is no such transaction.
func (w *web) transactionPage(rw http.ResponseWriter, r *http.Request) *page {
	c := w.c
	id := r.PathValue("id")
	p := w.newPage(r, "Transaction "+id, "")
	if c.src.Transactions == nil {
		p.Error = "This console has no transaction source."
		w.render(rw, r, http.StatusNotFound, "error-page", p)
		return nil
	}
	t, err := c.transaction(r, id)
	if err != nil {
		code := http.StatusInternalServerError
		p.Error = "Cannot read the transaction."
		if errors.Is(err, ErrNotFound) {
			code, p.Error = http.StatusNotFound, "There is no transaction "+id+"."
		} else {
			c.log.Warn("read transaction", "err", err)
		}
		w.render(rw, r, code, "error-page", p)
		return nil
	}
	p.Tx = t
	p.Related = related(t, c.traffic(), c.now())
	p.Steps = steps(t, p.Related)
	return p
}

func (w *web) serveTransaction(rw http.ResponseWriter, r *http.Request) {
	if p := w.transactionPage(rw, r); p != nil {
		w.render(rw, r, http.StatusOK, "transaction-page", p)
	}
}

func (w *web) serveTransactionLive(rw http.ResponseWriter, r *http.Request) {
	if p := w.transactionPage(rw, r); p != nil {
		w.render(rw, r, http.StatusOK, "transaction", p)
	}
}

func (w *web) serveSMS(rw http.ResponseWriter, r *http.Request) {
	p := w.newPage(r, "SMS", "")
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	var s SMS
	ok := false
	if err == nil && w.c.src.SMS != nil {
		s, ok = w.c.src.SMS.Get(seq)
	}
	if !ok {
		p.Error = "This SMS is not recorded (any more): the console keeps the latest ones only."
		w.render(rw, r, http.StatusNotFound, "error-page", p)
		return
	}
	p.Title = fmt.Sprintf("SMS %d", seq)
	p.Segment = &s
	p.Tx = w.transactionOf(r, s)
	w.render(rw, r, http.StatusOK, "sms-page", p)
}

// transactionOf finds the transaction a segment belongs to among the
// latest ones, or nil: the counter of its command, ciphered on the air,
// is in the Signature Server's record.
func (w *web) transactionOf(r *http.Request, s SMS) *Transaction {
	c := w.c
	if c.src.Transactions == nil {
		return nil
	}
	txs, err := c.recent(r, c.cfg.ListLimit)
	if err != nil {
		c.log.Warn("list transactions", "err", err)
		return nil
	}
	traffic := c.traffic()
	for i := range txs {
		for _, x := range related(&txs[i], traffic, c.now()) {
			if x.Seq == s.Seq {
				return &txs[i]
			}
		}
	}
	return nil
}

// recent lists transactions within the source time-out.
func (c *Console) recent(r *http.Request, limit int) ([]Transaction, error) {
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	return c.src.Transactions.Recent(ctx, limit)
}

// transaction reads one transaction within the source time-out.
func (c *Console) transaction(r *http.Request, id string) (*Transaction, error) {
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	return c.src.Transactions.Transaction(ctx, id)
}

// certificates lists certificates within the source time-out.
func (c *Console) certificates(r *http.Request, limit int) ([]Certificate, error) {
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	return c.src.Certificates.Certificates(ctx, limit)
}

// traffic is every recorded segment, newest first, for matching with
// transactions.
func (c *Console) traffic() []SMS {
	if c.src.SMS == nil {
		return nil
	}
	return c.src.SMS.Recent(0)
}

package ops

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrNotFound is what a source returns for a transaction it does not
// know.
var ErrNotFound = errors.New("ops: not found")

// Transaction is a Signature Server transaction as the console shows it.
// It holds nothing of what was to be signed.
type Transaction struct {
	TransID   string // MSSP_TransID
	APID      string
	APTransID string
	Kind      string // sign, receipt, register, test
	Operation string // the registration operation, if any
	MSISDN    string
	Mode      string // the ETSI messaging mode
	Profile   string
	State     string // sent, delivered, answered, validated, failed
	// Status is the TS 102 204 status code, StatusName its name; Detail
	// the FiCom detail code (0 for none) and Message why, in English.
	Status     int
	StatusName string
	Detail     int
	Message    string
	// Counter and TAR are those of the OTA command sent to the SIM.
	Counter uint64
	TAR     string
	// The time of each step: zero for a step that did not happen.
	Created, Delivered, Answered, Finished time.Time
	Deadline                               time.Time
}

// Final reports whether the transaction has ended.
func (t *Transaction) Final() bool { return !t.Finished.IsZero() }

// Transactions is what the console reads of the Signature Server.
type Transactions interface {
	// Recent returns at most limit transactions, newest first.
	Recent(ctx context.Context, limit int) ([]Transaction, error)
	// Transaction returns one transaction by MSSP_TransID, or an error
	// wrapping ErrNotFound.
	Transaction(ctx context.Context, transID string) (*Transaction, error)
}

// Certificate is a certificate the CA issued, as the console lists it.
type Certificate struct {
	Serial     string // hex
	Subject    string
	Profile    string
	Country    string
	NationalID string
	ICCID      string
	NotBefore  time.Time
	NotAfter   time.Time
	IssuedAt   time.Time
	// Status is "good", "on hold" or "revoked"; RevokedAt and Reason (an
	// RFC 5280 reason code) are set unless it is good.
	Status    string
	RevokedAt time.Time
	Reason    int
}

// Certificates is what the console reads of the CA.
type Certificates interface {
	// Certificates returns at most limit certificates, newest first.
	Certificates(ctx context.Context, limit int) ([]Certificate, error)
}

// TrafficLog is the recorded SMS traffic; *Recorder implements it.
type TrafficLog interface {
	// Recent returns at most limit segments, newest first; all it
	// holds when limit is not positive.
	Recent(limit int) []SMS
	// Get returns one segment by its Seq.
	Get(seq uint64) (SMS, bool)
	// Dropped counts the segments not recorded because the recorder
	// lagged.
	Dropped() uint64
}

// MetricsSource is a part's Prometheus registry, under the part's name.
type MetricsSource struct {
	Part     string
	Gatherer prometheus.Gatherer
}

// Sources are what the console shows. A nil source leaves its view empty
// with a note.
type Sources struct {
	Transactions Transactions
	SMS          TrafficLog
	Certificates Certificates
	Metrics      []MetricsSource
}

// Config configures the console.
type Config struct {
	// Refresh is how often the open views ask for what changed. Default
	// 2 s.
	Refresh time.Duration
	// ListLimit bounds the rows of each live list (transactions, SMS),
	// and so the work of each refresh. Default 50.
	ListLimit int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limits of the JSON API's limit parameter.
const (
	defaultAPILimit = 50
	maxAPILimit     = 500
	// certLimit bounds the certificate list.
	certLimit = 200
	// sourceTimeout bounds each look-up in a source, so that a slow
	// database holds up no view for long.
	sourceTimeout = 5 * time.Second
)

// Console is the operations console.
type Console struct {
	cfg Config
	src Sources
	log *slog.Logger
	now func() time.Time
	web *web
}

// New returns a console over src. logger may be nil.
func New(cfg Config, src Sources, logger *slog.Logger) (*Console, error) {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.Refresh < 500*time.Millisecond {
		return nil, errors.New("ops: refresh interval below 500 ms")
	}
	if cfg.ListLimit <= 0 {
		cfg.ListLimit = 50
	}
	if cfg.ListLimit > maxAPILimit {
		return nil, errors.New("ops: list limit above 500")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, src: src, log: logger.With("component", "ops"), now: cfg.Now}
	w, err := newWeb(c)
	if err != nil {
		return nil, err
	}
	c.web = w
	return c, nil
}

// Handler serves the console: the pages, their live fragments, the JSON
// API under api/ and the static files under static/. Every URL it
// serves and writes is relative, so it is mounted under a prefix with
// http.StripPrefix, as `mobileid up` does under /ops/ (the prefix without
// its final slash goes to StripPrefix). It answers GET and HEAD only.
func (c *Console) Handler() http.Handler { return c.web.handler() }

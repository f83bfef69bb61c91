package ocsp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// outcome is how a request was answered; its String is the status label
// of mobileid_ocsp_responses_total.
type outcome int

const (
	outcomeGood outcome = iota
	outcomeRevoked
	outcomeUnknown
	outcomeMalformed
	outcomeUnauthorized
	outcomeInternal
	numOutcomes
)

func (o outcome) String() string {
	switch o {
	case outcomeGood:
		return "good"
	case outcomeRevoked:
		return "revoked"
	case outcomeUnknown:
		return "unknown"
	case outcomeMalformed:
		return "malformed"
	case outcomeUnauthorized:
		return "unauthorized"
	case outcomeInternal:
		return "internal"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// metrics are the Responder's Prometheus collectors, under mobileid_ocsp_.
type metrics struct {
	responses *prometheus.CounterVec
	// byOutcome holds the children of responses, looked up once so that
	// counting does not hash label values on every request.
	byOutcome [numOutcomes]prometheus.Counter
	cacheHits prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mobileid", "ocsp"
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "responses_total",
			Help: "OCSP responses sent, by certificate status or error status."}, []string{"status"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_hits_total",
			Help: "Good answers served from the cache of signed responses."}),
	}
	for o := range numOutcomes {
		m.byOutcome[o] = m.responses.WithLabelValues(o.String())
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.responses, m.cacheHits} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

package ca

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the CA's Prometheus collectors, all under mobileid_ca_.
type metrics struct {
	issued    *prometheus.CounterVec
	refused   *prometheus.CounterVec
	revoked   *prometheus.CounterVec
	released  prometheus.Counter
	crlNumber prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mobileid", "ca"
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "issued_total",
			Help: "Certificates issued, by profile."}, []string{"profile"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refused_total",
			Help: "Issuance requests refused, by refusal code."}, []string{"code"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "revoked_total",
			Help: "Certificates revoked or put on hold (reason certificateHold), by RFC 5280 reason."}, []string{"reason"}),
		released: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "released_total",
			Help: "Certificates released from hold."}),
		crlNumber: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "crl_number",
			Help: "Number of the newest CRL this process has seen."}),
	}
	// Zero series up front, so that rates work from the first event.
	for _, p := range []Profile{ProfileAuthentication, ProfileSigning} {
		m.issued.WithLabelValues(string(p))
	}
	for _, name := range reasonNames {
		m.revoked.WithLabelValues(name)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.issued, m.refused, m.revoked, m.released, m.crlNumber} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

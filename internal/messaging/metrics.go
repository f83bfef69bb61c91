package messaging

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Server's Prometheus collectors, all under the namespace
// mobileid_messaging_.
type metrics struct {
	sent        prometheus.Counter
	received    prometheus.Counter
	receipts    *prometheus.CounterVec
	windowInUse *prometheus.GaugeVec
	reconnects  prometheus.Counter
	outboxDepth prometheus.Gauge
	mo          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mobileid", "messaging"
	m := &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sent_total",
			Help: "Short messages (segments) accepted by the SMSC."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "received_total",
			Help: "Mobile-originated short messages (segments) stored."}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "receipts_total",
			Help: "Final outcomes of MT messages, by outcome."}, []string{"outcome"}),
		windowInUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "window_in_use",
			Help: "Outstanding submit_sm per bind."}, []string{"bind"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reconnects_total",
			Help: "Connection attempts after a bind was lost or could not be set up."}),
		outboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "outbox_depth",
			Help: "Segments of open messages not yet accepted by an SMSC."}),
		mo: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mo_total",
			Help: "Complete mobile-originated messages (after reassembly)."}),
	}
	for _, o := range []Outcome{Delivered, PhoneAbsent, Expired, Undeliverable} {
		m.receipts.WithLabelValues(o.String())
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sent, m.received, m.receipts, m.windowInUse, m.reconnects, m.outboxDepth, m.mo} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

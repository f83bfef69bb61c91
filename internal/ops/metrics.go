package ops

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// metricPrefix selects the platform's own metrics; the Go runtime's and
// the process's, which every registry also holds, are for Prometheus.
const metricPrefix = "mobileid_"

// MetricGroup is the figures of one part.
type MetricGroup struct {
	Part     string
	Families []MetricFamily
	Problem  string
}

// MetricFamily is one metric with a row per label set.
type MetricFamily struct {
	Name, Help string
	Rows       []MetricRow
}

// MetricRow is one series: its labels and its value, or for a histogram
// its count and mean.
type MetricRow struct {
	Labels string
	Value  string
}

// metrics gathers the platform's metrics of every source.
func (c *Console) metrics() []MetricGroup {
	var out []MetricGroup
	for _, src := range c.src.Metrics {
		g := MetricGroup{Part: src.Part}
		mfs, err := src.Gatherer.Gather()
		if err != nil {
			// Gather returns what it could alongside the error.
			g.Problem = err.Error()
		}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), metricPrefix) {
				continue
			}
			f := MetricFamily{Name: mf.GetName(), Help: mf.GetHelp()}
			seconds := strings.HasSuffix(f.Name, "_seconds")
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				row := MetricRow{Labels: strings.Join(labels, ", ")}
				switch {
				case m.GetCounter() != nil:
					row.Value = number(m.GetCounter().GetValue())
				case m.GetGauge() != nil:
					row.Value = number(m.GetGauge().GetValue())
				case m.GetUntyped() != nil:
					row.Value = number(m.GetUntyped().GetValue())
				case m.GetHistogram() != nil:
					h := m.GetHistogram()
					row.Value = meanOf(h.GetSampleCount(), h.GetSampleSum(), seconds)
				case m.GetSummary() != nil:
					s := m.GetSummary()
					row.Value = meanOf(s.GetSampleCount(), s.GetSampleSum(), seconds)
				}
				f.Rows = append(f.Rows, row)
			}
			sort.Slice(f.Rows, func(i, j int) bool { return f.Rows[i].Labels < f.Rows[j].Labels })
			g.Families = append(g.Families, f)
		}
		sort.Slice(g.Families, func(i, j int) bool { return g.Families[i].Name < g.Families[j].Name })
		out = append(out, g)
	}
	return out
}

// number formats a metric value: integers without a fraction.
func number(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// meanOf describes a histogram or summary by its count and mean; a mean
// in seconds is given in milliseconds, the scale of this platform's
// steps.
func meanOf(count uint64, sum float64, seconds bool) string {
	if count == 0 {
		return "0 observations"
	}
	mean := sum / float64(count)
	if seconds {
		return fmt.Sprintf("%d observations, mean %.1f ms", count, mean*1000)
	}
	return fmt.Sprintf("%d observations, mean %s", count, number(mean))
}

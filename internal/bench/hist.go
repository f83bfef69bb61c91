package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded value is known to within 1/64 (1.6 %).
const subBits = 6

// Histogram counts durations in log-linear buckets of microseconds, as an
// HDR histogram does: memory is bounded (a few thousand counters cover a
// microsecond to days) however many values it records, and percentiles
// are exact to the bucket's width. Values below 128 µs are exact. The zero
// value is empty and ready to use; a Histogram is not safe for concurrent
// use.
type Histogram struct {
	counts []uint64
	n      uint64
	max    int64 // µs
}

// bucket returns the index of the bucket that holds v µs.
func bucket(v int64) int {
	const sub = 1 << subBits
	if v < 2*sub {
		return int(v)
	}
	s := bits.Len64(uint64(v)) - (subBits + 1)
	return s*sub + int(v>>s)
}

// upper returns the largest value of bucket i.
func upper(i int) int64 {
	const sub = 1 << subBits
	if i < 2*sub {
		return int64(i)
	}
	s := i/sub - 1
	top := int64(i - s*sub)
	return (top+1)<<s - 1
}

// Record counts one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(d.Microseconds(), 0)
	i := bucket(v)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, v)
}

// Merge adds the counts of o.
func (h *Histogram) Merge(o *Histogram) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded value, to the microsecond.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Percentile returns the smallest value that q (0 < q ≤ 1) of the recorded
// values do not exceed, as the upper end of its bucket (never above Max);
// 0 when nothing was recorded.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(upper(i), h.max)) * time.Microsecond
		}
	}
	return h.Max()
}

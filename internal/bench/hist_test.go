package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistogramExactBelow128us(t *testing.T) {
	var h Histogram
	for v := range 128 {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.01, 1 * time.Microsecond},
		{0.5, 63 * time.Microsecond},
		{1, 127 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := h.Percentile(tt.q); got != tt.want {
			t.Errorf("Percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if h.Count() != 128 || h.Max() != 127*time.Microsecond {
		t.Errorf("Count, Max = %d, %v, want 128, 127µs", h.Count(), h.Max())
	}
}

func TestHistogramPercentiles(t *testing.T) {
	// 1 ms … 1000 ms, each once, in random order.
	var h Histogram
	for _, i := range rand.Perm(1000) {
		h.Record(time.Duration(i+1) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 500 * time.Millisecond},
		{0.95, 950 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.Percentile(tt.q)
		// The bucket's upper end: at or above the value, within 1/64.
		if got < tt.want || float64(got-tt.want) > float64(tt.want)/64 {
			t.Errorf("Percentile(%v) = %v, want %v to %v", tt.q, got, tt.want, tt.want+tt.want/64)
		}
	}
	if h.Max() != time.Second {
		t.Errorf("Max() = %v, want 1s", h.Max())
	}
}

func TestHistogramEmptyAndMerge(t *testing.T) {
	var a, b Histogram
	if got := a.Percentile(0.99); got != 0 {
		t.Errorf("empty Percentile(0.99) = %v, want 0", got)
	}
	a.Record(2 * time.Millisecond)
	b.Record(40 * time.Millisecond)
	b.Record(-time.Second) // counts as zero
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != 40*time.Millisecond {
		t.Errorf("merged Count, Max = %d, %v, want 3, 40ms", a.Count(), a.Max())
	}
	if got := a.Percentile(0.33); got != 0 {
		t.Errorf("merged Percentile(0.33) = %v, want 0", got)
	}
}

func TestBuckets(t *testing.T) {
	// Every value falls in a bucket whose upper end is at most 1/64 above
	// it, and the buckets are in order.
	last := -1
	for v := int64(0); v < 1<<22; v += 1 + v/97 {
		i := bucket(v)
		if i < last {
			t.Fatalf("bucket(%d) = %d, below bucket %d of a smaller value", v, i, last)
		}
		last = i
		u := upper(i)
		if u < v || float64(u-v) > float64(v)/64 {
			t.Fatalf("upper(bucket(%d)) = %d, want %d to %d", v, u, v, v+v/64)
		}
		if bucket(u) != i || bucket(u+1) != i+1 {
			t.Fatalf("bucket %d ends at %d: bucket(%d) = %d, bucket(%d) = %d", i, u, u, bucket(u), u+1, bucket(u+1))
		}
	}
}

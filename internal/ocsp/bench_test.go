package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"
)

// BenchmarkCachedGood measures answered requests per second over loopback
// HTTP: keep-alive clients in parallel goroutines POST the same request
// for a good serial, so every answer after the first comes from the cache.
// Client and server share the machine's cores.
func BenchmarkCachedGood(b *testing.B) {
	p := newTestPKI(b, "bench")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(b, p, src, nil)
	srv := httptest.NewServer(r)
	defer srv.Close()
	const parallelism = 8 // goroutines per GOMAXPROCS
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()
	req := simpleRequest(b, p.issuing, 1, crypto.SHA1, nil)
	url := srv.URL + "/"
	want, err := r.Respond(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := bytes.NewReader(req)
		buf := make([]byte, 0, 2*len(want))
		for pb.Next() {
			body.Reset(req)
			hreq, err := http.NewRequest(http.MethodPost, url, body)
			if err != nil {
				b.Error(err)
				return
			}
			hreq.Header["Content-Type"] = []string{"application/ocsp-request"}
			resp, err := client.Do(hreq)
			if err != nil {
				b.Error(err)
				return
			}
			buf = buf[:0]
			for {
				n, err := resp.Body.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Equal(buf, want) {
				b.Errorf("HTTP %d, %d bytes: not the cached answer", resp.StatusCode, len(buf))
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if hits := src.calls.Load(); hits != 1 {
		b.Errorf("source asked %d times, want 1", hits)
	}
}

// BenchmarkRespondCachedGood measures the transport-free core on a cache
// hit: a full request parse, the issuer check and the cache lookup.
func BenchmarkRespondCachedGood(b *testing.B) {
	p := newTestPKI(b, "bench core")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(b, p, src, nil)
	req := simpleRequest(b, p.issuing, 1, crypto.SHA1, nil)
	ctx := context.Background()
	if _, err := r.Respond(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.Run("respond", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.respond(ctx, req)
		}
	})
	b.Run("Respond", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Respond(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRespondSigned measures an answer that must be signed: a
// request with a nonce, which the cache never serves.
func BenchmarkRespondSigned(b *testing.B) {
	p := newTestPKI(b, "bench sign")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(b, p, src, nil)
	req := simpleRequest(b, p.issuing, 1, crypto.SHA1, []byte("0123456789abcdef"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Respond(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	xocsp "golang.org/x/crypto/ocsp"
)

func TestRespond_Statuses(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "statuses")
	clock := &fakeClock{t: time.Now().Truncate(time.Second).Add(500)}
	src := newFakeSource()
	revokedAt := time.Date(2026, 11, 1, 8, 30, 15, 0, time.UTC)
	src.set(10, fakeStatus{status: xocsp.Good})
	src.set(11, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.KeyCompromise})
	src.set(12, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.CertificateHold})
	src.set(13, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.Unspecified})
	r, _ := newTestResponder(t, p, src, clock.now)

	tests := []struct {
		name   string
		serial int64
		want   fakeStatus
	}{
		{"good", 10, fakeStatus{status: xocsp.Good}},
		{"revoked", 11, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.KeyCompromise}},
		{"suspended", 12, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.CertificateHold}},
		{"revoked unspecified", 13, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.Unspecified}},
		{"unknown", 14, fakeStatus{status: xocsp.Unknown}},
	}
	for _, tt := range tests {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			t.Run(tt.name+"/"+h.String(), func(t *testing.T) {
				leaf := p.leaf(t, tt.serial)
				req, err := xocsp.CreateRequest(leaf, p.issuing, &xocsp.RequestOptions{Hash: h})
				if err != nil {
					t.Fatal(err)
				}
				der, err := r.Respond(context.Background(), req)
				if err != nil {
					t.Fatalf("Respond() error = %v", err)
				}
				resp := parseAnswer(t, der, leaf, p.issuing)
				got := fakeStatus{status: resp.Status, revokedAt: resp.RevokedAt, reason: resp.RevocationReason}
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(fakeStatus{})); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
				now := clock.now().Truncate(time.Second)
				if !resp.ThisUpdate.Equal(now) || !resp.ProducedAt.Equal(now) || !resp.NextUpdate.Equal(now.Add(DefaultValidity)) {
					t.Errorf("thisUpdate, producedAt, nextUpdate = %v, %v, %v; want %v, %v, %v",
						resp.ThisUpdate, resp.ProducedAt, resp.NextUpdate, now, now, now.Add(DefaultValidity))
				}
				if resp.IssuerHash != h {
					t.Errorf("CertID hash = %v, want %v", resp.IssuerHash, h)
				}
				if resp.Certificate == nil || !resp.Certificate.Equal(p.responder) {
					t.Errorf("response certificate is not the responder certificate")
				}
				if !bytes.Equal(resp.ResponderKeyHash, responderKeyHash(t, p.responder)) || resp.RawResponderName != nil {
					t.Errorf("ResponderID = key %x name %x, want byKey %x", resp.ResponderKeyHash, resp.RawResponderName, responderKeyHash(t, p.responder))
				}
				if resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
					t.Errorf("serial = %v, want %v", resp.SerialNumber, leaf.SerialNumber)
				}
				if exts := responseExtensions(t, der); len(exts) != 0 {
					t.Errorf("responseExtensions = %v, want none without a nonce", exts)
				}
			})
		}
	}
}

func TestRespond_NextUpdateCappedByResponderCert(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "capped")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	clock := &fakeClock{t: p.responder.NotAfter.Add(-10 * time.Minute)}
	r, _ := newTestResponder(t, p, src, clock.now)
	leaf := p.leaf(t, 1)
	der, err := r.Respond(context.Background(), simpleRequest(t, p.issuing, 1, crypto.SHA1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := parseAnswer(t, der, leaf, p.issuing).NextUpdate; !got.Equal(p.responder.NotAfter) {
		t.Errorf("nextUpdate = %v, want the responder certificate's NotAfter %v", got, p.responder.NotAfter)
	}
}

func TestRespond_Nonce(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "nonce")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	r, reg := newTestResponder(t, p, src, nil)
	leaf := p.leaf(t, 1)
	nonce := bytes.Repeat([]byte{0x5a}, 32)

	for i := range 2 {
		der, err := r.Respond(context.Background(), simpleRequest(t, p.issuing, 1, crypto.SHA256, nonce))
		if err != nil {
			t.Fatalf("Respond() error = %v", err)
		}
		if got := parseAnswer(t, der, leaf, p.issuing).Status; got != xocsp.Good {
			t.Errorf("status = %d, want good", got)
		}
		want := []pkix.Extension{nonceExt(t, nonce)}
		if diff := cmp.Diff(want, responseExtensions(t, der)); diff != "" {
			t.Errorf("responseExtensions (-want +got):\n%s", diff)
		}
		if got := src.calls.Load(); got != int64(i+1) {
			t.Errorf("after %d nonce requests the source was asked %d times: a nonce answer came from the cache", i+1, got)
		}
	}
	// Nor does a nonce answer fill the cache.
	if _, err := r.Respond(context.Background(), simpleRequest(t, p.issuing, 1, crypto.SHA256, nil)); err != nil {
		t.Fatal(err)
	}
	if got := src.calls.Load(); got != 3 {
		t.Errorf("source calls = %d, want 3", got)
	}
	if got := testutil.ToFloat64(r.m.cacheHits); got != 0 {
		t.Errorf("cache hits = %v, want 0", got)
	}
	if got := testutil.CollectAndCount(reg, "mobileid_ocsp_responses_total"); got != int(numOutcomes) {
		t.Errorf("responses_total has %d series, want %d", got, numOutcomes)
	}
}

func TestRespond_BareNonceEchoed(t *testing.T) {
	t.Parallel()
	// RFC 2560 clients put the nonce bytes straight into extnValue.
	p := newTestPKI(t, "bare nonce")
	r, _ := newTestResponder(t, p, newFakeSource(), nil)
	ext := pkix.Extension{Id: oidNonce, Value: []byte("0123456789abcdef")}
	req := tOCSPRequest{TBSRequest: tTBSRequest{
		RequestList: []tRequest{{ReqCert: certIDFor(t, p.issuing, big.NewInt(5), crypto.SHA1)}},
		Exts:        []pkix.Extension{ext},
	}}
	der, err := r.Respond(context.Background(), marshalRequest(t, req))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pkix.Extension{ext}, responseExtensions(t, der)); diff != "" {
		t.Errorf("responseExtensions (-want +got):\n%s", diff)
	}
}

func TestRespond_CacheHit(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "cache")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	clock := &fakeClock{t: time.Now().Truncate(time.Second)}
	r, _ := newTestResponder(t, p, src, clock.now)
	sha1Req := simpleRequest(t, p.issuing, 1, crypto.SHA1, nil)
	sha256Req := simpleRequest(t, p.issuing, 1, crypto.SHA256, nil)

	first, err := r.Respond(context.Background(), sha1Req)
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute)
	second, err := r.Respond(context.Background(), sha1Req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("second answer differs from the first: not served from the cache")
	}
	if got := src.calls.Load(); got != 1 {
		t.Errorf("source calls = %d, want 1", got)
	}
	// The SHA-256 CertID needs its own answer, which is then cached too.
	for range 2 {
		if _, err := r.Respond(context.Background(), sha256Req); err != nil {
			t.Fatal(err)
		}
	}
	if got := src.calls.Load(); got != 2 {
		t.Errorf("source calls = %d, want 2", got)
	}
	if got := testutil.ToFloat64(r.m.cacheHits); got != 2 {
		t.Errorf("cache hits = %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.m.byOutcome[outcomeGood]); got != 4 {
		t.Errorf("good responses = %v, want 4", got)
	}

	// Until nextUpdate − CacheMargin (1h − 15m) the answer is reused; then
	// it is signed anew.
	clock.advance(DefaultValidity - DefaultValidity/4 - time.Minute - time.Second)
	if third, _ := r.Respond(context.Background(), sha1Req); !bytes.Equal(third, first) {
		t.Errorf("answer re-signed before nextUpdate − CacheMargin")
	}
	clock.advance(time.Second)
	fourth, _ := r.Respond(context.Background(), sha1Req)
	if bytes.Equal(fourth, first) {
		t.Errorf("answer not re-signed at nextUpdate − CacheMargin")
	}
	resp := parseAnswer(t, fourth, p.leaf(t, 1), p.issuing)
	if !resp.ThisUpdate.Equal(clock.now()) {
		t.Errorf("re-signed thisUpdate = %v, want %v", resp.ThisUpdate, clock.now())
	}
}

func TestRespond_RevokedAndUnknownNotCached(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "not cached")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Revoked, revokedAt: time.Now().Add(-time.Hour), reason: xocsp.KeyCompromise})
	r, _ := newTestResponder(t, p, src, nil)
	for _, serial := range []int64{1, 2} {
		for range 2 {
			if _, err := r.Respond(context.Background(), simpleRequest(t, p.issuing, serial, crypto.SHA1, nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := src.calls.Load(); got != 4 {
		t.Errorf("source calls = %d, want 4", got)
	}
	if got := r.cache.len(); got != 0 {
		t.Errorf("cache holds %d serials, want 0", got)
	}
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "invalidate")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	src.set(2, fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(t, p, src, nil)
	req := simpleRequest(t, p.issuing, 1, crypto.SHA1, nil)
	req256 := simpleRequest(t, p.issuing, 1, crypto.SHA256, nil)
	ask := func(req []byte) int {
		t.Helper()
		der, err := r.Respond(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := xocsp.ParseResponse(der, p.issuing)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	ask(req)
	ask(req256)
	ask(simpleRequest(t, p.issuing, 2, crypto.SHA1, nil))

	revokedAt := time.Now().Add(-time.Minute)
	src.set(1, fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.KeyCompromise})
	if got := ask(req); got != xocsp.Good {
		t.Fatalf("before Invalidate status = %d, want the cached good", got)
	}
	r.Invalidate(big.NewInt(1))
	if got := ask(req); got != xocsp.Revoked {
		t.Errorf("after Invalidate SHA-1 status = %d, want revoked", got)
	}
	if got := ask(req256); got != xocsp.Revoked {
		t.Errorf("after Invalidate SHA-256 status = %d, want revoked", got)
	}
	if got := r.cache.len(); got != 1 {
		t.Errorf("cache holds %d serials, want 1 (serial 2 untouched)", got)
	}
	r.Invalidate(big.NewInt(99)) // never cached: no effect
	r.Invalidate(nil)
}

// TestInvalidate_DuringSigning holds an answer between the Source read
// (good) and the cache fill while the certificate is revoked and
// invalidated: the stale good answer may go to its own request, but must
// not reach the cache.
func TestInvalidate_DuringSigning(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "race")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(t, p, src, nil)
	leaf := p.leaf(t, 1)
	req := simpleRequest(t, p.issuing, 1, crypto.SHA1, nil)

	readGood := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	src.mu.Lock()
	src.afterRead = func(_ *big.Int, st fakeStatus) {
		if st.status == xocsp.Good {
			once.Do(func() {
				close(readGood)
				<-release
			})
		}
	}
	src.mu.Unlock()

	stale := make(chan []byte)
	go func() {
		der, err := r.Respond(context.Background(), req)
		if err != nil {
			t.Error(err)
		}
		stale <- der
	}()
	<-readGood
	// The CA commits the revocation, then invalidates.
	src.set(1, fakeStatus{status: xocsp.Revoked, revokedAt: time.Now(), reason: xocsp.KeyCompromise})
	r.Invalidate(big.NewInt(1))
	close(release)
	if got := parseAnswer(t, <-stale, leaf, p.issuing).Status; got != xocsp.Good {
		t.Fatalf("in-flight answer = %d, want the good read before the revocation", got)
	}

	der, err := r.Respond(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseAnswer(t, der, leaf, p.issuing).Status; got != xocsp.Revoked {
		t.Errorf("answer after Invalidate = %d, want revoked: a stale good answer was cached", got)
	}
}

// TestInvalidate_Concurrent revokes while many answers are produced: every
// request that starts after Invalidate returned must see the revocation.
func TestInvalidate_Concurrent(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "concurrent")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(t, p, src, nil)
	leaf := p.leaf(t, 1)
	reqs := [][]byte{
		simpleRequest(t, p.issuing, 1, crypto.SHA1, nil),
		simpleRequest(t, p.issuing, 1, crypto.SHA256, nil),
	}
	// Short invalidations of a good certificate keep fills and
	// invalidations interleaving before the revocation.
	var invalidated atomic.Bool
	var stop atomic.Bool
	var wg sync.WaitGroup
	var total, afterRevoked, stale atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				after := invalidated.Load()
				der, err := r.Respond(context.Background(), reqs[(w+i)%2])
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(1)
				if !after {
					continue
				}
				afterRevoked.Add(1)
				resp, err := xocsp.ParseResponseForCert(der, leaf, p.issuing)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Status != xocsp.Revoked {
					stale.Add(1)
				}
			}
		})
	}
	// waitFor waits until the workers have answered n more requests.
	waitFor := func(counter *atomic.Int64, n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for target := counter.Load() + n; counter.Load() < target && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	for range 100 {
		r.Invalidate(big.NewInt(1))
		waitFor(&total, 2)
	}
	src.set(1, fakeStatus{status: xocsp.Revoked, revokedAt: time.Now(), reason: xocsp.KeyCompromise})
	r.Invalidate(big.NewInt(1))
	invalidated.Store(true)
	waitFor(&afterRevoked, 200)
	stop.Store(true)
	wg.Wait()

	if afterRevoked.Load() == 0 {
		t.Fatal("no request ran after the revocation")
	}
	if n := stale.Load(); n != 0 {
		t.Errorf("%d of %d answers begun after Invalidate were not revoked", n, afterRevoked.Load())
	}
	for _, req := range reqs {
		der, err := r.Respond(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := parseAnswer(t, der, leaf, p.issuing).Status; got != xocsp.Revoked {
			t.Errorf("final answer = %d, want revoked", got)
		}
	}
}

func TestRespond_Malformed(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "malformed")
	r, _ := newTestResponder(t, p, newFakeSource(), nil)
	id := func(serial int64) tCertID { return certIDFor(t, p.issuing, big.NewInt(serial), crypto.SHA1) }
	valid := simpleRequest(t, p.issuing, 1, crypto.SHA1, nil)
	withExts := func(exts ...pkix.Extension) []byte {
		return marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: id(1)}}, Exts: exts}})
	}
	critical := func(e pkix.Extension) pkix.Extension { e.Critical = true; return e }

	tests := []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"garbage", []byte("this is not DER at all")},
		{"truncated", valid[:len(valid)-1]},
		{"trailing data", append(append([]byte{}, valid...), 0x00)},
		{"indefinite length", append([]byte{0x30, 0x80}, append(valid[2:], 0, 0)...)},
		{"non-minimal length", append([]byte{0x30, 0x81, valid[1]}, valid[2:]...)},
		{"two requests", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: id(1)}, {ReqCert: id(2)}}}})},
		{"no request", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{}}})},
		{"version 2", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{Version: 1, RequestList: []tRequest{{ReqCert: id(1)}}}})},
		{"empty nonce", withExts(nonceExt(t, []byte{}))},
		{"nonce over 128 octets", withExts(nonceExt(t, make([]byte, 129)))},
		{"two nonces", withExts(nonceExt(t, []byte("0123456789abcdef")), nonceExt(t, []byte("fedcba9876543210")))},
		{"unknown critical extension", withExts(critical(pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}))},
		{"critical single extension", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: id(1),
			Exts: []pkix.Extension{critical(pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}})}}}}})},
		{"too large", append(valid, make([]byte, DefaultMaxRequestBytes)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := r.Respond(context.Background(), tt.der)
			if !errors.Is(err, ErrMalformedRequest) {
				t.Errorf("Respond() error = %v, want ErrMalformedRequest", err)
			}
			if got := responseStatus(t, der); got != xocsp.Malformed {
				t.Errorf("response status = %v, want malformed", got)
			}
			if !bytes.Equal(der, xocsp.MalformedRequestErrorResponse) {
				t.Errorf("response = %x, want %x", der, xocsp.MalformedRequestErrorResponse)
			}
		})
	}
	if got := testutil.ToFloat64(r.m.byOutcome[outcomeMalformed]); got != float64(len(tests)) {
		t.Errorf("malformed responses = %v, want %d", got, len(tests))
	}

	// DER omits a DEFAULT value, but BER encoders write version v1 anyway.
	type tTBSRequestV1 struct {
		Version     int `asn1:"explicit,tag:0"`
		RequestList []tRequest
	}
	explicitV1, err := asn1.Marshal(struct{ TBSRequest tTBSRequestV1 }{tTBSRequestV1{RequestList: []tRequest{{ReqCert: id(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(explicitV1, valid) {
		t.Fatal("explicit v1 request encodes like the plain one")
	}
	// Accepted variants: a harmless unknown extension, a non-critical one in
	// the Request, an explicit version 1, absent hash parameters.
	ok := []struct {
		name string
		der  []byte
	}{
		{"unknown extension", withExts(pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}, nonceExt(t, []byte("0123456789abcdef")))},
		{"single extension", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: id(1),
			Exts: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}}}}})},
		{"explicit v1", explicitV1},
	}
	noParams := id(1)
	noParams.HashAlgorithm.Parameters = asn1.RawValue{}
	ok = append(ok, struct {
		name string
		der  []byte
	}{"no hash parameters", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: noParams}}}})})
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			der, err := r.Respond(context.Background(), tt.der)
			if err != nil {
				t.Fatalf("Respond(%x) error = %v", tt.der, err)
			}
			parseAnswer(t, der, p.leaf(t, 1), p.issuing)
		})
	}
}

func TestRespond_Unauthorized(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "authorized")
	other := newTestPKI(t, "other issuer")
	r, _ := newTestResponder(t, p, newFakeSource(), nil)
	sameName := certIDFor(t, p.issuing, big.NewInt(1), crypto.SHA1)
	sameName.IssuerKeyHash = certIDFor(t, other.issuing, big.NewInt(1), crypto.SHA1).IssuerKeyHash

	tests := []struct {
		name string
		der  []byte
	}{
		{"other issuer", simpleRequest(t, other.issuing, 1, crypto.SHA1, nil)},
		{"other issuer sha256", simpleRequest(t, other.issuing, 1, crypto.SHA256, nil)},
		{"other key", marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: sameName}}}})},
		{"sha384", simpleRequest(t, p.issuing, 1, crypto.SHA384, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := r.Respond(context.Background(), tt.der)
			if !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Respond() error = %v, want ErrUnauthorized", err)
			}
			if got := responseStatus(t, der); got != xocsp.Unauthorized {
				t.Errorf("response status = %v, want unauthorized", got)
			}
		})
	}
}

func TestRespond_InternalError(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "internal")
	tests := []struct {
		name string
		src  func(*fakeSource)
	}{
		{"source error", func(s *fakeSource) { s.err = errors.New("database is down") }},
		{"bad status", func(s *fakeSource) { s.set(1, fakeStatus{status: 3}) }},
		{"revoked without time", func(s *fakeSource) { s.set(1, fakeStatus{status: xocsp.Revoked, reason: 1}) }},
		{"bad reason", func(s *fakeSource) { s.set(1, fakeStatus{status: xocsp.Revoked, revokedAt: time.Now(), reason: 7}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			tt.src(src)
			r, _ := newTestResponder(t, p, src, nil)
			der, err := r.Respond(context.Background(), simpleRequest(t, p.issuing, 1, crypto.SHA1, nil))
			if !errors.Is(err, ErrInternal) {
				t.Errorf("Respond() error = %v, want ErrInternal", err)
			}
			if got := responseStatus(t, der); got != xocsp.InternalError {
				t.Errorf("response status = %v, want internalError", got)
			}
			if got := testutil.ToFloat64(r.m.byOutcome[outcomeInternal]); got != 1 {
				t.Errorf("internal responses = %v, want 1", got)
			}
			if got := r.cache.len(); got != 0 {
				t.Errorf("cache holds %d serials after an error", got)
			}
		})
	}
}

func TestRespond_NegativeAndLargeSerials(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "serials")
	src := newFakeSource()
	r, _ := newTestResponder(t, p, src, nil)
	big20 := new(big.Int).SetBytes(bytes.Repeat([]byte{0xff}, 20))
	for _, serial := range []*big.Int{big.NewInt(0), big.NewInt(-5), big.NewInt(128), big20} {
		src.mu.Lock()
		src.certs[serial.String()] = fakeStatus{status: xocsp.Good}
		src.mu.Unlock()
		req := marshalRequest(t, tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: certIDFor(t, p.issuing, serial, crypto.SHA1)}}}})
		for range 2 {
			der, err := r.Respond(context.Background(), req)
			if err != nil {
				t.Fatalf("serial %v: %v", serial, err)
			}
			resp, err := xocsp.ParseResponse(der, p.issuing)
			if err != nil {
				t.Fatalf("serial %v: %v", serial, err)
			}
			if resp.SerialNumber.Cmp(serial) != 0 || resp.Status != xocsp.Good {
				t.Errorf("serial %v: answer for %v, status %d", serial, resp.SerialNumber, resp.Status)
			}
		}
		r.Invalidate(serial)
	}
	if got := r.cache.len(); got != 0 {
		t.Errorf("cache holds %d serials after invalidating all", got)
	}
}

func TestCache_Bounded(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "bounded")
	src := newFakeSource()
	cfg := p.config()
	cfg.CacheEntries = 10
	r, err := New(cfg, src, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for serial := range int64(25) {
		src.set(serial, fakeStatus{status: xocsp.Good})
		if _, err := r.Respond(context.Background(), simpleRequest(t, p.issuing, serial, crypto.SHA1, nil)); err != nil {
			t.Fatal(err)
		}
		if got := r.cache.len(); got > 10 {
			t.Fatalf("cache holds %d serials, bound is 10", got)
		}
	}
	if got := r.cache.len(); got != 10 {
		t.Errorf("cache holds %d serials, want 10", got)
	}
}

func TestNew_Config(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "config")
	noEKU := newTestPKI(t, "no eku", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	other := newTestPKI(t, "config other")
	tests := []struct {
		name string
		cfg  func(*Config)
		src  Source
	}{
		{"no issuer", func(c *Config) { c.Issuer = nil }, newFakeSource()},
		{"no source", func(c *Config) {}, nil},
		{"no OCSPSigning", func(c *Config) { c.Cert, c.Key = noEKU.responder, noEKU.respKey }, newFakeSource()},
		{"wrong key", func(c *Config) { c.Key = other.respKey }, newFakeSource()},
		{"other issuer", func(c *Config) { c.Issuer = other.issuing }, newFakeSource()},
		{"margin not below validity", func(c *Config) { c.Validity, c.CacheMargin = time.Minute, time.Minute }, newFakeSource()},
		{"negative validity", func(c *Config) { c.Validity = -time.Minute }, newFakeSource()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.config()
			tt.cfg(&cfg)
			if _, err := New(cfg, tt.src, nil, nil, nil); !errors.Is(err, ErrConfig) {
				t.Errorf("New() error = %v, want ErrConfig", err)
			}
		})
	}
	t.Run("expired responder", func(t *testing.T) {
		later := func() time.Time { return p.responder.NotAfter.Add(time.Second) }
		if _, err := New(p.config(), newFakeSource(), nil, nil, later); !errors.Is(err, ErrConfig) {
			t.Errorf("New() error = %v, want ErrConfig", err)
		}
	})
	t.Run("metrics registered twice", func(t *testing.T) {
		_, reg := newTestResponder(t, p, newFakeSource(), nil)
		if _, err := New(p.config(), newFakeSource(), nil, reg, nil); err == nil {
			t.Errorf("New() with the same registry twice succeeded")
		}
	})
}

package ocsp

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// evictScan bounds the work of one eviction: how many entries are looked
// at for an expired one before a random one goes.
const evictScan = 32

// cachedResponse is a signed good answer with its HTTP headers made once,
// so that a cache hit writes them without formatting or allocating. The
// header slices are shared by all requests and must never be modified.
type cachedResponse struct {
	der           []byte
	nextUpdate    time.Time
	refreshAt     time.Time // nextUpdate - CacheMargin: sign anew from here on
	etag          string
	etagHeader    []string
	lastModified  []string
	expires       []string
	contentLength []string
	cc            atomic.Pointer[cacheControl]
}

func newCachedResponse(der []byte, thisUpdate, nextUpdate time.Time, margin time.Duration) *cachedResponse {
	sum := sha256.Sum256(der)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	return &cachedResponse{
		der:           der,
		nextUpdate:    nextUpdate,
		refreshAt:     nextUpdate.Add(-margin),
		etag:          etag,
		etagHeader:    []string{etag},
		lastModified:  []string{thisUpdate.UTC().Format(http.TimeFormat)},
		expires:       []string{nextUpdate.UTC().Format(http.TimeFormat)},
		contentLength: []string{strconv.Itoa(len(der))},
	}
}

// fill tracks the cache fills in flight for one serial. Invalidate bumps
// gen; a fill that began under an older gen must not store its answer,
// which may predate the revocation.
type fill struct {
	gen  uint64
	refs int
}

// cache holds good answers per serial, one per CertID hash. Keys are the
// content octets of the serial INTEGER, which DER makes unique per serial.
type cache struct {
	max int

	mu      sync.RWMutex
	entries map[string][numHashes]*cachedResponse
	// fills has an entry only while fills for its serial are in flight,
	// so the generations take no memory for idle serials.
	fills map[string]*fill
}

func newCache(max int) *cache {
	return &cache{
		max:     max,
		entries: make(map[string][numHashes]*cachedResponse),
		fills:   make(map[string]*fill),
	}
}

// get returns the fresh cached answer for serial and h, or nil. It does
// not allocate: the map index converts serial without copying.
func (c *cache) get(serial []byte, h hashAlg, now time.Time) *cachedResponse {
	c.mu.RLock()
	cr := c.entries[string(serial)][h]
	c.mu.RUnlock()
	if cr == nil || !now.Before(cr.refreshAt) {
		return nil
	}
	return cr
}

// begin registers a fill for serial; it must be paired with end. It
// returns the generation the answer will be stored under.
func (c *cache) begin(serial []byte) (*fill, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fills[string(serial)]
	if f == nil {
		f = &fill{}
		c.fills[string(serial)] = f
	}
	f.refs++
	return f, f.gen
}

// end finishes a fill begun at gen and stores cr (if not nil) unless the
// serial was invalidated since.
func (c *cache) end(serial []byte, f *fill, gen uint64, h hashAlg, cr *cachedResponse, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.refs--; f.refs == 0 {
		delete(c.fills, string(serial))
	}
	if cr == nil || f.gen != gen || !now.Before(cr.refreshAt) {
		return
	}
	e, ok := c.entries[string(serial)]
	if !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	e[h] = cr
	c.entries[string(serial)] = e
}

// evict removes an expired entry or, failing that, a random one. Map
// iteration starts at a random place, which makes the choice random
// enough without bookkeeping on the hit path.
func (c *cache) evict(now time.Time) {
	var victim string
	n := 0
	for k, e := range c.entries {
		if n == 0 {
			victim = k
		}
		expired := true
		for _, cr := range e {
			if cr != nil && now.Before(cr.refreshAt) {
				expired = false
			}
		}
		if expired {
			victim = k
			break
		}
		if n++; n == evictScan {
			break
		}
	}
	delete(c.entries, victim)
}

// invalidate drops serial's answers and outdates the fills in flight.
func (c *cache) invalidate(serial []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, string(serial))
	if f := c.fills[string(serial)]; f != nil {
		f.gen++
	}
}

// len returns the number of serials cached.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

package etsi

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func addSeeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzDecodeSOAP(f *testing.F) {
	addSeeds(f, "*.xml")
	f.Add([]byte(anyPrefixReq))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, req := range []bool{true, false} {
			v, err := decodeSOAP(bytes.NewReader(data), 1<<16, req)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "etsi: ") {
					t.Fatalf("bad error %v", err)
				}
				continue
			}
			var b bytes.Buffer
			if err := encodeSOAP(&b, v, req); err != nil {
				t.Fatalf("encode: %v", err)
			}
			v2, err := decodeSOAP(bytes.NewReader(b.Bytes()), 1<<20, req)
			if err != nil {
				t.Fatalf("re-decode: %v\n%s", err, b.Bytes())
			}
			if d := cmp.Diff(v, v2, cmpOpts); d != "" {
				t.Fatalf("round trip (-first +second):\n%s", d)
			}
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	addSeeds(f, "*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, req := range []bool{true, false} {
			v, err := decodeJSON(bytes.NewReader(data), 1<<16, req)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "etsi: ") {
					t.Fatalf("bad error %v", err)
				}
				continue
			}
			var b bytes.Buffer
			if err := EncodeJSON(&b, v); err != nil {
				t.Fatalf("encode: %v", err)
			}
			v2, err := decodeJSON(bytes.NewReader(b.Bytes()), 1<<20, req)
			if err != nil {
				t.Fatalf("re-decode: %v\n%s", err, b.Bytes())
			}
			if d := cmp.Diff(v, v2, cmpOpts); d != "" {
				t.Fatalf("round trip (-first +second):\n%s", d)
			}
		}
	})
}

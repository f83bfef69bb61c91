package etsi

import (
	"bytes"
	"io"
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

// encoders re-encodes what decodeEnvelope returned for each kind.
var encoders = map[envelopeKind]func(io.Writer, any) error{
	kindRequest:              EncodeRequest,
	kindResponse:             EncodeResponse,
	kindNotification:         func(w io.Writer, v any) error { return EncodeNotification(w, v.(*MSSStatusResp)) },
	kindNotificationResponse: func(w io.Writer, v any) error { return EncodeNotificationResponse(w, v.(*MSSReceiptReq)) },
}

func FuzzDecodeSOAP(f *testing.F) {
	addSeeds(f, "*.xml")
	f.Add([]byte(anyPrefixReq))
	f.Add([]byte(rpcToolkitReq))
	f.Fuzz(func(t *testing.T, data []byte) {
		for kind, encode := range encoders {
			v, err := decodeEnvelope(bytes.NewReader(data), 1<<16, kind)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "etsi: ") {
					t.Fatalf("bad error %v", err)
				}
				continue
			}
			var b bytes.Buffer
			if err := encode(&b, v); err != nil {
				t.Fatalf("encode: %v", err)
			}
			v2, err := decodeEnvelope(bytes.NewReader(b.Bytes()), 1<<20, kind)
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

func FuzzDecodeFault(f *testing.F) {
	addSeeds(f, "fault*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		ft, err := DecodeFault(bytes.NewReader(data), 1<<16)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "etsi: ") {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		var b bytes.Buffer
		if err := EncodeFault(&b, ft); err != nil {
			t.Fatalf("encode: %v", err)
		}
		ft2, err := DecodeFault(bytes.NewReader(b.Bytes()), 1<<20)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, b.Bytes())
		}
		if d := cmp.Diff(ft, ft2); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

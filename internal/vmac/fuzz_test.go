package vmac

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addGoldenSeeds seeds f with the golden examples that parse with parse.
func addGoldenSeeds(f *testing.F, parse func([]byte) (any, error)) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		text, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		b, err := parseHexFile(string(text))
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		if _, err := parse(b); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParseCommand checks that ParseCommand never panics and that every
// command it accepts is canonical: it marshals back to the same bytes and
// parses to the same value again.
func FuzzParseCommand(f *testing.F) {
	addGoldenSeeds(f, func(b []byte) (any, error) { return ParseCommand(b) })
	f.Add(mustHex(f, "A4 06 80 04 00000001"))
	f.Add(mustHex(f, "A5 09 80 04 00000001 8B 01 01"))
	f.Add(mustHex(f, "A3 10 80 04 00000001 85 05 04 C8 32 9B 0D 8A 01 01"))
	f.Add(mustHex(f, "A3 0C 80 04 00000001 86 04 04 1F 04 3E"))
	f.Add(mustHex(f, "A2 0E 80 04 00000001 81 01 21 84 03 61 62 63"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseCommand(%x) = %+v with error %v", b, c, err)
			}
			return
		}
		again, err := MarshalCommand(c)
		if err != nil {
			t.Fatalf("ParseCommand(%x) = %+v, which does not marshal: %v", b, c, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("MarshalCommand(ParseCommand(%x)) = %x, want the input", b, again)
		}
		c2, err := ParseCommand(again)
		if err != nil {
			t.Fatalf("ParseCommand(%x) after round trip: %v", again, err)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("ParseCommand(%x) round trip mismatch (-first +second):\n%s", b, diff)
		}
		if ref, ok := PeekTxRef(b); !ok || ref != c.TxRef() {
			t.Fatalf("PeekTxRef(%x) = %d, %v, want %d, true", b, ref, ok, c.TxRef())
		}
	})
}

// FuzzParseResponse is FuzzParseCommand for responses.
func FuzzParseResponse(f *testing.F) {
	addGoldenSeeds(f, func(b []byte) (any, error) { return ParseResponse(b) })
	f.Add(mustHex(f, "B0 03 90 01 06"))
	f.Add(mustHex(f, "B2 0C 80 04 00000001 90 01 02 91 01 00"))
	f.Add(mustHex(f, "B1 09 80 04 00000001 90 01 08"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			if r != nil {
				t.Fatalf("ParseResponse(%x) = %+v with error %v", b, r, err)
			}
			return
		}
		again, err := MarshalResponse(r)
		if err != nil {
			t.Fatalf("ParseResponse(%x) = %+v, which does not marshal: %v", b, r, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("MarshalResponse(ParseResponse(%x)) = %x, want the input", b, again)
		}
		r2, err := ParseResponse(again)
		if err != nil {
			t.Fatalf("ParseResponse(%x) after round trip: %v", again, err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("ParseResponse(%x) round trip mismatch (-first +second):\n%s", b, diff)
		}
	})
}

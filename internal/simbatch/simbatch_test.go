package simbatch

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/ota"
)

func testRecord(iccid, imsi, msisdn string) Record {
	return Record{
		ICCID: iccid, IMSI: imsi, MSISDN: msisdn, TAR: ota.TAR{0xb0, 0x00, 0x10}, KIc: 0x12, KID: 0x12,
		KIcKey: bytes.Repeat([]byte{1}, 16), KIDKey: bytes.Repeat([]byte{2}, 16),
	}
}

func TestRoundTrip(t *testing.T) {
	want := []Record{
		testRecord("8999901000000000013", "001010000000001", "+37200000001"),
		testRecord("8999901000000000021", "001010000000002", "+37200000002"),
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if err := w.Write(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read(Write(recs)) mismatch (-want +got):\n%s", diff)
	}
}

func TestLuhn(t *testing.T) {
	// The ICCID example of ITU-T E.118 style numbers: 8931440301234567890 + check.
	tests := map[string]byte{"7992739871": '3', "899990100000000001": '3', "0": '0'}
	for in, want := range tests {
		if got := LuhnDigit(in); got != want {
			t.Errorf("LuhnDigit(%s) = %c, want %c", in, got, want)
		}
	}
}

func TestReadErrors(t *testing.T) {
	good := Version + "\niccid,imsi,msisdn,tar,kic,kid,kic_key,kid_key\n"
	row := "8999901000000000013,001010000000001,+37200000001,b00010,12,12,01010101010101010101010101010101,02020202020202020202020202020202\n"
	tests := []struct{ name, in, want string }{
		{"empty", "", "line 1"},
		{"no version", "iccid\n", "line 1"},
		{"bad header", Version + "\na,b,c,d,e,f,g,h\n", "line 2"},
		{"short row", good + "1,2\n", "wrong number of fields"},
		{"bad luhn", good + strings.Replace(row, "013", "018", 1), "check digit"},
		{"bad msisdn", good + strings.Replace(row, "+372", "372", 1), "MSISDN"},
		{"bad tar", good + strings.Replace(row, "b00010", "b0001", 1), "TAR"},
		{"3des kic", good + strings.Replace(row, ",12,12,", ",15,12,", 1), "KIc"},
		{"short key", good + strings.Replace(row, "01010101010101010101010101010101", "01", 1), "key"},
		{"duplicate", good + row + row, "repeats line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(Version + "\niccid,imsi,msisdn,tar,kic,kid,kic_key,kid_key\n8999901000000000013,001010000000001,+37200000001,b00010,12,12,01010101010101010101010101010101,02020202020202020202020202020202\n"))
	f.Add([]byte(Version + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w, _ := NewWriter(&buf)
		for i := range recs {
			if err := w.Write(&recs[i]); err != nil {
				t.Fatalf("Write of a record Read accepted: %v", err)
			}
		}
		w.Flush()
		again, err := Read(&buf)
		if err != nil {
			t.Fatalf("Read(Write(Read(x))): %v", err)
		}
		if diff := cmp.Diff(recs, again); diff != "" {
			t.Fatalf("round trip mismatch:\n%s", diff)
		}
	})
}

package smpp

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzUnmarshal checks that no input panics the decoder, that errors
// carry a status, and that whatever decodes re-encodes to something that
// decodes to the same PDU.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range pduVectors {
		b, _ := hex.DecodeString(strings.ReplaceAll(v.hex, " ", ""))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Unmarshal(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T, want *Error", err)
			}
			return
		}
		re, err := p.MarshalBinary()
		if err != nil {
			// A response may carry a body we would not write (e.g. a
			// message_id in a failed submit_sm_resp); that is not a loss.
			return
		}
		q, err := Unmarshal(re)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%x)) = %v", b, err)
		}
		if diff := cmp.Diff(p, q, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" &&
			!(p.ID == SubmitSMResp && p.Status != StatusOK) {
			t.Fatalf("round trip mismatch:\n%s", diff)
		}
	})
}

// FuzzParseReceipt checks the receipt text parser.
func FuzzParseReceipt(f *testing.F) {
	f.Add("id:0123456789 sub:001 dlvrd:001 submit date:2611291200 done date:2611291201 stat:DELIVRD err:000 text:hello")
	f.Add("id:7 stat:EXPIRED")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReceipt(s)
		if err != nil {
			return
		}
		if r.ID == "" {
			t.Fatalf("ParseReceipt(%q) accepted an empty id", s)
		}
	})
}

// FuzzParseTime checks the SMPP time parser.
func FuzzParseTime(f *testing.F) {
	f.Add("000000000500000R")
	f.Add("261129130000000+")
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		ParseTime(s, now)
	})
}

package smpp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pduVectors are written out by hand from the field tables of SMPP 3.4
// chapter 4.
var pduVectors = []struct {
	name string
	pdu  PDU
	hex  string
}{
	{"enquire_link", PDU{ID: EnquireLink, Seq: 1}, "00000010 00000015 00000000 00000001"},
	{"generic_nack", PDU{ID: GenericNack, Status: StatusInvalidCommandID, Seq: 7}, "00000010 80000000 00000003 00000007"},
	{"bind_transceiver", PDU{ID: BindTransceiver, Seq: 2, SystemID: "mssp", Password: "secret", InterfaceVersion: 0x34},
		"00000021 00000009 00000000 00000002 6d73737000 73656372657400 00 34 00 00 00"},
	{"bind_transceiver_resp", PDU{ID: BindTransceiverResp, Seq: 2, SystemID: "smsc"},
		"00000015 80000009 00000000 00000002 736d736300"},
	{"submit_sm binary", PDU{ID: SubmitSM, Seq: 3,
		Source:   Address{TON: TONInternational, NPI: NPIISDN, Addr: "3725000"},
		Dest:     Address{TON: TONInternational, NPI: NPIISDN, Addr: "37200000001"},
		ESMClass: ESMClassUDHI, ProtocolID: 0x7F, ValidityPeriod: "000000000500000R", RegisteredDelivery: 1,
		DataCoding: 0xF6, ShortMessage: []byte{0x02, 0x70, 0x00, 0xAA}},
		"00000047 00000004 00000000 00000003 00 01 01 3337323530303000 01 01 333732303030303030303100" +
			"40 7f 00 00 30303030303030303035303030303052 00 01 00 f6 00 04 027000aa"},
	{"submit_sm_resp", PDU{ID: SubmitSMResp, Seq: 3, MessageID: "m1"}, "00000013 80000004 00000000 00000003 6d3100"},
	{"submit_sm_resp failed", PDU{ID: SubmitSMResp, Status: StatusThrottled, Seq: 3}, "00000010 80000004 00000058 00000003"},
	{"deliver_sm receipt with TLVs", PDU{ID: DeliverSM, Seq: 9, ESMClass: ESMClassReceipt,
		TLVs: []TLV{{TagReceiptedMessageID, []byte("m1\x00")}, {TagMessageState, []byte{2}}}},
		"0000002d 00000005 00000000 00000009 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00" +
			"001e 0003 6d3100 0427 0001 02"},
}

func TestPDUVectors(t *testing.T) {
	for _, tt := range pduVectors {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.hex)
			got, err := tt.pdu.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("MarshalBinary = %x, want %x", got, want)
			}
			p, err := Unmarshal(want)
			if err != nil {
				t.Fatalf("Unmarshal(%x): %v", want, err)
			}
			if diff := cmp.Diff(&tt.pdu, p, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("Unmarshal(%x) mismatch (-want +got):\n%s", want, diff)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Status
	}{
		{"short", "000000", StatusInvalidCommandLength},
		{"length mismatch", "00000011 00000015 00000000 00000001", StatusInvalidCommandLength},
		{"unknown command", "00000010 00000103 00000000 00000001", StatusInvalidCommandID},
		{"bind without NUL", "00000014 00000009 00000000 00000002 61626364", StatusInvalidCommandLength},
		{"system_id too long", "00000027 00000009 00000000 00000002 3132333435363738393031323334353637 00 00 00 00 00 00", StatusInvalidParamLength},
		{"sm_length beyond PDU", "00000025 00000004 00000000 00000003 00 01 01 3300 01 01 3400 40 7f 00 00 00 00 00 f6 00 09 0102", StatusInvalidCommandLength},
		{"broken TLV", "00000014 80000004 00000000 00000003 00 0424 00", StatusInvalidOptionalParamStream},
		{"TLV beyond PDU", "00000016 80000004 00000000 00000003 00 0424 0009 aa", StatusInvalidOptionalParamStream},
		{"bad validity", "00000026 00000004 00000000 00000003 00 01 01 3300 01 01 3400 40 7f 00 00 313200 00 00 f6 00 01 02", StatusInvalidParamLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(unhex(t, tt.hex))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Unmarshal = %v, want *Error", err)
			}
			if e.Status != tt.want {
				t.Errorf("Unmarshal status = %v (%v), want %v", e.Status, err, tt.want)
			}
		})
	}
	// The header survives an error so that it can be answered.
	p, _ := Unmarshal(unhex(t, "00000010 00000103 00000000 0000002a"))
	if p == nil || p.Seq != 42 {
		t.Errorf("Unmarshal of an unknown command lost the sequence number: %+v", p)
	}
}

func TestMarshalErrors(t *testing.T) {
	for _, p := range []PDU{
		{ID: 0x103},
		{ID: BindTransceiver, SystemID: strings.Repeat("x", 16)},
		{ID: BindTransceiver, Password: "123456789"},
		{ID: SubmitSM, ShortMessage: make([]byte, 255)},
		{ID: SubmitSM, ValidityPeriod: "12"},
		{ID: SubmitSM, Dest: Address{Addr: "a\x00b"}},
		{ID: SubmitSMResp, TLVs: []TLV{{Tag: 1, Value: make([]byte, 70000)}}},
	} {
		if _, err := p.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary(%+v) succeeded, want an error", p.ID)
		}
	}
}

func TestConn(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	go func() {
		ca.Write(&PDU{ID: EnquireLink, Seq: 5})
		a.Write(unhex(t, "00000010 00000103 00000000 00000006")) // unknown command: answerable
		a.Write(unhex(t, "00010000 00000004"))                   // absurd length: fatal
	}()
	p, err := cb.Read()
	if err != nil || p.ID != EnquireLink || p.Seq != 5 {
		t.Fatalf("Read = %+v, %v", p, err)
	}
	p, err = cb.Read()
	if StatusOf(err) != StatusInvalidCommandID || p.Seq != 6 {
		t.Fatalf("Read of an unknown command = %+v, %v", p, err)
	}
	_, err = cb.Read()
	var fe *FramingError
	if !errors.As(err, &fe) || fe.Length != 0x10000 {
		t.Fatalf("Read of a bad length = %v, want FramingError", err)
	}
}

func TestTimes(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"000000000500000R", now.Add(5 * time.Minute)},
		{"000001020304000R", now.Add(26*time.Hour + 3*time.Minute + 4*time.Second)},
		{"261129130000000+", now.Add(time.Hour)},
		{"261129140000008+", now},
		{"261129100000008-", now},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"1", "26112913000000+", "261329130000000+", "2611291300000000", "26112913000000x+", "000000000500000X"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) succeeded", bad)
		}
	}
	if got := FormatRelative(300 * time.Second); got != "000000000500000R" {
		t.Errorf("FormatRelative(300s) = %q", got)
	}
	if got := FormatRelative(49*time.Hour + time.Second); got != "000002010001000R" {
		t.Errorf("FormatRelative(49h1s) = %q", got)
	}
	if got := FormatAbsolute(now); got != "261129120000000+" {
		t.Errorf("FormatAbsolute = %q", got)
	}
}

func TestReceipt(t *testing.T) {
	r := &Receipt{ID: "0123456789", Submitted: 1, Delivered: 1,
		SubmitDate: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), DoneDate: time.Date(2026, 11, 29, 12, 1, 0, 0, time.UTC),
		State: StateDelivered, Text: "hello"}
	s := r.Format()
	want := "id:0123456789 sub:001 dlvrd:001 submit date:2611291200 done date:2611291201 stat:DELIVRD err:000 text:hello"
	if s != want {
		t.Errorf("Format = %q, want %q", s, want)
	}
	got, err := ParseReceipt(s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("ParseReceipt mismatch (-want +got):\n%s", diff)
	}
	// Case and seconds vary between SMSCs.
	if r, err := ParseReceipt("id:7 sub:001 dlvrd:000 submit date:261129120000 done date:261129120500 stat:EXPIRED err:000 Text:"); err != nil || r.State != StateExpired {
		t.Errorf("ParseReceipt(variant) = %+v, %v", r, err)
	}
	for _, bad := range []string{"", "hello", "id:1", "stat:DELIVRD", "id:1 stat:NOPE", "id:1 stat:DELIVRD sub:x", "id:1 stat:DELIVRD done date:26"} {
		if _, err := ParseReceipt(bad); err == nil {
			t.Errorf("ParseReceipt(%q) succeeded", bad)
		}
	}
}

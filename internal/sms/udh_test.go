package sms

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseUDH(t *testing.T) {
	tests := []struct {
		name     string
		ud       string
		wantIEs  []IE
		wantRest string
	}{
		{"command packet", "0270000020", []IE{{ID: IECommandPacket}}, "0020"},
		{"response packet", "027100", []IE{{ID: IEResponsePacket}}, ""},
		{"concat 8 then 70", "07000312030170" + "00" + "aa", []IE{{ID: IEConcat8, Data: []byte{0x12, 3, 1}}, {ID: IECommandPacket}}, "aa"},
		{"70 then concat 16", "087000080412340201bb", []IE{{ID: IECommandPacket}, {ID: IEConcat16, Data: []byte{0x12, 0x34, 2, 1}}}, "bb"},
		{"unknown kept", "0424020102", []IE{{ID: 0x24, Data: []byte{1, 2}}}, ""},
		{"empty header", "00cc", nil, "cc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ud := mustHex(t, tt.ud)
			ies, rest, err := ParseUDH(ud)
			if err != nil {
				t.Fatalf("ParseUDH(%x): %v", ud, err)
			}
			if diff := cmp.Diff(tt.wantIEs, ies); diff != "" {
				t.Errorf("ParseUDH(%x) IEs (-want +got):\n%s", ud, diff)
			}
			if want := mustHex(t, tt.wantRest); !bytes.Equal(rest, want) {
				t.Errorf("ParseUDH(%x) rest = %x, want %x", ud, rest, want)
			}
			if len(ies) > 0 {
				if got := MarshalUDH(ies); !bytes.Equal(got, ud[:len(ud)-len(rest)]) {
					t.Errorf("MarshalUDH(%v) = %x, want %x", ies, got, ud[:len(ud)-len(rest)])
				}
			}
		})
	}
}

func TestParseUDHErrors(t *testing.T) {
	tests := []struct{ name, ud, wantErr string }{
		{"empty", "", "sms: user data header missing"},
		{"udhl beyond data", "09700000aa", "sms: UDHL 9 exceeds user data length 4"},
		{"ie beyond udhl", "037002aabb", "sms: IE 0x70 length 2 exceeds remaining header length 1"},
		{"half ie", "0170", "sms: truncated information element in user data header"},
		{"70 with data", "03700100", "sms: IE 0x70 has length 1, want 0"},
		{"concat8 length", "0400020102", "sms: IE 0x00 has length 2, want 3"},
		{"concat16 length", "050803000102", "sms: IE 0x08 has length 3, want 4"},
		{"concat total 0", "050003010001", "sms: concatenation IE with sequence 1 of 0"},
		{"concat seq 0", "050003010200", "sms: concatenation IE with sequence 0 of 2"},
		{"concat seq > total", "06080400010203", "sms: concatenation IE with sequence 3 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ud := mustHex(t, tt.ud)
			ies, _, err := ParseUDH(ud)
			if err == nil {
				t.Fatalf("ParseUDH(%x) = %v, want error %q", ud, ies, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("ParseUDH(%x) error = %q, want %q", ud, err, tt.wantErr)
			}
		})
	}
}

func TestMarshalUDHPanicsOnOversize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MarshalUDH with a 256-octet IE did not panic")
		}
	}()
	MarshalUDH([]IE{{ID: 0x24, Data: make([]byte, 256)}})
}

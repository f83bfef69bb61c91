package ota

import (
	"bytes"
	"testing"
)

// independentVectors were computed for this project with Python's
// cryptography package, following TS 102 225 step by step; they cover the
// key lengths and algorithms the field vectors above do not.
var independentVectors = []packetVector{
	{
		name: "AES-192-CC4", spi: "1639", kic: 0x12, kid: 0x12,
		kicKey: "000102030405060708090a0b0c0d0e0f1011121314151617", kidKey: "1716151413121110ffeeddccbbaa99887766554433221100",
		tar: "b00010", counter: 1, data: "a20c800400000001810111830401020304",
		cmd:     "00281116391212b00010cf07745e0507089b12cbb27c0b132501a6d41d9c89a02bebaff3ba743bdc2731",
		rsp:     "02710000240eb00010f4a9b1f23789ae260359c7669a29e5a324ab8f45deaf4848e49415635c7a3448",
		rspData: "b2069001008001", rspCnt: 1,
	},
	{
		name: "AES-256-CC8-counter-next", spi: "1e39", kic: 0x22, kid: 0x22,
		kicKey: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", kidKey: "2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c",
		tar: "b00010", counter: 0x0102030405, data: "a20c800400000001810111830401020304",
		cmd:     "0028151e392222b00010bef85a55f054905a42e49c09c526691e0a20c5087266cd2cac3d3359e2f2d438",
		rsp:     "027100002412b0001052d903cd670f170dfead0c1ec5b85096edd2c062e4932d51e8dd8177425353ba",
		rspData: "9000", rspCnt: 0x0102030405,
	},
	{
		name: "3DES-3KEY", spi: "0e19", kic: 0x19, kid: 0x19,
		kicKey: "0123456789abcdeffedcba987654321089abcdef01234567", kidKey: "89abcdef0123456701234567fedcba98fedcba9801234567",
		tar: "b00010", counter: 7, data: "a20c800400000001810111830401020304",
		cmd: "0028150e191919b000106653694795d81c9f4bb06c7d12811823223e0b6b60051657e8b1689fd7639a3b",
	},
	{
		name: "DES-CBC-legacy", spi: "0619", kic: 0x11, kid: 0x11,
		kicKey: "0123456789abcdef", kidKey: "fedcba9876543210",
		tar: "b00010", counter: 3, data: "a20c800400000001810111830401020304",
		cmd: "00281506191111b00010ff5efffaba1365cc63a1a7f7ee2686d2a74dec376cb4a07c053b27a517d5a100",
	},
	{
		name: "DES-ECB-legacy", spi: "0619", kic: 0x1d, kid: 0x11,
		kicKey: "0123456789abcdef", kidKey: "fedcba9876543210",
		tar: "b00010", counter: 3, data: "a20c800400000001810111830401020304",
		cmd: "00281506191d11b0001065bf5f3e566e21ebd5d71e276d93f02251fa8564861d90ffbd54ad1297bbf360",
	},
}

func TestIndependentVectors(t *testing.T) {
	for _, v := range independentVectors {
		t.Run(v.name, func(t *testing.T) {
			c, k := v.command(t)
			if v.name == "AES-192-CC4" {
				c.CCLen = 4
			}
			got, err := WrapCommand(c, k)
			if err != nil {
				t.Fatalf("WrapCommand: %v", err)
			}
			if want := unhex(t, v.cmd); !bytes.Equal(got, want) {
				t.Errorf("WrapCommand = %x, want %x", got, want)
			}
			p, err := ParseCommandPacket(unhex(t, v.cmd))
			if err != nil {
				t.Fatal(err)
			}
			opened, err := p.Open(k)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(opened.Data, c.Data) || opened.Counter != c.Counter {
				t.Errorf("Open = data %x counter %d, want %x %d", opened.Data, opened.Counter, c.Data, c.Counter)
			}
			if v.rsp == "" {
				return
			}
			r, err := OpenResponse(unhex(t, v.rsp), opened, k)
			if err != nil {
				t.Fatalf("OpenResponse: %v", err)
			}
			if !bytes.Equal(r.Data, unhex(t, v.rspData)) || r.Counter != v.rspCnt || r.Status != StatusOK {
				t.Errorf("OpenResponse = %+v", r)
			}
			re, err := WrapResponse(&Response{TAR: r.TAR, Counter: r.Counter, Data: r.Data}, opened, k)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.rsp)[3:]; !bytes.Equal(re, want) {
				t.Errorf("WrapResponse = %x, want %x", re, want)
			}
		})
	}
}

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"mobileid/internal/ota"
)

// hexArg decodes a hex command-line value; spaces are allowed so that
// operators can paste grouped hex.
func hexArg(name, s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		return nil, usagef("%s: %q is not hex", name, s)
	}
	return b, nil
}

// byteArg decodes a one-octet hex value such as a KIc or KID.
func byteArg(name, s string) (byte, error) {
	b, err := hexArg(name, s)
	if err != nil || len(b) != 1 {
		return 0, usagef("%s: %q is not one hex octet", name, s)
	}
	return b[0], nil
}

func spiArg(s string) (ota.SPI, error) {
	b, err := hexArg("--spi", s)
	if err != nil || len(b) != 2 {
		return ota.SPI{}, usagef("--spi: %q is not two hex octets", s)
	}
	spi, err := ota.ParseSPI(b[0], b[1])
	if err != nil {
		return ota.SPI{}, usageError{err}
	}
	return spi, nil
}

func runOTAWrap(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "ota wrap", "DATA_HEX",
		"Wraps DATA_HEX into a TS 102 225 / TS 31.115 secured command packet and prints it in hex from CPL onward.")
	spiS := fs.String("spi", "1639", "security parameter indicator, 4 hex digits")
	kicS := fs.String("kic", "12", "KIc octet (algorithm and key index), hex")
	kidS := fs.String("kid", "12", "KID octet (algorithm and key index), hex")
	tarS := fs.String("tar", "", "toolkit application reference, 6 hex digits")
	cntrS := fs.String("counter", "0000000000", "counter, 10 hex digits")
	kicKey := fs.String("kic-key", "", "ciphering key, hex")
	kidKey := fs.String("kid-key", "", "checksum key, hex")
	ccLen := fs.Int("cc-len", 8, "length of an AES-CMAC checksum: 8 or 4")
	udh := fs.Bool("udh", false, "prefix the packet with the 02 70 00 user data header")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DATA_HEX argument, got %d", len(pos))
	}
	data, err := hexArg("DATA_HEX", pos[0])
	if err != nil {
		return err
	}
	c := &ota.Command{Data: data, CCLen: *ccLen}
	if c.SPI, err = spiArg(*spiS); err != nil {
		return err
	}
	if c.KIc, err = byteArg("--kic", *kicS); err != nil {
		return err
	}
	if c.KID, err = byteArg("--kid", *kidS); err != nil {
		return err
	}
	if c.TAR, err = ota.ParseTAR(*tarS); err != nil {
		return usageError{err}
	}
	cb, err := hexArg("--counter", *cntrS)
	if err != nil || len(cb) != 5 {
		return usagef("--counter: %q is not 10 hex digits", *cntrS)
	}
	for _, x := range cb {
		c.Counter = c.Counter<<8 | uint64(x)
	}
	if *ccLen != 8 && *ccLen != 4 {
		return usagef("--cc-len: %d, want 8 or 4", *ccLen)
	}
	k, err := keysArg(*kicKey, *kidKey, c.SPI.Ciphered, c.SPI.Integrity == ota.CC)
	if err != nil {
		return err
	}
	if c.SPI.Ciphered || c.SPI.Integrity == ota.CC {
		// Single DES is kept for reading old packets; say so when asked to
		// write one.
		a1, _ := ota.CipherAlgorithm(c.KIc)
		a2, _ := ota.IntegrityAlgorithm(c.KID, c.SPI.Integrity)
		if (c.SPI.Ciphered && (a1 == ota.AlgDESCBC || a1 == ota.AlgDESECB)) || (c.SPI.Integrity == ota.CC && a2 == ota.AlgDESCBC) {
			fmt.Fprintln(e.stderr, "mobileid ota wrap: warning: single DES is insecure; use it only to talk to legacy cards")
		}
	}
	pkt, err := ota.WrapCommand(c, k)
	if err != nil {
		return err
	}
	if *udh {
		pkt = append(append([]byte{}, ota.CommandUDH...), pkt...)
	}
	fmt.Fprintln(e.stdout, hex.EncodeToString(pkt))
	return nil
}

func keysArg(kicKey, kidKey string, needKIc, needKID bool) (ota.Keys, error) {
	var k ota.Keys
	var err error
	if kicKey != "" {
		if k.KIc, err = hexArg("--kic-key", kicKey); err != nil {
			return k, err
		}
	} else if needKIc {
		return k, usagef("--kic-key is required: the SPI asks for ciphering")
	}
	if kidKey != "" {
		if k.KID, err = hexArg("--kid-key", kidKey); err != nil {
			return k, err
		}
	} else if needKID {
		return k, usagef("--kid-key is required: the SPI asks for a cryptographic checksum")
	}
	return k, nil
}

// unwrapped is the JSON that ota unwrap prints. Hex strings are lowercase.
type unwrapped struct {
	SPI     string  `json:"spi"`
	KIc     string  `json:"kic"`
	KID     string  `json:"kid"`
	TAR     string  `json:"tar"`
	Counter string  `json:"counter"`
	PCNTR   int     `json:"pcntr"`
	Status  *string `json:"status,omitempty"`
	CC      string  `json:"cc"`
	CCOK    bool    `json:"cc_ok"`
	Secured *bool   `json:"secured,omitempty"`
	Data    string  `json:"data"`
}

func counterHex(v uint64) string { return fmt.Sprintf("%010x", v) }

func runOTAUnwrap(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "ota unwrap", "PACKET_HEX",
		"Decodes a secured command packet (with or without the 02 70 00 header), or with --response a response\n"+
			"packet (with or without 02 71 00), deciphers it, verifies its checksum and prints one JSON object.\n"+
			"It exits with status 1 when the checksum does not match and 2 when the packet is malformed.")
	response := fs.Bool("response", false, "decode a response packet (PoR); needs --spi, --kic and --kid of the command")
	spiS := fs.String("spi", "", "with --response: the command's SPI, 4 hex digits")
	kicS := fs.String("kic", "", "with --response: the command's KIc octet")
	kidS := fs.String("kid", "", "with --response: the command's KID octet")
	kicKey := fs.String("kic-key", "", "ciphering key, hex")
	kidKey := fs.String("kid-key", "", "checksum key, hex")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one PACKET_HEX argument, got %d", len(pos))
	}
	pkt, err := hexArg("PACKET_HEX", pos[0])
	if err != nil {
		return err
	}
	if *response {
		return unwrapResponse(e, pkt, *spiS, *kicS, *kidS, *kicKey, *kidKey)
	}
	if *spiS != "" || *kicS != "" || *kidS != "" {
		return usagef("--spi, --kic and --kid are read from a command packet; give them only with --response")
	}
	p, err := ota.ParseCommandPacket(ota.TrimCommandUDH(pkt))
	if err != nil {
		return otaUsage(err)
	}
	k, err := keysArg(*kicKey, *kidKey, p.SPI.Ciphered, p.SPI.Integrity == ota.CC)
	if err != nil {
		return err
	}
	c, err := p.Open(k)
	var oe *ota.Error
	if err != nil && (c == nil || !errors.As(err, &oe) || oe.Status != ota.StatusIntegrityFailed) {
		return otaUsage(err)
	}
	out := unwrapped{
		SPI: p.SPI.String(), KIc: fmt.Sprintf("%02x", p.KIc), KID: fmt.Sprintf("%02x", p.KID),
		TAR: p.TAR.String(), Counter: counterHex(c.Counter), PCNTR: c.PCNTR,
		CC: hex.EncodeToString(c.Check), CCOK: err == nil, Data: hex.EncodeToString(c.Data),
	}
	if perr := printJSON(e, out); perr != nil {
		return perr
	}
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "ota: "))
	}
	return nil
}

func unwrapResponse(e *env, pkt []byte, spiS, kicS, kidS, kicKey, kidKey string) error {
	if spiS == "" || kicS == "" || kidS == "" {
		return usagef("--response needs --spi, --kic and --kid: a response packet does not carry them")
	}
	spi, err := spiArg(spiS)
	if err != nil {
		return err
	}
	cmd := &ota.Command{SPI: spi}
	if cmd.KIc, err = byteArg("--kic", kicS); err != nil {
		return err
	}
	if cmd.KID, err = byteArg("--kid", kidS); err != nil {
		return err
	}
	// An unsecured error report (RHL 0A) needs no keys, whatever the SPI.
	trimmed := ota.TrimResponseUDH(pkt)
	unsecured := len(trimmed) > 2 && trimmed[2] == 0x0a
	k, err := keysArg(kicKey, kidKey, spi.PoRCiphered && !unsecured, spi.PoRIntegrity == ota.CC && !unsecured)
	if err != nil {
		return err
	}
	r, err := ota.OpenResponse(pkt, cmd, k)
	if r == nil {
		return otaUsage(err)
	}
	status := fmt.Sprintf("%02x", byte(r.Status))
	secured := r.Secured
	out := unwrapped{
		SPI: spi.String(), KIc: fmt.Sprintf("%02x", cmd.KIc), KID: fmt.Sprintf("%02x", cmd.KID),
		TAR: r.TAR.String(), Counter: counterHex(r.Counter), PCNTR: r.PCNTR, Status: &status,
		CC: hex.EncodeToString(r.Check), CCOK: err == nil && (r.Secured || spi.PoRIntegrity == ota.NoIntegrity),
		Secured: &secured, Data: hex.EncodeToString(r.Data),
	}
	if perr := printJSON(e, out); perr != nil {
		return perr
	}
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "ota: "))
	}
	return nil
}

func printJSON(e *env, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

// otaUsage reports a malformed packet in one line, without repeating the
// package prefix after the command name.
func otaUsage(err error) error {
	return usageError{errors.New(strings.TrimPrefix(err.Error(), "ota: "))}
}

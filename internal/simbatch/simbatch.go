// Package simbatch reads and writes the operator's file of a SIM
// personalisation batch: for every card its ICCID, IMSI, MSISDN, the TAR
// of the Mobile ID applet and the OTA key set (KIc, KID and their keys).
//
// The file is what a SIM vendor hands to the operator alongside the
// physical cards; the operator imports it into the Signature Server, which
// stores the keys encrypted. It is a CSV file with a version line first so
// that a later format can be told apart. It holds secret keys: it must be
// kept like one and never logged.
package simbatch

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"mobileid/internal/ota"
)

// Version is the first line of every file in this format.
const Version = "# mobileid SIM batch v1"

var header = []string{"iccid", "imsi", "msisdn", "tar", "kic", "kid", "kic_key", "kid_key"}

// Record is one SIM of a batch.
type Record struct {
	ICCID  string
	IMSI   string
	MSISDN string // E.164 with a leading +
	TAR    ota.TAR
	KIc    byte // KIc octet of the OTA key set (algorithm and key index)
	KID    byte // KID octet of the OTA key set
	KIcKey []byte
	KIDKey []byte
}

// Validate checks every field.
func (r *Record) Validate() error {
	if err := ValidICCID(r.ICCID); err != nil {
		return err
	}
	if !digits(r.IMSI) || len(r.IMSI) < 6 || len(r.IMSI) > 15 {
		return fmt.Errorf("simbatch: IMSI %q: want 6 to 15 digits", r.IMSI)
	}
	if err := ValidMSISDN(r.MSISDN); err != nil {
		return err
	}
	if a, err := ota.CipherAlgorithm(r.KIc); err != nil || a != ota.AlgAES {
		return fmt.Errorf("simbatch: KIc %02x: want an AES key set", r.KIc)
	}
	if a, err := ota.IntegrityAlgorithm(r.KID, ota.CC); err != nil || a != ota.AlgAES {
		return fmt.Errorf("simbatch: KID %02x: want an AES key set", r.KID)
	}
	for _, k := range [][]byte{r.KIcKey, r.KIDKey} {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("simbatch: ICCID %s: AES key of %d bytes", r.ICCID, n)
		}
	}
	return nil
}

// ValidICCID checks an ICCID: 19 or 20 digits, starting 89, with a correct
// Luhn check digit (ITU-T E.118).
func ValidICCID(s string) error {
	if !digits(s) || len(s) < 19 || len(s) > 20 || !strings.HasPrefix(s, "89") {
		return fmt.Errorf("simbatch: ICCID %q: want 19 or 20 digits starting 89", s)
	}
	if LuhnDigit(s[:len(s)-1]) != s[len(s)-1] {
		return fmt.Errorf("simbatch: ICCID %q: wrong check digit", s)
	}
	return nil
}

// ValidMSISDN checks an international number: + then 8 to 15 digits.
func ValidMSISDN(s string) error {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || !digits(s[1:]) || s[1] == '0' {
		return fmt.Errorf("simbatch: MSISDN %q: want + and 8 to 15 digits", s)
	}
	return nil
}

// LuhnDigit returns the Luhn check digit for the digit string s.
func LuhnDigit(s string) byte {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Writer writes a batch file record by record, so that large batches need
// not be held in memory.
type Writer struct {
	w *csv.Writer
}

// NewWriter writes the version line and the CSV header to w.
func NewWriter(w io.Writer) (*Writer, error) {
	if _, err := io.WriteString(w, Version+"\n"); err != nil {
		return nil, fmt.Errorf("write batch header: %w", err)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return nil, fmt.Errorf("write batch header: %w", err)
	}
	return &Writer{w: cw}, nil
}

// Write validates and writes one record.
func (w *Writer) Write(r *Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return w.w.Write([]string{
		r.ICCID, r.IMSI, r.MSISDN, r.TAR.String(),
		fmt.Sprintf("%02x", r.KIc), fmt.Sprintf("%02x", r.KID),
		hex.EncodeToString(r.KIcKey), hex.EncodeToString(r.KIDKey),
	})
}

// Flush writes buffered records and reports any write error.
func (w *Writer) Flush() error {
	w.w.Flush()
	return w.w.Error()
}

// Read parses a whole batch file. Every record is validated, and ICCIDs,
// IMSIs and MSISDNs must be unique within the file; the first problem is
// returned with its line number.
func Read(r io.Reader) ([]Record, error) {
	br := bufio.NewReader(r)
	first, err := br.ReadString('\n')
	if strings.TrimRight(first, "\r\n") != Version {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read batch: %w", err)
		}
		return nil, fmt.Errorf("simbatch: line 1: want %q", Version)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = true
	h, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("simbatch: line 2: %w", err)
	}
	if strings.Join(h, ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("simbatch: line 2: want header %s", strings.Join(header, ","))
	}
	var recs []Record
	seen := make(map[string]int)
	for line := 3; ; line++ {
		f, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("simbatch: %w", err)
		}
		rec, err := parseRecord(f)
		if err != nil {
			return nil, fmt.Errorf("simbatch: line %d: %s", line, strings.TrimPrefix(err.Error(), "simbatch: "))
		}
		for _, k := range []string{"iccid " + rec.ICCID, "imsi " + rec.IMSI, "msisdn " + rec.MSISDN} {
			if prev, dup := seen[k]; dup {
				return nil, fmt.Errorf("simbatch: line %d: %s repeats line %d", line, k, prev)
			}
			seen[k] = line
		}
		recs = append(recs, rec)
	}
}

func parseRecord(f []string) (Record, error) {
	r := Record{ICCID: f[0], IMSI: f[1], MSISDN: f[2]}
	var err error
	if r.TAR, err = ota.ParseTAR(f[3]); err != nil {
		return r, err
	}
	for i, dst := range []*byte{&r.KIc, &r.KID} {
		b, err := hex.DecodeString(f[4+i])
		if err != nil || len(b) != 1 {
			return r, fmt.Errorf("%s %q: want one hex octet", header[4+i], f[4+i])
		}
		*dst = b[0]
	}
	if r.KIcKey, err = hex.DecodeString(f[6]); err != nil {
		return r, fmt.Errorf("kic_key: not hex")
	}
	if r.KIDKey, err = hex.DecodeString(f[7]); err != nil {
		return r, fmt.Errorf("kid_key: not hex")
	}
	return r, r.Validate()
}

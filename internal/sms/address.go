package sms

import (
	"errors"
	"fmt"
	"time"
)

// TONAlphanumeric is the type of number whose address value is GSM 7-bit
// text rather than digits (TS 23.040 §9.1.2.5).
const TONAlphanumeric = 5

// maxAddrSemiOctets is the longest address value: 10 octets.
const maxAddrSemiOctets = 20

// Address is a TP-OA or TP-DA address (TS 23.040 §9.1.2.5).
type Address struct {
	TON byte // type of number, 0..7
	NPI byte // numbering plan identification, 0..15
	// Digits is the number using 0-9, '*', '#', 'a', 'b' and 'c' for the
	// semi-octet values 0..14, or the text for TONAlphanumeric.
	Digits string
}

// semiOctetDigits maps the semi-octet values 0..14 to Digits characters;
// 15 is the filler.
const semiOctetDigits = "0123456789*#abc"

func (a Address) append(b []byte) ([]byte, error) {
	if a.TON > 7 || a.NPI > 15 {
		return nil, fmt.Errorf("sms: address TON %d / NPI %d out of range", a.TON, a.NPI)
	}
	toa := 0x80 | a.TON<<4 | a.NPI
	if a.TON == TONAlphanumeric {
		septets, err := EncodeGSM7(a.Digits)
		if err != nil {
			return nil, err
		}
		packed := Pack7(septets, 0)
		if len(packed) > maxAddrSemiOctets/2 {
			return nil, fmt.Errorf("sms: alphanumeric address %q longer than 10 octets", a.Digits)
		}
		// The length counts the semi-octets the septets actually use.
		b = append(b, byte((7*len(septets)+3)/4), toa)
		return append(b, packed...), nil
	}
	if len(a.Digits) > maxAddrSemiOctets {
		return nil, fmt.Errorf("sms: address %q longer than %d digits", a.Digits, maxAddrSemiOctets)
	}
	b = append(b, byte(len(a.Digits)), toa)
	for i := 0; i < len(a.Digits); i += 2 {
		lo, hi := digitValue(a.Digits[i]), byte(0x0F)
		if i+1 < len(a.Digits) {
			hi = digitValue(a.Digits[i+1])
		}
		if lo > 14 || hi > 15 {
			return nil, fmt.Errorf("sms: address %q has a character with no semi-octet code", a.Digits)
		}
		b = append(b, hi<<4|lo)
	}
	return b, nil
}

func digitValue(c byte) byte {
	for i := range len(semiOctetDigits) {
		if semiOctetDigits[i] == c {
			return byte(i)
		}
	}
	return 0xFF
}

// parseAddress decodes an address field at the start of b and returns it
// with the number of octets it occupied.
func parseAddress(b []byte) (Address, int, error) {
	if len(b) < 2 {
		return Address{}, 0, errors.New("sms: truncated address")
	}
	l := int(b[0])
	if l > maxAddrSemiOctets {
		return Address{}, 0, fmt.Errorf("sms: address length %d exceeds %d semi-octets", l, maxAddrSemiOctets)
	}
	n := 2 + (l+1)/2
	if len(b) < n {
		return Address{}, 0, fmt.Errorf("sms: address of %d semi-octets truncated", l)
	}
	a := Address{TON: b[1] >> 4 & 7, NPI: b[1] & 0x0F}
	val := b[2:n]
	if a.TON == TONAlphanumeric {
		septets, err := Unpack7(val, 0, l*4/7)
		if err != nil {
			return Address{}, 0, err
		}
		if a.Digits, err = DecodeGSM7(septets); err != nil {
			return Address{}, 0, err
		}
		return a, n, nil
	}
	digits := make([]byte, l)
	for i := range digits {
		v := val[i/2] >> (4 * (i % 2)) & 0x0F
		if v == 0x0F {
			return Address{}, 0, errors.New("sms: filler semi-octet inside address digits")
		}
		digits[i] = semiOctetDigits[v]
	}
	// The filler of an odd-length address is not checked: it carries no
	// information and some senders do not set it to F.
	a.Digits = string(digits)
	return a, n, nil
}

// SCTSTime returns the time a service centre time stamp (TS 23.040
// §9.2.3.11) denotes, with the time zone given in quarters of an hour
// east of UTC (-79..79). It is the form ParseDeliver returns.
func SCTSTime(year int, month time.Month, day, hour, min, sec, tzQuarters int) time.Time {
	return time.Date(year, month, day, hour, min, sec, 0, time.FixedZone("", tzQuarters*15*60))
}

func swapBCD(v int) byte { return byte(v%10<<4 | v/10) }

// appendSCTS encodes t in its own zone as 7 swapped semi-octet pairs; the
// century is implied (2000..2099) and fractions of a second are dropped.
func appendSCTS(b []byte, t time.Time) ([]byte, error) {
	_, off := t.Zone()
	q := off / 900
	if off%900 != 0 || q < -79 || q > 79 {
		return nil, fmt.Errorf("sms: time zone offset %ds is not a whole number of quarter hours within ±79", off)
	}
	if t.Year() < 2000 || t.Year() > 2099 {
		return nil, fmt.Errorf("sms: year %d cannot be encoded in a time stamp", t.Year())
	}
	tz := swapBCD(max(q, -q))
	if q < 0 {
		tz |= 0x08
	}
	return append(b, swapBCD(t.Year()-2000), swapBCD(int(t.Month())), swapBCD(t.Day()),
		swapBCD(t.Hour()), swapBCD(t.Minute()), swapBCD(t.Second()), tz), nil
}

// parseSCTS decodes a 7-octet time stamp; two-digit years map to 2000..2099.
func parseSCTS(b []byte) (time.Time, error) {
	if len(b) < 7 {
		return time.Time{}, errors.New("sms: truncated time stamp")
	}
	var f [6]int
	for i := range f {
		lo, hi := int(b[i]&0x0F), int(b[i]>>4)
		if lo > 9 || hi > 9 {
			return time.Time{}, fmt.Errorf("sms: time stamp octet %d (0x%02x) is not BCD", i, b[i])
		}
		f[i] = lo*10 + hi
	}
	tzTens, tzUnits := int(b[6]&0x07), int(b[6]>>4)
	if tzUnits > 9 {
		return time.Time{}, fmt.Errorf("sms: time zone octet 0x%02x is not BCD", b[6])
	}
	q := tzTens*10 + tzUnits
	if b[6]&0x08 != 0 {
		q = -q
	}
	t := SCTSTime(2000+f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], q)
	// time.Date normalises out-of-range fields; a mismatch means an invalid date.
	if int(t.Month()) != f[1] || t.Day() != f[2] || t.Hour() != f[3] || t.Minute() != f[4] || t.Second() != f[5] {
		return time.Time{}, fmt.Errorf("sms: invalid time stamp %x", b[:7])
	}
	return t, nil
}

package registration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// refCheckDigit is the personal-code check digit computed straight from
// the published rule, with the two weight rows written out, so that the
// package's arithmetic is checked against something it does not share.
func refCheckDigit(ten string) byte {
	w1 := [10]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 1}
	w2 := [10]int{3, 4, 5, 6, 7, 8, 9, 1, 2, 3}
	var s1, s2 int
	for i := range 10 {
		s1 += int(ten[i]-'0') * w1[i]
		s2 += int(ten[i]-'0') * w2[i]
	}
	switch {
	case s1%11 != 10:
		return byte('0' + s1%11)
	case s2%11 != 10:
		return byte('0' + s2%11)
	}
	return '0'
}

// withCheckDigit completes the first ten digits of a personal code.
func withCheckDigit(ten string) string { return ten + string(refCheckDigit(ten)) }

func estonian() PersonalCode {
	return PersonalCode{Label: "Estonian personal identification code (isikukood)"}
}

func TestPersonalCodeValid(t *testing.T) {
	tests := []struct {
		code string
		dob  time.Time
	}{
		{"37605030299", date(1976, 5, 3)},
		{"60001019906", date(2000, 1, 1)}, // the SK test persona
		{"38001085718", date(1980, 1, 8)},
		// The first weighted sum is 10: the second row of weights decides.
		{"37605030064", date(1976, 5, 3)},
		// Both sums are 10: the check digit is 0.
		{"37605030920", date(1976, 5, 3)},
		// Every century and sex digit, and the ends of the ranges.
		{withCheckDigit("1991231000"), date(1899, 12, 31)},
		{withCheckDigit("2000101999"), date(1800, 1, 1)},
		{withCheckDigit("3000101000"), date(1900, 1, 1)},
		{withCheckDigit("4991231123"), date(1999, 12, 31)},
		{withCheckDigit("5240229456"), date(2024, 2, 29)},
		{withCheckDigit("6000229789"), date(2000, 2, 29)}, // 2000 is a leap year
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			dob, err := estonian().Check(tt.code)
			if err != nil {
				t.Fatalf("Check(%s) = %v", tt.code, err)
			}
			if !dob.Equal(tt.dob) || dob.Location() != time.UTC {
				t.Errorf("Check(%s) = %v, want %v", tt.code, dob, tt.dob)
			}
		})
	}
}

// TestPersonalCodeCheckDigitAgrees checks every serial of a few dates
// against refCheckDigit: each code with the right digit is accepted and
// the nine others are refused.
func TestPersonalCodeCheckDigitAgrees(t *testing.T) {
	for _, prefix := range []string{"3760503", "4991231", "6240229", "1000101"} {
		for serial := range 1000 {
			ten := fmt.Sprintf("%s%03d", prefix, serial)
			for c := byte('0'); c <= '9'; c++ {
				_, err := estonian().Check(ten + string(c))
				if want := c == refCheckDigit(ten); (err == nil) != want {
					t.Fatalf("Check(%s%c) = %v, want accepted = %v", ten, c, err, want)
				}
			}
		}
	}
}

func TestPersonalCodeInvalid(t *testing.T) {
	tests := []struct {
		name, code, want string
	}{
		{"impossible date", withCheckDigit("3800230571"), "1980-02-30, which does not exist"},
		{"month 13", withCheckDigit("3801301000"), "1980-13-01, which does not exist"},
		{"day 0", withCheckDigit("3800100000"), "1980-01-00, which does not exist"},
		{"1900 not a leap year", withCheckDigit("3000229000"), "1900-02-29, which does not exist"},
		{"bad check digit", "37605030298", "check digit"},
		{"ten digits", "3760503029", "11 digits, not 10"},
		{"twelve digits", "376050302990", "11 digits, not 12"},
		{"empty", "", "11 digits, not 0"},
		{"letter", "3760503029A", "only digits, so 'A'"},
		{"space", "376 0503029", "only digits, so ' '"},
		{"century 0", withCheckDigit("0760503029"), "from 1 to 6, not 0"},
		{"century 7", withCheckDigit("7760503029"), "from 1 to 6, not 7"},
		{"century 9", withCheckDigit("9760503029"), "from 1 to 6, not 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dob, err := estonian().Check(tt.code)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check(%s) = %v, want an error containing %q", tt.code, err, tt.want)
			}
			if !dob.IsZero() {
				t.Errorf("Check(%s) returned date of birth %v with an error", tt.code, dob)
			}
			if msg := err.Error(); !strings.Contains(msg, estonian().Name()) && !strings.Contains(msg, "check digit") {
				t.Errorf("Check(%s) = %q does not name the kind of code", tt.code, msg)
			}
		})
	}
}

func TestGenericNationalID(t *testing.T) {
	valid := []string{"1234", "AB123456", "010180123A", "12345678901234567890", "X1YZ"}
	for _, id := range valid {
		t.Run(id, func(t *testing.T) {
			dob, err := GenericNationalID{}.Check(id)
			if err != nil || !dob.IsZero() {
				t.Errorf("Check(%s) = %v, %v, want zero date and no error", id, dob, err)
			}
		})
	}
	invalid := []struct {
		name, id, want string
	}{
		{"too short", "A12", "4 to 20"},
		{"too long", strings.Repeat("1", 21), "this one has 21"},
		{"no digit", "ABCDEF", "at least one digit"},
		{"lower case", "ab1234", "only capital letters A–Z and digits, not 'a'"},
		{"dash", "010180-123A", "not '-'"},
		{"non-ASCII letter", "Ä12345", "not 'Ä'"},
		{"empty", "", "this one has 0"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := GenericNationalID{}.Check(tt.id)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check(%q) = %v, want an error containing %q", tt.id, err, tt.want)
			}
		})
	}
}

type fakeValidator struct{}

func (fakeValidator) Check(id string) (time.Time, error) { return time.Time{}, errors.New("fake") }
func (fakeValidator) Name() string                       { return "fake number" }

func TestNationalIDsFor(t *testing.T) {
	d := DefaultNationalIDs()
	custom := DefaultNationalIDs()
	custom.Register("fi", fakeValidator{})
	var zero NationalIDs
	tests := []struct {
		name    string
		n       *NationalIDs
		country string
		want    string // Name of the validator
	}{
		{"EE", d, "EE", "Estonian personal identification code (isikukood)"},
		{"LT", d, "LT", "Lithuanian personal code (asmens kodas)"},
		{"lower case", d, "ee", "Estonian personal identification code (isikukood)"},
		{"other", d, "FI", "national identification number"},
		{"unknown", d, "XX", "national identification number"},
		{"empty", d, "", "national identification number"},
		{"registered", custom, "FI", "fake number"},
		{"registered keeps defaults", custom, "LT", "Lithuanian personal code (asmens kodas)"},
		{"nil is the default", nil, "EE", "Estonian personal identification code (isikukood)"},
		{"zero value", &zero, "EE", "national identification number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.n.For(tt.country).Name(); got != tt.want {
				t.Errorf("For(%q).Name() = %q, want %q", tt.country, got, tt.want)
			}
		})
	}
	if _, err := d.For("FI").Check("38001085718"); err != nil {
		t.Errorf("generic Check(38001085718) = %v", err)
	}
	if _, err := d.For("LT").Check("38001085719"); err == nil {
		t.Error("LT Check(38001085719) accepted a wrong check digit")
	}
	// Registering on the zero value works: it is how a caller builds a
	// set without the defaults.
	zero.Register("EE", fakeValidator{})
	if got := zero.For("EE").Name(); got != "fake number" {
		t.Errorf("zero.For(EE) after Register = %q", got)
	}
}

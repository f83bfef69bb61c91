package registration

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// A NationalIDValidator knows the format of one country's national
// identification numbers.
//
// The error Check returns is shown to the registration officer next to the
// national ID field as it is, so it is one English sentence saying what is
// wrong, not a Go-style error fragment.
type NationalIDValidator interface {
	// Check validates id (already normalized) and returns the date of birth it encodes (zero if the format has none).
	Check(id string) (dob time.Time, err error)
	// Name describes the kind of number for people, e.g. "Estonian
	// personal identification code (isikukood)".
	Name() string
}

// NationalIDs is the pluggable set of national-ID validators by country.
// Countries without a validator of their own get GenericNationalID.
//
// Register is meant for setup: it must not run concurrently with For or
// with an Identity's Validate using the same NationalIDs. A nil
// *NationalIDs behaves like DefaultNationalIDs, so that a forgotten
// argument never turns the Estonian and Lithuanian checks off.
type NationalIDs struct {
	byCountry map[string]NationalIDValidator
}

// DefaultNationalIDs returns the validators this project knows: the
// personal codes of Estonia (EE) and Lithuania (LT), which share one
// format, and GenericNationalID for every other country.
func DefaultNationalIDs() *NationalIDs {
	n := new(NationalIDs)
	n.Register("EE", PersonalCode{Label: "Estonian personal identification code (isikukood)"})
	n.Register("LT", PersonalCode{Label: "Lithuanian personal code (asmens kodas)"})
	return n
}

// Register makes v the validator of national IDs issued by country (an
// ISO 3166-1 alpha-2 code, in any case), replacing any earlier one.
func (n *NationalIDs) Register(country string, v NationalIDValidator) {
	if n.byCountry == nil {
		n.byCountry = make(map[string]NationalIDValidator)
	}
	n.byCountry[strings.ToUpper(country)] = v
}

// For returns the validator for national IDs issued by country, or
// GenericNationalID when none is registered.
func (n *NationalIDs) For(country string) NationalIDValidator {
	if n == nil {
		n = DefaultNationalIDs()
	}
	if v, ok := n.byCountry[strings.ToUpper(country)]; ok {
		return v
	}
	return GenericNationalID{}
}

// PersonalCode validates the 11-digit personal code that Estonia
// (isikukood, standard EVS 585) and Lithuania (asmens kodas) both use:
// GYYMMDDSSSC, where G gives the century and sex, YYMMDD the date of birth,
// SSS tells apart people born on the same day and C is a check digit.
type PersonalCode struct {
	// Label is what Name returns and what the messages call the code.
	Label string
}

// Name returns p.Label.
func (p PersonalCode) Name() string { return p.Label }

// Check validates id and returns the date of birth it encodes.
func (p PersonalCode) Check(id string) (time.Time, error) {
	for _, r := range id {
		if r < '0' || r > '9' {
			return time.Time{}, fmt.Errorf("The %s has only digits, so %q cannot be part of it.", p.Label, r)
		}
	}
	if len(id) != 11 {
		return time.Time{}, fmt.Errorf("The %s has 11 digits, not %d.", p.Label, len(id))
	}
	d := func(i int) int { return int(id[i] - '0') }
	g := d(0)
	if g < 1 || g > 6 {
		return time.Time{}, fmt.Errorf("The %s starts with a digit from 1 to 6, not %d.", p.Label, g)
	}
	// G = 1, 2 for the 1800s, 3, 4 for the 1900s, 5, 6 for the 2000s;
	// odd for men, even for women.
	year := 1800 + (g-1)/2*100 + d(1)*10 + d(2)
	month, day := d(3)*10+d(4), d(5)*10+d(6)
	dob := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	// time.Date normalizes out-of-range values (February 30 becomes
	// March 2), so a round trip tells a real date from an impossible one.
	if dob.Year() != year || int(dob.Month()) != month || dob.Day() != day {
		return time.Time{}, fmt.Errorf("The %s encodes the date of birth %04d-%02d-%02d, which does not exist.", p.Label, year, month, day)
	}
	if c := personalCodeCheckDigit(id[:10]); int(id[10]-'0') != c {
		return time.Time{}, fmt.Errorf("The check digit of the %s does not match; look for a mistyped digit.", p.Label)
	}
	return dob, nil
}

// personalCodeCheckDigit computes the check digit of the first ten digits
// of a personal code: a weighted sum modulo 11, and when that gives 10, a
// second pass with shifted weights, and 0 if that gives 10 again.
func personalCodeCheckDigit(ten string) int {
	sum := func(first int) int {
		s := 0
		for i := range 10 {
			w := (first+i-1)%9 + 1 // first, first+1, …, 9, 1, 2, …
			s += int(ten[i]-'0') * w
		}
		return s % 11
	}
	if r := sum(1); r != 10 {
		return r
	}
	if r := sum(3); r != 10 {
		return r
	}
	return 0
}

// GenericNationalID is the validator for countries without one of their
// own. It accepts what any national number and the CA's subject rules
// have in common: 4 to 20 capital letters A–Z and digits, with at least
// one digit. It knows no date of birth.
type GenericNationalID struct{}

// Name returns "national identification number".
func (GenericNationalID) Name() string { return "national identification number" }

// Check validates id.
func (GenericNationalID) Check(id string) (time.Time, error) {
	hasDigit := false
	n := 0
	for _, r := range id {
		n++
		switch {
		case '0' <= r && r <= '9':
			hasDigit = true
		case 'A' <= r && r <= 'Z':
		default:
			return time.Time{}, fmt.Errorf("The national ID may contain only capital letters A–Z and digits, not %q; leave out spaces, dashes and other separators.", r)
		}
	}
	if n < 4 || n > 20 {
		return time.Time{}, fmt.Errorf("The national ID has 4 to 20 letters and digits; this one has %d.", n)
	}
	if !hasDigit {
		return time.Time{}, errors.New("The national ID must contain at least one digit.")
	}
	return time.Time{}, nil
}

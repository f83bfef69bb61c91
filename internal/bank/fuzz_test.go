package bank

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseIBAN checks that any input gives an IBAN in electronic form
// whose check digits hold, or an error, and that an accepted IBAN is
// accepted again unchanged, also as printed in groups.
func FuzzParseIBAN(f *testing.F) {
	for _, s := range []string{"EE382200221020145685", "ee38 2200 2210 2014 5685", "GB82WEST12345698765432",
		"EE38220022102014568", "NO9386011117947", "", "EE38-€", "ZZ0012345678901234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		iban, err := parseIBAN(s)
		if err != nil {
			if iban != "" {
				t.Errorf("parseIBAN(%q) = %q with error %v", s, iban, err)
			}
			return
		}
		if len(iban) < 15 || len(iban) > 34 || ibanMod97(iban) != 1 {
			t.Fatalf("parseIBAN(%q) = %q: bad length or check digits", s, iban)
		}
		for i := range len(iban) {
			if !isUpper(iban[i]) && !isDigit(iban[i]) {
				t.Fatalf("parseIBAN(%q) = %q: not in electronic form", s, iban)
			}
		}
		for _, again := range []string{iban, formatIBAN(iban)} {
			if got, err := parseIBAN(again); err != nil || got != iban {
				t.Errorf("parseIBAN(%q) = %q, %v, want %q", again, got, err, iban)
			}
		}
	})
}

// FuzzParseAmount checks that any input gives a positive amount in cents
// that prints back to an equal amount, or an error.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.50", "12,5", "0", "0.001", "-1", "9999999999.99", "10000000000", "1e3", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cents, err := parseAmount(s)
		if err != nil {
			return
		}
		if cents <= 0 || cents > 999999999999 {
			t.Fatalf("parseAmount(%q) = %d, out of range", s, cents)
		}
		if got, err := parseAmount(formatAmount(cents)); err != nil || got != cents {
			t.Errorf("parseAmount(formatAmount(%d)) = %d, %v", cents, got, err)
		}
	})
}

// FuzzDisplayText checks that whatever a payee is called, the phone gets
// at most 40 GSM-7 characters, starting with the amount.
func FuzzDisplayText(f *testing.F) {
	for _, s := range []string{"ACME", "Šveits Õun OÜ", "Газпром", "{€}", strings.Repeat("x", 100), "\x00\n"} {
		f.Add(int64(1250), s)
	}
	f.Fuzz(func(t *testing.T, cents int64, payee string) {
		if cents <= 0 || cents > 999999999999 || !utf8.ValidString(payee) {
			return
		}
		got := displayText(cents, "EUR", payee)
		if n := utf8.RuneCountInString(got); n > maxDisplayText {
			t.Errorf("displayText(%d, %q) = %q has %d characters", cents, payee, got, n)
		}
		if !strings.HasPrefix(got, "Pay "+formatAmount(cents)+" EUR to") {
			t.Errorf("displayText(%d, %q) = %q", cents, payee, got)
		}
		for _, r := range got {
			if !strings.ContainsRune(gsm7Basic, r) {
				t.Errorf("displayText(%d, %q) = %q has %q outside GSM-7", cents, payee, got, r)
			}
		}
	})
}

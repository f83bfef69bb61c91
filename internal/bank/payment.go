package bank

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the payment form. 70 and 140 characters are SEPA's limits for
// the creditor's name and the unstructured remittance information.
const (
	maxPayeeName = 70
	maxReference = 140
	// maxAmountDigits bounds the whole part of an amount, so that every
	// amount in cents fits an int64 with room to spare.
	maxAmountDigits = 10
	// maxDisplayText is what fits one SMS to the phone after the bank's
	// name: MID allows 100 GSM-7 characters, but the request must travel
	// in one short message beside the rest of the applet's command.
	maxDisplayText = 40
)

// formError is a message for the customer about what they typed, shown
// next to the form field.
type formError string

func (e formError) Error() string { return string(e) }

// ibanLengths are the lengths of the IBANs of the countries of the IBAN
// registry (ISO 13616) a customer of a European bank pays to most. Other
// countries are held to the general rule, 15 to 34 characters.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
	"MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
	"QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// parseIBAN returns the IBAN s in its electronic form (upper case, no
// spaces), or an error that says, for the customer, what is wrong with it.
// The check digits are verified with ISO 7064 MOD 97-10: the number made
// of the IBAN with its first four characters moved to the end, letters
// counting 10 to 35, leaves 1 when divided by 97.
func parseIBAN(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\u00a0':
			// People copy IBANs in groups of four.
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", formError("An IBAN has only letters and digits.")
		}
	}
	iban := b.String()
	switch {
	case iban == "":
		return "", formError("Enter the payee's IBAN.")
	case len(iban) < 15 || len(iban) > 34:
		return "", formError("An IBAN has 15 to 34 letters and digits.")
	case !isUpper(iban[0]) || !isUpper(iban[1]) || !isDigit(iban[2]) || !isDigit(iban[3]):
		return "", formError("An IBAN starts with a country code and two check digits, e.g. EE38 2200 2210 2014 5685.")
	}
	if n, ok := ibanLengths[iban[:2]]; ok && len(iban) != n {
		return "", formError(fmt.Sprintf("An IBAN of %s has %d characters; this one has %d.", iban[:2], n, len(iban)))
	}
	if ibanMod97(iban) != 1 {
		return "", formError("The IBAN's check digits do not match: check it for typing errors.")
	}
	return iban, nil
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ibanMod97 returns the IBAN's number modulo 97, digit by digit so that
// no big numbers are needed. iban holds only A–Z and 0–9.
func ibanMod97(iban string) int {
	rem := 0
	for _, c := range []byte(iban[4:] + iban[:4]) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return rem
}

// makeIBAN returns the IBAN of country, with check digits computed for
// bban, which holds only A–Z and 0–9.
func makeIBAN(country, bban string) string {
	check := 98 - ibanMod97(country+"00"+bban)
	return fmt.Sprintf("%s%02d%s", country, check, bban)
}

// formatIBAN writes an IBAN in groups of four, as it is printed.
func formatIBAN(iban string) string {
	var b strings.Builder
	for i := 0; i < len(iban); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(iban[i:min(i+4, len(iban))])
	}
	return b.String()
}

// parseAmount returns the amount s in cents. It takes a whole number of
// euros with at most two decimals after a point or a comma ("12", "12.5",
// "12,50"); no signs, exponents or thousands separators. The error says,
// for the customer, what is wrong.
func parseAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, formError("Enter the amount.")
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !hasFrac {
		whole, frac, hasFrac = strings.Cut(s, ",")
	}
	if whole == "" || !allDigits(whole) || hasFrac && (frac == "" || !allDigits(frac)) {
		return 0, formError("Enter the amount in euros, e.g. 12.50.")
	}
	if len(frac) > 2 {
		return 0, formError("An amount has at most two decimals.")
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > maxAmountDigits {
		return 0, formError("The amount is too large.")
	}
	var cents int64
	for _, c := range []byte(whole + (frac + "00")[:2]) {
		cents = cents*10 + int64(c-'0')
	}
	if cents == 0 {
		return 0, formError("The amount must be more than zero.")
	}
	return cents, nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// formatAmount writes cents as euros with two decimals and no grouping,
// as in the payment order and on the phone: 1250 is "12.50".
func formatAmount(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

// formatMoney writes cents with thousands separators, for pages:
// 250000 is "2,500.00".
func formatMoney(cents int64) string {
	s := formatAmount(cents)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String() + "." + frac
}

// cleanText trims s and collapses its runs of white space to one space.
// ok is false when s holds another control character, a bidirectional
// control (which could make a name read otherwise than it is), or is not
// UTF-8: such text has no place in a payment order.
func cleanText(s string) (out string, ok bool) {
	if !utf8.ValidString(s) {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !unicode.IsSpace(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return "", false
		}
	}
	return strings.Join(strings.Fields(s), " "), true
}

// gsm7Basic is the GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1)
// without its control codes: what a phone shows as one septet each.
const gsm7Basic = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsm7Fold maps the Latin letters with diacritics that GSM-7 lacks to the
// plain letter, so that "Šveits OÜ" reaches the phone as "Sveits OÜ".
// Each group is the letter followed by the letters it stands for.
var gsm7Fold = func() map[rune]rune {
	groups := []string{
		"AÀÁÂÃĀĂĄ", "aáâãāăą", "CĆĈĊČ", "cçćĉċč", "DĎĐ", "dďđ", "EÈÊËĒĔĖĘĚ", "eêëēĕėęě",
		"GĜĞĠĢ", "gĝğġģ", "HĤĦ", "hĥħ", "IÌÍÎÏĨĪĬĮİ", "iíîïĩīĭįı", "JĴ", "jĵ", "KĶ", "kķ",
		"LĹĻĽĿŁ", "lĺļľŀł", "NŃŅŇ", "nńņň", "OÒÓÔÕŌŎŐ", "oóôõōŏő", "RŔŖŘ", "rŕŗř",
		"SŚŜŞŠ", "sśŝşš", "TŢŤŦ", "tţťŧ", "UÙÚÛŨŪŬŮŰŲ", "uúûũūŭůűų", "WŴ", "wŵ",
		"YÝŶŸ", "yýÿŷ", "ZŹŻŽ", "zźżž",
	}
	m := map[rune]rune{}
	for _, g := range groups {
		rs := []rune(g)
		for _, r := range rs[1:] {
			m[r] = rs[0]
		}
	}
	return m
}()

// gsm7 returns s in the GSM-7 default alphabet, one septet per character:
// letters with diacritics GSM-7 lacks lose them, and every other character
// outside the alphabet (including those of its extension table, which
// take two septets) becomes '?'.
func gsm7(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			b.WriteRune(r)
		case gsm7Fold[r] != 0:
			b.WriteRune(gsm7Fold[r])
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// displayText returns what the phone shows after the bank's name, e.g.
// "Pay 12.50 EUR to ACME": GSM-7 and at most 40 characters, the payee's
// name cut short to fit.
func displayText(cents int64, currency, payee string) string {
	prefix := "Pay " + formatAmount(cents) + " " + currency + " to "
	name := []rune(gsm7(payee))
	if room := maxDisplayText - len(prefix); len(name) > room {
		name = name[:max(room, 0)]
	}
	return strings.TrimRight(prefix+string(name), " ")
}

// verificationCode returns the four digits the phone shows beside the
// request, from the hash as the MID API specifies: the top 6 bits of the
// first byte, then the low 7 bits of the last, as a number 0000–8191.
func verificationCode(hash []byte) string {
	if len(hash) == 0 {
		return "0000"
	}
	code := (int(hash[0])&0xFC)<<5 | int(hash[len(hash)-1])&0x7F
	return fmt.Sprintf("%04d", code)
}

// paymentOrder is what the customer signs.
type paymentOrder struct {
	ID              string // random, 32 hex digits
	Created         time.Time
	Bank            string
	PayerName       string
	PayerCountry    string
	PayerNationalID string
	PayerIBAN       string
	PayeeName       string
	PayeeIBAN       string
	Amount          int64 // cents
	Currency        string
	Reference       string
}

// paymentOrderVersion is the version line of the document format; a
// change of the format is a new version.
const paymentOrderVersion = "1"

// document returns the payment order in its canonical form, the bytes
// whose SHA-256 the customer signs: UTF-8 text, one "Name: value" line per
// field in a fixed order, each ended by a line feed; the time in UTC to
// the second (RFC 3339), the payer as the ETSI semantics identifier of
// the certificate ("PNOEE-…"), IBANs in electronic form, the amount with
// two decimals and a point. Control characters in a value become spaces,
// so that every field is one line whatever was typed; the form refuses
// them before.
func (o *paymentOrder) document() []byte {
	var b bytes.Buffer
	line := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				return ' '
			}
			return r
		}, value))
		b.WriteByte('\n')
	}
	b.WriteString("Payment order\n")
	line("Version", paymentOrderVersion)
	line("Order ID", o.ID)
	line("Created", o.Created.UTC().Format(time.RFC3339))
	line("Bank", o.Bank)
	line("Payer", o.PayerName)
	line("Payer ID", semanticsID(o.PayerCountry, o.PayerNationalID))
	line("Payer account", o.PayerIBAN)
	line("Payee", o.PayeeName)
	line("Payee account", o.PayeeIBAN)
	line("Amount", formatAmount(o.Amount)+" "+o.Currency)
	line("Reference", o.Reference)
	return b.Bytes()
}

// semanticsID is the ETSI EN 319 412-1 identifier of a national personal
// number, as the certificate's subject serialNumber carries it.
func semanticsID(country, nationalID string) string {
	return "PNO" + country + "-" + nationalID
}

// Errors of verifySignature.
var (
	errBadSignature = errors.New("signature does not verify")
	errCertificate  = errors.New("certificate not acceptable")
)

// verifySignature checks a Mobile ID signature over a SHA-256 hash as MID
// returns it: for an ECDSA key the raw r‖s (each as long as the curve's
// order), for an RSA key PKCS #1 v1.5; algorithm must name SHA-256 and the
// key's type. The certificate must be usable for signing and chain to
// roots (through intermediates) at the time at.
func verifySignature(cert *x509.Certificate, hash, sig []byte, algorithm string, roots, intermediates *x509.CertPool, at time.Time) error {
	if ku := cert.KeyUsage; ku != 0 && ku&(x509.KeyUsageContentCommitment|x509.KeyUsageDigitalSignature) == 0 {
		return fmt.Errorf("%w: its key usage does not allow signatures", errCertificate)
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if algorithm != "SHA256WithECEncryption" {
			return fmt.Errorf("%w: algorithm %q for an ECDSA key", errBadSignature, algorithm)
		}
		n := (pub.Curve.Params().N.BitLen() + 7) / 8
		if len(sig) != 2*n {
			return fmt.Errorf("%w: %d bytes, want %d (r‖s)", errBadSignature, len(sig), 2*n)
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(pub, hash, r, s) {
			return errBadSignature
		}
	case *rsa.PublicKey:
		if algorithm != "SHA256WithRSAEncryption" {
			return fmt.Errorf("%w: algorithm %q for an RSA key", errBadSignature, algorithm)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, hash, sig); err != nil {
			return errBadSignature
		}
	default:
		return fmt.Errorf("%w: key type %T", errCertificate, cert.PublicKey)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: intermediates, CurrentTime: at,
		// Signing certificates carry no extended key usage, or one of
		// their own; the key usage was checked above.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errCertificate, err)
	}
	return nil
}

// Subject attributes of natural persons' certificates (RFC 5280).
var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// signerName returns the name of the certificate's holder: the given
// name and surname of the subject, or its common name when it has none.
func signerName(cert *x509.Certificate) string {
	var given, sur string
	for _, a := range cert.Subject.Names {
		v, _ := a.Value.(string)
		switch {
		case a.Type.Equal(oidGivenName):
			given = v
		case a.Type.Equal(oidSurname):
			sur = v
		}
	}
	if name := strings.TrimSpace(given + " " + sur); name != "" {
		return name
	}
	return cert.Subject.CommonName
}

// attributeNames are the short names of the attributes that subjects
// and issuers of Mobile ID certificates use.
var attributeNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L",
	"2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.42": "GN", "2.5.4.97": "organizationIdentifier",
}

// dn writes a distinguished name for people to read, in the order of the
// certificate, e.g. "C=EE, CN=MÄNNIK,MARI-LIIS, SN=Männik, GN=Mari-Liis,
// serialNumber=PNOEE-47605030299". Unlike pkix.Name.String it names SN
// and GN and shows their text rather than hex.
func dn(name pkix.Name) string {
	parts := make([]string, 0, len(name.Names))
	for _, a := range name.Names {
		k := attributeNames[a.Type.String()]
		if k == "" {
			k = a.Type.String()
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, a.Value))
	}
	return strings.Join(parts, ", ")
}

// certSerial writes a certificate serial number in hex, as CAs print it.
func certSerial(cert *x509.Certificate) string {
	return strings.ToUpper(cert.SerialNumber.Text(16))
}

// maskID hides all but the last four characters of a national ID.
func maskID(id string) string {
	if len(id) <= 4 {
		return id
	}
	return strings.Repeat("•", len(id)-4) + id[len(id)-4:]
}

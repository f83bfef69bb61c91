package registration

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mobileid/internal/simbatch"
)

// Person is the natural person an RA officer identified at the desk. Once
// validated it is acceptable to the CA as a certificate subject: the CA
// certifies GivenNames, Surname, Country and NationalID as they are.
type Person struct {
	// GivenNames and Surname are copied from the identity document, in
	// the case the document uses.
	GivenNames, Surname string
	Country             string    // ISO 3166-1 alpha-2 of the national ID, upper case
	NationalID          string    // capital letters A–Z and digits
	DateOfBirth         time.Time // date only (UTC midnight)
}

// DocumentType is the kind of identity document the officer checked.
type DocumentType string

// The document types a registration desk accepts.
const (
	Passport        DocumentType = "passport"
	IDCard          DocumentType = "id-card"
	ResidencePermit DocumentType = "residence-permit"
	DrivingLicence  DocumentType = "driving-licence"
)

// DocumentTypes returns the accepted document types in the order a form
// lists them.
func DocumentTypes() []DocumentType {
	return []DocumentType{Passport, IDCard, ResidencePermit, DrivingLicence}
}

// Label returns the English name of t for a form, e.g. "ID card", or ""
// for a type that is not accepted.
func (t DocumentType) Label() string {
	switch t {
	case Passport:
		return "Passport"
	case IDCard:
		return "ID card"
	case ResidencePermit:
		return "Residence permit"
	case DrivingLicence:
		return "Driving licence"
	}
	return ""
}

// Document is the identity document the officer checked.
type Document struct {
	Type    DocumentType
	Number  string    // capital letters A–Z and digits, no spaces
	Issuer  string    // issuing country (alpha-2) or authority
	Expires time.Time // date only (UTC midnight)
}

// Identity is what the officer records: the person, the document that
// proved who they are, and the mobile number whose SIM gets the keys.
type Identity struct {
	Person
	Document Document
	MSISDN   string // international form, "+" and digits
}

// Form field names, the keys of FieldErrors.
const (
	FieldGivenNames      = "given_names"
	FieldSurname         = "surname"
	FieldCountry         = "country"
	FieldNationalID      = "national_id"
	FieldDateOfBirth     = "date_of_birth"
	FieldDocumentType    = "document_type"
	FieldDocumentNumber  = "document_number"
	FieldDocumentIssuer  = "document_issuer"
	FieldDocumentExpires = "document_expires"
	FieldMSISDN          = "msisdn"
)

// fieldOrder is the order of the fields on the form, which is the order
// in which an officer reads the errors.
var fieldOrder = [...]string{
	FieldGivenNames, FieldSurname, FieldCountry, FieldNationalID, FieldDateOfBirth,
	FieldDocumentType, FieldDocumentNumber, FieldDocumentIssuer, FieldDocumentExpires, FieldMSISDN,
}

// FieldErrors maps a form field name ("given_names", "surname", "country", "national_id", "date_of_birth", "document_type", "document_number", "document_issuer", "document_expires", "msisdn") to a message for the officer, in English, one sentence.
type FieldErrors map[string]string

// Error returns "field: message; field: message" in form order; fields
// not on the form come last, sorted.
func (e FieldErrors) Error() string {
	var b strings.Builder
	add := func(field string) {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(field + ": " + e[field])
	}
	for _, f := range fieldOrder {
		if _, ok := e[f]; ok {
			add(f)
		}
	}
	var other []string
	for f := range e {
		if !slices.Contains(fieldOrder[:], f) {
			other = append(other, f)
		}
	}
	slices.Sort(other)
	for _, f := range other {
		add(f)
	}
	return b.String()
}

// Normalize puts what an officer typed into the form the record is kept
// in: surrounding spaces trimmed and inner runs of spaces collapsed to
// one; Country, NationalID and Document.Number in capitals, the latter
// two without spaces; Document.Type in lower case; Document.Issuer in
// capitals when it is a two-letter code; dates reduced to the calendar
// date they fall on in their own location, as UTC midnight; MSISDN
// stripped of spaces, dashes, dots and parentheses, with a leading "00"
// turned into "+". Names keep the case they were typed in, because the
// document decides it. Normalize is idempotent.
func (id *Identity) Normalize() {
	id.GivenNames = collapseSpaces(id.GivenNames)
	id.Surname = collapseSpaces(id.Surname)
	id.Country = strings.ToUpper(strings.TrimSpace(id.Country))
	id.NationalID = strings.ToUpper(removeSpaces(id.NationalID))
	id.DateOfBirth = dateOnly(id.DateOfBirth)
	id.Document.Type = DocumentType(strings.ToLower(strings.TrimSpace(string(id.Document.Type))))
	id.Document.Number = strings.ToUpper(removeSpaces(id.Document.Number))
	id.Document.Issuer = collapseSpaces(id.Document.Issuer)
	if len(id.Document.Issuer) == 2 && isASCIILetters(id.Document.Issuer) {
		id.Document.Issuer = strings.ToUpper(id.Document.Issuer)
	}
	id.Document.Expires = dateOnly(id.Document.Expires)
	id.MSISDN = normalizeMSISDN(id.MSISDN)
}

// collapseSpaces trims s and replaces every inner run of white space
// (tabs and no-break spaces included) with one space.
func collapseSpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func removeSpaces(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// normalizeMSISDN removes the separators people write phone numbers with
// and turns the international call prefix 00 into "+".
func normalizeMSISDN(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || strings.ContainsRune("-.()/", r) {
			return -1
		}
		return r
	}, s)
	if rest, ok := strings.CutPrefix(s, "00"); ok {
		s = "+" + rest
	}
	return s
}

// dateOnly returns the calendar date of t, in t's location, as UTC
// midnight; the zero time stays zero.
func dateOnly(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func isDateOnly(t time.Time) bool {
	return t.Location() == time.UTC && t.Equal(dateOnly(t))
}

func formatDate(t time.Time) string { return t.Format(time.DateOnly) }

// Limits of the checks. maxNameLen and maxNationalIDLen are the CA's own
// limits (ca.Subject): a record that passes here is never refused there.
const (
	maxNameLen       = 64
	maxNationalIDLen = 32
	maxAge           = 130 // years; older is a mistyped year
)

// Validate returns nil or FieldErrors with a message for each field that
// is wrong. v checks national IDs by country; nil means
// DefaultNationalIDs. now gives today's date, in now's location: expired
// documents and dates of birth in the future are refused.
//
// Validate checks the record as it will be kept, so values that Normalize
// would change (surrounding spaces, lower-case codes) are reported too.
func (id *Identity) Validate(v *NationalIDs, now time.Time) error {
	if v == nil {
		v = DefaultNationalIDs()
	}
	today := dateOnly(now)
	e := FieldErrors{}
	set := func(field, msg string) {
		if msg != "" {
			e[field] = msg
		}
	}

	set(FieldGivenNames, checkName("given names", id.GivenNames))
	set(FieldSurname, checkName("surname", id.Surname))
	set(FieldCountry, checkCountry(id.Country))

	idDOB, msg := checkNationalID(v, id.Country, id.NationalID)
	set(FieldNationalID, msg)

	set(FieldDateOfBirth, checkDateOfBirth(id.DateOfBirth, idDOB, today))

	doc := id.Document
	switch {
	case doc.Type == "":
		set(FieldDocumentType, "Choose the type of document checked.")
	case doc.Type.Label() == "":
		set(FieldDocumentType, fmt.Sprintf("Choose passport, ID card, residence permit or driving licence, not %q.", string(doc.Type)))
	}
	set(FieldDocumentNumber, checkDocumentNumber(doc.Number))
	set(FieldDocumentIssuer, checkIssuer(doc.Issuer))
	switch {
	case doc.Expires.IsZero():
		set(FieldDocumentExpires, "Enter the expiry date of the document.")
	case !isDateOnly(doc.Expires):
		set(FieldDocumentExpires, "Enter the expiry date without a time of day.")
	case doc.Expires.Before(today):
		set(FieldDocumentExpires, fmt.Sprintf("The document expired on %s.", formatDate(doc.Expires)))
	}

	switch {
	case id.MSISDN == "":
		set(FieldMSISDN, "Enter the mobile number (MSISDN).")
	case simbatch.ValidMSISDN(id.MSISDN) != nil:
		set(FieldMSISDN, "Enter the mobile number in international form, + and 8 to 15 digits starting with the country code (such as +372 5123 4567).")
	}

	if len(e) == 0 {
		return nil
	}
	return e
}

// checkName returns what is wrong with a name part, or "". The rules are
// stricter than the CA's (no comma, no control characters, at most 64
// characters, no surrounding spaces), so the CA never refuses a name that
// passes here.
func checkName(what, v string) string {
	if strings.TrimSpace(v) == "" {
		return "Enter the " + what + " as written on the document."
	}
	if !utf8.ValidString(v) {
		return "Retype the " + what + ": part of the text is garbled."
	}
	if n := utf8.RuneCountInString(v); n > maxNameLen {
		return fmt.Sprintf("Use at most %d characters for the %s, not %d.", maxNameLen, what, n)
	}
	if strings.TrimSpace(v) != v {
		return "Remove the spaces at the start and end of the " + what + "."
	}
	letters := 0
	prev := ' '
	for _, r := range v {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.Is(unicode.M, r):
			// Accents typed as combining marks, and the vowel signs of
			// scripts such as Devanagari, belong to the letter before.
			if !unicode.IsLetter(prev) && !unicode.Is(unicode.M, prev) {
				return fmt.Sprintf("Put the accent mark %q in the %s after a letter.", r, what)
			}
		case r == ' ':
			if prev == ' ' {
				return "Use single spaces between the words of the " + what + "."
			}
		case unicode.IsSpace(r):
			return "Use plain spaces between the words of the " + what + "."
		case strings.ContainsRune("-'’.", r):
		default:
			return fmt.Sprintf("Use only letters, spaces, hyphens, apostrophes and periods in the %s, not %q.", what, r)
		}
		prev = r
	}
	if letters == 0 {
		return "Include at least one letter in the " + what + "."
	}
	return ""
}

func checkCountry(c string) string {
	switch {
	case c == "":
		return "Choose the country that issued the national ID."
	case knownCountry(c):
		return ""
	case knownCountry(strings.ToUpper(c)):
		return fmt.Sprintf("Write the country code in capitals: %s.", strings.ToUpper(c))
	}
	return fmt.Sprintf("%q is not an ISO 3166-1 country code; use two letters such as EE.", c)
}

// checkNationalID checks id with the validator for country and returns
// the date of birth id encodes, if any. Whatever the validator accepts
// must also meet the CA's rules for a national ID.
func checkNationalID(v *NationalIDs, country, id string) (time.Time, string) {
	if id == "" {
		return time.Time{}, "Enter the national ID."
	}
	val := v.For(country)
	dob, err := val.Check(id)
	if err != nil {
		if msg := err.Error(); msg != "" {
			return time.Time{}, msg
		}
		return time.Time{}, "The national ID is not a valid " + val.Name() + "."
	}
	if len(id) > maxNationalIDLen {
		return time.Time{}, fmt.Sprintf("The national ID can have at most %d characters.", maxNationalIDLen)
	}
	for _, r := range id {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'Z') {
			return time.Time{}, fmt.Sprintf("The national ID may contain only capital letters A–Z and digits, not %q.", r)
		}
	}
	return dateOnly(dob), ""
}

// checkDateOfBirth checks dob against today and against idDOB, the date
// the national ID encodes (zero if none). A mismatch is reported here
// rather than on the national ID: a code that passed its check digit is
// more likely right than a date typed by hand.
func checkDateOfBirth(dob, idDOB, today time.Time) string {
	switch {
	case dob.IsZero():
		return "Enter the date of birth."
	case !isDateOnly(dob):
		return "Enter the date of birth without a time of day."
	case dob.After(today):
		return fmt.Sprintf("The date of birth %s is in the future.", formatDate(dob))
	case !dob.After(today.AddDate(-(maxAge + 1), 0, 0)): // the 131st birthday is past
		return fmt.Sprintf("The date of birth %s would make the person older than %d years; check the year.", formatDate(dob), maxAge)
	case !idDOB.IsZero() && !idDOB.Equal(dob):
		return fmt.Sprintf("The national ID says the person was born on %s, not %s.", formatDate(idDOB), formatDate(dob))
	}
	return ""
}

func checkDocumentNumber(n string) string {
	if n == "" {
		return "Enter the document number."
	}
	for _, r := range n {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'Z') {
			return fmt.Sprintf("Use only capital letters A–Z and digits in the document number, not %q.", r)
		}
	}
	if len(n) < 5 || len(n) > 20 {
		return fmt.Sprintf("The document number has 5 to 20 letters and digits; this one has %d.", len(n))
	}
	return ""
}

// checkIssuer accepts a country code or the name of an authority, such as
// "Politsei- ja Piirivalveamet" or "DVLA".
func checkIssuer(s string) string {
	if strings.TrimSpace(s) == "" {
		return "Enter the issuing country or authority."
	}
	if !utf8.ValidString(s) {
		return "Retype the issuing country or authority: part of the text is garbled."
	}
	if strings.TrimSpace(s) != s {
		return "Remove the spaces at the start and end of the issuing country or authority."
	}
	if n := utf8.RuneCountInString(s); n < 2 || n > 64 {
		return fmt.Sprintf("Use 2 to 64 characters for the issuing country or authority, not %d.", n)
	}
	if len(s) == 2 && isASCIILetters(s) {
		return checkIssuerCountry(s)
	}
	letters := 0
	prev := ' '
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.Is(unicode.M, r):
			if !unicode.IsLetter(prev) && !unicode.Is(unicode.M, prev) {
				return fmt.Sprintf("Put the accent mark %q in the issuer after a letter.", r)
			}
		case unicode.IsDigit(r):
		case r == ' ':
			if prev == ' ' {
				return "Use single spaces between the words of the issuer."
			}
		case unicode.IsSpace(r):
			return "Use plain spaces between the words of the issuer."
		case strings.ContainsRune(".,-'’()/&", r):
		default:
			return fmt.Sprintf("Use only letters, digits, spaces, periods, commas, hyphens, apostrophes, parentheses, slashes and ampersands in the issuer, not %q.", r)
		}
		prev = r
	}
	if letters == 0 {
		return "Include at least one letter in the issuer."
	}
	return ""
}

func checkIssuerCountry(s string) string {
	switch {
	case knownCountry(s):
		return ""
	case knownCountry(strings.ToUpper(s)):
		return fmt.Sprintf("Write the issuing country code in capitals: %s.", strings.ToUpper(s))
	}
	return fmt.Sprintf("%q is not a country code; enter one such as EE, or the name of the issuing authority.", s)
}

func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// countryCodes are the officially assigned ISO 3166-1 alpha-2 codes, in
// order, two letters each.
const countryCodes = "" +
	"ADAEAFAGAIALAMAOAQARASATAUAWAXAZ" +
	"BABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ" +
	"CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ" +
	"DEDJDKDMDODZ" +
	"ECEEEGEHERESET" +
	"FIFJFKFMFOFR" +
	"GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGY" +
	"HKHMHNHRHTHU" +
	"IDIEILIMINIOIQIRISIT" +
	"JEJMJOJP" +
	"KEKGKHKIKMKNKPKRKWKYKZ" +
	"LALBLCLILKLRLSLTLULVLY" +
	"MAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ" +
	"NANCNENFNGNINLNONPNRNUNZ" +
	"OM" +
	"PAPEPFPGPHPKPLPMPNPRPSPTPWPY" +
	"QA" +
	"RERORSRURW" +
	"SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZ" +
	"TCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZ" +
	"UAUGUMUSUYUZ" +
	"VAVCVEVGVIVNVU" +
	"WFWS" +
	"YEYT" +
	"ZAZMZW"

// Countries returns the ISO 3166-1 alpha-2 codes Validate accepts, in
// alphabetical order.
func Countries() []string {
	cs := make([]string, 0, len(countryCodes)/2)
	for i := 0; i < len(countryCodes); i += 2 {
		cs = append(cs, countryCodes[i:i+2])
	}
	return cs
}

func knownCountry(c string) bool {
	if len(c) != 2 {
		return false
	}
	for i := 0; i < len(countryCodes); i += 2 {
		if countryCodes[i:i+2] == c {
			return true
		}
	}
	return false
}

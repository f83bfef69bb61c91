package registration

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// testNow is the desk's clock in the tests: 1 March 2026, noon UTC.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// validIdentity is a complete record that Validate accepts at testNow.
func validIdentity() Identity {
	return Identity{
		Person: Person{
			GivenNames:  "Jaak-Kristjan",
			Surname:     "Jõeorg",
			Country:     "EE",
			NationalID:  "38001085718",
			DateOfBirth: date(1980, 1, 8),
		},
		Document: Document{
			Type:    IDCard,
			Number:  "AB0123456",
			Issuer:  "EE",
			Expires: date(2030, 5, 31),
		},
		MSISDN: "+37200000766",
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Identity)
	}{
		{"as is", func(*Identity) {}},
		{"second given name", func(id *Identity) { id.GivenNames = "Mari Liis" }},
		{"apostrophes and period", func(id *Identity) { id.GivenNames, id.Surname = "J. R.", "O'Brien-D’Arcy" }},
		{"Cyrillic", func(id *Identity) { id.GivenNames, id.Surname = "Анна", "Петрова" }},
		{"Devanagari vowel sign", func(id *Identity) { id.GivenNames = "अनिल" }},
		{"combining accent", func(id *Identity) { id.Surname = "Jo\u0303eorg" }},
		{"one letter", func(id *Identity) { id.GivenNames = "Ö" }},
		{"64 characters", func(id *Identity) { id.Surname = strings.Repeat("ä", 64) }},
		{"Lithuanian", func(id *Identity) {
			id.Country, id.NationalID, id.DateOfBirth = "LT", withCheckDigit("4991231123"), date(1999, 12, 31)
		}},
		{"SK test persona", func(id *Identity) { id.NationalID, id.DateOfBirth = "60001019906", date(2000, 1, 1) }},
		{"generic country", func(id *Identity) { id.Country, id.NationalID = "FI", "010180123A" }},
		{"each document type", func(id *Identity) { id.Document.Type = Passport }},
		{"residence permit", func(id *Identity) { id.Document.Type = ResidencePermit }},
		{"driving licence", func(id *Identity) { id.Document.Type = DrivingLicence }},
		{"issuing authority", func(id *Identity) { id.Document.Issuer = "Politsei- ja Piirivalveamet (PPA)" }},
		{"issuer with digits", func(id *Identity) { id.Document.Issuer = "Police Department 7" }},
		{"document number lengths", func(id *Identity) { id.Document.Number = "A1234" }},
		{"document number 20", func(id *Identity) { id.Document.Number = strings.Repeat("9", 20) }},
		{"expires today", func(id *Identity) { id.Document.Expires = date(2026, 3, 1) }},
		{"born today", func(id *Identity) {
			id.Country, id.NationalID, id.DateOfBirth = "FI", "NEWBORN1", date(2026, 3, 1)
		}},
		{"aged 130", func(id *Identity) {
			id.Country, id.NationalID, id.DateOfBirth = "FI", "OLD12345", date(1895, 3, 2)
		}},
		{"15-digit MSISDN", func(id *Identity) { id.MSISDN = "+123456789012345" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := validIdentity()
			tt.mutate(&id)
			if err := id.Validate(DefaultNationalIDs(), testNow); err != nil {
				t.Fatalf("Validate(%+v) = %v", id, err)
			}
			checkCAAccepts(t, id.Person)
		})
	}
}

// TestValidateReturnsNil checks that a valid record gives an untyped nil,
// not an empty FieldErrors, which would compare non-nil.
func TestValidateReturnsNil(t *testing.T) {
	id := validIdentity()
	if err := id.Validate(nil, testNow); err != nil {
		t.Fatalf("Validate = %#v, want nil", err)
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Identity)
		field  string
		want   string // part of the message
	}{
		// Names.
		{"given names empty", func(id *Identity) { id.GivenNames = "" }, FieldGivenNames, "Enter the given names"},
		{"given names blank", func(id *Identity) { id.GivenNames = "   " }, FieldGivenNames, "Enter the given names"},
		{"surname empty", func(id *Identity) { id.Surname = "" }, FieldSurname, "Enter the surname"},
		{"name too long", func(id *Identity) { id.Surname = strings.Repeat("ä", 65) }, FieldSurname, "at most 64 characters for the surname, not 65"},
		{"name leading space", func(id *Identity) { id.GivenNames = " Jaak" }, FieldGivenNames, "start and end"},
		{"name trailing tab", func(id *Identity) { id.Surname = "Jõeorg\t" }, FieldSurname, "start and end"},
		{"name double space", func(id *Identity) { id.GivenNames = "Mari  Liis" }, FieldGivenNames, "single spaces"},
		{"name tab inside", func(id *Identity) { id.GivenNames = "Mari\tLiis" }, FieldGivenNames, "plain spaces"},
		{"name no-break space", func(id *Identity) { id.GivenNames = "Mari\u00a0Liis" }, FieldGivenNames, "plain spaces"},
		{"name comma", func(id *Identity) { id.Surname = "Jõeorg, Jaak" }, FieldSurname, "not ','"},
		{"name digit", func(id *Identity) { id.GivenNames = "Jaak2" }, FieldGivenNames, "not '2'"},
		{"name control", func(id *Identity) { id.Surname = "Jõe\x00org" }, FieldSurname, `not '\x00'`},
		{"name emoji", func(id *Identity) { id.Surname = "Jõeorg🙂" }, FieldSurname, "not '🙂'"},
		{"name replacement character", func(id *Identity) { id.Surname = "J\uFFFDeorg" }, FieldSurname, "not '�'"},
		{"name invalid UTF-8", func(id *Identity) { id.Surname = "J\xffeorg" }, FieldSurname, "garbled"},
		{"name only punctuation", func(id *Identity) { id.GivenNames = "-.'" }, FieldGivenNames, "at least one letter"},
		{"name starts with accent", func(id *Identity) { id.GivenNames = "\u0303Jaak" }, FieldGivenNames, "after a letter"},
		{"accent after hyphen", func(id *Identity) { id.GivenNames = "Jaak-\u0303" }, FieldGivenNames, "after a letter"},

		// Country.
		{"country empty", func(id *Identity) { id.Country = "" }, FieldCountry, "Choose the country"},
		{"country lower case", func(id *Identity) { id.Country = "ee" }, FieldCountry, "capitals: EE"},
		{"country unknown", func(id *Identity) { id.Country = "XX" }, FieldCountry, `"XX" is not an ISO 3166-1 country code`},
		{"country alpha-3", func(id *Identity) { id.Country = "EST" }, FieldCountry, "not an ISO 3166-1 country code"},

		// National ID.
		{"national ID empty", func(id *Identity) { id.NationalID = "" }, FieldNationalID, "Enter the national ID"},
		{"EE bad check digit", func(id *Identity) { id.NationalID = "38001085719" }, FieldNationalID, "check digit"},
		{"EE impossible date", func(id *Identity) { id.NationalID = withCheckDigit("3800230571") }, FieldNationalID, "1980-02-30"},
		{"EE ten digits", func(id *Identity) { id.NationalID = "3800108571" }, FieldNationalID, "11 digits, not 10"},
		{"EE letters", func(id *Identity) { id.NationalID = "3800108571X" }, FieldNationalID, "only digits"},
		{"LT bad check digit", func(id *Identity) { id.Country, id.NationalID = "LT", "38001085719" }, FieldNationalID, "Lithuanian personal code"},
		{"generic too short", func(id *Identity) { id.Country, id.NationalID = "DE", "A12" }, FieldNationalID, "4 to 20"},
		{"generic lower case", func(id *Identity) { id.Country, id.NationalID = "DE", "t22000129" }, FieldNationalID, "capital letters"},
		{"generic no digit", func(id *Identity) { id.Country, id.NationalID = "DE", "ABCDEFG" }, FieldNationalID, "at least one digit"},

		// Date of birth.
		{"date of birth missing", func(id *Identity) { id.DateOfBirth = time.Time{} }, FieldDateOfBirth, "Enter the date of birth"},
		{"date of birth with time", func(id *Identity) { id.DateOfBirth = id.DateOfBirth.Add(time.Hour) }, FieldDateOfBirth, "without a time of day"},
		{"date of birth not UTC", func(id *Identity) {
			id.DateOfBirth = time.Date(1980, 1, 8, 0, 0, 0, 0, time.FixedZone("EET", 2*3600))
		}, FieldDateOfBirth, "without a time of day"},
		{"date of birth disagrees with EE code", func(id *Identity) {
			id.NationalID, id.DateOfBirth = "37605030299", date(1976, 5, 4)
		}, FieldDateOfBirth, "The national ID says the person was born on 1976-05-03, not 1976-05-04."},
		{"date of birth disagrees with LT code", func(id *Identity) { id.Country = "LT"; id.DateOfBirth = date(1980, 8, 1) }, FieldDateOfBirth, "born on 1980-01-08, not 1980-08-01"},
		{"date of birth in the future", func(id *Identity) {
			id.Country, id.NationalID, id.DateOfBirth = "FI", "NEWBORN1", date(2026, 3, 2)
		}, FieldDateOfBirth, "2026-03-02 is in the future"},
		{"aged 131", func(id *Identity) {
			id.Country, id.NationalID, id.DateOfBirth = "FI", "OLD12345", date(1895, 3, 1)
		}, FieldDateOfBirth, "older than 130 years"},
		{"year typo", func(id *Identity) {
			id.Country, id.NationalID, id.DateOfBirth = "FI", "OLD12345", date(1080, 1, 8)
		}, FieldDateOfBirth, "1080-01-08"},

		// Document.
		{"document type empty", func(id *Identity) { id.Document.Type = "" }, FieldDocumentType, "Choose the type of document"},
		{"document type unknown", func(id *Identity) { id.Document.Type = "visa" }, FieldDocumentType, `not "visa"`},
		{"document type not normalized", func(id *Identity) { id.Document.Type = "Passport" }, FieldDocumentType, `not "Passport"`},
		{"document number empty", func(id *Identity) { id.Document.Number = "" }, FieldDocumentNumber, "Enter the document number"},
		{"document number short", func(id *Identity) { id.Document.Number = "A123" }, FieldDocumentNumber, "this one has 4"},
		{"document number long", func(id *Identity) { id.Document.Number = strings.Repeat("1", 21) }, FieldDocumentNumber, "this one has 21"},
		{"document number space", func(id *Identity) { id.Document.Number = "AB 123456" }, FieldDocumentNumber, "not ' '"},
		{"document number lower case", func(id *Identity) { id.Document.Number = "ab0123456" }, FieldDocumentNumber, "capital letters"},
		{"document number punctuation", func(id *Identity) { id.Document.Number = "AB-0123456" }, FieldDocumentNumber, "not '-'"},
		{"issuer empty", func(id *Identity) { id.Document.Issuer = "" }, FieldDocumentIssuer, "Enter the issuing country or authority"},
		{"issuer one character", func(id *Identity) { id.Document.Issuer = "D" }, FieldDocumentIssuer, "2 to 64 characters"},
		{"issuer too long", func(id *Identity) { id.Document.Issuer = strings.Repeat("a", 65) }, FieldDocumentIssuer, "not 65"},
		{"issuer unknown country", func(id *Identity) { id.Document.Issuer = "XX" }, FieldDocumentIssuer, `"XX" is not a country code`},
		{"issuer lower-case country", func(id *Identity) { id.Document.Issuer = "ee" }, FieldDocumentIssuer, "capitals: EE"},
		{"issuer spaces around", func(id *Identity) { id.Document.Issuer = " PPA" }, FieldDocumentIssuer, "start and end"},
		{"issuer double space", func(id *Identity) { id.Document.Issuer = "Police  Board" }, FieldDocumentIssuer, "single spaces"},
		{"issuer symbol", func(id *Identity) { id.Document.Issuer = "PPA <EE>" }, FieldDocumentIssuer, "not '<'"},
		{"issuer digits only", func(id *Identity) { id.Document.Issuer = "123" }, FieldDocumentIssuer, "at least one letter"},
		{"issuer control", func(id *Identity) { id.Document.Issuer = "PPA\nEE" }, FieldDocumentIssuer, "plain spaces"},
		{"issuer invalid UTF-8", func(id *Identity) { id.Document.Issuer = "PP\xc3" }, FieldDocumentIssuer, "garbled"},
		{"expiry missing", func(id *Identity) { id.Document.Expires = time.Time{} }, FieldDocumentExpires, "Enter the expiry date"},
		{"expiry with time", func(id *Identity) { id.Document.Expires = id.Document.Expires.Add(time.Minute) }, FieldDocumentExpires, "without a time of day"},
		{"expired", func(id *Identity) { id.Document.Expires = date(2026, 1, 31) }, FieldDocumentExpires, "The document expired on 2026-01-31."},
		{"expired yesterday", func(id *Identity) { id.Document.Expires = date(2026, 2, 28) }, FieldDocumentExpires, "2026-02-28"},

		// MSISDN.
		{"MSISDN empty", func(id *Identity) { id.MSISDN = "" }, FieldMSISDN, "Enter the mobile number"},
		{"MSISDN without plus", func(id *Identity) { id.MSISDN = "37200000766" }, FieldMSISDN, "international form"},
		{"MSISDN national", func(id *Identity) { id.MSISDN = "+0200000766" }, FieldMSISDN, "international form"},
		{"MSISDN too short", func(id *Identity) { id.MSISDN = "+3720000" }, FieldMSISDN, "8 to 15 digits"},
		{"MSISDN too long", func(id *Identity) { id.MSISDN = "+1234567890123456" }, FieldMSISDN, "8 to 15 digits"},
		{"MSISDN with spaces", func(id *Identity) { id.MSISDN = "+372 0000 0766" }, FieldMSISDN, "international form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := validIdentity()
			tt.mutate(&id)
			err := id.Validate(DefaultNationalIDs(), testNow)
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want FieldErrors", err)
			}
			if len(fe) != 1 {
				t.Fatalf("Validate = %v, want an error on %s only", err, tt.field)
			}
			msg, ok := fe[tt.field]
			if !ok {
				t.Fatalf("Validate = %v, want an error on %s", err, tt.field)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("Validate: %s: %q, want it to contain %q", tt.field, msg, tt.want)
			}
			checkSentence(t, msg)
		})
	}
}

// checkSentence checks the form of a message for the officer: one
// sentence, starting with a capital (or a quoted value) and ending with a
// period.
func checkSentence(t *testing.T, msg string) {
	t.Helper()
	r, _ := utf8.DecodeRuneInString(msg)
	if !unicode.IsUpper(r) && r != '"' {
		t.Errorf("message %q does not start with a capital", msg)
	}
	if !strings.HasSuffix(msg, ".") {
		t.Errorf("message %q does not end with a period", msg)
	}
	if strings.Contains(strings.TrimSuffix(msg, "."), ". ") {
		t.Errorf("message %q has more than one sentence", msg)
	}
}

// TestValidateEmpty checks that an empty form gets a message on every
// field, in form order.
func TestValidateEmpty(t *testing.T) {
	var id Identity
	err := id.Validate(nil, testNow)
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Validate = %v, want FieldErrors", err)
	}
	var got []string
	for f := range fe {
		got = append(got, f)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(fieldOrder[:]))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields with errors (-want +got):\n%s", diff)
	}
	for _, f := range fieldOrder {
		checkSentence(t, fe[f])
	}
	if s := err.Error(); !strings.HasPrefix(s, "given_names: Enter the given names") || !strings.HasSuffix(s, "msisdn: Enter the mobile number (MSISDN).") {
		t.Errorf("Error() = %q, want given_names first and msisdn last", s)
	}
}

// TestValidateTimeZone checks that "today" is the desk's date: at half
// past midnight in Tallinn it is already 1 March there, though still
// 28 February in UTC.
func TestValidateTimeZone(t *testing.T) {
	tallinn := time.FixedZone("EET", 2*3600)
	now := time.Date(2026, 3, 1, 0, 30, 0, 0, tallinn)
	id := validIdentity()
	id.Document.Expires = date(2026, 3, 1)
	if err := id.Validate(nil, now); err != nil {
		t.Errorf("expiring today: Validate = %v", err)
	}
	id.Document.Expires = date(2026, 2, 28)
	if err := id.Validate(nil, now); err == nil || !strings.Contains(err.Error(), "expired on 2026-02-28") {
		t.Errorf("expired yesterday: Validate = %v", err)
	}
}

// TestValidateNationalIDUsesCountry checks that the country picks the
// validator: an Estonian code with a wrong check digit passes as a
// German number, and a custom validator replaces the generic one.
func TestValidateNationalIDUsesCountry(t *testing.T) {
	id := validIdentity()
	id.Country, id.NationalID = "DE", "38001085719"
	if err := id.Validate(nil, testNow); err != nil {
		t.Errorf("DE 38001085719: Validate = %v", err)
	}
	v := DefaultNationalIDs()
	v.Register("DE", fakeValidator{})
	err := id.Validate(v, testNow)
	if fe, ok := err.(FieldErrors); !ok || fe[FieldNationalID] != "fake" {
		t.Errorf("custom validator: Validate = %v, want national_id: fake", err)
	}
}

// permissiveValidator accepts anything, to show that the CA's rules for
// national IDs hold whatever a registered validator lets through.
type permissiveValidator struct{ dob time.Time }

func (p permissiveValidator) Check(string) (time.Time, error) { return p.dob, nil }
func (permissiveValidator) Name() string                      { return "anything" }

type silentValidator struct{}

func (silentValidator) Check(string) (time.Time, error) { return time.Time{}, errors.New("") }
func (silentValidator) Name() string                    { return "silent number" }

func TestValidateNationalIDCARules(t *testing.T) {
	v := DefaultNationalIDs()
	v.Register("DE", permissiveValidator{})
	v.Register("FR", silentValidator{})
	v.Register("SE", permissiveValidator{dob: time.Date(1980, 1, 8, 13, 0, 0, 0, time.UTC)})
	tests := []struct {
		name, country, nid, want string
	}{
		{"too long", "DE", strings.Repeat("1", 33), "at most 32 characters"},
		{"dash", "DE", "800108-1234", "not '-'"},
		{"lower case", "DE", "abc123", "not 'a'"},
		{"empty message", "FR", "12345", "not a valid silent number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := validIdentity()
			id.Country, id.NationalID = tt.country, tt.nid
			err := id.Validate(v, testNow)
			fe, ok := err.(FieldErrors)
			if !ok || len(fe) != 1 || !strings.Contains(fe[FieldNationalID], tt.want) {
				t.Errorf("Validate = %v, want only national_id containing %q", err, tt.want)
			}
		})
	}
	// A validator's date of birth is compared as a date.
	id := validIdentity()
	id.Country, id.NationalID = "SE", "198001081234"
	if err := id.Validate(v, testNow); err != nil {
		t.Errorf("date of birth with a time from the validator: Validate = %v", err)
	}
	v.Register("DE", permissiveValidator{dob: date(1980, 1, 8)})
	id.Country = "DE"
	if err := id.Validate(v, testNow); err != nil {
		t.Errorf("DE with agreeing date: Validate = %v", err)
	}
}

func TestFieldErrorsError(t *testing.T) {
	e := FieldErrors{
		FieldMSISDN:     "M.",
		"zeta":          "Z.",
		FieldGivenNames: "G.",
		"alpha":         "A.",
		FieldCountry:    "C.",
	}
	want := "given_names: G.; country: C.; msisdn: M.; alpha: A.; zeta: Z."
	for range 10 { // map order varies between runs
		if got := e.Error(); got != want {
			t.Fatalf("Error() = %q, want %q", got, want)
		}
	}
	if got := (FieldErrors{}).Error(); got != "" {
		t.Errorf("empty Error() = %q", got)
	}
}

func TestNormalize(t *testing.T) {
	tallinn := time.FixedZone("EET", 2*3600)
	tests := []struct {
		name string
		in   Identity
		want Identity
	}{
		{
			name: "as typed at the desk",
			in: Identity{
				Person: Person{
					GivenNames:  "  Mari \t Liis ",
					Surname:     "\u00a0Tamm-Saar ",
					Country:     " ee",
					NationalID:  " 4800108 5710 ",
					DateOfBirth: time.Date(1980, 1, 8, 23, 59, 0, 0, tallinn),
				},
				Document: Document{
					Type:    " Passport ",
					Number:  "ke 012 3456",
					Issuer:  " ee ",
					Expires: time.Date(2030, 5, 31, 0, 30, 0, 0, tallinn),
				},
				MSISDN: " 00372 (0000) 07-66 ",
			},
			want: Identity{
				Person: Person{
					GivenNames:  "Mari Liis",
					Surname:     "Tamm-Saar",
					Country:     "EE",
					NationalID:  "48001085710",
					DateOfBirth: date(1980, 1, 8),
				},
				Document: Document{
					Type:    Passport,
					Number:  "KE0123456",
					Issuer:  "EE",
					Expires: date(2030, 5, 31),
				},
				MSISDN: "+37200000766",
			},
		},
		{
			name: "names keep their case",
			in: Identity{
				Person:   Person{GivenNames: "mari-liis", Surname: "VAN DER BERG", Country: "nl", NationalID: "t22000129"},
				Document: Document{Type: "ID-Card", Issuer: "gemeente  Utrecht", Number: "spec12014"},
				MSISDN:   "+31 6-1234 5678",
			},
			want: Identity{
				Person:   Person{GivenNames: "mari-liis", Surname: "VAN DER BERG", Country: "NL", NationalID: "T22000129"},
				Document: Document{Type: IDCard, Issuer: "gemeente Utrecht", Number: "SPEC12014"},
				MSISDN:   "+31612345678",
			},
		},
		{
			name: "dotted and slashed number",
			in:   Identity{MSISDN: "+372.5123/4567"},
			want: Identity{MSISDN: "+37251234567"},
		},
		{
			name: "empty stays empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.Normalize()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Normalize mismatch (-want +got):\n%s", diff)
			}
			if got.DateOfBirth.Location() != time.UTC || got.Document.Expires.Location() != time.UTC {
				t.Errorf("Normalize left dates in %v and %v, want UTC", got.DateOfBirth.Location(), got.Document.Expires.Location())
			}
			again := got
			again.Normalize()
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Normalize is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestNormalizeThenValidate checks the desk's path: a sloppily typed but
// correct record passes once normalized.
func TestNormalizeThenValidate(t *testing.T) {
	id := Identity{
		Person: Person{
			GivenNames: " Jaak-Kristjan ", Surname: "Jõeorg  ", Country: "ee",
			NationalID: "380010 85718", DateOfBirth: time.Date(1980, 1, 8, 9, 15, 0, 0, time.Local),
		},
		Document: Document{Type: "ID-CARD", Number: "ab 0123456", Issuer: "ee", Expires: date(2030, 5, 31).Add(10 * time.Hour)},
		MSISDN:   "00372 0000 0766",
	}
	if id.Validate(nil, testNow) == nil {
		t.Fatal("Validate accepted a record before Normalize")
	}
	id.Normalize()
	if err := id.Validate(nil, testNow); err != nil {
		t.Errorf("Validate after Normalize = %v", err)
	}
}

func TestCountries(t *testing.T) {
	cs := Countries()
	// ISO 3166-1 has 249 officially assigned alpha-2 codes.
	if len(cs) != 249 {
		t.Errorf("len(Countries()) = %d, want 249", len(cs))
	}
	if !slices.IsSorted(cs) {
		t.Error("Countries() is not sorted")
	}
	if len(slices.Compact(slices.Clone(cs))) != len(cs) {
		t.Error("Countries() has duplicates")
	}
	for _, c := range cs {
		if len(c) != 2 || !isUpperASCIIForTest(c) {
			t.Errorf("country %q is not two capital letters", c)
		}
	}
	for _, c := range []string{"EE", "LV", "LT", "FI", "SE", "NO", "IS", "DE", "FR", "GB", "US", "UA", "RU", "PL", "CH", "AX", "BQ"} {
		if !knownCountry(c) {
			t.Errorf("knownCountry(%s) = false", c)
		}
	}
	for _, c := range []string{"", "E", "EST", "UK", "EU", "XK", "ee", "ZZ"} {
		if knownCountry(c) {
			t.Errorf("knownCountry(%q) = true", c)
		}
	}
}

func isUpperASCIIForTest(s string) bool {
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

func TestDocumentTypes(t *testing.T) {
	want := map[DocumentType]string{
		"passport":         "Passport",
		"id-card":          "ID card",
		"residence-permit": "Residence permit",
		"driving-licence":  "Driving licence",
	}
	types := DocumentTypes()
	if len(types) != len(want) {
		t.Errorf("DocumentTypes() = %v", types)
	}
	for _, dt := range types {
		if got := dt.Label(); got != want[dt] {
			t.Errorf("%q.Label() = %q, want %q", dt, got, want[dt])
		}
	}
	if got := DocumentType("visa").Label(); got != "" {
		t.Errorf(`"visa".Label() = %q, want ""`, got)
	}
}

// checkCAAccepts applies the CA's subject rules (ca.Subject.validate) to
// p: a record the desk accepts must never be refused by the CA.
func checkCAAccepts(t testing.TB, p Person) {
	t.Helper()
	if len(p.Country) != 2 || !isUpperASCIIForTest(p.Country) {
		t.Errorf("CA would refuse country %q", p.Country)
	}
	for _, n := range []string{p.GivenNames, p.Surname} {
		switch {
		case strings.TrimSpace(n) == "", strings.TrimSpace(n) != n, !utf8.ValidString(n),
			utf8.RuneCountInString(n) > 64, strings.ContainsRune(n, ','):
			t.Errorf("CA would refuse name %q", n)
		}
		for _, r := range n {
			if unicode.IsControl(r) || r == utf8.RuneError {
				t.Errorf("CA would refuse name %q", n)
			}
		}
	}
	if p.NationalID == "" || len(p.NationalID) > 32 || strings.Trim(p.NationalID, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Errorf("CA would refuse national ID %q", p.NationalID)
	}
}

func FuzzValidateIdentity(f *testing.F) {
	v := validIdentity()
	f.Add(v.GivenNames, v.Surname, v.Country, v.NationalID, v.DateOfBirth.Unix(),
		string(v.Document.Type), v.Document.Number, v.Document.Issuer, v.Document.Expires.Unix(), v.MSISDN)
	f.Add(" mari  liis", "O’Brien\t", "lt", "4991231 1231", int64(946598400), "Passport ", "ke 0123456", "gemeente  utrecht", int64(1900000000), "00372 5123-4567")
	f.Add("", "", "", "", int64(0), "", "", "", int64(0), "")
	f.Add("\xff", "a,b", "\u00e9e", "ǅ1234", int64(-62135596800), "ID-CARD", "ß12345", "ee", int64(253402300799), "0000")
	f.Fuzz(func(t *testing.T, given, surname, country, nid string, dob int64, docType, docNum, issuer string, expires int64, msisdn string) {
		id := Identity{
			Person: Person{
				GivenNames: given, Surname: surname, Country: country, NationalID: nid,
				DateOfBirth: time.Unix(dob, 0).UTC(),
			},
			Document: Document{Type: DocumentType(docType), Number: docNum, Issuer: issuer, Expires: time.Unix(expires, 0).UTC()},
			MSISDN:   msisdn,
		}
		names := DefaultNationalIDs()
		_ = id.Validate(names, testNow) // raw input: must not panic either

		id.Normalize()
		again := id
		again.Normalize()
		if diff := cmp.Diff(id, again); diff != "" {
			t.Fatalf("Normalize is not idempotent (-once +twice):\n%s", diff)
		}
		before := id
		err1 := id.Validate(names, testNow)
		err2 := id.Validate(names, testNow)
		if diff := cmp.Diff(before, id); diff != "" {
			t.Fatalf("Validate changed the identity (-before +after):\n%s", diff)
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("Validate is not deterministic: %v, then %v", err1, err2)
		}
		if err1 == nil {
			checkCAAccepts(t, id.Person)
			return
		}
		fe1, ok1 := err1.(FieldErrors)
		fe2, ok2 := err2.(FieldErrors)
		if !ok1 || !ok2 {
			t.Fatalf("Validate = %T, %T, want FieldErrors", err1, err2)
		}
		if diff := cmp.Diff(fe1, fe2); diff != "" {
			t.Fatalf("Validate is not deterministic (-first +second):\n%s", diff)
		}
		if err1.Error() != err2.Error() {
			t.Fatalf("Error() is not deterministic: %q, then %q", err1.Error(), err2.Error())
		}
		for f, msg := range fe1 {
			if !slices.Contains(fieldOrder[:], f) {
				t.Errorf("error on unknown field %q", f)
			}
			if msg == "" {
				t.Errorf("empty message on %s", f)
			}
		}
	})
}

package registration

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzAPIRegistrationBody feeds arbitrary bodies to the JSON API's
// decoding of POST /api/v1/registrations and the reading of the identity
// in it: it never panics, and a body either fails to decode with a
// badRequest, or gives an identity that Validate judges without panicking.
func FuzzAPIRegistrationBody(f *testing.F) {
	f.Add(`{"given_names":"Mari-Liis","surname":"Männik","country":"EE","national_id":"47605030299","date_of_birth":"1976-05-03",` +
		`"document":{"type":"id-card","number":"AB1234567","issuer":"EE","expires":"2030-01-01"},"msisdn":"+37250000001"}`)
	f.Add(`{"given_names":1}`)
	f.Add(`{"unknown":true}`)
	f.Add(`{} {}`)
	f.Add(`{"date_of_birth":"03.05.1976"}`)
	f.Add(``)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ids := DefaultNationalIDs()
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/registrations", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req apiRegistrationReq
		err := decodeJSON(httptest.NewRecorder(), r, &req, false)
		if err != nil {
			var br *badRequest
			if !errors.As(err, &br) {
				t.Fatalf("decodeJSON error %T %v, want *badRequest", err, err)
			}
			return
		}
		form := &identityForm{
			GivenNames: req.GivenNames, Surname: req.Surname, Country: req.Country, NationalID: req.NationalID,
			DateOfBirth: req.DateOfBirth, DocumentType: req.Document.Type, DocumentNumber: req.Document.Number,
			DocumentIssuer: req.Document.Issuer, DocumentExpires: req.Document.Expires, MSISDN: req.MSISDN,
		}
		id, _ := form.identity()
		id.Normalize()
		if err := id.Validate(ids, now); err != nil {
			var fe FieldErrors
			if !errors.As(err, &fe) || len(fe) == 0 {
				t.Fatalf("Validate error %T %v, want FieldErrors", err, err)
			}
		}
	})
}

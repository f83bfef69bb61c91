package ca

import (
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// certCmp compares Certificates: serial numbers by value, times with
// Equal (the Client's are in UTC, the store's in local time), and no
// certificates the same as an empty list.
var certCmp = cmp.Options{
	cmp.Comparer(func(a, b *big.Int) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.Cmp(b) == 0
	}),
	cmpopts.EquateEmpty(),
}

// newTestClient serves tc's internal API and returns a Client of it.
func newTestClient(t *testing.T, tc *testCA) *Client {
	t.Helper()
	srv := httptest.NewServer(tc.Handler())
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, HTTP: srv.Client()}
}

// dbState is what an API request that fails must leave as it was.
type dbState struct {
	Certificates, Revoked, OnHold int
	CRLNumber                     int64
}

func stateOf(t *testing.T, db *store.DB) dbState {
	t.Helper()
	var s dbState
	err := db.QueryRowContext(t.Context(), `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'on_hold' THEN 1 ELSE 0 END), 0)
		FROM ca_certificate`).Scan(&s.Certificates, &s.Revoked, &s.OnHold)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(t.Context(), `SELECT number FROM ca_crl WHERE id = 1`).Scan(&s.CRLNumber); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClientLifecycle runs one certificate's life through the in-process
// CA and through a Client of its HTTP API, and expects the same results
// and errors from both.
func TestClientLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		client := newTestClient(t, tc)
		refusals := map[string]*RefusalError{}
		for _, is := range []struct {
			name       string
			iss        Issuer
			nationalID string
		}{
			{"CA", tc.CA, "38001085718"},
			{"Client", client, "49403136515"},
		} {
			t.Run(is.name, func(t *testing.T) {
				ctx := t.Context()
				iss := is.iss
				reg := newRegistration(t, tc.vendor, newECKey(t), newRSAKey(t, 0))
				issue := func(p Profile) *Certificate {
					t.Helper()
					req := reg.request(t, p)
					req.Subject.NationalID = is.nationalID
					got, err := iss.Issue(ctx, req)
					if err != nil {
						t.Fatalf("Issue(%s) = %v", p, err)
					}
					stored, err := tc.CA.Get(ctx, got.Serial)
					if err != nil {
						t.Fatalf("issued certificate not stored: %v", err)
					}
					if diff := cmp.Diff(stored, got, certCmp); diff != "" {
						t.Errorf("Issue(%s) returned (-stored +got):\n%s", p, diff)
					}
					return got
				}
				auth := issue(ProfileAuthentication)
				tc.clock.Advance(time.Second)
				sign := issue(ProfileSigning)

				got, err := iss.Get(ctx, auth.Serial)
				if err != nil {
					t.Fatalf("Get() = %v", err)
				}
				if diff := cmp.Diff(auth, got, certCmp); diff != "" {
					t.Errorf("Get() (-issued +got):\n%s", diff)
				}
				list, err := iss.List(ctx, ListFilter{NationalID: is.nationalID})
				if err != nil {
					t.Fatalf("List(national ID) = %v", err)
				}
				if diff := cmp.Diff([]*Certificate{sign, auth}, list, certCmp); diff != "" {
					t.Errorf("List(national ID) (-want +got):\n%s", diff)
				}

				refused := reg.request(t, ProfileAuthentication)
				refused.Subject.Country = "ee"
				_, err = iss.Issue(ctx, refused)
				var refusal *RefusalError
				if !errors.As(err, &refusal) || refusal.Code != RefusedSubject || !errors.Is(err, ErrRefused) {
					t.Errorf("Issue(lower-case country) = %v, want a *RefusalError with code %s", err, RefusedSubject)
				}
				refusals[is.name] = refusal

				now := tc.clock.Now()
				lostAt := now.Add(-time.Hour)
				unknown := big.NewInt(0x5eed)
				for _, tt := range []struct {
					name    string
					op      func() error
					serial  *big.Int
					wantErr error
					want    Status
					reason  int
				}{
					{"hold", func() error { return iss.Revoke(ctx, auth.Serial, ReasonCertificateHold, time.Time{}) }, auth.Serial, nil, StatusOnHold, ReasonCertificateHold},
					{"hold again", func() error { return iss.Revoke(ctx, auth.Serial, ReasonCertificateHold, time.Time{}) }, auth.Serial, ErrAlreadyOnHold, StatusOnHold, ReasonCertificateHold},
					{"release", func() error { return iss.Release(ctx, auth.Serial) }, auth.Serial, nil, StatusGood, 0},
					{"release good", func() error { return iss.Release(ctx, auth.Serial) }, auth.Serial, ErrNotOnHold, StatusGood, 0},
					{"bad reason", func() error { return iss.Revoke(ctx, auth.Serial, 7, time.Time{}) }, auth.Serial, ErrBadReason, StatusGood, 0},
					{"removeFromCRL", func() error { return iss.Revoke(ctx, auth.Serial, ReasonRemoveFromCRL, time.Time{}) }, auth.Serial, ErrBadReason, StatusGood, 0},
					{"future", func() error { return iss.Revoke(ctx, auth.Serial, ReasonKeyCompromise, now.Add(time.Hour)) }, auth.Serial, ErrFutureRevocation, StatusGood, 0},
					{"revoke", func() error { return iss.Revoke(ctx, auth.Serial, ReasonKeyCompromise, lostAt) }, auth.Serial, nil, StatusRevoked, ReasonKeyCompromise},
					{"revoke again", func() error { return iss.Revoke(ctx, auth.Serial, ReasonSuperseded, time.Time{}) }, auth.Serial, ErrAlreadyRevoked, StatusRevoked, ReasonKeyCompromise},
					{"hold revoked", func() error { return iss.Revoke(ctx, auth.Serial, ReasonCertificateHold, time.Time{}) }, auth.Serial, ErrAlreadyRevoked, StatusRevoked, ReasonKeyCompromise},
					{"release revoked", func() error { return iss.Release(ctx, auth.Serial) }, auth.Serial, ErrNotOnHold, StatusRevoked, ReasonKeyCompromise},
					{"hold other", func() error { return iss.Revoke(ctx, sign.Serial, ReasonCertificateHold, time.Time{}) }, sign.Serial, nil, StatusOnHold, ReasonCertificateHold},
					{"revoke held", func() error { return iss.Revoke(ctx, sign.Serial, ReasonCessationOfOperation, time.Time{}) }, sign.Serial, nil, StatusRevoked, ReasonCessationOfOperation},
					{"revoke unknown", func() error { return iss.Revoke(ctx, unknown, ReasonKeyCompromise, time.Time{}) }, nil, ErrNotFound, "", 0},
					{"release unknown", func() error { return iss.Release(ctx, unknown) }, nil, ErrNotFound, "", 0},
					{"get unknown", func() error { _, err := iss.Get(ctx, unknown); return err }, nil, ErrNotFound, "", 0},
					{"get zero", func() error { _, err := iss.Get(ctx, new(big.Int)); return err }, nil, ErrNotFound, "", 0},
					{"get nil", func() error { _, err := iss.Get(ctx, nil); return err }, nil, ErrNotFound, "", 0},
					{"get 21 octets", func() error { _, err := iss.Get(ctx, new(big.Int).Lsh(big.NewInt(1), 167)); return err }, nil, ErrNotFound, "", 0},
					{"revoke negative", func() error { return iss.Revoke(ctx, big.NewInt(-1), ReasonKeyCompromise, time.Time{}) }, nil, ErrNotFound, "", 0},
				} {
					err := tt.op()
					if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
						t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
					}
					if tt.serial == nil {
						continue
					}
					got, err := iss.Get(ctx, tt.serial)
					if err != nil {
						t.Fatalf("%s: Get() = %v", tt.name, err)
					}
					if got.Status != tt.want || got.Status != StatusGood && got.Reason != tt.reason {
						t.Errorf("%s: status %s (reason %d), want %s (reason %d)", tt.name, got.Status, got.Reason, tt.want, tt.reason)
					}
					stored, err := tc.CA.Get(ctx, tt.serial)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(stored, got, certCmp); diff != "" {
						t.Errorf("%s: Get() (-stored +got):\n%s", tt.name, diff)
					}
				}
				got, err = iss.Get(ctx, auth.Serial)
				if err != nil || !got.InvalidSince.Equal(lostAt) || !got.RevokedAt.Equal(now) {
					t.Errorf("Get(revoked) = %+v, %v; want invalid since %v, revoked at %v", got, err, lostAt, now)
				}
				list, err = iss.List(ctx, ListFilter{NationalID: is.nationalID, Status: StatusRevoked})
				if err != nil || len(list) != 2 {
					t.Errorf("List(revoked) = %d certificates, %v; want 2", len(list), err)
				}
			})
		}
		if diff := cmp.Diff(refusals["CA"], refusals["Client"]); diff != "" {
			t.Errorf("refusal (-CA +Client):\n%s", diff)
		}
	})
}

func TestClientList(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		client := newTestClient(t, tc)
		ctx := t.Context()
		a := newRegistration(t, tc.vendor, newECKey(t), newECKey(t))
		aAuth, _ := tc.issue(t, a.request(t, ProfileAuthentication))
		tc.clock.Advance(time.Second)
		aSign, _ := tc.issue(t, a.request(t, ProfileSigning))
		tc.clock.Advance(time.Second)
		b := newRegistration(t, nil, newECKey(t), newECKey(t)).request(t, ProfileAuthentication)
		b.Subject = Subject{Country: "LV", GivenName: "ANNA", Surname: "BĒRZIŅA", NationalID: "32128012345"}
		bAuth, _ := tc.issue(t, b)
		if err := tc.Revoke(ctx, bAuth.Serial, ReasonAffiliationChanged, time.Time{}); err != nil {
			t.Fatal(err)
		}
		ocsp, tsa := tc.keys.OCSP.SerialNumber, tc.keys.TSA.SerialNumber

		for _, tt := range []struct {
			name   string
			filter ListFilter
			want   []*big.Int // nil: compare with the CA only
		}{
			{"all", ListFilter{}, nil},
			{"national ID", ListFilter{NationalID: testSubject.NationalID}, []*big.Int{aSign.Serial, aAuth.Serial}},
			{"national ID and profile", ListFilter{NationalID: testSubject.NationalID, Profile: ProfileSigning}, []*big.Int{aSign.Serial}},
			{"country", ListFilter{Country: "LV"}, []*big.Int{bAuth.Serial}},
			{"ICCID", ListFilter{ICCID: testICCID}, []*big.Int{aSign.Serial, aAuth.Serial}},
			{"revoked", ListFilter{Status: StatusRevoked}, []*big.Int{bAuth.Serial}},
			{"on hold", ListFilter{Status: StatusOnHold}, []*big.Int{}},
			{"OCSP responder", ListFilter{Profile: ProfileOCSPResponder}, []*big.Int{ocsp}},
			{"time stamping", ListFilter{Profile: ProfileTimeStamping}, []*big.Int{tsa}},
			{"limit", ListFilter{Limit: 1}, []*big.Int{bAuth.Serial}},
			{"limit and filter", ListFilter{Country: "EE", Profile: ProfileAuthentication, Limit: 1}, []*big.Int{aAuth.Serial}},
			{"no match", ListFilter{NationalID: "1"}, []*big.Int{}},
			{"special characters", ListFilter{NationalID: "1&status=good"}, []*big.Int{}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				want, err := tc.CA.List(ctx, tt.filter)
				if err != nil {
					t.Fatalf("CA.List() = %v", err)
				}
				got, err := client.List(ctx, tt.filter)
				if err != nil {
					t.Fatalf("Client.List() = %v", err)
				}
				if diff := cmp.Diff(want, got, certCmp); diff != "" {
					t.Errorf("Client.List(%+v) (-CA +Client):\n%s", tt.filter, diff)
				}
				if tt.want == nil {
					if len(got) != 5 {
						t.Errorf("Client.List(%+v) = %d certificates, want 5", tt.filter, len(got))
					}
					return
				}
				var serials []*big.Int
				for _, c := range got {
					serials = append(serials, c.Serial)
				}
				if diff := cmp.Diff(tt.want, serials, certCmp); diff != "" {
					t.Errorf("Client.List(%+v) serials (-want +got):\n%s", tt.filter, diff)
				}
			})
		}

		for _, f := range []ListFilter{{Status: "suspended"}, {Profile: "client"}} {
			if got, err := client.List(ctx, f); err == nil {
				t.Errorf("Client.List(%+v) = %d certificates, want an error", f, len(got))
			}
		}
	})
}

// TestHTTPLifecycle pins the wire format of the lifecycle endpoints.
func TestHTTPLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		h := tc.Handler()
		cert, _ := tc.issue(t, newRegistration(t, tc.vendor, newECKey(t), newECKey(t)).request(t, ProfileAuthentication))
		key := serialKey(cert.Serial)

		call := func(method, path, body string) map[string]any {
			t.Helper()
			ct := ""
			if body != "" {
				ct = "application/json"
			}
			w := do(h, method, path, ct, []byte(body))
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s = %d %s: %s", method, path, w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			var m map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			return m
		}
		check := func(step string, got map[string]any, want map[string]any) {
			t.Helper()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", step, diff)
			}
		}
		rfc3339 := func(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }
		record := map[string]any{
			"serial": key, "profile": "authentication", "subject_cn": "JÕEORG,JAAK-KRISTJAN",
			"country": "EE", "national_id": "38001085718", "iccid": testICCID,
			"certificate": b64(cert.DER),
			"not_before":  rfc3339(cert.NotBefore), "not_after": rfc3339(cert.NotAfter), "issued_at": rfc3339(cert.IssuedAt),
			"status": "good",
		}
		with := func(kv ...any) map[string]any {
			m := map[string]any{}
			for k, v := range record {
				m[k] = v
			}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}

		check("GET good", call("GET", "/ca/certificates/"+key, ""), record)

		tc.clock.Advance(time.Minute)
		heldAt := tc.clock.Now()
		check("POST hold", call("POST", "/ca/revoke", `{"serial":"`+key+`","reason":6}`), map[string]any{"status": "hold"})
		check("GET on hold", call("GET", "/ca/certificates/"+key, ""), with("status", "on_hold", "reason", 6.0, "revoked_at", rfc3339(heldAt)))

		check("POST release", call("POST", "/ca/release", `{"serial":"`+key+`"}`), map[string]any{"status": "good"})
		check("GET released", call("GET", "/ca/certificates/"+key, ""), record)

		tc.clock.Advance(time.Minute)
		revokedAt := tc.clock.Now()
		check("POST revoke", call("POST", "/ca/revoke", `{"serial":"`+key+`","reason":0,"at":"`+rfc3339(heldAt)+`"}`), map[string]any{"status": "revoked"})
		revoked := with("status", "revoked", "reason", 0.0, "revoked_at", rfc3339(revokedAt), "invalid_since", rfc3339(heldAt))
		check("GET revoked", call("GET", "/ca/certificates/"+key, ""), revoked)

		check("GET list", call("GET", "/ca/certificates?national_id=38001085718&status=revoked", ""), map[string]any{"certificates": []any{revoked}})
		check("GET empty list", call("GET", "/ca/certificates?national_id=1", ""), map[string]any{"certificates": []any{}})
		if list := call("GET", "/ca/certificates?limit=", ""); len(list["certificates"].([]any)) != 3 {
			t.Errorf("GET /ca/certificates?limit= = %d certificates, want 3", len(list["certificates"].([]any)))
		}

		// The public listener must not offer any of it.
		pub := tc.PublicHandler()
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/ca/revoke", `{"serial":"` + key + `","reason":1}`},
			{"POST", "/ca/release", `{"serial":"` + key + `"}`},
			{"GET", "/ca/certificates/" + key, ""},
			{"GET", "/ca/certificates", ""},
		} {
			if w := do(pub, r.method, r.path, "application/json", []byte(r.body)); w.Code != http.StatusNotFound {
				t.Errorf("PublicHandler %s %s = %d, want 404", r.method, r.path, w.Code)
			}
		}
	})
}

func TestHTTPLifecycleBadInput(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		h := tc.Handler()
		reg := newRegistration(t, nil, newECKey(t), newECKey(t))
		good, _ := tc.issue(t, reg.request(t, ProfileAuthentication))
		revoked, _ := tc.issue(t, reg.request(t, ProfileSigning))
		if err := tc.Revoke(t.Context(), revoked.Serial, ReasonKeyCompromise, time.Time{}); err != nil {
			t.Fatal(err)
		}
		g, r := serialKey(good.Serial), serialKey(revoked.Serial)
		future := tc.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		huge := `{"serial":"` + g + `","reason":1,"x":"` + strings.Repeat("a", MaxIssueRequestBytes) + `"}`

		for _, tt := range []struct {
			name        string
			method      string
			path        string
			contentType string
			body        string
			status      int
			code        string
		}{
			{"revoke malformed JSON", "POST", "/ca/revoke", "application/json", `{"serial":`, 400, ""},
			{"revoke not an object", "POST", "/ca/revoke", "application/json", `["` + g + `"]`, 400, ""},
			{"revoke null", "POST", "/ca/revoke", "application/json", `null`, 400, ""},
			{"revoke empty body", "POST", "/ca/revoke", "application/json", ``, 400, ""},
			{"revoke unknown field", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":1,"pin":"1234"}`, 400, ""},
			{"revoke trailing data", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":1} {}`, 400, ""},
			{"revoke too large", "POST", "/ca/revoke", "application/json", huge, 413, ""},
			{"revoke no content type", "POST", "/ca/revoke", "", `{"serial":"` + g + `","reason":1}`, 415, ""},
			{"revoke form", "POST", "/ca/revoke", "application/x-www-form-urlencoded", `serial=` + g + `&reason=1`, 415, ""},
			{"revoke no serial", "POST", "/ca/revoke", "application/json", `{"reason":1}`, 400, ""},
			{"revoke serial as number", "POST", "/ca/revoke", "application/json", `{"serial":12345,"reason":1}`, 400, ""},
			{"revoke upper-case serial", "POST", "/ca/revoke", "application/json", `{"serial":"` + strings.ToUpper(g) + `","reason":1}`, 400, ""},
			{"revoke leading zero", "POST", "/ca/revoke", "application/json", `{"serial":"0` + g + `","reason":1}`, 400, ""},
			{"revoke 0x prefix", "POST", "/ca/revoke", "application/json", `{"serial":"0x` + g + `","reason":1}`, 400, ""},
			{"revoke colons", "POST", "/ca/revoke", "application/json", `{"serial":"` + g[:2] + `:` + g[2:] + `","reason":1}`, 400, ""},
			{"revoke zero serial", "POST", "/ca/revoke", "application/json", `{"serial":"0","reason":1}`, 400, ""},
			{"revoke negative serial", "POST", "/ca/revoke", "application/json", `{"serial":"-1","reason":1}`, 400, ""},
			{"revoke 41 digits", "POST", "/ca/revoke", "application/json", `{"serial":"1` + strings.Repeat("0", 40) + `","reason":1}`, 400, ""},
			{"revoke no reason", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `"}`, 400, ""},
			{"revoke reason null", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":null}`, 400, ""},
			{"revoke reason as string", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":"keyCompromise"}`, 400, ""},
			{"revoke reason fraction", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":1.5}`, 400, ""},
			{"revoke reason 7", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":7}`, 400, "bad_reason"},
			{"revoke removeFromCRL", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":8}`, 400, "bad_reason"},
			{"revoke negative reason", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":-1}`, 400, "bad_reason"},
			{"revoke at not RFC 3339", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":1,"at":"2026-11-29 10:00"}`, 400, ""},
			{"revoke at empty", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":1,"at":""}`, 400, ""},
			{"revoke at in the future", "POST", "/ca/revoke", "application/json", `{"serial":"` + g + `","reason":1,"at":"` + future + `"}`, 400, "future_revocation"},
			{"revoke unknown", "POST", "/ca/revoke", "application/json", `{"serial":"5eed","reason":1}`, 404, "not_found"},
			{"revoke revoked", "POST", "/ca/revoke", "application/json", `{"serial":"` + r + `","reason":4}`, 409, "already_revoked"},
			{"hold revoked", "POST", "/ca/revoke", "application/json", `{"serial":"` + r + `","reason":6}`, 409, "already_revoked"},
			{"GET revoke", "GET", "/ca/revoke", "", ``, 405, ""},

			{"release malformed JSON", "POST", "/ca/release", "application/json", `{`, 400, ""},
			{"release unknown field", "POST", "/ca/release", "application/json", `{"serial":"` + g + `","reason":6}`, 400, ""},
			{"release bad serial", "POST", "/ca/release", "application/json", `{"serial":"xyz"}`, 400, ""},
			{"release too large", "POST", "/ca/release", "application/json", `{"serial":"` + strings.Repeat("1", MaxIssueRequestBytes) + `"}`, 413, ""},
			{"release no content type", "POST", "/ca/release", "text/plain", `{"serial":"` + g + `"}`, 415, ""},
			{"release good", "POST", "/ca/release", "application/json", `{"serial":"` + g + `"}`, 409, "not_on_hold"},
			{"release revoked", "POST", "/ca/release", "application/json", `{"serial":"` + r + `"}`, 409, "not_on_hold"},
			{"release unknown", "POST", "/ca/release", "application/json", `{"serial":"5eed"}`, 404, "not_found"},

			{"get bad serial", "GET", "/ca/certificates/xyz", "", ``, 400, ""},
			{"get upper-case serial", "GET", "/ca/certificates/" + strings.ToUpper(g), "", ``, 400, ""},
			{"get zero serial", "GET", "/ca/certificates/0", "", ``, 400, ""},
			{"get unknown", "GET", "/ca/certificates/5eed", "", ``, 404, "not_found"},
			{"POST get", "POST", "/ca/certificates/" + g, "application/json", `{}`, 405, ""},

			{"list unknown parameter", "GET", "/ca/certificates?nationalid=38001085718", "", ``, 400, ""},
			{"list repeated parameter", "GET", "/ca/certificates?country=EE&country=LV", "", ``, 400, ""},
			{"list bad escape", "GET", "/ca/certificates?national_id=%zz", "", ``, 400, ""},
			{"list unknown status", "GET", "/ca/certificates?status=suspended", "", ``, 400, ""},
			{"list unknown profile", "GET", "/ca/certificates?profile=client", "", ``, 400, ""},
			{"list limit not a number", "GET", "/ca/certificates?limit=ten", "", ``, 400, ""},
			{"list negative limit", "GET", "/ca/certificates?limit=-1", "", ``, 400, ""},
			{"POST list", "POST", "/ca/certificates", "application/json", `{}`, 405, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := stateOf(t, db)
				w := do(h, tt.method, tt.path, tt.contentType, []byte(tt.body))
				if w.Code != tt.status {
					t.Errorf("%s %s = %d, want %d (%s)", tt.method, tt.path, w.Code, tt.status, w.Body)
				}
				if after := stateOf(t, db); after != before {
					t.Errorf("state changed: %+v, was %+v", after, before)
				}
				if tt.status == http.StatusMethodNotAllowed {
					return // answered by the router, not the API
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var e errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code != tt.code {
					t.Errorf("body %s: want {\"error\": ..., \"code\": %q}", w.Body, tt.code)
				}
			})
		}
		if got, err := tc.Get(t.Context(), good.Serial); err != nil || got.Status != StatusGood {
			t.Errorf("after the bad requests, Get(good) = %+v, %v; want it still good", got, err)
		}
	})
}

// TestClientErrors checks how Client reads answers that are not the CA's
// usual ones, with canned servers.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	jsonAnswer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	serial := big.NewInt(0x5eed)
	for _, tt := range []struct {
		name    string
		handler http.Handler
		wantErr error // nil: an error that is none of the package's
		refusal RefusalCode
	}{
		{"wrong address", http.NotFoundHandler(), nil, ""},
		{"404 without code", jsonAnswer(404, `{"error":"no such thing"}`), nil, ""},
		{"404 not JSON", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"x","code":"not_found"}`))
		}), nil, ""},
		{"code with another status", jsonAnswer(500, `{"error":"x","code":"not_found"}`), nil, ""},
		{"unknown code", jsonAnswer(409, `{"error":"x","code":"too_late"}`), nil, ""},
		{"internal error", jsonAnswer(500, `{"error":"internal error"}`), nil, ""},
		{"bad gateway", jsonAnswer(502, `<html>`), nil, ""},
		{"200 not JSON", jsonAnswer(200, `<html>`), nil, ""},
		{"not found", jsonAnswer(404, `{"error":"ca: certificate not found","code":"not_found"}`), ErrNotFound, ""},
		{"already revoked", jsonAnswer(409, `{"error":"revoke certificate 5eed: ca: certificate already revoked","code":"already_revoked"}`), ErrAlreadyRevoked, ""},
		{"not on hold", jsonAnswer(409, `{"error":"","code":"not_on_hold"}`), ErrNotOnHold, ""},
		{"refused", jsonAnswer(422, `{"error":"no","code":"bad_key"}`), ErrRefused, RefusedKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := &Client{BaseURL: srv.URL + "/", HTTP: srv.Client()}
			errs := map[string]error{}
			_, errs["Issue"] = c.Issue(t.Context(), &IssueRequest{})
			errs["Revoke"] = c.Revoke(t.Context(), serial, ReasonKeyCompromise, time.Time{})
			errs["Release"] = c.Release(t.Context(), serial)
			_, errs["Get"] = c.Get(t.Context(), serial)
			_, errs["List"] = c.List(t.Context(), ListFilter{})
			for op, err := range errs {
				if err == nil || err.Error() == "" {
					t.Errorf("%s() = %v, want an error", op, err)
					continue
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("%s() = %v, want %v", op, err, tt.wantErr)
				}
				for _, e := range []error{ErrNotFound, ErrAlreadyRevoked, ErrAlreadyOnHold, ErrNotOnHold, ErrBadReason, ErrFutureRevocation, ErrRefused} {
					if e != tt.wantErr && errors.Is(err, e) {
						t.Errorf("%s() = %v, which is %v", op, err, e)
					}
				}
				var refusal *RefusalError
				if errors.As(err, &refusal) != (tt.refusal != "") || refusal != nil && refusal.Code != tt.refusal {
					t.Errorf("%s() = %#v, want a refusal with code %q", op, err, tt.refusal)
				}
			}
		})
	}
}

package main

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/etsi"
	"mobileid/internal/idserver"
	"mobileid/internal/store"
)

// TestIDServerRPAddETSI registers a relying party of the ETSI
// pass-through and checks the refusals.
func TestIDServerRPAddETSI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runCmd(t, "idserver", "rp", "add", "--name", "ETSI Bank", "--data", data,
		"--services", "authentication,etsi", "--ap-id", "http://bank.example/etsi")
	if code != 0 || !strings.Contains(out, "ETSI AP_ID: http://bank.example/etsi") {
		t.Fatalf("rp add with an AP_ID = %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"--name", "Shop", "--services", "etsi"},
		{"--name", "Shop", "--ap-id", "http://shop.example/etsi"},
		{"--name", "Shop", "--services", "etsi", "--ap-id", "shop"},
		{"--name", "Shop", "--services", "etsi", "--ap-id", "http://bank.example/etsi"},
	} {
		args = append(args, "--data", data)
		if code, _, errOut := runCmd(t, append([]string{"idserver", "rp", "add"}, args...)...); code == 0 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("rp add %v = %d %q, want a one-line refusal", args, code, errOut)
		}
	}
}

// TestMountETSI serves the pass-through on the MSSP's paths beside the MID
// REST API.
func TestMountETSI(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "test.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rps, err := idserver.NewRPs(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := idserver.New(idserver.Config{APID: "http://id.example/ap", Roots: x509.NewCertPool()}, db, rps, noDirectory{}, noMSSP{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := mountETSI(srv.ETSIHandler(), srv.Handler())
	for _, tt := range []struct {
		method, path, body string
		want               int
		fault              bool
	}{
		{http.MethodPost, idserver.ETSIPathSignature, "<x/>", http.StatusInternalServerError, true},
		{http.MethodPost, idserver.ETSIPathRESTStatus, "{}", http.StatusInternalServerError, true},
		{http.MethodGet, "/mid-api/version", "", http.StatusOK, false},
		{http.MethodPost, "/mid-api/authentication", "{", http.StatusBadRequest, false},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
		if tt.fault {
			var err error
			if strings.HasPrefix(tt.path, "/rest/") {
				_, err = etsi.DecodeJSONFault(rec.Body, 0)
			} else {
				_, err = etsi.DecodeFault(rec.Body, 0)
			}
			if err != nil {
				t.Errorf("%s %s: not an ETSI fault: %v", tt.method, tt.path, err)
			}
		}
	}
}

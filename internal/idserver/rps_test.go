package idserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

const testUUID = "de305d54-75b4-431b-adb2-eb6b9e546014"

func TestRPs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		rps, err := NewRPs(db, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		cfg := RPConfig{UUID: testUUID, RP: RP{
			Name: "Demo Bank", Services: []Service{ServiceAuthentication, ServiceSignature},
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
			RateLimit:  2, Confirmation: "You logged in to {{.RP}}",
		}}
		if err := rps.Add(ctx, cfg); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if err := rps.Add(ctx, cfg); !errors.Is(err, ErrRPExists) {
			t.Errorf("Add again = %v, want ErrRPExists", err)
		}
		got, err := rps.Get(ctx, testUUID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		want := cfg.RP
		want.ID, want.Burst, want.CreatedAt = uuidKey(testUUID)[:16], 2, now
		if d := cmp.Diff(&want, got, cmpopts.IgnoreUnexported(RP{}), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
			t.Errorf("Get (-want +got):\n%s", d)
		}
		for _, u := range []string{"de305d54-75b4-431b-adb2-eb6b9e546015", "DE305D54-75B4-431B-ADB2-EB6B9E546014", ""} {
			if _, err := rps.Get(ctx, u); !errors.Is(err, ErrUnknownRP) {
				t.Errorf("Get(%q) = %v, want ErrUnknownRP", u, err)
			}
		}
		list, err := rps.List(ctx)
		if err != nil || len(list) != 1 || list[0].Name != "Demo Bank" {
			t.Errorf("List = %v, %v", list, err)
		}
		if text, err := got.confirmation(KindAuthentication); err != nil || text != "You logged in to Demo Bank" {
			t.Errorf("confirmation = %q, %v", text, err)
		}

		for _, c := range []struct {
			addr string
			want bool
		}{{"192.0.2.7", true}, {"::ffff:192.0.2.7", true}, {"2001:db8::1", true}, {"198.51.100.1", false}, {"::1", false}} {
			if ok := got.AllowsIP(netip.MustParseAddr(c.addr)); ok != c.want {
				t.Errorf("AllowsIP(%s) = %v, want %v", c.addr, ok, c.want)
			}
		}
		if got.Allows(ServiceCertificate) || !got.Allows(ServiceSignature) {
			t.Errorf("Allows: services %v", got.Services)
		}

		// The bucket holds 2 tokens and refills at 2 a second.
		for i, want := range []bool{true, true, false} {
			if ok := rps.Allow(got); ok != want {
				t.Errorf("Allow #%d = %v, want %v", i, ok, want)
			}
		}
		now = now.Add(500 * time.Millisecond)
		if !rps.Allow(got) || rps.Allow(got) {
			t.Error("after half a second one token should be back")
		}
	})
}

func TestRPConfigChecks(t *testing.T) {
	good := func() RPConfig {
		return RPConfig{UUID: testUUID, RP: RP{Name: "Demo Bank", Services: []Service{ServiceCertificate}}}
	}
	cases := []struct {
		name string
		edit func(*RPConfig)
	}{
		{"upper-case UUID", func(c *RPConfig) { c.UUID = "DE305D54-75B4-431B-ADB2-EB6B9E546014" }},
		{"no UUID", func(c *RPConfig) { c.UUID = "" }},
		{"no name", func(c *RPConfig) { c.Name = "" }},
		{"long name", func(c *RPConfig) { c.Name = "A very long relying party name, longer than 32" }},
		{"name not GSM-7", func(c *RPConfig) { c.Name = "Банк" }},
		{"name on two lines", func(c *RPConfig) { c.Name = "Demo\nBank" }},
		{"no services", func(c *RPConfig) { c.Services = nil }},
		{"unknown service", func(c *RPConfig) { c.Services = []Service{"payment"} }},
		{"negative rate", func(c *RPConfig) { c.RateLimit = -1 }},
		{"bad template", func(c *RPConfig) { c.Confirmation = "Hello {{.RP" }},
		{"unknown field", func(c *RPConfig) { c.Confirmation = "Hello {{.User}}" }},
		{"etsi without AP_ID", func(c *RPConfig) { c.Services = []Service{ServiceETSI} }},
		{"AP_ID without etsi", func(c *RPConfig) { c.APID = "http://bank.example/etsi" }},
		{"relative AP_ID", func(c *RPConfig) { c.Services, c.APID = []Service{ServiceETSI}, "bank/etsi" }},
		{"AP_ID with a space", func(c *RPConfig) { c.Services, c.APID = []Service{ServiceETSI}, "http://bank.example/e tsi" }},
		{"long AP_ID", func(c *RPConfig) {
			c.Services, c.APID = []Service{ServiceETSI}, "http://bank.example/"+strings.Repeat("x", 110)
		}},
	}
	for _, c := range cases {
		cfg := good()
		c.edit(&cfg)
		if err := checkRP(&cfg); err == nil {
			t.Errorf("checkRP with %s = nil, want an error", c.name)
		}
	}
	cfg := good()
	if err := checkRP(&cfg); err != nil {
		t.Errorf("checkRP(good) = %v", err)
	}
	for _, apID := range []string{"http://bank.example/etsi", "urn:example:bank", "https://bank.example"} {
		cfg := good()
		cfg.Services, cfg.APID = []Service{ServiceCertificate, ServiceETSI}, apID
		if err := checkRP(&cfg); err != nil {
			t.Errorf("checkRP with AP_ID %q = %v", apID, err)
		}
	}
}

// TestRPsAP registers RPs with AP_IDs and finds them by AP_ID and UUID.
func TestRPsAP(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rps, err := NewRPs(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		const other = "0f6a0c5e-2b1d-4c8e-9d3a-7e5b4a1c2d3e"
		bank := RPConfig{UUID: testUUID, RP: RP{Name: "Demo Bank", Services: []Service{ServiceETSI}, APID: "http://bank.example/etsi"}}
		if err := rps.Add(ctx, bank); err != nil {
			t.Fatalf("Add: %v", err)
		}
		// RPs without the etsi service share the empty AP_ID.
		for _, u := range []string{other, "1f4e2a9b-3c5d-4e6f-8a7b-9c0d1e2f3a4b"} {
			if err := rps.Add(ctx, RPConfig{UUID: u, RP: RP{Name: "Shop", Services: []Service{ServiceAuthentication}}}); err != nil {
				t.Fatalf("Add without AP_ID: %v", err)
			}
		}
		taken := RPConfig{UUID: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d", RP: RP{Name: "Copy", Services: []Service{ServiceETSI}, APID: bank.APID}}
		if err := rps.Add(ctx, taken); !errors.Is(err, ErrAPIDExists) {
			t.Errorf("Add with a taken AP_ID = %v, want ErrAPIDExists", err)
		}
		again := bank
		again.APID = "http://bank.example/etsi2"
		if err := rps.Add(ctx, again); !errors.Is(err, ErrRPExists) {
			t.Errorf("Add with a taken UUID = %v, want ErrRPExists", err)
		}
		got, err := rps.GetAP(ctx, bank.APID, testUUID)
		if err != nil || got.Name != "Demo Bank" || got.APID != bank.APID || got.ID != uuidKey(testUUID)[:16] {
			t.Fatalf("GetAP = %+v, %v", got, err)
		}
		if g, err := rps.Get(ctx, testUUID); err != nil || g.APID != bank.APID {
			t.Errorf("Get = %+v, %v, want the AP_ID", g, err)
		}
		for _, c := range []struct{ apID, pwd string }{
			{bank.APID, other}, {bank.APID, strings.ToUpper(testUUID)}, {bank.APID, ""},
			{"http://nobody.example", testUUID}, {"", other}, {"", testUUID},
		} {
			if rp, err := rps.GetAP(ctx, c.apID, c.pwd); !errors.Is(err, ErrUnknownRP) {
				t.Errorf("GetAP(%q, %q) = %+v, %v, want ErrUnknownRP", c.apID, c.pwd, rp, err)
			}
		}
	})
}

func TestRPConfigRedactsUUID(t *testing.T) {
	c := RPConfig{UUID: testUUID, RP: RP{Name: "Demo Bank"}}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if contains(s, testUUID) {
			t.Errorf("formatted RPConfig %q shows the UUID", s)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

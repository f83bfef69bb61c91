package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var allFiles = []string{RootCertFile, RootKeyFile, IssuingCertFile, IssuingKeyFile, OCSPCertFile, OCSPKeyFile, TSACertFile, TSAKeyFile}

func initOptions() InitOptions {
	return InitOptions{Organization: "Mobile ID Test", Country: "EE", BaseURL: testBaseURL + "/"}
}

func TestCeremony(t *testing.T) {
	t.Parallel()
	dir, kek := t.TempDir(), newKEK(t)
	start := time.Now().Truncate(time.Second)
	if err := Init(dir, kek, initOptions()); err != nil {
		t.Fatalf("Init() = %v", err)
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
		info, _ := e.Info()
		wantPerm := os.FileMode(0o644)
		if strings.HasSuffix(e.Name(), ".key") {
			wantPerm = 0o600
		}
		if info.Mode().Perm() != wantPerm {
			t.Errorf("%s has mode %v, want %v", e.Name(), info.Mode().Perm(), wantPerm)
		}
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(allFiles)), names); diff != "" {
		t.Errorf("ceremony files (-want +got):\n%s", diff)
	}

	// Each key file is sealed: the PEM holds neither the PKCS #8 DER nor
	// the private scalar, and opens only with the KEK and its own role.
	for _, role := range []string{roleRoot, roleIssuing, roleOCSP, roleTSA} {
		b, err := os.ReadFile(filepath.Join(dir, role+".key"))
		if err != nil {
			t.Fatal(err)
		}
		block, rest := pem.Decode(b)
		if block == nil || block.Type != KeyPEMType || len(rest) != 0 || block.Headers["Role"] != role {
			t.Fatalf("%s.key: PEM block %v, want one %q block with Role %s", role, block, KeyPEMType, role)
		}
		k, err := openKey(b, role, kek)
		if err != nil {
			t.Fatalf("openKey(%s) = %v", role, err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		scalar := k.(*ecdsa.PrivateKey).D.Bytes()
		if bytes.Contains(b, der) || bytes.Contains(block.Bytes, der) || bytes.Contains(block.Bytes, scalar) {
			t.Errorf("%s.key contains the key in the clear", role)
		}
		if _, err := openKey(b, role+"-other", kek); !errors.Is(err, ErrWrongKEK) {
			t.Errorf("openKey(%s as another role) = %v, want ErrWrongKEK", role, err)
		}
	}

	// Load never opens root.key: it works without it.
	if err := os.Remove(filepath.Join(dir, RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	keys, err := Load(dir, kek)
	if err != nil {
		t.Fatalf("Load() without root.key = %v", err)
	}

	check := func(name string, c *x509.Certificate, cn string, curve elliptic.Curve, years int, ku x509.KeyUsage) {
		t.Helper()
		if c.Subject.CommonName != cn || !slices.Equal(c.Subject.Organization, []string{"Mobile ID Test"}) || !slices.Equal(c.Subject.Country, []string{"EE"}) {
			t.Errorf("%s subject = %v", name, c.Subject)
		}
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != curve {
			t.Errorf("%s key = %T, want ECDSA %s", name, c.PublicKey, curve.Params().Name)
		}
		if c.NotBefore.Before(start) || !c.NotAfter.Equal(c.NotBefore.AddDate(years, 0, 0)) {
			t.Errorf("%s validity %v – %v, want %d years from now", name, c.NotBefore, c.NotAfter, years)
		}
		if c.KeyUsage != ku {
			t.Errorf("%s KeyUsage = %b, want %b", name, c.KeyUsage, ku)
		}
	}
	check("root", keys.Root, "Mobile ID Test Root CA", elliptic.P384(), 20, x509.KeyUsageCertSign|x509.KeyUsageCRLSign)
	check("issuing", keys.Issuing, "Mobile ID Test Issuing CA", elliptic.P384(), 10, x509.KeyUsageCertSign|x509.KeyUsageCRLSign)
	check("OCSP", keys.OCSP, "Mobile ID Test OCSP Responder", elliptic.P256(), 1, x509.KeyUsageDigitalSignature)
	check("TSA", keys.TSA, "Mobile ID Test Time-Stamping Authority", elliptic.P384(), 5, x509.KeyUsageDigitalSignature)

	if !keys.Root.IsCA || keys.Root.MaxPathLen != -1 || !bytes.Equal(keys.Root.RawIssuer, keys.Root.RawSubject) {
		t.Errorf("root: IsCA %v MaxPathLen %d, want a self-signed CA without path length", keys.Root.IsCA, keys.Root.MaxPathLen)
	}
	if !keys.Issuing.IsCA || keys.Issuing.MaxPathLen != 0 || !keys.Issuing.MaxPathLenZero {
		t.Errorf("issuing: IsCA %v MaxPathLen %d, want a CA with pathLenConstraint 0", keys.Issuing.IsCA, keys.Issuing.MaxPathLen)
	}
	if !slices.Equal(keys.Issuing.IssuingCertificateURL, []string{"http://ca.test/ca/root.crt"}) {
		t.Errorf("issuing caIssuers = %v", keys.Issuing.IssuingCertificateURL)
	}
	if !slices.Equal(keys.OCSP.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
		t.Errorf("OCSP ExtKeyUsage = %v, want OCSPSigning", keys.OCSP.ExtKeyUsage)
	}
	if e := findExt(keys.OCSP, oidOCSPNoCheck); e == nil || !bytes.Equal(e.Value, []byte{5, 0}) {
		t.Errorf("OCSP id-pkix-ocsp-nocheck = %v, want NULL", e)
	}
	if e := findExt(keys.TSA, oidExtKeyUsage); e == nil || !e.Critical {
		t.Errorf("TSA extKeyUsage = %v, want critical", e)
	} else {
		var oids []asn1.ObjectIdentifier
		asn1.Unmarshal(e.Value, &oids)
		if len(oids) != 1 || !oids[0].Equal(oidKPTimeStamping) {
			t.Errorf("TSA extKeyUsage = %v, want only id-kp-timeStamping", oids)
		}
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(keys.Root)
	inter.AddCert(keys.Issuing)
	for name, c := range map[string]*x509.Certificate{"OCSP": keys.OCSP, "TSA": keys.TSA} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s certificate does not verify: %v", name, err)
		}
	}

	// A wrong KEK is a clear error.
	wrong := newKEK(t)
	if _, err := Load(dir, wrong); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("Load(wrong KEK) = %v, want ErrWrongKEK", err)
	}
	if _, err := Load(dir, kek[:16]); !errors.Is(err, ErrBadKEK) {
		t.Errorf("Load(16-byte KEK) = %v, want ErrBadKEK", err)
	}
	// A key file swapped for another role's does not open.
	os.Rename(filepath.Join(dir, OCSPKeyFile), filepath.Join(dir, "ocsp.key.orig"))
	b, _ := os.ReadFile(filepath.Join(dir, TSAKeyFile))
	os.WriteFile(filepath.Join(dir, OCSPKeyFile), b, 0o600)
	if _, err := Load(dir, kek); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("Load(tsa.key as ocsp.key) = %v, want ErrWrongKEK", err)
	}
	os.Rename(filepath.Join(dir, "ocsp.key.orig"), filepath.Join(dir, OCSPKeyFile))
}

func findExt(c *x509.Certificate, oid asn1.ObjectIdentifier) *struct {
	Critical bool
	Value    []byte
} {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return &struct {
				Critical bool
				Value    []byte
			}{e.Critical, e.Value}
		}
	}
	return nil
}

func TestCeremonyRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	for _, existing := range allFiles {
		t.Run(existing, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, existing), []byte("precious"), 0o600)
			if err := Init(dir, newKEK(t), initOptions()); !errors.Is(err, ErrCeremonyExists) {
				t.Fatalf("Init() over %s = %v, want ErrCeremonyExists", existing, err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("Init() refused but left %d files", len(entries))
			}
			if b, _ := os.ReadFile(filepath.Join(dir, existing)); string(b) != "precious" {
				t.Errorf("%s was overwritten", existing)
			}
		})
	}
}

func TestCeremonyOptions(t *testing.T) {
	t.Parallel()
	kek := newKEK(t)
	for _, tt := range []struct {
		name string
		mod  func(o *InitOptions)
		kek  []byte
	}{
		{"no organisation", func(o *InitOptions) { o.Organization = " " }, kek},
		{"bad country", func(o *InitOptions) { o.Country = "Estonia" }, kek},
		{"no base URL", func(o *InitOptions) { o.BaseURL = "" }, kek},
		{"issuing outlives root", func(o *InitOptions) { o.RootValidity = 24 * time.Hour }, kek},
		{"short KEK", func(o *InitOptions) {}, kek[:31]},
	} {
		dir := t.TempDir()
		o := initOptions()
		tt.mod(&o)
		if err := Init(dir, tt.kek, o); err == nil {
			t.Errorf("%s: Init() = nil error", tt.name)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: refused Init() left %d files", tt.name, len(entries))
		}
	}

	// Root key elsewhere and validity overrides.
	dir, offline := t.TempDir(), t.TempDir()
	o := initOptions()
	o.RootKeyDir = offline
	o.OCSPValidity = 30 * 24 * time.Hour
	if err := Init(dir, kek, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(offline, RootKeyFile)); err != nil {
		t.Errorf("root.key not in RootKeyDir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, RootKeyFile)); err == nil {
		t.Errorf("root.key also in the ceremony directory")
	}
	keys, err := Load(dir, kek)
	if err != nil {
		t.Fatal(err)
	}
	if d := keys.OCSP.NotAfter.Sub(keys.OCSP.NotBefore); d != 30*24*time.Hour {
		t.Errorf("OCSP validity = %v, want 720h", d)
	}
}

func TestRenewOCSPResponder(t *testing.T) {
	t.Parallel()
	dir, kek := t.TempDir(), newKEK(t)
	if err := Init(dir, kek, initOptions()); err != nil {
		t.Fatal(err)
	}
	old, _ := Load(dir, kek)
	if err := RenewOCSPResponder(dir, kek, 90*24*time.Hour); err != nil {
		t.Fatalf("RenewOCSPResponder() = %v", err)
	}
	renewed, err := Load(dir, kek)
	if err != nil {
		t.Fatalf("Load() after renewal = %v", err)
	}
	if renewed.OCSP.SerialNumber.Cmp(old.OCSP.SerialNumber) == 0 || renewed.OCSPKey.Public().(*ecdsa.PublicKey).Equal(old.OCSPKey.Public()) {
		t.Errorf("renewal kept the old certificate or key")
	}
	if renewed.OCSP.Subject.String() != old.OCSP.Subject.String() || findExt(renewed.OCSP, oidOCSPNoCheck) == nil ||
		!slices.Equal(renewed.OCSP.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) ||
		!slices.Equal(renewed.OCSP.IssuingCertificateURL, old.OCSP.IssuingCertificateURL) {
		t.Errorf("renewed responder certificate differs in profile: %+v", renewed.OCSP)
	}
	if d := renewed.OCSP.NotAfter.Sub(renewed.OCSP.NotBefore); d != 90*24*time.Hour {
		t.Errorf("renewed validity = %v, want 2160h", d)
	}
	if _, err := os.Stat(filepath.Join(dir, OCSPKeyFile+".new")); err == nil {
		t.Errorf("temporary file left behind")
	}
}

func TestParseKEK(t *testing.T) {
	t.Parallel()
	good := strings.Repeat("0f", 32)
	if k, err := ParseKEK(" " + good + "\n"); err != nil || len(k) != 32 || k[0] != 0x0f {
		t.Errorf("ParseKEK(good) = %x, %v", k, err)
	}
	for _, s := range []string{"", good[:62], good + "00", strings.Repeat("zz", 32)} {
		if _, err := ParseKEK(s); !errors.Is(err, ErrBadKEK) {
			t.Errorf("ParseKEK(%q) = %v, want ErrBadKEK", s, err)
		}
	}
}

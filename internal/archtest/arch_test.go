package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "mobileid/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// simAllowed are the only packages that may depend on the SIM: the
// handsets that hold cards and the wiring (up, and bench, which starts
// it).
var simAllowed = []string{
	"mobileid/internal/sim",
	"mobileid/internal/handset",
	"mobileid/internal/simfactory",
	"mobileid/internal/e2e",
	"mobileid/internal/up",
	"mobileid/internal/bench",
	"mobileid/cmd/mobileid",
}

// TestOperatorSideNeverImportsSIM checks that no operator-side package
// reaches the SIM except through SMS: the private keys and PINs exist only
// inside internal/sim.
func TestOperatorSideNeverImportsSIM(t *testing.T) {
	for _, p := range listPackages(t) {
		if slices.Contains(simAllowed, p.ImportPath) {
			continue
		}
		for _, d := range p.Deps {
			if d == "mobileid/internal/sim" || d == "mobileid/internal/handset" || d == "mobileid/internal/simfactory" {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
}

// TestSIMDoesNoIO checks that the secure element knows nothing of files,
// networks or databases: it takes packets and returns packets.
func TestSIMDoesNoIO(t *testing.T) {
	forbidden := []string{"os", "net", "net/http", "database/sql", "log", "log/slog"}
	for _, p := range listPackages(t) {
		if p.ImportPath != "mobileid/internal/sim" {
			continue
		}
		for _, imp := range p.Imports {
			if slices.Contains(forbidden, imp) {
				t.Errorf("internal/sim imports %s", imp)
			}
		}
		return
	}
	t.Fatal("internal/sim not found")
}

// TestCodecsArePure checks that the shared codecs do no I/O either.
func TestCodecsArePure(t *testing.T) {
	codecs := []string{"mobileid/internal/ota", "mobileid/internal/sms", "mobileid/internal/vmac", "mobileid/internal/etsi", "mobileid/internal/cms"}
	forbidden := []string{"os", "net", "net/http", "database/sql", "log", "log/slog"}
	seen := 0
	for _, p := range listPackages(t) {
		if !slices.Contains(codecs, p.ImportPath) {
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if slices.Contains(forbidden, imp) {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
	if seen != len(codecs) {
		t.Errorf("found %d of the %d codec packages", seen, len(codecs))
	}
}

// TestIDServerUsesOnlyETSI checks that the ID Server reaches the Signature
// Server only through the ETSI TS 102 204 client, so that it can front any
// compliant MSSP, and the Registration Server only through its directory
// interface.
func TestIDServerUsesOnlyETSI(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != "mobileid/internal/idserver" {
			continue
		}
		for _, d := range p.Deps {
			switch d {
			case "mobileid/internal/mssp", "mobileid/internal/messaging", "mobileid/internal/registration", "mobileid/internal/ca":
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
		return
	}
	t.Fatal("mobileid/internal/idserver not found")
}

// TestBankIsAnOrdinaryRP checks that the demo bank reaches the platform
// only over the ID Server's public HTTP APIs, as any bank would: of the
// project's packages it may use only the store for its own tables and the
// consoles' shared web assets (and what those two use).
func TestBankIsAnOrdinaryRP(t *testing.T) {
	pkgs := listPackages(t)
	allowed := map[string]bool{"mobileid/internal/store": true, "mobileid/internal/webassets": true}
	for _, p := range pkgs {
		if allowed[p.ImportPath] {
			for _, d := range p.Deps {
				allowed[d] = true
			}
		}
	}
	for _, p := range pkgs {
		if p.ImportPath != "mobileid/internal/bank" {
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "mobileid/") && !allowed[d] {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
		return
	}
	t.Fatal("mobileid/internal/bank not found")
}

// TestOpsReadsThroughItsInterfaces checks that the operations console
// reaches the parts only through the interfaces it defines, which the
// wiring implements: besides the codecs it decodes SMS with and the
// shared web assets it depends on nothing of the platform, and only the
// wiring depends on it.
func TestOpsReadsThroughItsInterfaces(t *testing.T) {
	allowed := []string{"mobileid/internal/ota", "mobileid/internal/sms", "mobileid/internal/webassets"}
	users := []string{"mobileid/internal/ops", "mobileid/internal/up", "mobileid/cmd/mobileid"}
	found := false
	for _, p := range listPackages(t) {
		if p.ImportPath == "mobileid/internal/ops" {
			found = true
			for _, d := range p.Deps {
				if strings.HasPrefix(d, "mobileid/") && !slices.Contains(allowed, d) {
					t.Errorf("%s depends on %s", p.ImportPath, d)
				}
			}
			continue
		}
		if slices.Contains(p.Imports, "mobileid/internal/ops") && !slices.Contains(users, p.ImportPath) {
			t.Errorf("%s imports the operations console; only the wiring should", p.ImportPath)
		}
	}
	if !found {
		t.Fatal("mobileid/internal/ops not found")
	}
}

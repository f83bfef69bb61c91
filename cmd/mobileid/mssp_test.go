package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/mssp"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
	"mobileid/internal/store"
)

// TestMSSPCommands imports a SIM batch and registers an AP with the mssp
// operator commands, and checks that refused commands change nothing.
func TestMSSPCommands(t *testing.T) {
	dir := t.TempDir()
	batch := filepath.Join(dir, "batch")
	if code, _, errOut := runCmd(t, "sim", "issue", "--count", "3", "--msisdn-from", "+37200000101", "--out", batch); code != 0 {
		t.Fatalf("sim issue: %d %s", code, errOut)
	}
	data := filepath.Join(dir, "data")
	common := []string{"--data", data, "--kek-file", filepath.Join(data, "mssp.kek")}
	operator := filepath.Join(batch, simfactory.OperatorFile)

	code, out, errOut := runCmd(t, append([]string{"mssp", "import-sims", operator}, common...)...)
	if code != 0 || !strings.Contains(out, "imported 3 SIMs, 0 already known") {
		t.Fatalf("mssp import-sims = %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCmd(t, append([]string{"mssp", "import-sims", operator}, common...)...); code != 0 || !strings.Contains(out, "imported 0 SIMs, 3 already known") {
		t.Errorf("second import = %d %q, want everything already known", code, out)
	}
	kek, err := os.ReadFile(filepath.Join(data, "mssp.kek"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(filepath.Join(data, "mobileid.db"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(db), strings.TrimSpace(string(kek))) {
		t.Error("the key-encryption key is in the database")
	}

	t.Setenv("MOBILEID_AP_PASSWORD", "")
	add := append([]string{"mssp", "ap", "add", "--id", "http://bank.example/mid", "--name", "Test Bank"}, common...)
	if code, _, errOut := runCmd(t, add...); code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no password") {
		t.Errorf("ap add without a password = %d %q, want exit 2 with one line", code, errOut)
	}
	t.Setenv("MOBILEID_AP_PASSWORD", "s3cret-ap-password")
	if code, out, errOut := runCmd(t, add...); code != 0 || !strings.Contains(out, "added AP") {
		t.Fatalf("ap add = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, add...); code != 1 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("ap add twice = %d %q, want exit 1 with one line", code, errOut)
	}
	code, out, errOut = runCmd(t, append([]string{"mssp", "ap", "list"}, common...)...)
	if code != 0 || !strings.Contains(out, "http://bank.example/mid") || !strings.Contains(out, "Test Bank") {
		t.Fatalf("ap list = %d %q %q", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Error("ap list shows the password")
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("ap list has %d lines, want a header and one AP:\n%s", strings.Count(out, "\n"), out)
	}
}

// writeOperatorFile writes recs as an operator file and returns its path.
func writeOperatorFile(t *testing.T, path string, recs []simbatch.Record) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := simbatch.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMSSPImportSIMsSwap imports a file of new SIMs for numbers that have
// one, with and without --swap.
func TestMSSPImportSIMsSwap(t *testing.T) {
	dir := t.TempDir()
	batch := filepath.Join(dir, "batch")
	if code, _, errOut := runCmd(t, "sim", "issue", "--count", "3", "--msisdn-from", "+37200000101", "--out", batch); code != 0 {
		t.Fatalf("sim issue: %d %s", code, errOut)
	}
	data := filepath.Join(dir, "data")
	kekFile := filepath.Join(data, "mssp.kek")
	common := []string{"--data", data, "--kek-file", kekFile}
	if code, out, errOut := runCmd(t, append([]string{"mssp", "import-sims", filepath.Join(batch, simfactory.OperatorFile)}, common...)...); code != 0 {
		t.Fatalf("mssp import-sims = %d %q %q", code, out, errOut)
	}
	fh, err := os.Open(filepath.Join(batch, simfactory.OperatorFile))
	if err != nil {
		t.Fatal(err)
	}
	first, err := simbatch.Read(fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}

	// New cards for the first two numbers, and a card for a new number.
	var recs []simbatch.Record
	for i, msisdn := range []string{first[0].MSISDN, first[1].MSISDN, "+37200000199"} {
		body := fmt.Sprintf("899990200000000%03d", i+1)
		r := simbatch.Record{ICCID: body + string(simbatch.LuhnDigit(body)), IMSI: fmt.Sprintf("0010120000%05d", i+1), MSISDN: msisdn,
			TAR: first[0].TAR, KIc: first[0].KIc, KID: first[0].KID, KIcKey: make([]byte, 16), KIDKey: make([]byte, 16)}
		rand.Read(r.KIcKey)
		rand.Read(r.KIDKey)
		recs = append(recs, r)
	}
	swapFile := writeOperatorFile(t, filepath.Join(dir, "swap.csv"), recs)

	// Without --swap the new cards conflict, and nothing is imported.
	if code, out, errOut := runCmd(t, append([]string{"mssp", "import-sims", swapFile}, common...)...); code != 1 || !strings.Contains(errOut, "conflicts") {
		t.Errorf("import-sims without --swap = %d %q %q, want exit 1 with a conflict", code, out, errOut)
	}
	iccids := func() []string {
		t.Helper()
		db, err := store.Open(context.Background(), store.Config{DataDir: data})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		kek, err := loadKEK(&env{stdout: io.Discard, stderr: io.Discard}, msspKEKEnv, kekFile, false)
		if err != nil {
			t.Fatal(err)
		}
		sims, err := mssp.NewSIMs(db, kek, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range []string{first[0].MSISDN, first[1].MSISDN, first[2].MSISDN, recs[2].MSISDN} {
			sim, err := sims.ByMSISDN(context.Background(), m)
			if err != nil {
				out = append(out, "none")
				continue
			}
			out = append(out, sim.ICCID)
		}
		return out
	}
	want := fmt.Sprint([]string{first[0].ICCID, first[1].ICCID, first[2].ICCID, "none"})
	if got := fmt.Sprint(iccids()); got != want {
		t.Errorf("SIMs after a refused import = %s, want %s", got, want)
	}

	code, out, errOut := runCmd(t, append([]string{"mssp", "import-sims", "--swap", swapFile}, common...)...)
	if code != 0 || !strings.Contains(out, "imported 1 SIMs, 0 already known") || !strings.Contains(out, "swapped 2 SIMs") {
		t.Fatalf("import-sims --swap = %d %q %q, want 1 imported and 2 swapped", code, out, errOut)
	}
	for _, r := range recs[:2] {
		if !strings.Contains(out, r.MSISDN+": SIM "+r.ICCID+" replaces SIM ") {
			t.Errorf("import-sims --swap output %q does not name the swap of %s", out, r.MSISDN)
		}
	}
	want = fmt.Sprint([]string{recs[0].ICCID, recs[1].ICCID, first[2].ICCID, recs[2].ICCID})
	if got := fmt.Sprint(iccids()); got != want {
		t.Errorf("SIMs after the swap = %s, want %s", got, want)
	}

	// Again: everything is known, nothing is swapped; the first batch
	// again is known too, its swapped SIMs staying retired.
	if code, out, _ := runCmd(t, append([]string{"mssp", "import-sims", "--swap", swapFile}, common...)...); code != 0 ||
		!strings.Contains(out, "imported 0 SIMs, 3 already known") || !strings.Contains(out, "swapped 0 SIMs") {
		t.Errorf("import-sims --swap again = %d %q, want everything known", code, out)
	}
	if code, out, _ := runCmd(t, append([]string{"mssp", "import-sims", filepath.Join(batch, simfactory.OperatorFile)}, common...)...); code != 0 ||
		!strings.Contains(out, "imported 0 SIMs, 3 already known") {
		t.Errorf("first batch again = %d %q, want everything known", code, out)
	}
	if got := fmt.Sprint(iccids()); got != want {
		t.Errorf("SIMs after importing the first batch again = %s, want %s", got, want)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
)

// runCmd runs the binary's entry point in-process.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), &env{stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

const (
	aesKIc = "200102030405060708090a0b0c0d0e0f"
	aesKID = "201102030405060708090a0b0c0d0e0f"
	aesCmd = "00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058"
	aesRsp = "027100002412b00011ebc6b497e2cad7aedf36ace0e3a29b38853f0fe9ccde81913be5702b73abce1f"
)

func TestOTAWrap(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"AES vector", []string{"--spi", "0619", "--kic", "22", "--kid", "22", "--tar", "b00011", "--counter", "0000000000",
			"--kic-key", aesKIc, "--kid-key", aesKID, "00a40004023f00"}, aesCmd},
		{"with UDH", []string{"--spi", "0619", "--kic", "22", "--kid", "22", "--tar", "B00011", "--counter", "0000000000",
			"--kic-key", aesKIc, "--kid-key", aesKID, "--udh", "00a40004023f00"}, "027000" + aesCmd},
		{"data first", []string{"00a40004023f00", "--spi", "0619", "--kic", "22", "--kid", "22", "--tar", "b00011",
			"--kic-key", aesKIc, "--kid-key", aesKID}, aesCmd},
		{"3DES counter 100", []string{"--spi", "1619", "--kic", "15", "--kid", "15", "--tar", "b00010", "--counter", "0000000064",
			"--kic-key", "F09C43EE1A0391665CC9F05AF4E0BD10", "--kid-key", "01981F4A20999F62AF99988007BAF6CA", "A0A40000027F20A0C0000016"},
			"00281516191515b000103a4f599e94f2b5dcfbbda984761b7977df6514c57a580fb4844787c436d2eade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"ota", "wrap"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("ota wrap = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOTAUnwrap(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want map[string]any
	}{
		{"command", []string{"--kic-key", aesKIc, "--kid-key", aesKID, aesCmd}, 0, map[string]any{
			"spi": "0619", "kic": "22", "kid": "22", "tar": "b00011", "counter": "0000000000", "pcntr": 11.0,
			"cc": "ecbab1f8f55502c5", "cc_ok": true, "data": "00a40004023f00"}},
		{"command with UDH", []string{"--kic-key", aesKIc, "--kid-key", aesKID, "027000" + aesCmd}, 0, map[string]any{
			"spi": "0619", "kic": "22", "kid": "22", "tar": "b00011", "counter": "0000000000", "pcntr": 11.0,
			"cc": "ecbab1f8f55502c5", "cc_ok": true, "data": "00a40004023f00"}},
		{"response", []string{"--response", "--spi", "0619", "--kic", "22", "--kid", "22", "--kic-key", aesKIc, "--kid-key", aesKID, aesRsp}, 0, map[string]any{
			"spi": "0619", "kic": "22", "kid": "22", "tar": "b00011", "counter": "0000000000", "pcntr": 14.0, "status": "00",
			"cc": "34d237db461c150b", "cc_ok": true, "secured": true, "data": "016132"}},
		{"response without UDH", []string{"--response", "--spi", "0619", "--kic", "22", "--kid", "22", "--kic-key", aesKIc, "--kid-key", aesKID, aesRsp[6:]}, 0, map[string]any{
			"spi": "0619", "kic": "22", "kid": "22", "tar": "b00011", "counter": "0000000000", "pcntr": 14.0, "status": "00",
			"cc": "34d237db461c150b", "cc_ok": true, "secured": true, "data": "016132"}},
		{"bad CC", []string{"--kic-key", aesKIc, "--kid-key", aesKID, aesCmd[:len(aesCmd)-1] + "9"}, 1, nil},
		{"malformed", []string{"--kic-key", aesKIc, "--kid-key", aesKID, "0028150619"}, 2, nil},
		{"not hex", []string{"zz"}, 2, nil},
		{"response without spi", []string{"--response", aesRsp}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"ota", "unwrap"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if code != 0 {
				if n := strings.Count(errOut, "\n"); n != 1 {
					t.Errorf("stderr has %d lines, want one: %q", n, errOut)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ota unwrap mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCmd(t, "help")
	if code != 0 || !strings.Contains(out, "ota wrap") || !strings.Contains(out, "sim issue") {
		t.Errorf("help = %d %q", code, out)
	}
	code, _, errOut := runCmd(t, "ota", "wrap", "-h")
	if code != 0 || !strings.Contains(errOut, "--kic-key") && !strings.Contains(errOut, "-kic-key") {
		t.Errorf("ota wrap -h = %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "nonsense"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
	if code, _, errOut := runCmd(t, "ota"); code != 2 || !strings.Contains(errOut, "ota wrap") {
		t.Errorf("ota alone = %d %q", code, errOut)
	}
}

func TestSIMIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "batch")
	code, _, errOut := runCmd(t, "sim", "issue", "--count", "3", "--msisdn-from", "+37200000009", "--out", dir)
	if code != 0 {
		t.Fatalf("sim issue: %d %s", code, errOut)
	}
	fh, err := os.Open(filepath.Join(dir, simfactory.OperatorFile))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	recs, err := simbatch.Read(fh)
	if err != nil {
		t.Fatalf("reading the operator file: %v", err)
	}
	var msisdns []string
	for _, r := range recs {
		msisdns = append(msisdns, r.MSISDN)
	}
	if diff := cmp.Diff([]string{"+37200000009", "+37200000010", "+37200000011"}, msisdns); diff != "" {
		t.Errorf("MSISDNs (-want +got):\n%s", diff)
	}
	var f sim.Factory
	if err := simfactory.LoadFactory(&f, dir); err != nil {
		t.Fatalf("loadFactory: %v", err)
	}
	img, err := os.ReadFile(filepath.Join(dir, simfactory.CardsDir, recs[1].ICCID+".card"))
	if err != nil {
		t.Fatal(err)
	}
	card, err := sim.Open(img, f.FactoryKey, sim.Options{})
	if err != nil {
		t.Fatalf("sim.Open: %v", err)
	}
	if card.MSISDN() != "+37200000010" || card.IMSI() != recs[1].IMSI {
		t.Errorf("card = %s %s, want %s", card.MSISDN(), card.IMSI(), recs[1].MSISDN)
	}
	// Bad input changes nothing.
	for _, args := range [][]string{
		{"--count", "2", "--msisdn-from", "+37200000001", "--out", dir},
		{"--count", "2", "--msisdn-from", "372", "--out", dir + "2"},
		{"--count", "20", "--msisdn-from", "+99999999990", "--out", dir + "3"},
	} {
		if code, _, errOut := runCmd(t, append([]string{"sim", "issue"}, args...)...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("sim issue %v = %d %q, want exit 2 with one line", args, code, errOut)
		}
	}
	for _, d := range []string{dir + "2", dir + "3"} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s was created by a refused command", d)
		}
	}
}

func TestCACommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MOBILEID_CA_KEY", strings.Repeat("ab", 32))
	caDir := filepath.Join(dir, "ca")
	if code, _, errOut := runCmd(t, "ca", "init", "--dir", caDir, "--base-url", "http://127.0.0.1:8082"); code != 0 {
		t.Fatalf("ca init: %d %s", code, errOut)
	}
	for _, f := range []string{"root.pem", "root.key", "issuing.pem", "issuing.key", "ocsp.pem", "tsa.pem"} {
		if _, err := os.Stat(filepath.Join(caDir, f)); err != nil {
			t.Errorf("ca init did not write %s", f)
		}
	}
	if code, _, errOut := runCmd(t, "ca", "init", "--dir", caDir); code != 2 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("second ca init = %d %q, want exit 2 with one line", code, errOut)
	}
	common := []string{"--dir", caDir, "--data", dir}
	// A new CA has issued only its own service certificates.
	if code, out, errOut := runCmd(t, append([]string{"ca", "list"}, common...)...); code != 0 ||
		strings.Count(out, "\n") != 2 || !strings.Contains(out, `"profile":"ocsp-responder"`) || !strings.Contains(out, `"profile":"time-stamping"`) {
		t.Errorf("ca list on a new CA = %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"ca", "revoke", "zz"},
		{"ca", "revoke", "01", "--reason", "bored"},
		{"ca", "revoke", "0123456789abcdef"},
		{"ca", "list", "--status", "maybe"},
	} {
		if code, _, errOut := runCmd(t, append(args, common...)...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v = %d %q, want exit 2 with one line", args, code, errOut)
		}
	}
	t.Setenv("MOBILEID_CA_KEY", strings.Repeat("cd", 32))
	if code, _, errOut := runCmd(t, append([]string{"ca", "list"}, common...)...); code == 0 {
		t.Errorf("ca list with the wrong key-encryption key succeeded: %q", errOut)
	}
}

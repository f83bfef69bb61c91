package up

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// secretsFile is where the embedded system keeps the keys and passwords
// it made at its first start, readable by the owner only. A deployment of
// separate roles passes them in the environment instead (docs/deploy.md).
const secretsFile = "secrets.json"

// secrets are the keys and passwords of the embedded system.
type secrets struct {
	CAKEK            string `json:"ca_kek"`           // seals the CA's keys
	MSSPKEK          string `json:"mssp_kek"`         // seals the SIMs' OTA keys
	OIDCKEK          string `json:"oidc_kek"`         // seals the ID token signing keys
	OIDCSubjectKey   string `json:"oidc_subject_key"` // HMAC key of sub
	RegistrationAPPW string `json:"registration_ap"`  // the Registration Server's AP_PWD at the MSSP
	IDServerAPPW     string `json:"idserver_ap"`      // the ID Server's AP_PWD at the MSSP
	OfficerPassword  string `json:"officer_password"` // the demo officer's desk password
	BankRPUUID       string `json:"bank_rp_uuid"`     // the demo bank's relyingPartyUUID
	SMSCPassword     string `json:"smsc_password"`    // the MSSP's SMPP bind password
	DemoPINKey       string `json:"demo_pin_key"`     // derives the demo phones' PINs
	CreatedBy        string `json:"created_by"`       // what made the file
	FormatVersion    int    `json:"format_version"`   // 1
}

// loadSecrets reads the data directory's secrets, making any that are
// missing. fresh reports whether the file did not exist; changed, whether
// the secrets must be saved.
func loadSecrets(dir string) (s *secrets, fresh, changed bool, err error) {
	path := filepath.Join(dir, secretsFile)
	s = &secrets{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fresh = true
	case err != nil:
		return nil, false, false, fmt.Errorf("read %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, s); err != nil {
			return nil, false, false, fmt.Errorf("%s is not valid JSON: %v", path, err)
		}
	}
	changed = fresh
	for _, f := range []struct {
		v *string
		n int
	}{
		{&s.CAKEK, 32}, {&s.MSSPKEK, 32}, {&s.OIDCKEK, 32}, {&s.OIDCSubjectKey, 32},
		{&s.RegistrationAPPW, 16}, {&s.IDServerAPPW, 16}, {&s.OfficerPassword, 8}, {&s.SMSCPassword, 4}, {&s.DemoPINKey, 32},
	} {
		if *f.v == "" {
			*f.v = randomHex(f.n)
			changed = true
		}
	}
	if s.BankRPUUID == "" {
		s.BankRPUUID = randomUUID()
		changed = true
	}
	if s.FormatVersion == 0 {
		s.FormatVersion, s.CreatedBy, changed = 1, "mobileid up", true
	}
	for _, k := range []struct{ name, v string }{{"ca_kek", s.CAKEK}, {"mssp_kek", s.MSSPKEK}, {"oidc_kek", s.OIDCKEK}} {
		if b, err := hex.DecodeString(k.v); err != nil || len(b) != 32 {
			return nil, false, false, fmt.Errorf("%s: %s must be 64 hex digits", path, k.name)
		}
	}
	return s, fresh, changed, nil
}

// save writes the secrets atomically, readable by the owner only.
func (s *secrets) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode secrets: %w", err)
	}
	path := filepath.Join(dir, secretsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// key returns a hex key of s as bytes; loadSecrets has checked it.
func key(h string) []byte {
	b, _ := hex.DecodeString(h)
	return b
}

// key32 returns a 32-byte hex key of s.
func key32(h string) [32]byte {
	var k [32]byte
	copy(k[:], key(h))
	return k
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// String keeps the secrets out of logs and panics.
func (s *secrets) String() string { return "secrets{redacted}" }

// GoString is String, for %#v.
func (s *secrets) GoString() string { return s.String() }

// Credentials are what a client of a running system needs from its data
// directory: the desk officer's password and the demo bank's
// relyingPartyUUID (also its AP_PWD in the ETSI pass-through).
type Credentials struct {
	OfficerPassword string
	BankRPUUID      string
}

// ReadCredentials reads the credentials of the system whose data
// directory is dir, without making anything.
func ReadCredentials(dir string) (*Credentials, error) {
	path := filepath.Join(dir, secretsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s (is this the data directory of mobileid up?): %w", path, unwrapPath(err))
	}
	var s secrets
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %v", path, err)
	}
	return &Credentials{OfficerPassword: s.OfficerPassword, BankRPUUID: s.BankRPUUID}, nil
}

package mssp

import (
	"slices"
	"strings"

	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

// Profile is a signature profile (TR 102 206) the MSSP offers: what the
// user is asked to do and which key on the SIM answers. An AP names it by
// URI in SignatureProfile, and MSS_ProfileQuery lists it.
type Profile struct {
	// URI is the profile's own identifier in the IANA mss: scheme,
	// mss:Brand:Operation:LoA:SSCD. It is the URI reported back to APs.
	URI string
	// Name is a short English name of the operation ("authentication").
	Name string
	// Key is the card key that signs, which decides the PIN the user
	// enters: PIN1 for vmac.KeyAuth, PIN2 for vmac.KeySign.
	Key vmac.KeyRef
	// LoA is the level of assurance, the number in the URI's LoA part.
	LoA int
	// Aliases are other URIs that select this profile, so that clients
	// written for other MSSPs work unchanged.
	Aliases []string
}

// profileBrand is the Brand part of our mss: profile URIs.
const profileBrand = "mobileid.dev"

// Our profile URIs.
const (
	profileAuthn   = "mss:mobileid.dev:authn:loa3:UICC"
	profileSign    = "mss:mobileid.dev:sign:loa3:UICC"
	profileConsent = "mss:mobileid.dev:consent:loa3:UICC"
)

// operationConsent is the operation of profiles that only make sense when
// the user is shown what they consent to.
const operationConsent = "consent"

// defaultProfile is used when a request names none; FiCom and Swisscom also
// default to authentication.
const defaultProfile = profileAuthn

// profileRegistry lists the profiles in the order MSS_ProfileQuery reports
// them. It is only ever copied out, so callers cannot change it.
var profileRegistry = [...]Profile{
	{
		URI:  profileAuthn,
		Name: "authentication",
		Key:  vmac.KeyAuth,
		LoA:  3,
		Aliases: []string{
			"http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml",
			"http://alauda.mobi/digitalSignature",
			"http://mid.swisscom.ch/MID/v1/AuthProfile1",
		},
	},
	{
		URI:  profileSign,
		Name: "signing",
		Key:  vmac.KeySign,
		LoA:  3,
		Aliases: []string{
			"http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml",
			"http://mss.ficom.fi/TS102206/v1.0.0/digestive-signature-profile.xml",
			"http://alauda.mobi/nonRepudiation",
		},
	},
	{
		URI:  profileConsent,
		Name: "consent",
		Key:  vmac.KeySign,
		LoA:  3,
		Aliases: []string{
			"http://mss.ficom.fi/TS102206/v1.0.0/consent-profile.xml",
		},
	},
}

func (p *Profile) clone() *Profile {
	c := *p
	c.Aliases = slices.Clone(p.Aliases)
	return &c
}

// Profiles returns the supported signature profiles, the default first, for
// MSS_ProfileQuery. The result is a fresh copy.
func Profiles() []*Profile {
	out := make([]*Profile, len(profileRegistry))
	for i := range profileRegistry {
		out[i] = profileRegistry[i].clone()
	}
	return out
}

// LookupProfile returns the profile whose URI or one of whose aliases is
// uri, compared exactly. The result is a fresh copy.
func LookupProfile(uri string) (*Profile, bool) {
	if p := lookupProfile(uri); p != nil {
		return p.clone(), true
	}
	return nil, false
}

func lookupProfile(uri string) *Profile { return lookupProfileIn(profileRegistry[:], uri) }

func lookupProfileIn(reg []Profile, uri string) *Profile {
	for i := range reg {
		p := &reg[i]
		if p.URI == uri || slices.Contains(p.Aliases, uri) {
			return p
		}
	}
	return nil
}

// mssURI is a parsed mss: URI (mss:Brand:Operation:LoA:SSCD#Fragment).
type mssURI struct {
	brand, operation, sscd string
	loa                    int
}

// parseMSSURI splits an mss: URI. The fragment (key details such as
// "#rsa&2048") is ignored because our profiles do not constrain the key.
// The scheme and the "loa" prefix are case-insensitive.
func parseMSSURI(s string) (mssURI, bool) {
	if len(s) < 4 || !strings.EqualFold(s[:4], "mss:") {
		return mssURI{}, false
	}
	s, _, _ = strings.Cut(s[4:], "#")
	parts := strings.Split(s, ":")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[3] == "" {
		return mssURI{}, false
	}
	l := parts[2]
	if len(l) != 4 || !strings.EqualFold(l[:3], "loa") || l[3] < '1' || l[3] > '9' {
		return mssURI{}, false
	}
	return mssURI{brand: parts[0], operation: parts[1], loa: int(l[3] - '0'), sscd: parts[3]}, true
}

// operation returns the Operation part of p's URI.
func (p *Profile) operation() string {
	u, _ := parseMSSURI(p.URI)
	return u.operation
}

// resolveProfile picks the profile for a SignatureProfile and
// SignatureProfileComparison. The reference is the named profile (or the
// default); for "minimum", "better" and "maximum" it may also be an mss: URI
// of our brand that names no registered profile, such as a lower LoA.
// Candidates share the reference's operation and SSCD and are ordered by
// LoA: "minimum" takes the lowest LoA at or above the reference, "better"
// the highest at or above it, "maximum" the highest at or below it. On a
// tie the named profile itself wins.
func resolveProfile(uri, comparison string) (*Profile, error) {
	return resolveProfileIn(profileRegistry[:], uri, comparison)
}

// resolveProfileIn is resolveProfile over the registry reg.
func resolveProfileIn(reg []Profile, uri, comparison string) (*Profile, error) {
	if uri == "" {
		uri = defaultProfile
	}
	self := lookupProfileIn(reg, uri)
	switch comparison {
	case "", "exact":
		if self == nil {
			return nil, fault(etsi.CodeUnsupportedProfile, 0, "SignatureProfile %s is not supported", quote(uri))
		}
		return self.clone(), nil
	case "minimum", "better", "maximum":
	default:
		return nil, fault(etsi.CodeWrongParam, 0, "SignatureProfileComparison %s is not supported; use exact, minimum, better or maximum", quote(comparison))
	}
	var ref mssURI
	if self != nil {
		ref, _ = parseMSSURI(self.URI)
		ref.loa = self.LoA
	} else {
		u, ok := parseMSSURI(uri)
		if !ok || u.brand != profileBrand {
			return nil, fault(etsi.CodeUnsupportedProfile, 0, "SignatureProfile %s is not supported", quote(uri))
		}
		ref = u
	}
	var best *Profile
	for i := range reg {
		p := &reg[i]
		u, _ := parseMSSURI(p.URI)
		if u.operation != ref.operation || u.sscd != ref.sscd {
			continue
		}
		var fits, preferred bool
		switch comparison {
		case "minimum":
			fits = p.LoA >= ref.loa
			preferred = best == nil || p.LoA < best.LoA || p.LoA == best.LoA && p == self
		case "better":
			fits = p.LoA >= ref.loa
			preferred = best == nil || p.LoA > best.LoA || p.LoA == best.LoA && p == self
		case "maximum":
			fits = p.LoA <= ref.loa
			preferred = best == nil || p.LoA > best.LoA || p.LoA == best.LoA && p == self
		}
		if fits && preferred {
			best = p
		}
	}
	if best == nil {
		return nil, fault(etsi.CodeUnsupportedProfile, 0, "no supported profile meets SignatureProfile %s with comparison %s", quote(uri), comparison)
	}
	return best.clone(), nil
}

// formatPKCS7 is the default MSS_Format.
const formatPKCS7 = "http://uri.etsi.org/TS102204/v1.1.2#PKCS7"

// formatURIs maps every accepted MSS_Format URI to its format.
var formatURIs = [...]struct {
	uri    string
	format Format
}{
	{formatPKCS7, FormatCMS},
	{"http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature", FormatCMS},
	{"http://mss.ficom.fi/TS102204/v1.0.0#PKCS1", FormatPKCS1},
	{"http://www.methics.fi/KiuruMSSP/v3.2.0#PKCS1", FormatPKCS1},
}

// parseFormat returns the format an MSS_Format URI selects and the URI to
// echo, the default when uri is empty.
func parseFormat(uri string) (Format, string, error) {
	if uri == "" {
		uri = formatPKCS7
	}
	for _, f := range formatURIs {
		if f.uri == uri {
			return f.format, uri, nil
		}
	}
	return 0, "", fault(etsi.CodeWrongParam, 1017, "MSS_Format %s is not supported", quote(uri))
}

// Additional service URIs. Swisscom requests the user language with the
// FiCom URI too.
const (
	serviceValidate  = "http://uri.etsi.org/TS102204/v1.1.2#validate"
	serviceTimestamp = "http://uri.etsi.org/TS102204/v1.1.2#timestamp"
	serviceEventID   = "http://mss.ficom.fi/TS102204/v1.0.0#eventId"
	serviceNoSpam    = "http://mss.ficom.fi/TS102204/v1.0.0#noSpam"
	serviceUserLang  = "http://mss.ficom.fi/TS102204/v1.0.0#userLang"
)

// serviceURIs lists the supported additional services.
var serviceURIs = [...]string{serviceValidate, serviceTimestamp, serviceEventID, serviceNoSpam, serviceUserLang}

// userLangs are the languages the phone menus exist in (ISO 639-1).
var userLangs = [...]string{"en", "et", "ru", "lt", "de", "fr", "it", "fi", "sv"}

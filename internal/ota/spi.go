package ota

import "fmt"

// Integrity is the kind of redundancy check, cryptographic checksum or
// digital signature that a packet carries (SPI first octet b2b1 for
// commands, second octet b4b3 for the PoR).
type Integrity uint8

// Integrity values as coded in the SPI.
const (
	NoIntegrity Integrity = 0 // no RC, CC or DS
	RC          Integrity = 1 // redundancy check (CRC)
	CC          Integrity = 2 // cryptographic checksum
	DS          Integrity = 3 // digital signature; recognised, not supported
)

// String returns the abbreviation the standard uses.
func (i Integrity) String() string {
	switch i {
	case NoIntegrity:
		return "none"
	case RC:
		return "RC"
	case CC:
		return "CC"
	case DS:
		return "DS"
	}
	return fmt.Sprintf("Integrity(%d)", uint8(i))
}

// CounterMode is the replay-detection mode of SPI first octet b5b4.
type CounterMode uint8

// Counter modes as coded in the SPI.
const (
	NoCounter      CounterMode = 0 // counter field present but ignored
	CounterNoCheck CounterMode = 1 // counter available, no replay or sequence check
	CounterHigher  CounterMode = 2 // process only if CNTR is higher than the card's value
	CounterNext    CounterMode = 3 // process only if CNTR is the card's value plus one
)

// String describes the mode.
func (m CounterMode) String() string {
	switch m {
	case NoCounter:
		return "no counter"
	case CounterNoCheck:
		return "counter, no check"
	case CounterHigher:
		return "counter must be higher"
	case CounterNext:
		return "counter must be one higher"
	}
	return fmt.Sprintf("CounterMode(%d)", uint8(m))
}

// PoRMode says whether the card answers with a Proof of Receipt (SPI second
// octet b2b1).
type PoRMode uint8

// PoR modes as coded in the SPI. The fourth value is reserved.
const (
	NoPoR      PoRMode = 0
	PoRAlways  PoRMode = 1
	PoROnError PoRMode = 2
)

// SPI is the two-octet Security Parameter Indicator of TS 102 225 §5.1.1,
// with b6 of the second octet as defined by TS 31.115 (PoR sent in an
// SMS-SUBMIT rather than in the SMS-DELIVER-REPORT).
type SPI struct {
	Integrity    Integrity
	Ciphered     bool
	Counter      CounterMode
	PoR          PoRMode
	PoRIntegrity Integrity
	PoRCiphered  bool
	PoRSubmit    bool
}

// ParseSPI decodes the two SPI octets. Reserved bits and the reserved PoR
// mode are errors: a card must not guess what a sender meant by them.
func ParseSPI(b1, b2 byte) (SPI, error) {
	if b1&0xE0 != 0 {
		return SPI{}, fmt.Errorf("ota: SPI %02x%02x: reserved bits set in first octet", b1, b2)
	}
	if b2&0xC0 != 0 {
		return SPI{}, fmt.Errorf("ota: SPI %02x%02x: reserved bits set in second octet", b1, b2)
	}
	if b2&0x03 == 0x03 {
		return SPI{}, fmt.Errorf("ota: SPI %02x%02x: reserved PoR mode 11", b1, b2)
	}
	return SPI{
		Integrity:    Integrity(b1 & 0x03),
		Ciphered:     b1&0x04 != 0,
		Counter:      CounterMode(b1 >> 3 & 0x03),
		PoR:          PoRMode(b2 & 0x03),
		PoRIntegrity: Integrity(b2 >> 2 & 0x03),
		PoRCiphered:  b2&0x10 != 0,
		PoRSubmit:    b2&0x20 != 0,
	}, nil
}

// Bytes encodes the SPI.
func (s SPI) Bytes() [2]byte {
	b1 := byte(s.Integrity&3) | byte(s.Counter&3)<<3
	if s.Ciphered {
		b1 |= 0x04
	}
	b2 := byte(s.PoR&3) | byte(s.PoRIntegrity&3)<<2
	if s.PoRCiphered {
		b2 |= 0x10
	}
	if s.PoRSubmit {
		b2 |= 0x20
	}
	return [2]byte{b1, b2}
}

// String returns the SPI as four hex digits, the way operators write it.
func (s SPI) String() string {
	b := s.Bytes()
	return fmt.Sprintf("%02x%02x", b[0], b[1])
}

// Algorithm is a ciphering or checksum algorithm selected by a KIc or KID
// octet (TS 102 225 §5.1.2 and §5.1.3).
type Algorithm uint8

// Algorithms. The ciphering ones come from KIc, the integrity ones from KID.
const (
	AlgUnknown Algorithm = iota
	AlgDESCBC            // single DES in CBC mode (legacy)
	Alg3DES2             // triple DES, two keys, outer CBC
	Alg3DES3             // triple DES, three keys, outer CBC
	AlgDESECB            // single DES in ECB mode (legacy, KIc only)
	AlgAES               // AES-CBC for KIc, AES-CMAC for KID
	AlgCRC16             // redundancy check, CRC-16 (KID with RC)
	AlgCRC32             // redundancy check, CRC-32 (KID with RC)
)

var algNames = [...]string{"unknown", "DES-CBC", "3DES-2KEY", "3DES-3KEY", "DES-ECB", "AES", "CRC16", "CRC32"}

// String names the algorithm.
func (a Algorithm) String() string {
	if int(a) < len(algNames) {
		return algNames[a]
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// KeyIndex returns the key version number in the high nibble of a KIc or
// KID octet.
func KeyIndex(k byte) int { return int(k >> 4) }

// CipherAlgorithm decodes the algorithm of a KIc octet.
func CipherAlgorithm(kic byte) (Algorithm, error) {
	switch kic & 0x03 {
	case 0x00:
		return AlgUnknown, fmt.Errorf("ota: KIc %02x: implicitly known algorithm is not supported", kic)
	case 0x01:
		return [4]Algorithm{AlgDESCBC, Alg3DES2, Alg3DES3, AlgDESECB}[kic>>2&3], nil
	case 0x02:
		if kic>>2&3 != 0 {
			return AlgUnknown, fmt.Errorf("ota: KIc %02x: reserved AES mode", kic)
		}
		return AlgAES, nil
	}
	return AlgUnknown, fmt.Errorf("ota: KIc %02x: proprietary algorithm is not supported", kic)
}

// IntegrityAlgorithm decodes the algorithm of a KID octet for the given
// kind of integrity.
func IntegrityAlgorithm(kid byte, i Integrity) (Algorithm, error) {
	switch i {
	case RC:
		if kid&0x03 != 0x01 {
			return AlgUnknown, fmt.Errorf("ota: KID %02x: redundancy check algorithm not supported", kid)
		}
		switch kid >> 2 & 3 {
		case 0:
			return AlgCRC16, nil
		case 1:
			return AlgCRC32, nil
		}
		return AlgUnknown, fmt.Errorf("ota: KID %02x: reserved CRC type", kid)
	case CC:
		switch kid & 0x03 {
		case 0x00:
			return AlgUnknown, fmt.Errorf("ota: KID %02x: implicitly known algorithm is not supported", kid)
		case 0x01:
			switch kid >> 2 & 3 {
			case 0:
				return AlgDESCBC, nil
			case 1:
				return Alg3DES2, nil
			case 2:
				return Alg3DES3, nil
			}
			return AlgUnknown, fmt.Errorf("ota: KID %02x: reserved DES mode", kid)
		case 0x02:
			if kid>>2&3 != 0 {
				return AlgUnknown, fmt.Errorf("ota: KID %02x: reserved AES mode", kid)
			}
			return AlgAES, nil
		}
		return AlgUnknown, fmt.Errorf("ota: KID %02x: proprietary algorithm is not supported", kid)
	case DS:
		return AlgUnknown, fmt.Errorf("ota: digital signature integrity is not supported")
	}
	return AlgUnknown, nil
}

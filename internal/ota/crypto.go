package ota

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// blockSize returns the cipher block size of alg, which is also the unit
// to which ciphered packets are padded.
func blockSize(alg Algorithm) int {
	if alg == AlgAES {
		return aes.BlockSize
	}
	return des.BlockSize
}

// newBlock expands key for alg. Key lengths are checked here so that a
// wrong key is reported as such rather than as a checksum failure.
func newBlock(alg Algorithm, key []byte) (cipher.Block, error) {
	switch alg {
	case AlgDESCBC, AlgDESECB:
		if len(key) != 8 {
			return nil, fmt.Errorf("ota: %v key is %d bytes, want 8", alg, len(key))
		}
		return des.NewCipher(key)
	case Alg3DES2:
		if len(key) != 16 {
			return nil, fmt.Errorf("ota: %v key is %d bytes, want 16", alg, len(key))
		}
		k := make([]byte, 24)
		copy(k, key)
		copy(k[16:], key[:8])
		return des.NewTripleDESCipher(k)
	case Alg3DES3:
		if len(key) != 24 {
			return nil, fmt.Errorf("ota: %v key is %d bytes, want 24", alg, len(key))
		}
		return des.NewTripleDESCipher(key)
	case AlgAES:
		switch len(key) {
		case 16, 24, 32:
			return aes.NewCipher(key)
		}
		return nil, fmt.Errorf("ota: AES key is %d bytes, want 16, 24 or 32", len(key))
	}
	return nil, fmt.Errorf("ota: %v is not a block cipher", alg)
}

// crypt enciphers or deciphers buf in place with alg under key.
func crypt(alg Algorithm, key, buf []byte, encrypt bool) error {
	b, err := newBlock(alg, key)
	if err != nil {
		return err
	}
	return cryptBlock(b, alg == AlgDESECB, buf, encrypt)
}

// cryptBlock runs CBC (or ECB for the legacy DES mode) over buf in place.
// CBC always starts from a zero IV: TS 102 225 chains nothing across
// packets. The loop is written out because packets are a few blocks long
// and the cipher.BlockMode wrappers would cost more in allocations than
// they save.
func cryptBlock(b cipher.Block, ecb bool, buf []byte, encrypt bool) error {
	bs := b.BlockSize()
	if len(buf)%bs != 0 {
		return fmt.Errorf("ota: ciphered length %d is not a multiple of %d", len(buf), bs)
	}
	var prev, cur [aes.BlockSize]byte
	for i := 0; i < len(buf); i += bs {
		blk := buf[i : i+bs]
		switch {
		case ecb && encrypt:
			b.Encrypt(blk, blk)
		case ecb:
			b.Decrypt(blk, blk)
		case encrypt:
			subtle.XORBytes(blk, blk, prev[:bs])
			b.Encrypt(blk, blk)
			copy(prev[:], blk)
		default:
			copy(cur[:], blk)
			b.Decrypt(blk, blk)
			subtle.XORBytes(blk, blk, prev[:bs])
			prev = cur
		}
	}
	return nil
}

// checkLen returns the length of the RC/CC/DS field a sender produces for
// alg, given the requested CC length (which only AES-CMAC honours).
func checkLen(alg Algorithm, ccLen int) (int, error) {
	switch alg {
	case AlgCRC16:
		return 2, nil
	case AlgCRC32:
		return 4, nil
	case AlgAES:
		switch ccLen {
		case 0, 8:
			return 8, nil
		case 4:
			return 4, nil
		}
		return 0, fmt.Errorf("ota: AES-CMAC length %d, want 4 or 8", ccLen)
	case AlgDESCBC, Alg3DES2, Alg3DES3:
		if ccLen != 0 && ccLen != 8 {
			return 0, fmt.Errorf("ota: %v CC length %d, want 8", alg, ccLen)
		}
		return 8, nil
	}
	return 0, fmt.Errorf("ota: %v cannot compute a checksum", alg)
}

// validCheckLen says whether a received RC/CC field of n octets is one a
// sender could have produced with alg.
func validCheckLen(alg Algorithm, n int) bool {
	switch alg {
	case AlgCRC16:
		return n == 2
	case AlgCRC32:
		return n == 4
	case AlgAES:
		return n == 4 || n == 8
	}
	return n == 8
}

// checksum computes the RC or CC of msg, n octets long.
func checksum(alg Algorithm, key, msg []byte, n int) ([]byte, error) {
	switch alg {
	case AlgCRC16:
		return binary.BigEndian.AppendUint16(nil, crc16(msg)), nil
	case AlgCRC32:
		return binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(msg)), nil
	case AlgAES:
		b, err := newBlock(alg, key)
		if err != nil {
			return nil, err
		}
		var tag [aes.BlockSize]byte
		cmacBlock(b, msg, &tag)
		return tag[:n:n], nil
	case AlgDESCBC, Alg3DES2, Alg3DES3:
		b, err := newBlock(alg, key)
		if err != nil {
			return nil, err
		}
		// CBC-MAC with a zero IV over the message padded with zeros to a
		// whole number of blocks; the CC is the last block.
		var x [des.BlockSize]byte
		for i := 0; i < len(msg); i += des.BlockSize {
			end := min(i+des.BlockSize, len(msg))
			for j := i; j < end; j++ {
				x[j-i] ^= msg[j]
			}
			b.Encrypt(x[:], x[:])
		}
		return x[:], nil
	}
	return nil, fmt.Errorf("ota: %v cannot compute a checksum", alg)
}

// crc16 is the CRC-16 of ISO/IEC 13239 (polynomial 0x1021, reflected,
// initial value and final XOR 0xFFFF) that TS 102 225 names for the RC.
func crc16(msg []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range msg {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

package ota

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// CMAC computes AES-CMAC (NIST SP 800-38B, RFC 4493) of msg under key,
// which may be 16, 24 or 32 bytes long. The result is the full 16-byte tag;
// callers truncate it to the leftmost octets they need.
func CMAC(key, msg []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ota: AES-CMAC key: %w", err)
	}
	var tag [aes.BlockSize]byte
	cmacBlock(b, msg, &tag)
	return tag[:], nil
}

// cmacBlock computes AES-CMAC with an already expanded block cipher. It is
// separate from CMAC so the packet code can reuse one cipher.Block.
func cmacBlock(b cipher.Block, msg []byte, tag *[aes.BlockSize]byte) {
	var k1, k2 [aes.BlockSize]byte
	b.Encrypt(k1[:], k1[:]) // L = AES-K(0^128)
	doubleGF(&k1)
	k2 = k1
	doubleGF(&k2)

	var x [aes.BlockSize]byte
	n := (len(msg) + aes.BlockSize - 1) / aes.BlockSize
	complete := n > 0 && len(msg)%aes.BlockSize == 0
	if n == 0 {
		n = 1
	}
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[i*aes.BlockSize:(i+1)*aes.BlockSize])
		b.Encrypt(x[:], x[:])
	}
	var last [aes.BlockSize]byte
	rest := msg[(n-1)*aes.BlockSize:]
	if complete {
		subtle.XORBytes(last[:], rest, k1[:])
	} else {
		copy(last[:], rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	b.Encrypt(tag[:], x[:])
}

// doubleGF multiplies v by x in GF(2^128) with the CMAC polynomial
// (the subkey derivation of RFC 4493 §2.3).
func doubleGF(v *[aes.BlockSize]byte) {
	msb := v[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		v[i] = v[i]<<1 | v[i+1]>>7
	}
	v[aes.BlockSize-1] = v[aes.BlockSize-1]<<1 ^ (0x87 & -msb)
}

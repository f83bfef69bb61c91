package sim

import (
	"crypto"
	"crypto/sha512"
)

const (
	crypto256 = crypto.SHA256
	crypto384 = crypto.SHA384
)

func sha384(b []byte) []byte {
	d := sha512.Sum384(b)
	return d[:]
}

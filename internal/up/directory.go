package up

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"mobileid/internal/ca"
	"mobileid/internal/idserver"
	"mobileid/internal/registration"
)

// Directory is the ID Server's directory over the Registration Server's
// records and the CA's certificates: whose Mobile ID a number is, and
// their certificates.
type Directory struct {
	// RS holds the people and their Mobile IDs; the ID Server only reads.
	RS *registration.Server
	// CA gives the certificates by serial number.
	CA ca.Issuer
}

var _ idserver.Directory = (*Directory)(nil)

// Find returns the person with an active Mobile ID on phone, or
// idserver.ErrNotFound.
func (d *Directory) Find(ctx context.Context, phone string) (*idserver.Person, error) {
	m, err := d.RS.Lookup(ctx, phone)
	if errors.Is(err, registration.ErrNotFound) {
		return nil, idserver.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p := &idserver.Person{Country: m.Person.Country, NationalID: m.Person.NationalID, GivenNames: m.Person.GivenNames, Surname: m.Person.Surname}
	for _, c := range []struct {
		serial string
		der    *[]byte
	}{{m.AuthSerial, &p.AuthCert}, {m.SignSerial, &p.SignCert}} {
		n, ok := new(big.Int).SetString(c.serial, 16)
		if !ok {
			return nil, fmt.Errorf("directory: %s: bad certificate serial %q", phone, c.serial)
		}
		cert, err := d.CA.Get(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("directory: %s: %w", phone, err)
		}
		*c.der = cert.DER
	}
	return p, nil
}

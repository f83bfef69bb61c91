package up

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"time"

	"mobileid/internal/handset"
	"mobileid/internal/registration"
)

// DemoPerson is a person the first start registers at the desk, with the
// PINs their scripted phone chose.
type DemoPerson struct {
	Name       string
	Country    string
	NationalID string
	MSISDN     string
	PIN1, PIN2 string
	// State is the Mobile ID's state: active, unless someone has since
	// suspended or revoked it at the desk.
	State string
}

// demoPeople are registered on the batch's first numbers, in order. Their
// personal codes are valid Estonian ones (checksum and date of birth).
var demoPeople = []struct {
	given, surname, nationalID string
	born                       time.Time
}{
	{"Mari-Liis", "Männik", "47605030299", time.Date(1976, 5, 3, 0, 0, 0, 0, time.UTC)},
	{"Jaan", "Tamm", "39103050021", time.Date(1991, 3, 5, 0, 0, 0, 0, time.UTC)},
	{"Liis", "Kask", "49506070017", time.Date(1995, 6, 7, 0, 0, 0, 0, time.UTC)},
}

// demoMSISDN returns the batch's i-th number.
func demoMSISDN(i int) string {
	n, _ := new(big.Int).SetString(firstMSISDN[1:], 10)
	return "+" + n.Add(n, big.NewInt(int64(i))).String()
}

// demoPINs returns the PINs the scripted user of a phone chooses: derived
// from the number under a key of the data directory, so that they are the
// same at every start (the phone console shows them) without being kept
// anywhere, and differ between installations.
func demoPINs(pinKey []byte) func(msisdn string) (string, string) {
	return func(msisdn string) (string, string) {
		m := hmac.New(sha256.New, pinKey)
		m.Write([]byte("demo PINs " + msisdn))
		sum := m.Sum(nil)
		a, b := binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])
		return fmt.Sprintf("%04d", a%10000), fmt.Sprintf("%05d", b%100000)
	}
}

// registerDemoPeople registers the demo people who have no Mobile ID yet,
// through the desk's flow: the MSSP asks their SIM for keys, their
// scripted user chooses the PINs, the CA certifies the keys. A person
// whose Mobile ID was since suspended or revoked at the desk is left so.
func (s *System) registerDemoPeople(ctx context.Context, rs *registration.Server, phones *handset.Network, pins func(string) (string, string)) error {
	officer, err := rs.Login(ctx, officerUser, s.OfficerPassword)
	if err != nil {
		return fmt.Errorf("registration: demo officer: %w", err)
	}
	for i, d := range demoPeople {
		msisdn := demoMSISDN(i)
		phone, ok := phones.Phone(msisdn)
		if !ok {
			return fmt.Errorf("demo people: the SIM batch has no number %s", msisdn)
		}
		pin1, pin2 := pins(msisdn)
		p := DemoPerson{Name: d.given + " " + d.surname, Country: "EE", NationalID: d.nationalID, MSISDN: msisdn, PIN1: pin1, PIN2: pin2}
		found, err := rs.Search(ctx, d.nationalID)
		if err != nil {
			return fmt.Errorf("demo people: %w", err)
		}
		var m *registration.MobileID
		for _, f := range found {
			if f.Person.NationalID == d.nationalID {
				m = f
				break
			}
		}
		fresh := m == nil
		if fresh {
			phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
			m, err = rs.Register(ctx, *officer, registration.Identity{
				Person: registration.Person{GivenNames: d.given, Surname: d.surname, Country: "EE", NationalID: d.nationalID, DateOfBirth: d.born},
				Document: registration.Document{Type: registration.IDCard, Number: fmt.Sprintf("AB%07d", 1234567+i), Issuer: "EE",
					Expires: time.Now().AddDate(4, 0, 0).UTC().Truncate(24 * time.Hour)},
				MSISDN: msisdn,
			})
			if err != nil {
				return fmt.Errorf("demo people: register %s: %w", p.Name, err)
			}
		}
		if m.State == registration.StateRegistering {
			phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
			if m, err = waitRegistered(ctx, rs, m.ID); err != nil {
				return fmt.Errorf("demo people: %s: %w", p.Name, err)
			}
		}
		// From now on a person at the phone console answers.
		phone.SetBehaviour(handset.Behaviour{})
		phone.SetNote(fmt.Sprintf("%s · PIN1 %s · PIN2 %s", p.Name, pin1, pin2))
		p.State = m.State
		s.People = append(s.People, p)
		if fresh {
			fmt.Fprintf(s.out, "  registered %s on %s: PIN1 %s, PIN2 %s (also shown on the phone console)\n", p.Name, msisdn, pin1, pin2)
		}
	}
	return nil
}

// waitRegistered waits until a registration has ended.
func waitRegistered(ctx context.Context, rs *registration.Server, id int64) (*registration.MobileID, error) {
	changed, cancel := rs.Subscribe()
	defer cancel()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		m, err := rs.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		switch m.State {
		case registration.StateActive:
			return m, nil
		case registration.StateRegistering:
		default:
			return nil, fmt.Errorf("registration ended %s: %s", m.State, m.Status)
		}
		select {
		case <-changed:
		case <-time.After(time.Second):
		case <-deadline.C:
			return nil, fmt.Errorf("registration not done after 2 minutes: %s", m.Status)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

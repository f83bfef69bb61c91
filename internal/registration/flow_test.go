package registration

import (
	"errors"
	"testing"

	"mobileid/internal/etsi"
)

// TestMapFault checks the officer's sentence for each MSSP outcome of a
// key generation, and which outcomes are retried by themselves.
func TestMapFault(t *testing.T) {
	s := &Server{}
	for _, c := range []struct {
		name      string
		err       error
		want      string
		transient bool
	}{
		{"cancel", faultWith(etsi.CodeUserCancel, 4011), "The user cancelled the PIN choice on the phone.", false},
		{"never answers", faultWith(etsi.CodeExpiredTransaction, 2082), "The phone did not answer in time: the user did not choose the PINs, or the phone was off.", false},
		{"phone off", faultWith(etsi.CodeOTAError, 2093), "The phone is switched off or out of coverage.", false},
		{"undeliverable", faultWith(etsi.CodeOTAError, 2091), "The SMS to the SIM could not be delivered.", false},
		{"already registered", faultWith(etsi.CodeRegistrationNOK, 4073), "The SIM already has Mobile ID keys: reset the SIM, then register again.", false},
		{"no SIM", faultWith(etsi.CodeUnknownClient, 1052), "The operator has no SIM with this number.", false},
		{"busy", faultWith(etsi.CodePBSignatureProcess, 0), "the SIM is busy with another request", true},
		{"unreachable", errors.New("connection refused"), "the MSSP cannot be reached: connection refused", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := s.mapFault(c.err)
			var tr *transient
			if err.Error() != c.want || errors.As(err, &tr) != c.transient {
				t.Errorf("mapFault(%v) = %q (transient %v), want %q (transient %v)", c.err, err, errors.As(err, &tr), c.want, c.transient)
			}
		})
	}
}

func faultWith(code etsi.Code, detail int) error {
	f := etsi.NewFault(code, "detail")
	f.DetailCode = detail
	return f
}

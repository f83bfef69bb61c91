package smsc

import (
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"mobileid/internal/smpp"
)

// pipeBind connects to s over net.Pipe and binds; it fails the test
// unless the bind succeeds.
func pipeBind(t *testing.T, s *SMSC, id smpp.CommandID) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	if !s.serveConn(server) {
		t.Fatal("serveConn refused the connection")
	}
	client.SetDeadline(time.Now().Add(failsafe))
	c := smpp.NewConn(client)
	if err := c.Write(&smpp.PDU{ID: id, Seq: 1, SystemID: sys1, Password: pass1, InterfaceVersion: 0x34}); err != nil {
		t.Fatalf("write bind: %v", err)
	}
	r, err := c.Read()
	if err != nil || r.ID != id.Response() || r.Status != smpp.StatusOK {
		t.Fatalf("bind: %v %v", r, err)
	}
	return client
}

func fuzzSeeds(f *testing.F) {
	enc := func(p *smpp.PDU) []byte {
		b, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	submit := otaSubmit(phone, otaUD)
	submit.Seq = 2
	gsm := &smpp.PDU{ID: smpp.SubmitSM, Seq: 3, Source: smpp.Address{TON: 5, Addr: "Bank"}, Dest: smpp.Address{TON: 1, NPI: 1, Addr: phone},
		RegisteredDelivery: 1, ShortMessage: []byte("Hello"), ValidityPeriod: "000000000100000R"}
	seeds := [][]byte{
		enc(submit),
		enc(gsm),
		enc(&smpp.PDU{ID: smpp.EnquireLink, Seq: 4}),
		enc(&smpp.PDU{ID: smpp.Unbind, Seq: 5}),
		enc(&smpp.PDU{ID: smpp.BindTransceiver, Seq: 6, SystemID: sys1, Password: pass1}),
		enc(&smpp.PDU{ID: smpp.DeliverSMResp, Seq: 1}),
		enc(&smpp.PDU{ID: smpp.GenericNack, Seq: 1, Status: smpp.StatusSystemError}),
		rawPDU(0x00000099, 7, nil),
		rawPDU(smpp.SubmitSM, 8, []byte{0, 1, 1}),
		header(0xFFFFFFFF, smpp.SubmitSM, 9),
		append(enc(submit), enc(&smpp.PDU{ID: smpp.EnquireLink, Seq: 10})...),
		append(enc(submit)[:30], enc(submit)...),
		{},
		{0, 0, 0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
}

// FuzzServerPDU feeds arbitrary bytes to a bound connection and checks
// that the server survives and still serves a fresh connection.
func FuzzServerPDU(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(Config{
			Accounts:     testConfig().Accounts,
			WriteTimeout: 100 * time.Millisecond,
			Clock:        newFakeClock(),
			Rand:         rand.NewPCG(1, 2),
		}, newFakeRadio(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()

		client := pipeBind(t, s, smpp.BindTransceiver)
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, client)
			close(drained)
		}()
		client.SetWriteDeadline(time.Now().Add(time.Second))
		client.Write(data) // the server may close the connection half-way
		client.Close()
		<-drained

		fresh := pipeBind(t, s, smpp.BindTransmitter)
		defer fresh.Close()
		c := smpp.NewConn(fresh)
		if err := c.Write(&smpp.PDU{ID: smpp.EnquireLink, Seq: 99}); err != nil {
			t.Fatalf("write enquire_link: %v", err)
		}
		r, err := c.Read()
		if err != nil || r.ID != smpp.EnquireLinkResp || r.Seq != 99 {
			t.Fatalf("enquire_link on a fresh connection: %v %v", r, err)
		}
	})
}

package smsc

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"mobileid/internal/smpp"
)

// countingRadio acknowledges at once and signals when it has seen want
// messages.
type countingRadio struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (r *countingRadio) DeliverSMS(ctx context.Context, msisdn string, tpdu []byte) error {
	if r.n.Add(1) == r.want {
		close(r.done)
	}
	return nil
}

// BenchmarkThroughput measures submit_sm → radio delivery for binary OTA
// messages from one transmitter with a window of 64 over loopback TCP.
func BenchmarkThroughput(b *testing.B) {
	const window, phones = 64, 1000
	radio := &countingRadio{want: int64(b.N), done: make(chan struct{})}
	s, err := New(Config{
		Accounts:  []Account{{SystemID: "bench", Password: "bench"}},
		MaxQueued: 1 << 22,
	}, radio, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	conn := smpp.NewConn(nc)
	if err := conn.Write(&smpp.PDU{ID: smpp.BindTransmitter, Seq: 1, SystemID: "bench", Password: "bench"}); err != nil {
		b.Fatal(err)
	}
	if r, err := conn.Read(); err != nil || r.Status != smpp.StatusOK {
		b.Fatalf("bind: %v %v", r, err)
	}

	// One encoded submit_sm per phone; only the sequence number changes.
	var templates [phones][]byte
	for i := range templates {
		p := otaSubmit(fmt.Sprintf("3584%08d", i), otaUD)
		p.RegisteredDelivery = 0
		if templates[i], err = p.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}

	slots := make(chan struct{}, window)
	readErr := make(chan error, 1)
	go func() {
		// The responses are parsed by hand into one buffer, so the
		// client's own cost stays small next to the server's.
		br := bufio.NewReaderSize(nc, 64<<10)
		buf := make([]byte, smpp.MaxPDULen)
		for range b.N {
			if _, err := io.ReadFull(br, buf[:16]); err != nil {
				readErr <- err
				return
			}
			n := binary.BigEndian.Uint32(buf)
			if n < 16 || n > smpp.MaxPDULen {
				readErr <- fmt.Errorf("command_length %d", n)
				return
			}
			if _, err := io.ReadFull(br, buf[16:n]); err != nil {
				readErr <- err
				return
			}
			if id, st := binary.BigEndian.Uint32(buf[4:]), binary.BigEndian.Uint32(buf[8:]); id != uint32(smpp.SubmitSMResp) || st != 0 {
				readErr <- fmt.Errorf("got %v status %v", smpp.CommandID(id), smpp.Status(st))
				return
			}
			<-slots
		}
		readErr <- nil
	}()

	bw := bufio.NewWriterSize(nc, 32<<10)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		select {
		case slots <- struct{}{}:
		default:
			// The window is full: send what is buffered and wait.
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
			slots <- struct{}{}
		}
		t := templates[i%phones]
		binary.BigEndian.PutUint32(t[12:], uint32(i+2))
		if _, err := bw.Write(t); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := <-readErr; err != nil {
		b.Fatal(err)
	}
	select {
	case <-radio.done:
	case <-time.After(time.Minute):
		b.Fatalf("radio got %d of %d", radio.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sms/s")
}

package smpp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// FramingError means the byte stream can no longer be split into PDUs (a
// command_length outside 16..MaxPDULen): the connection must be closed,
// after a generic_nack if possible.
type FramingError struct {
	Length uint32
}

func (e *FramingError) Error() string {
	return fmt.Sprintf("smpp: command_length %d outside %d..%d", e.Length, HeaderLen, MaxPDULen)
}

// Conn frames PDUs on a stream connection. Read may be called from one
// goroutine; Write from any number.
type Conn struct {
	nc net.Conn
	r  *bufio.Reader

	// WriteTimeout bounds each Write, so that a peer that stops reading
	// cannot block the writer forever. Zero means no limit.
	WriteTimeout time.Duration

	wmu sync.Mutex
	buf []byte
}

// NewConn wraps nc.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 8192)}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Read reads the next PDU. A *FramingError is fatal for the connection. An
// *Error comes with the PDU's header fields so the caller can answer it
// (generic_nack or a response with the error's status) and read on.
func (c *Conn) Read() (*PDU, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n < HeaderLen || n > MaxPDULen {
		return nil, &FramingError{Length: n}
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(c.r, b[4:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return Unmarshal(b)
}

// Write encodes and sends p.
func (c *Conn) Write(p *PDU) error { return c.WriteAll(p) }

// WriteAll encodes ps and sends them in one write, so that the responses
// to a batch of requests, or a batch of submissions, cost one system call
// and do not interleave with PDUs other goroutines write meanwhile.
func (c *Conn) WriteAll(ps ...*PDU) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.buf = c.buf[:0]
	for _, p := range ps {
		var err error
		if c.buf, err = p.AppendBinary(c.buf); err != nil {
			return err
		}
	}
	if len(c.buf) == 0 {
		return nil
	}
	if c.WriteTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.WriteTimeout))
	}
	_, err := c.nc.Write(c.buf)
	if cap(c.buf) > 4*MaxPDULen {
		c.buf = nil
	}
	return err
}

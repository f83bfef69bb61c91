package messaging

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Bind is one SMPP bind_transceiver toward an SMSC.
type Bind struct {
	// Name labels the bind in logs and metrics; it defaults to
	// SystemID@Addr, numbered when that repeats.
	Name     string
	Addr     string // host:port of the SMSC
	SystemID string
	Password string
}

// Config configures a Server. Zero durations and counts take the defaults
// given with each field.
type Config struct {
	// Binds are the SMPP sessions to keep open, to the same or different
	// SMSCs; MT traffic is spread over those that are bound.
	Binds []Bind

	// ServiceNumber is the source address of MT messages (TON
	// international) and the number SIMs answer to, e.g. "3725000".
	ServiceNumber string

	// NodeID names this node in the outbox leases. Nodes that share a
	// database must have distinct IDs; a node that restarts with the same
	// ID takes its unfinished segments back at once instead of waiting for
	// their lease to run out. Default: the host name.
	NodeID string

	// Window is the most submit_sm a bind may have outstanding. Default 32.
	Window int

	// EnquireLink is the interval of our enquire_link. Default 30s.
	EnquireLink time.Duration

	// ResponseTimeout bounds the wait for any response from the SMSC; a
	// bind whose SMSC does not answer in time is dropped and reconnected.
	// Default 10s.
	ResponseTimeout time.Duration

	// ReconnectMin and ReconnectMax bound the jittered exponential back-off
	// between connection attempts. Defaults 500ms and 30s.
	ReconnectMin, ReconnectMax time.Duration

	// ThrottleBackoff is how long a bind pauses after ESME_RTHROTTLED or
	// ESME_RMSGQFUL; the pause doubles while the SMSC keeps refusing, up to
	// 32 times this value. Default 1s.
	ThrottleBackoff time.Duration

	// ReassemblyTimeout is how long the segments of an incomplete MO are
	// kept. Default 2m.
	ReassemblyTimeout time.Duration

	// RegisteredDelivery is the registered_delivery of every submit_sm:
	// 0x01 asks for a final receipt (the default), 0x02 for failures only,
	// in which case a message with no failure receipt by the end of its
	// validity counts as Delivered.
	RegisteredDelivery byte

	// HandlerRetry is the first pause before an item the Handler refused
	// is offered again; it doubles per failure up to a minute. Default 1s.
	HandlerRetry time.Duration

	// PollInterval is how often the outbox and inbox are looked at when
	// nothing signals new work, which is how a node notices rows written
	// by other nodes or by SendPacketTx, hand-overs due again after a
	// back-off, and segments whose lease ran out. Default 250ms.
	PollInterval time.Duration
}

// Defaults of Config.
const (
	DefaultWindow             = 32
	DefaultEnquireLink        = 30 * time.Second
	DefaultResponseTimeout    = 10 * time.Second
	DefaultReconnectMin       = 500 * time.Millisecond
	DefaultReconnectMax       = 30 * time.Second
	DefaultThrottleBackoff    = time.Second
	DefaultReassemblyTimeout  = 2 * time.Minute
	DefaultRegisteredDelivery = 0x01
	DefaultHandlerRetry       = time.Second
	DefaultPollInterval       = 250 * time.Millisecond
)

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.ServiceNumber == "" {
		return c, errors.New("messaging: no service number")
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	setDur(&c.EnquireLink, DefaultEnquireLink)
	setDur(&c.ResponseTimeout, DefaultResponseTimeout)
	setDur(&c.ReconnectMin, DefaultReconnectMin)
	setDur(&c.ReconnectMax, DefaultReconnectMax)
	setDur(&c.ThrottleBackoff, DefaultThrottleBackoff)
	setDur(&c.ReassemblyTimeout, DefaultReassemblyTimeout)
	setDur(&c.HandlerRetry, DefaultHandlerRetry)
	setDur(&c.PollInterval, DefaultPollInterval)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.RegisteredDelivery == 0 {
		c.RegisteredDelivery = DefaultRegisteredDelivery
	}
	if c.NodeID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "messaging"
		}
		c.NodeID = h
	}
	seen := make(map[string]int)
	binds := make([]Bind, len(c.Binds))
	for i, b := range c.Binds {
		if b.Addr == "" || b.SystemID == "" {
			return c, fmt.Errorf("messaging: bind %d lacks an address or system_id", i)
		}
		if b.Name == "" {
			b.Name = b.SystemID + "@" + b.Addr
		}
		name := b.Name
		if n := seen[name]; n > 0 {
			b.Name = fmt.Sprintf("%s#%d", name, n+1)
		}
		seen[name]++
		binds[i] = b
	}
	c.Binds = binds
	return c, nil
}

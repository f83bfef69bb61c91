package smpp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CommandID identifies a PDU type.
type CommandID uint32

// Command IDs of SMPP 3.4 §5.1.2.1 that this package encodes.
const (
	GenericNack         CommandID = 0x80000000
	BindReceiver        CommandID = 0x00000001
	BindReceiverResp    CommandID = 0x80000001
	BindTransmitter     CommandID = 0x00000002
	BindTransmitterResp CommandID = 0x80000002
	SubmitSM            CommandID = 0x00000004
	SubmitSMResp        CommandID = 0x80000004
	DeliverSM           CommandID = 0x00000005
	DeliverSMResp       CommandID = 0x80000005
	Unbind              CommandID = 0x00000006
	UnbindResp          CommandID = 0x80000006
	BindTransceiver     CommandID = 0x00000009
	BindTransceiverResp CommandID = 0x80000009
	EnquireLink         CommandID = 0x00000015
	EnquireLinkResp     CommandID = 0x80000015
)

var commandNames = map[CommandID]string{
	GenericNack: "generic_nack", BindReceiver: "bind_receiver", BindReceiverResp: "bind_receiver_resp",
	BindTransmitter: "bind_transmitter", BindTransmitterResp: "bind_transmitter_resp",
	SubmitSM: "submit_sm", SubmitSMResp: "submit_sm_resp", DeliverSM: "deliver_sm", DeliverSMResp: "deliver_sm_resp",
	Unbind: "unbind", UnbindResp: "unbind_resp", BindTransceiver: "bind_transceiver", BindTransceiverResp: "bind_transceiver_resp",
	EnquireLink: "enquire_link", EnquireLinkResp: "enquire_link_resp",
}

// String returns the PDU name of SMPP 3.4.
func (c CommandID) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return fmt.Sprintf("command_id 0x%08x", uint32(c))
}

// IsResponse reports whether c is a response PDU (bit 31 set).
func (c CommandID) IsResponse() bool { return c&0x80000000 != 0 }

// Response returns the ID of the response to request c.
func (c CommandID) Response() CommandID { return c | 0x80000000 }

// IsBind reports whether c is one of the three bind requests.
func (c CommandID) IsBind() bool {
	return c == BindReceiver || c == BindTransmitter || c == BindTransceiver
}

// HeaderLen is the length of the PDU header; MaxPDULen bounds what a peer
// may send. Our PDUs carry at most 254 octets of short_message or a
// message_payload of a few KiB, so 16 KiB leaves room without letting a
// peer make us allocate much.
const (
	HeaderLen = 16
	MaxPDULen = 16 << 10
)

// Address is a TON, NPI and address triple.
type Address struct {
	TON  byte
	NPI  byte
	Addr string
}

// Type of number and numbering plan values used with MSISDNs and short codes.
const (
	TONUnknown       = 0x00
	TONInternational = 0x01
	TONNational      = 0x02
	TONAlphanumeric  = 0x05
	NPIUnknown       = 0x00
	NPIISDN          = 0x01
)

// TLV is an optional parameter.
type TLV struct {
	Tag   uint16
	Value []byte
}

// Optional parameter tags used by the platform.
const (
	TagReceiptedMessageID  uint16 = 0x001E
	TagSARMsgRefNum        uint16 = 0x020C
	TagSARTotalSegments    uint16 = 0x020E
	TagSARSegmentSeqnum    uint16 = 0x020F
	TagSCInterfaceVersion  uint16 = 0x0210
	TagNetworkErrorCode    uint16 = 0x0423
	TagMessagePayload      uint16 = 0x0424
	TagMessageState        uint16 = 0x0427
	TagCongestionState     uint16 = 0x0428
	TagUserMessageRef      uint16 = 0x0204
	TagSourcePort          uint16 = 0x020A
	TagDestinationPort     uint16 = 0x020B
	TagAdditionalStatusTxt uint16 = 0x001D
)

// esm_class bits of the platform's traffic.
const (
	ESMClassUDHI    = 0x40 // user data header indicator
	ESMClassReceipt = 0x04 // SMSC delivery receipt (deliver_sm)
)

// PDU is one SMPP PDU. Only the fields of its command are encoded; the
// others must be zero.
type PDU struct {
	ID     CommandID
	Status Status
	Seq    uint32

	// bind_* requests; SystemID also in bind_*_resp.
	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte
	AddrTON, AddrNPI byte
	AddressRange     string

	// submit_sm and deliver_sm.
	ServiceType          string
	Source               Address
	Dest                 Address
	ESMClass             byte
	ProtocolID           byte
	PriorityFlag         byte
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	ReplaceIfPresent     byte
	DataCoding           byte
	SMDefaultMsgID       byte
	ShortMessage         []byte

	// submit_sm_resp and deliver_sm_resp.
	MessageID string

	// Optional parameters, in the order they were read or are to be
	// written.
	TLVs []TLV
}

// TLV returns the value of the first optional parameter with tag.
func (p *PDU) TLV(tag uint16) ([]byte, bool) {
	for _, t := range p.TLVs {
		if t.Tag == tag {
			return t.Value, true
		}
	}
	return nil, false
}

// Response returns the response PDU to request p with status st, matching
// its sequence number.
func (p *PDU) Response(st Status) *PDU {
	if p.ID == GenericNack || p.ID.IsResponse() {
		return nil
	}
	return &PDU{ID: p.ID.Response(), Status: st, Seq: p.Seq}
}

// C-Octet String limits of SMPP 3.4 §5.2, including the terminating NUL.
const (
	maxSystemID    = 16
	maxPassword    = 9
	maxSystemType  = 13
	maxAddrRange   = 41
	maxServiceType = 6
	maxAddr        = 21
	maxTime        = 17
	maxMessageID   = 65
)

func hasBody(id CommandID) (request, response bool) {
	switch id {
	case BindReceiver, BindTransmitter, BindTransceiver, SubmitSM, DeliverSM:
		return true, false
	case BindReceiverResp, BindTransmitterResp, BindTransceiverResp, SubmitSMResp, DeliverSMResp:
		return false, true
	}
	return false, false
}

// Known reports whether the codec handles command id.
func Known(id CommandID) bool {
	_, ok := commandNames[id]
	return ok
}

// AppendBinary appends the encoded PDU to b.
func (p *PDU) AppendBinary(b []byte) ([]byte, error) {
	if !Known(p.ID) {
		return nil, fmt.Errorf("smpp: cannot encode %v", p.ID)
	}
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	var err error
	switch p.ID {
	case BindReceiver, BindTransmitter, BindTransceiver:
		for _, f := range []struct {
			s   string
			max int
		}{{p.SystemID, maxSystemID}, {p.Password, maxPassword}, {p.SystemType, maxSystemType}} {
			if b, err = appendCString(b, f.s, f.max); err != nil {
				return nil, err
			}
		}
		b = append(b, p.InterfaceVersion, p.AddrTON, p.AddrNPI)
		if b, err = appendCString(b, p.AddressRange, maxAddrRange); err != nil {
			return nil, err
		}
	case BindReceiverResp, BindTransmitterResp, BindTransceiverResp:
		// A failed bind may omit the body (SMPP 3.4 §4.1.2); we always send it.
		if b, err = appendCString(b, p.SystemID, maxSystemID); err != nil {
			return nil, err
		}
	case SubmitSM, DeliverSM:
		if b, err = appendCString(b, p.ServiceType, maxServiceType); err != nil {
			return nil, err
		}
		for _, a := range []Address{p.Source, p.Dest} {
			b = append(b, a.TON, a.NPI)
			if b, err = appendCString(b, a.Addr, maxAddr); err != nil {
				return nil, err
			}
		}
		b = append(b, p.ESMClass, p.ProtocolID, p.PriorityFlag)
		for _, t := range []string{p.ScheduleDeliveryTime, p.ValidityPeriod} {
			if t != "" && len(t) != maxTime-1 {
				return nil, fmt.Errorf("smpp: time %q: want 16 characters or none", t)
			}
			b = append(append(b, t...), 0)
		}
		if len(p.ShortMessage) > 254 {
			return nil, fmt.Errorf("smpp: short_message of %d octets, at most 254 (use message_payload)", len(p.ShortMessage))
		}
		b = append(b, p.RegisteredDelivery, p.ReplaceIfPresent, p.DataCoding, p.SMDefaultMsgID, byte(len(p.ShortMessage)))
		b = append(b, p.ShortMessage...)
	case SubmitSMResp, DeliverSMResp:
		// A failed submit_sm_resp carries no body (SMPP 3.4 §4.4.2).
		if p.ID == DeliverSMResp || p.Status == StatusOK {
			if b, err = appendCString(b, p.MessageID, maxMessageID); err != nil {
				return nil, err
			}
		}
	}
	for _, t := range p.TLVs {
		if len(t.Value) > 0xFFFF {
			return nil, fmt.Errorf("smpp: TLV %04x of %d octets", t.Tag, len(t.Value))
		}
		b = binary.BigEndian.AppendUint16(b, t.Tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Value)))
		b = append(b, t.Value...)
	}
	n := len(b) - start
	if n > MaxPDULen {
		return nil, fmt.Errorf("smpp: PDU of %d octets exceeds %d", n, MaxPDULen)
	}
	h := b[start:]
	binary.BigEndian.PutUint32(h[0:], uint32(n))
	binary.BigEndian.PutUint32(h[4:], uint32(p.ID))
	binary.BigEndian.PutUint32(h[8:], uint32(p.Status))
	binary.BigEndian.PutUint32(h[12:], p.Seq)
	return b, nil
}

// MarshalBinary encodes the PDU.
func (p *PDU) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

func appendCString(b []byte, s string, max int) ([]byte, error) {
	if len(s) >= max {
		return nil, fmt.Errorf("smpp: %q is longer than %d characters", s, max-1)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, fmt.Errorf("smpp: %q contains NUL", s)
		}
	}
	return append(append(b, s...), 0), nil
}

// Unmarshal decodes one complete PDU, header included. On error it still
// returns the header fields it read (ID and Seq) when there were 16
// octets, so that a server can answer; the error is an *Error with the
// command_status to answer with.
func Unmarshal(b []byte) (*PDU, error) {
	if len(b) < HeaderLen {
		return nil, errf(StatusInvalidCommandLength, "PDU of %d octets is shorter than its header", len(b))
	}
	p := &PDU{
		ID:     CommandID(binary.BigEndian.Uint32(b[4:])),
		Status: Status(binary.BigEndian.Uint32(b[8:])),
		Seq:    binary.BigEndian.Uint32(b[12:]),
	}
	if n := binary.BigEndian.Uint32(b); int64(n) != int64(len(b)) {
		return p, errf(StatusInvalidCommandLength, "command_length %d does not match %d octets", n, len(b))
	}
	if !Known(p.ID) {
		return p, errf(StatusInvalidCommandID, "unknown %v", p.ID)
	}
	d := decoder{b: b[HeaderLen:]}
	switch p.ID {
	case BindReceiver, BindTransmitter, BindTransceiver:
		p.SystemID = d.cstring("system_id", maxSystemID)
		p.Password = d.cstring("password", maxPassword)
		p.SystemType = d.cstring("system_type", maxSystemType)
		p.InterfaceVersion = d.byte("interface_version")
		p.AddrTON = d.byte("addr_ton")
		p.AddrNPI = d.byte("addr_npi")
		p.AddressRange = d.cstring("address_range", maxAddrRange)
	case BindReceiverResp, BindTransmitterResp, BindTransceiverResp:
		if len(d.b) > 0 {
			p.SystemID = d.cstring("system_id", maxSystemID)
		}
	case SubmitSM, DeliverSM:
		p.ServiceType = d.cstring("service_type", maxServiceType)
		p.Source = Address{TON: d.byte("source_addr_ton"), NPI: d.byte("source_addr_npi"), Addr: d.cstring("source_addr", maxAddr)}
		p.Dest = Address{TON: d.byte("dest_addr_ton"), NPI: d.byte("dest_addr_npi"), Addr: d.cstring("destination_addr", maxAddr)}
		p.ESMClass = d.byte("esm_class")
		p.ProtocolID = d.byte("protocol_id")
		p.PriorityFlag = d.byte("priority_flag")
		p.ScheduleDeliveryTime = d.time("schedule_delivery_time")
		p.ValidityPeriod = d.time("validity_period")
		p.RegisteredDelivery = d.byte("registered_delivery")
		p.ReplaceIfPresent = d.byte("replace_if_present_flag")
		p.DataCoding = d.byte("data_coding")
		p.SMDefaultMsgID = d.byte("sm_default_msg_id")
		n := int(d.byte("sm_length"))
		if n > 254 && d.err == nil {
			d.fail(StatusInvalidMessageLength, "sm_length %d exceeds 254", n)
		}
		p.ShortMessage = d.bytes("short_message", n)
	case SubmitSMResp, DeliverSMResp:
		if len(d.b) > 0 {
			p.MessageID = d.cstring("message_id", maxMessageID)
		}
	}
	for d.err == nil && len(d.b) > 0 {
		if len(d.b) < 4 {
			d.fail(StatusInvalidOptionalParamStream, "%d stray octets after the mandatory fields", len(d.b))
			break
		}
		tag := binary.BigEndian.Uint16(d.b)
		n := int(binary.BigEndian.Uint16(d.b[2:]))
		if len(d.b) < 4+n {
			d.fail(StatusInvalidOptionalParamStream, "TLV %04x length %d exceeds the PDU", tag, n)
			break
		}
		p.TLVs = append(p.TLVs, TLV{Tag: tag, Value: append([]byte(nil), d.b[4:4+n]...)})
		d.b = d.b[4+n:]
	}
	if d.err != nil {
		return p, d.err
	}
	return p, nil
}

// decoder reads mandatory fields and remembers the first error, so the
// field list reads like the table in the specification.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(st Status, format string, args ...any) {
	if d.err == nil {
		d.err = errf(st, format, args...)
	}
}

func (d *decoder) byte(name string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(StatusInvalidCommandLength, "PDU ends before %s", name)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) cstring(name string, max int) string {
	if d.err != nil {
		return ""
	}
	for i := 0; i < len(d.b) && i < max; i++ {
		if d.b[i] == 0 {
			s := string(d.b[:i])
			d.b = d.b[i+1:]
			return s
		}
	}
	if len(d.b) < max {
		d.fail(StatusInvalidCommandLength, "PDU ends inside %s", name)
	} else {
		d.fail(StatusInvalidParamLength, "%s longer than %d characters", name, max-1)
	}
	return ""
}

func (d *decoder) time(name string) string {
	s := d.cstring(name, maxTime)
	if d.err == nil && s != "" && len(s) != maxTime-1 {
		d.fail(StatusInvalidParamLength, "%s %q: want 16 characters or none", name, s)
	}
	return s
}

func (d *decoder) bytes(name string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(StatusInvalidCommandLength, "PDU ends inside %s", name)
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// Error is a decoding or protocol error with the command_status that
// answers it.
type Error struct {
	Status Status
	Msg    string
}

func (e *Error) Error() string { return "smpp: " + e.Msg }

func errf(st Status, format string, args ...any) *Error {
	return &Error{Status: st, Msg: fmt.Sprintf(format, args...)}
}

// StatusOf returns the command_status that answers err: the status of an
// *Error, or a system error for anything else.
func StatusOf(err error) Status {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return StatusSystemError
}

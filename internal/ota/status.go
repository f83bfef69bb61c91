package ota

import (
	"fmt"
	"strings"
)

// Status is the response status code of a PoR (TS 102 225 §5.1.4, with 0B
// and 0C from TS 31.115).
type Status byte

// PoR status codes.
const (
	StatusOK                   Status = 0x00 // PoR OK
	StatusIntegrityFailed      Status = 0x01 // RC/CC/DS failed
	StatusCounterLow           Status = 0x02 // CNTR low
	StatusCounterHigh          Status = 0x03 // CNTR high
	StatusCounterBlocked       Status = 0x04 // CNTR blocked
	StatusCipheringError       Status = 0x05 // ciphering error
	StatusSecurityError        Status = 0x06 // unidentified security error
	StatusInsufficientMemory   Status = 0x07 // insufficient memory to process the incoming message
	StatusMoreTime             Status = 0x08 // more time needed to process the command
	StatusTARUnknown           Status = 0x09 // TAR unknown
	StatusInsufficientSecurity Status = 0x0A // insufficient security level
	StatusResponseBySubmit     Status = 0x0B // actual response data sent using SMS-SUBMIT
	StatusResponseByUSSD       Status = 0x0C // actual response data sent using a USSD request
)

var statusNames = [...]string{
	"PoR OK",
	"RC/CC/DS failed",
	"CNTR low",
	"CNTR high",
	"CNTR blocked",
	"ciphering error",
	"unidentified security error",
	"insufficient memory",
	"more time needed",
	"TAR unknown",
	"insufficient security level",
	"response by SMS-SUBMIT",
	"response by USSD",
}

// String returns the standard's name of the status.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("reserved status %02x", byte(s))
}

// Error is a failure that a card reports in a PoR: it carries the status
// code the card answers with. Parsing and processing functions return it
// (possibly wrapped) so a card can map any failure to its PoR status with
// errors.As.
type Error struct {
	Status Status
	Msg    string
}

func (e *Error) Error() string { return "ota: " + e.Msg }

func errorf(s Status, format string, args ...any) *Error {
	return &Error{Status: s, Msg: fmt.Sprintf(format, args...)}
}

// MaxCounter is the highest value of the 5-octet counter. A card whose
// counter has reached it refuses further counter-checked packets with
// StatusCounterBlocked.
const MaxCounter = 1<<40 - 1

// CheckCounter applies the replay rules of TS 102 225 §5.1.1 to a received
// counter, given the last value the card accepted. It returns StatusOK when
// the packet may be processed; the caller then stores the received value.
func CheckCounter(mode CounterMode, last, received uint64) Status {
	switch mode {
	case CounterHigher, CounterNext:
	default:
		return StatusOK
	}
	if last >= MaxCounter {
		return StatusCounterBlocked
	}
	if received <= last {
		return StatusCounterLow
	}
	if mode == CounterNext && received != last+1 {
		return StatusCounterHigh
	}
	return StatusOK
}

// wrapErr turns a plain package error into an *Error with status s.
func wrapErr(s Status, err error) *Error {
	return &Error{Status: s, Msg: strings.TrimPrefix(err.Error(), "ota: ")}
}

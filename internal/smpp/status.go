package smpp

import "fmt"

// Status is a command_status value (SMPP 3.4 §5.1.3).
type Status uint32

// Command status values used by the platform.
const (
	StatusOK                         Status = 0x00000000 // ESME_ROK
	StatusInvalidMessageLength       Status = 0x00000001 // ESME_RINVMSGLEN
	StatusInvalidCommandLength       Status = 0x00000002 // ESME_RINVCMDLEN
	StatusInvalidCommandID           Status = 0x00000003 // ESME_RINVCMDID
	StatusInvalidBindStatus          Status = 0x00000004 // ESME_RINVBNDSTS
	StatusAlreadyBound               Status = 0x00000005 // ESME_RALYBND
	StatusSystemError                Status = 0x00000008 // ESME_RSYSERR
	StatusInvalidSourceAddress       Status = 0x0000000A // ESME_RINVSRCADR
	StatusInvalidDestAddress         Status = 0x0000000B // ESME_RINVDSTADR
	StatusInvalidMessageID           Status = 0x0000000C // ESME_RINVMSGID
	StatusBindFailed                 Status = 0x0000000D // ESME_RBINDFAIL
	StatusInvalidPassword            Status = 0x0000000E // ESME_RINVPASWD
	StatusInvalidSystemID            Status = 0x0000000F // ESME_RINVSYSID
	StatusMessageQueueFull           Status = 0x00000014 // ESME_RMSGQFUL
	StatusInvalidESMClass            Status = 0x00000043 // ESME_RINVESMCLASS
	StatusSubmitFailed               Status = 0x00000045 // ESME_RSUBMITFAIL
	StatusThrottled                  Status = 0x00000058 // ESME_RTHROTTLED
	StatusInvalidExpiry              Status = 0x00000062 // ESME_RINVEXPIRY
	StatusInvalidOptionalParamStream Status = 0x000000C0 // ESME_RINVOPTPARSTREAM
	StatusInvalidParamLength         Status = 0x000000C2 // ESME_RINVPARLEN
	StatusDeliveryFailure            Status = 0x000000FE // ESME_RDELIVERYFAILURE
	StatusUnknownError               Status = 0x000000FF // ESME_RUNKNOWNERR
)

var statusNames = map[Status]string{
	StatusOK: "ESME_ROK", StatusInvalidMessageLength: "ESME_RINVMSGLEN", StatusInvalidCommandLength: "ESME_RINVCMDLEN",
	StatusInvalidCommandID: "ESME_RINVCMDID", StatusInvalidBindStatus: "ESME_RINVBNDSTS", StatusAlreadyBound: "ESME_RALYBND",
	StatusSystemError: "ESME_RSYSERR", StatusInvalidSourceAddress: "ESME_RINVSRCADR", StatusInvalidDestAddress: "ESME_RINVDSTADR",
	StatusInvalidMessageID: "ESME_RINVMSGID", StatusBindFailed: "ESME_RBINDFAIL", StatusInvalidPassword: "ESME_RINVPASWD",
	StatusInvalidSystemID: "ESME_RINVSYSID", StatusMessageQueueFull: "ESME_RMSGQFUL", StatusInvalidESMClass: "ESME_RINVESMCLASS",
	StatusSubmitFailed: "ESME_RSUBMITFAIL", StatusThrottled: "ESME_RTHROTTLED", StatusInvalidExpiry: "ESME_RINVEXPIRY",
	StatusInvalidOptionalParamStream: "ESME_RINVOPTPARSTREAM", StatusInvalidParamLength: "ESME_RINVPARLEN",
	StatusDeliveryFailure: "ESME_RDELIVERYFAILURE", StatusUnknownError: "ESME_RUNKNOWNERR",
}

// String returns the ESME_R… name.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("command_status 0x%08x", uint32(s))
}

package smpp

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MessageState is the value of the message_state TLV (SMPP 3.4 §5.2.28).
type MessageState byte

// Message states.
const (
	StateEnroute       MessageState = 1
	StateDelivered     MessageState = 2
	StateExpired       MessageState = 3
	StateDeleted       MessageState = 4
	StateUndeliverable MessageState = 5
	StateAccepted      MessageState = 6
	StateUnknown       MessageState = 7
	StateRejected      MessageState = 8
)

var stateStats = map[MessageState]string{
	StateEnroute: "ENROUTE", StateDelivered: "DELIVRD", StateExpired: "EXPIRED", StateDeleted: "DELETED",
	StateUndeliverable: "UNDELIV", StateAccepted: "ACCEPTD", StateUnknown: "UNKNOWN", StateRejected: "REJECTD",
}

// Stat returns the 7-letter stat of a receipt text for the state.
func (s MessageState) Stat() string {
	if v, ok := stateStats[s]; ok {
		return v
	}
	return "UNKNOWN"
}

// StateFromStat maps a receipt text stat back to the state.
func StateFromStat(stat string) (MessageState, bool) {
	for k, v := range stateStats {
		if v == stat {
			return k, true
		}
	}
	return 0, false
}

// Receipt is an SMSC delivery receipt in the text format of SMPP 3.4
// Appendix B, carried in the short_message of a deliver_sm with esm_class
// 0x04.
type Receipt struct {
	ID         string
	Submitted  int
	Delivered  int
	SubmitDate time.Time
	DoneDate   time.Time
	State      MessageState
	Err        int
	Text       string
}

const receiptDate = "0601021504"

// Format returns the receipt text.
func (r *Receipt) Format() string {
	text := r.Text
	if len(text) > 20 {
		text = text[:20]
	}
	return fmt.Sprintf("id:%s sub:%03d dlvrd:%03d submit date:%s done date:%s stat:%s err:%03d text:%s",
		r.ID, r.Submitted, r.Delivered, r.SubmitDate.UTC().Format(receiptDate), r.DoneDate.UTC().Format(receiptDate),
		r.State.Stat(), r.Err, text)
}

// ParseReceipt decodes a receipt text. Field names are matched without
// regard to case, as SMSCs differ; id and stat are required.
func ParseReceipt(s string) (*Receipt, error) {
	r := &Receipt{}
	rest := s
	var haveID, haveStat bool
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		low := strings.ToLower(rest)
		var key string
		for _, k := range []string{"id:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:"} {
			if strings.HasPrefix(low, k) {
				key = k
				break
			}
		}
		if key == "" {
			if rest == "" {
				break
			}
			return nil, fmt.Errorf("smpp: receipt %q: unexpected %q", s, truncate(rest, 16))
		}
		rest = rest[len(key):]
		var val string
		if key == "text:" {
			val, rest = rest, ""
		} else if i := strings.IndexByte(rest, ' '); i >= 0 {
			val, rest = rest[:i], rest[i+1:]
		} else {
			val, rest = rest, ""
		}
		var err error
		switch key {
		case "id:":
			r.ID, haveID = val, val != ""
		case "sub:":
			r.Submitted, err = strconv.Atoi(val)
		case "dlvrd:":
			r.Delivered, err = strconv.Atoi(val)
		case "submit date:":
			r.SubmitDate, err = parseReceiptDate(val)
		case "done date:":
			r.DoneDate, err = parseReceiptDate(val)
		case "stat:":
			var ok bool
			if r.State, ok = StateFromStat(strings.ToUpper(val)); !ok {
				err = fmt.Errorf("unknown stat")
			}
			haveStat = true
		case "err:":
			r.Err, err = strconv.Atoi(val)
		case "text:":
			r.Text = val
		}
		if err != nil {
			return nil, fmt.Errorf("smpp: receipt field %s %q: %v", strings.TrimSuffix(key, ":"), truncate(val, 16), err)
		}
	}
	if !haveID || !haveStat {
		return nil, fmt.Errorf("smpp: receipt %q lacks id or stat", truncate(s, 40))
	}
	return r, nil
}

// parseReceiptDate accepts YYMMDDhhmm and, as many SMSCs send it,
// YYMMDDhhmmss.
func parseReceiptDate(v string) (time.Time, error) {
	switch len(v) {
	case 10:
		return time.Parse(receiptDate, v)
	case 12:
		return time.Parse(receiptDate+"05", v)
	}
	return time.Time{}, fmt.Errorf("want YYMMDDhhmm")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

package ops

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Step is one hop of a transaction: what happened, between which parts,
// when, and how long after the start and after the step before.
type Step struct {
	Name string `json:"step"`
	From string `json:"from"`
	To   string `json:"to"`
	At   time.Time
	// Elapsed is the time since the transaction was created, Delta the
	// time since the step before.
	Elapsed time.Duration
	Delta   time.Duration
	Note    string `json:"note,omitempty"`

	rank        int // orders steps at the same instant along the flow
	part, parts int // the segment of a concatenated SMS, 0 for others
}

// Parts of the platform a step goes between.
const (
	partAP        = "AP"
	partMSSP      = "MSSP"
	partMessaging = "Messaging"
	partSMSC      = "SMSC"
	partPhone     = "phone"
)

// receiptGrace is how long after a transaction ended its SMS traffic may
// still show up: the delivery receipt of the command can come after the
// answer.
const receiptGrace = 2 * time.Second

// digits returns an MSISDN without its '+'.
func digits(msisdn string) string { return strings.TrimPrefix(msisdn, "+") }

// related picks, from traffic newest first, the segments of transaction
// t, oldest first: the secured packets to and from its phone while it
// ran, and the receipts for the messages it sent. One SIM request per
// user runs at a time, so the phone and the time tell them apart; a
// receipt shown on the phone (a Display command, which does not hold the
// SIM) running at the same time would be mixed in.
func related(t *Transaction, traffic []SMS, now time.Time) []SMS {
	if t.Counter == 0 && t.TAR == "" {
		return nil // nothing was sent: a test number or a step without a command
	}
	msisdn := digits(t.MSISDN)
	end := now
	if t.Final() {
		end = t.Finished
	}
	ids := map[string]bool{}
	var out []SMS
	for i := len(traffic) - 1; i >= 0; i-- {
		s := traffic[i]
		if s.MSISDN != msisdn {
			continue
		}
		switch {
		case s.Direction == MT && (s.Kind == KindCommand || s.Kind == KindContinuation):
			if s.Time.Before(t.Created) || s.Time.After(end) {
				continue
			}
			if s.MessageID != "" {
				ids[s.MessageID] = true
			}
		case s.Direction == MO && (s.Kind == KindResponse || s.Kind == KindContinuation):
			if s.Taken.Before(t.Created) || s.Taken.After(end) {
				continue
			}
		case s.Direction == Receipt:
			if !ids[s.MessageID] || s.Time.After(end.Add(receiptGrace)) {
				continue
			}
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// steps builds the timeline of t from the Signature Server's step times
// and the SMSC's view of its SMS.
func steps(t *Transaction, sms []SMS) []Step {
	var st []Step
	part, parts := 0, 0
	add := func(name, from, to string, at time.Time, rank int, note string) {
		if !at.IsZero() {
			st = append(st, Step{Name: name, From: from, To: to, At: at, Note: note, rank: rank, part: part, parts: parts})
		}
	}
	add("created", partAP, partMSSP, t.Created, 0, "request accepted; stored with its command queued for the SIM")
	add("delivered", partMessaging, partMSSP, t.Delivered, 5, "the SMSC's receipt reached the transaction")
	add("answered", partMessaging, partMSSP, t.Answered, 8, "the SIM's answer opened and matched")
	if t.Final() {
		add(t.State, partMSSP, partAP, t.Finished, 9, fmt.Sprintf("%d %s", t.Status, t.StatusName))
	}
	for _, s := range sms {
		suffix := ""
		part, parts = 0, 0
		if c := s.Concat; c != nil {
			suffix, part, parts = fmt.Sprintf(" (part %d of %d)", c.Seq, c.Total), c.Seq, c.Total
		}
		switch s.Direction {
		case MT:
			add("submit_sm"+suffix, partMessaging, partSMSC, s.Time, 1, "message "+s.MessageID+", "+s.StatusName)
		case Receipt:
			part, parts = 0, 0
			name, note := "delivered to phone", "message "+s.MessageID
			if s.ReceiptState != "DELIVRD" {
				name, note = "not delivered", "message "+s.MessageID+": "+s.ReceiptState
			}
			add(name, partSMSC, partPhone, s.Taken, 2, note)
			add("receipt", partSMSC, partMessaging, s.Time, 3, s.ReceiptState+", "+s.StatusName)
		case MO:
			add("sent by phone"+suffix, partPhone, partSMSC, s.Taken, 6, "")
			add("deliver_sm"+suffix, partSMSC, partMessaging, s.Time, 7, s.StatusName)
		}
	}
	slices.SortStableFunc(st, func(a, b Step) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return a.rank - b.rank
	})
	for i := range st {
		st[i].Elapsed = st[i].At.Sub(t.Created)
		if i > 0 {
			st[i].Delta = st[i].At.Sub(st[i-1].At)
		}
	}
	return st
}

// shortSteps keeps the steps a list of transactions has room for: those of
// the Signature Server, the first submit_sm, the delivery to the phone and
// the phone's last segment; the SMPP legs toward the Messaging Server are
// left out.
func shortSteps(st []Step) []Step {
	var out []Step
	for _, s := range st {
		base, _, _ := strings.Cut(s.Name, " (part")
		switch {
		case base == "receipt" || base == "deliver_sm":
			continue
		case base == "submit_sm" && s.part > 1, base == "sent by phone" && s.part < s.parts:
			continue
		}
		s.Name = base
		out = append(out, s)
	}
	return out
}

package ops

import (
	"slices"
	"testing"
	"time"
)

func TestRelated(t *testing.T) {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tx := &Transaction{MSISDN: "+37250000001", Counter: 3, TAR: "4d4944", Created: ms(0), Finished: ms(1000)}
	seg := func(seq uint64, dir Direction, kind, msisdn, id string, at, taken int) SMS {
		return SMS{Seq: seq, Direction: dir, Kind: kind, MSISDN: msisdn, MessageID: id, Time: ms(at), Taken: ms(taken)}
	}
	// Newest first, as the recorder gives them.
	traffic := []SMS{
		seg(11, Receipt, KindReceipt, "37250000001", "9", 4000, 4000), // after the grace
		seg(10, Receipt, KindReceipt, "37250000001", "1", 2500, 2500), // within the grace
		seg(9, MT, KindText, "37250000001", "2", 1500, 1500),          // a text, not a packet
		seg(8, MO, KindResponse, "37250000001", "", 900, 800),         // the answer
		seg(7, MO, KindResponse, "37250000002", "", 850, 850),         // another phone
		seg(6, Receipt, KindReceipt, "37250000001", "5", 300, 300),    // for a message of before
		seg(5, MT, KindContinuation, "37250000001", "4", 20, 20),      // part 2
		seg(4, MT, KindCommand, "37250000001", "1", 10, 10),           // part 1
		seg(3, MT, KindCommand, "37250000001", "5", -500, -500),       // an earlier transaction's
		seg(2, MO, KindResponse, "37250000001", "", -400, -400),       // its answer
		seg(1, MT, KindCommand, "37250000001", "0", 2000, 2000),       // a later one's
	}
	var got []uint64
	for _, s := range related(tx, traffic, ms(10000)) {
		got = append(got, s.Seq)
	}
	if want := []uint64{4, 5, 8, 10}; !slices.Equal(got, want) {
		t.Errorf("related = %v, want %v", got, want)
	}
	// A transaction still running takes what came up to now.
	running := *tx
	running.Finished = time.Time{}
	got = got[:0]
	for _, s := range related(&running, traffic, ms(3000)) {
		got = append(got, s.Seq)
	}
	if want := []uint64{1, 4, 5, 8, 10}; !slices.Equal(got, want) {
		t.Errorf("related to a running transaction = %v, want %v", got, want)
	}
	if r := related(&Transaction{MSISDN: "+37250000001", Created: ms(0)}, traffic, ms(10000)); r != nil {
		t.Errorf("related to a transaction that sent nothing = %v", r)
	}
}

func TestShortSteps(t *testing.T) {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tx := &Transaction{MSISDN: "+37250000001", State: "validated", Status: 100, StatusName: "REQUEST_OK", Counter: 3, TAR: "4d4944",
		Created: ms(0), Answered: ms(90), Finished: ms(100)}
	sms := []SMS{
		{Direction: MT, MessageID: "1", Time: ms(10), Concat: &Concat{Seq: 1, Total: 2}},
		{Direction: MT, MessageID: "2", Time: ms(11), Concat: &Concat{Seq: 2, Total: 2}},
		{Direction: Receipt, MessageID: "1", ReceiptState: "DELIVRD", Time: ms(21), Taken: ms(20)},
		{Direction: MO, Time: ms(41), Taken: ms(40), Concat: &Concat{Seq: 1, Total: 2}},
		{Direction: MO, Time: ms(51), Taken: ms(50), Concat: &Concat{Seq: 2, Total: 2}},
	}
	all := steps(tx, sms)
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	want := []string{"created", "submit_sm (part 1 of 2)", "submit_sm (part 2 of 2)", "delivered to phone", "receipt",
		"sent by phone (part 1 of 2)", "deliver_sm (part 1 of 2)", "sent by phone (part 2 of 2)", "deliver_sm (part 2 of 2)", "answered", "validated"}
	if !slices.Equal(names, want) {
		t.Errorf("steps = %q, want %q", names, want)
	}
	names = names[:0]
	for _, s := range shortSteps(all) {
		names = append(names, s.Name)
	}
	want = []string{"created", "submit_sm", "delivered to phone", "sent by phone", "answered", "validated"}
	if !slices.Equal(names, want) {
		t.Errorf("shortSteps = %q, want %q", names, want)
	}
	if got := shortSteps(all)[3]; !got.At.Equal(ms(50)) || got.Elapsed != 50*time.Millisecond {
		t.Errorf("shortSteps kept %+v, want the phone's last segment at 50 ms", got)
	}
}

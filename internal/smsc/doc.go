// Package smsc simulates an operator's SMS service centre: an SMPP 3.4
// server toward the platform's Messaging Server (an ESME) and a
// store-and-forward relay toward a radio network of virtual handsets.
//
// # Model
//
// ESMEs bind over TCP with a configured system_id and password. A
// submit_sm is validated, given a message_id (a hex counter), answered at
// once and stored. The SMSC turns it into an SMS-DELIVER TPDU (TS 23.040)
// the moment it accepts it — TP-SCTS is the time the centre received the
// message — and hands it to the Radio. A phone that is absent (switched
// off, out of coverage) keeps its messages: the centre retries with a
// jittered exponential back-off between RetryMin and RetryMax until the
// validity period ends, and tries again at once when the phone becomes
// reachable through SetFaults (as an HLR's alertServiceCentre would). A
// phone gets its messages one at a time in submit order, so a
// concatenated or counter-ordered OTA series arrives as it was sent,
// unless its faults ask for reordering. A Radio error that is not absent
// is final, and so is the first failure of a submit_sm in datagram or
// forward mode (esm_class bits 0-1 set to 01 or 10), which is not stored.
//
// Mobile-originated messages come in through SubmitMO. They are routed by
// their TP-DA to the account whose Addresses (service numbers, short
// codes) contain it and go out as deliver_sm, spread round-robin over the
// account's receiver and transceiver binds without exceeding each bind's
// window. While the account has no such bind they are held, and a
// deliver_sm that is refused or not answered within ResponseTimeout is
// retried with the same back-off. Delivery receipts travel the same way
// to the account that submitted the message.
//
// # Coding of short_message
//
// Binary and UCS-2 user data (every data_coding whose TS 23.038 alphabet
// is not the GSM default alphabet, such as 0xF6, 0x16, 0x04 and 0x08) are
// copied byte for byte into TP-UD, user data header included; TP-UDHI
// follows esm_class 0x40. For the GSM 7-bit default alphabet (data_coding
// 0x00, or any coding whose TS 23.038 alphabet is GSM 7-bit) short_message
// carries one unpacked septet per octet after the ESME's user data header,
// and the SMSC packs the septets into TP-UD behind the header with the fill
// bits TS 23.040 §9.2.3.24 asks for; TP-UDL then counts septets (at most
// 160). MO messages are coded the same way in the other direction.
// data_coding is copied into TP-DCS unchanged, except SMPP's 0x02 ("8-bit
// binary"), which TS 23.038 would read as 7-bit text and so becomes 0x04.
//
// # Receipts
//
// registered_delivery bits 0-1 ask for a receipt: 01 for the final
// outcome, 10 only on failure and 11 (as SMPP 5.0 defines it) only on
// success. The receipt is a deliver_sm with esm_class 0x04, the SMPP 3.4
// Appendix B text (stat DELIVRD, EXPIRED or UNDELIV; err: the GSM error in
// decimal; text: left empty, since message content is never echoed) and
// the TLVs receipted_message_id, message_state and, on failure,
// network_error_code: type 0x03 (GSM) with 0x001B (absent subscriber) when
// the message expired because the phone was unreachable or never
// acknowledged it, and 0x0001 (unknown subscriber) when the Radio failed
// it permanently, unless the Radio's error names another code through a
// NetworkErrorCode() uint16 method.
//
// # Faults
//
// Each handset has a fault model (the default one, or its own set with
// SetFaults): latency and jitter on every radio leg, loss (an MT attempt
// that is never acknowledged and is retried; an MO submission that fails
// so the phone retries), duplication, reordering, and phones that are
// switched off or out of coverage, which fail every MT attempt as absent
// without calling the Radio and cannot send MO messages. The random
// source and the clock are injectable, so tests are deterministic.
//
// Memory stays bounded: MaxQueued caps every message the centre holds (MT
// messages, their receipts and MO messages), each bind has a window and a
// bounded write queue, and a peer that stops reading is disconnected
// rather than allowed to block anything else.
package smsc

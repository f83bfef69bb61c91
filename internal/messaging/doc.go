// Package messaging is the Messaging Server: an SMPP 3.4 ESME that carries
// the platform's SMS traffic to and from an SMSC. It sends TS 102 225
// secured command packets to SIMs as binary class-2 SMS (esm_class 0x40,
// protocol_id 0x7F, data_coding 0xF6, with the TS 31.115 user data header
// built here, concatenated when long), sends plain text SMS, reassembles
// mobile-originated (MO) messages such as the SIM's response packets, and
// turns delivery receipts into one outcome per message.
//
// # Outbox
//
// SendPacket, SendPacketTx and SendText write the message and all its
// short messages (segments) to the outbox table before they return, so an
// accepted message survives a crash. A sender goroutine claims ready
// segments with a lease (owner node and lease_until; FOR UPDATE SKIP LOCKED
// on PostgreSQL), as many as the bound SMPP sessions have free window, and
// submits them. A segment is accepted once the SMSC answers with a message
// id; a throttled segment, or one whose bind died before the answer, goes
// back to the queue, and a segment whose lease ran out (its node died) is
// claimed again by any node. A resend after a lost answer may reach the
// SMSC twice: SMPP has no way to tell.
//
// Receipts are matched to segments by the SMSC's message id. The message
// is Delivered when all its segments are; otherwise the first failure
// decides (PhoneAbsent, Expired or Undeliverable), as does a rejected
// submit_sm. A message that reaches the end of its validity without an
// outcome is swept to Expired.
//
// # Inbox
//
// Every deliver_sm is written to the database before deliver_sm_resp goes
// back, so the SMSC retries what was not stored: a receipt as a row of
// messaging_receipt_in, an MO segment as a row of messaging_mo_segment.
// Reassembly happens in the database: the transaction that stores the last
// missing segment also builds the complete MO, so a restart between
// segments loses nothing. Incomplete sets are dropped after
// Config.ReassemblyTimeout.
//
// # Exactly-once hand-over
//
// A dispatcher goroutine offers each complete MO and each message outcome
// to the Handler inside the transaction that marks it handled (it deletes
// the MO row, or sets handled_at on the outbox row, guarded so that only
// one transaction can succeed). What the Handler writes with that
// transaction commits together with the mark, or not at all: a Handler
// error rolls both back and the item is offered again after a back-off.
// A Handler must therefore keep its effects inside the transaction; the
// transaction may also be retried by the store on a serialization
// failure.
package messaging

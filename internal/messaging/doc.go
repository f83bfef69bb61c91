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
// accepted message survives a crash. Concurrent SendPacket and SendText
// calls are committed together: one transaction writes what the callers
// queued while the previous one committed, and each caller returns once
// its message is in; a lone caller commits at once.
//
// Segments are claimed with a lease (owner node and lease_until; FOR
// UPDATE SKIP LOCKED on PostgreSQL), oldest first and as many as the bound
// SMPP sessions have free window, in one statement, and then submitted:
// by the transaction that writes them when the windows have room,
// otherwise by a sender goroutine once they do. A segment is accepted once
// the SMSC answers with a message id; a throttled segment, or one whose
// bind died before the answer, goes back to the queue, and a segment whose
// lease ran out (its node died) is put back in the queue, within
// Config.PollInterval, by any node. A resend after a lost answer may reach
// the SMSC twice: SMPP has no way to tell.
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
// back, so the SMSC retries what was not stored: a final receipt is
// applied to its segment (which may decide the message) or, when its
// message id is not known yet — it may overtake the submit_sm_resp on
// another bind — kept as a row of messaging_receipt_in and matched later;
// an MO as a row of messaging_mo, a segment of a longer one as a row of
// messaging_mo_segment. A receipt of an intermediate state changes nothing
// and is only acknowledged. Reassembly happens in the database: the
// transaction that stores the last missing segment also builds the
// complete MO, so a restart between segments loses nothing. Incomplete
// sets are dropped after Config.ReassemblyTimeout.
//
// The PDUs a bind reads while its worker is busy are stored together, in
// one transaction, and their deliver_sm_resp go out once it committed.
//
// # Exactly-once hand-over
//
// A dispatcher goroutine offers each complete MO and each message outcome
// to the Handler inside the transaction that marks it handled (it deletes
// the MO row, or sets handled_at on the outbox row, guarded so that only
// one transaction can succeed). What the Handler writes with that
// transaction commits together with the mark, or not at all: a Handler
// error rolls both back and the item is offered again after a back-off.
// Items are offered many per transaction, each inside a savepoint of its
// own, so a Handler error rolls back that item only and the others
// commit. What this node stored is offered as soon as it committed; every
// Config.PollInterval the dispatcher also looks for what other nodes
// stored and what is due again. A Handler must keep its effects inside the
// transaction: the transaction may be retried by the store on a
// serialization failure, and when a batch fails as a whole its items are
// tried again one transaction each.
//
// # SQLite
//
// SQLite has a single writer. The store's write transactions take turns
// in Go (store.DB.InTxPriority), and those that an SMSC waits for
// (deliver_sm) go first, rather than sleeping in SQLite's busy handler; the
// store checkpoints the WAL in the background, so that no commit pays for a
// checkpoint.
package messaging

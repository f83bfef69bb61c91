package messaging

import (
	"context"
	"fmt"

	"mobileid/internal/store"
)

// queries are the statements of the hot paths, written once per dialect
// and prepared once per Server (see Server.prepare). Statements of rare
// paths are written where they are used.
type queries struct {
	savepoint, release, rollbackTo *query

	// Outbox.
	insertMessage, insertSegment *query
	claim, messageParams         *query
	accepted                     *query
	lockMessage                  *query // PostgreSQL only
	decide, decideDelivered      *query

	// Receipts.
	insertReceipt, listReceipts, takeReceipt *query
	segmentDelivered, segmentFailed          *query
	deleteReceipt                            *query

	// MOs.
	insertMO, upsertPartial, insertMOSegment, loadParts *query
	deleteMOSegments, deletePartial                     *query

	// Hand-over to the Handler.
	listMOs, takeMO, postponeMO                *query
	listOutcomes, takeOutcome, postponeOutcome *query
	listExpired, expiryInfo                    *query
}

func newQueries(d store.Dialect) *queries {
	q := func(text string) *query { return &query{text: text} }
	// skipLocked makes a row lock on PostgreSQL that another node's
	// transaction skips instead of waiting for; SQLite has one writer.
	skipLocked := ""
	if d == store.Postgres {
		skipLocked = " FOR UPDATE SKIP LOCKED"
	}
	// take guards the row of id ($n) so that one transaction only, of all
	// nodes, can mark it handled.
	take := func(table, cond string, n int) string {
		if d == store.Postgres {
			return fmt.Sprintf(`id = (SELECT id FROM %s WHERE id = $%d%s%s)`, table, n, cond, skipLocked)
		}
		return fmt.Sprintf(`id = $%d%s`, n, cond)
	}
	// An insert returns its id: with RETURNING on PostgreSQL, as the
	// row id on SQLite, which saves SQLite a result set (see batch.insert).
	returningID := ""
	if d == store.Postgres {
		returningID = " RETURNING id"
	}
	claimLock := ""
	if d == store.Postgres {
		claimLock = " FOR UPDATE OF s SKIP LOCKED"
	}
	// The claim's LIMIT is an expression rather than a bare parameter:
	// SQLite would take a parameter's value into the plan and prepare the
	// statement again whenever the value changes, which it does with
	// every free window.
	//
	// The receipt's segment: the newest with its SMSC message id,
	// preferring the SMSC the receipt came from.
	const receiptSegment = `(SELECT id FROM messaging_segment WHERE smsc_id = $%d
		ORDER BY CASE WHEN smsc = $%d THEN 0 ELSE 1 END, id DESC LIMIT 1)`
	return &queries{
		savepoint:  q(`SAVEPOINT messaging_item`),
		release:    q(`RELEASE SAVEPOINT messaging_item`),
		rollbackTo: q(`ROLLBACK TO SAVEPOINT messaging_item`),

		insertMessage: q(`INSERT INTO messaging_outbox
			(msisdn, esm_class, protocol_id, data_coding, registered_delivery, segments, created_at, valid_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)` + returningID),
		insertSegment: q(`INSERT INTO messaging_segment (message_id, seq, ud, state, next_at)
			VALUES ($1, $2, $3, 'queued', $4)`),
		claim: q(`UPDATE messaging_segment SET state = 'inflight', owner = $1, lease_until = $2, attempts = attempts + 1
			WHERE id IN (SELECT s.id FROM messaging_segment s JOIN messaging_outbox m ON m.id = s.message_id
				WHERE s.state = 'queued' AND s.next_at <= $3 AND m.outcome IS NULL AND m.valid_until > $3
				ORDER BY s.id LIMIT $4 + 0` + claimLock + `)
			RETURNING id, message_id, seq, ud`),
		messageParams: q(`SELECT msisdn, esm_class, protocol_id, data_coding, registered_delivery, valid_until
			FROM messaging_outbox WHERE id = $1`),
		accepted: q(`UPDATE messaging_segment SET state = 'accepted', owner = NULL, lease_until = NULL,
			bind = $1, smsc = $2, smsc_id = $3, submitted_at = $4 WHERE id = $5 AND state IN ('queued', 'inflight')`),
		lockMessage: q(`SELECT id FROM messaging_outbox WHERE id = $1 FOR UPDATE`),
		decide: q(`UPDATE messaging_outbox SET outcome = $1, outcome_at = $2, next_at = $2
			WHERE id = $3 AND outcome IS NULL RETURNING msisdn`),
		decideDelivered: q(`UPDATE messaging_outbox SET outcome = $1, outcome_at = $2, next_at = $2
			WHERE id = $3 AND outcome IS NULL
			AND NOT EXISTS (SELECT 1 FROM messaging_segment WHERE message_id = $3 AND state <> 'delivered')
			RETURNING msisdn`),

		insertReceipt: q(`INSERT INTO messaging_receipt_in (smsc, smsc_id, state, net_err, received_at, next_at)
			VALUES ($1, $2, $3, $4, $5, $5)`),
		listReceipts: q(`SELECT id, smsc, smsc_id, state, net_err, received_at, attempts FROM messaging_receipt_in
			WHERE next_at <= $1 ORDER BY id LIMIT $2`),
		takeReceipt: q(`SELECT id FROM messaging_receipt_in WHERE id = $1` + skipLocked),
		segmentDelivered: q(fmt.Sprintf(`UPDATE messaging_segment SET state = 'delivered', owner = NULL, lease_until = NULL,
			receipt_state = $1, done_at = $2 WHERE id = `+receiptSegment+` AND state <> 'failed' RETURNING message_id`, 3, 4)),
		segmentFailed: q(fmt.Sprintf(`UPDATE messaging_segment SET state = 'failed', owner = NULL, lease_until = NULL,
			receipt_state = $1, net_err = $2, done_at = $3 WHERE id = `+receiptSegment+` RETURNING message_id`, 4, 5)),
		deleteReceipt: q(`DELETE FROM messaging_receipt_in WHERE id = $1`),

		insertMO: q(`INSERT INTO messaging_mo (sender, recipient, secured, packet, text, segments, received_at, next_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)` + returningID),
		upsertPartial: q(`INSERT INTO messaging_mo_partial (sender, ref, total, first_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sender, ref, total) DO UPDATE SET total = excluded.total RETURNING id, first_at`),
		insertMOSegment: q(`INSERT INTO messaging_mo_segment (partial_id, seq, recipient, data_coding, ud, received_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partial_id, seq) DO NOTHING`),
		loadParts: q(`SELECT seq, recipient, data_coding, ud FROM messaging_mo_segment
			WHERE partial_id = $1 ORDER BY seq`),
		deleteMOSegments: q(`DELETE FROM messaging_mo_segment WHERE partial_id = $1`),
		deletePartial:    q(`DELETE FROM messaging_mo_partial WHERE id = $1`),

		listMOs: q(`SELECT id, sender, recipient, secured, packet, text, segments, received_at, attempts
			FROM messaging_mo WHERE next_at <= $1 ORDER BY next_at, id LIMIT $2`),
		takeMO:     q(`DELETE FROM messaging_mo WHERE ` + take("messaging_mo", "", 1)),
		postponeMO: q(`UPDATE messaging_mo SET attempts = attempts + 1, next_at = $1 WHERE id = $2`),
		listOutcomes: q(`SELECT id, msisdn, outcome, outcome_at, attempts FROM messaging_outbox
			WHERE outcome IS NOT NULL AND handled_at IS NULL AND next_at <= $1 ORDER BY next_at, id LIMIT $2`),
		takeOutcome: q(`UPDATE messaging_outbox SET handled_at = $1
			WHERE ` + take("messaging_outbox", " AND outcome IS NOT NULL AND handled_at IS NULL", 2)),
		postponeOutcome: q(`UPDATE messaging_outbox SET attempts = attempts + 1, next_at = $1 WHERE id = $2`),
		listExpired: q(`SELECT m.id FROM messaging_outbox m
			WHERE m.outcome IS NULL AND m.valid_until <= $1 AND (m.valid_until <= $2 OR NOT EXISTS
				(SELECT 1 FROM messaging_segment s WHERE s.message_id = m.id AND s.state IN ('accepted', 'delivered')))
			ORDER BY m.valid_until LIMIT $3`),
		expiryInfo: q(`SELECT m.registered_delivery, (SELECT COUNT(*) FROM messaging_segment s
			WHERE s.message_id = m.id AND s.state NOT IN ('accepted', 'delivered')) FROM messaging_outbox m WHERE m.id = $1`),
	}
}

// prepareQueries prepares the statements worth it: those run per item.
func (s *Server) prepareQueries(ctx context.Context) error {
	q := s.q
	return s.prepare(ctx, q.savepoint, q.release, q.rollbackTo,
		q.insertMessage, q.insertSegment, q.claim, q.messageParams, q.accepted, q.decide, q.decideDelivered,
		q.insertReceipt, q.listReceipts, q.takeReceipt, q.segmentDelivered, q.segmentFailed, q.deleteReceipt,
		q.insertMO, q.upsertPartial, q.insertMOSegment, q.loadParts, q.deleteMOSegments, q.deletePartial,
		q.listMOs, q.takeMO, q.postponeMO, q.listOutcomes, q.takeOutcome, q.postponeOutcome)
}

-- The send queue, split by state. Claims read the queued segments in id
-- order and stop at their LIMIT, where an index of queued and in-flight
-- segments by next_at made every claim scan and sort all the segments in
-- flight as well; the segments in flight are found by the expiry of their
-- lease.
DROP INDEX messaging_segment_ready;
CREATE INDEX messaging_segment_queued ON messaging_segment (id) WHERE state = 'queued';
CREATE INDEX messaging_segment_leased ON messaging_segment (lease_until) WHERE state = 'inflight';

-- A SIM replaced by a new card for the same number (a SIM swap) is retired
-- rather than deleted, so that its row stays for audit: msisdn becomes
-- 'retired:' and its ICCID, which no lookup by number can find, the number
-- it served moves to retired_msisdn, and retired_at is when (0 for a SIM in
-- use).
ALTER TABLE mssp_sims ADD COLUMN retired_msisdn TEXT NOT NULL DEFAULT '';
ALTER TABLE mssp_sims ADD COLUMN retired_at BIGINT NOT NULL DEFAULT 0;

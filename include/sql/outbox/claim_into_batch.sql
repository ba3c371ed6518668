-- Claims one waiting row into a batch of this run. The status guard makes it a claim: a row
-- another dispatcher run already took is left alone (0 rows). :cap_reserved_at is the run's
-- as-of for rows that count against the frequency caps, NULL for exempt ones; :lease_until
-- (wall clock) how long the batch's send task has it before another run may take it back.
-- Parameters: :send_key, :batch_id, :queued_at, :lease_until, :cap_reserved_at, :as_of.
UPDATE message_log
SET status = 'queued', batch_id = :batch_id, queued_at = :queued_at, lease_until = :lease_until,
    cap_reserved_at = :cap_reserved_at, decided_at = :as_of
WHERE send_key = :send_key
  AND status IN ('planned', 'deferred_quiet_hours')

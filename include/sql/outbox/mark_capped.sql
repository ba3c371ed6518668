-- Frequency cap reached (SPEC §7.4): the lower-priority message is 'capped'.
-- Parameters: :send_key, :reason, :as_of.
UPDATE message_log
SET status = 'capped', reason = :reason, decided_at = :as_of
WHERE send_key = :send_key
  AND status IN ('planned', 'deferred_quiet_hours')

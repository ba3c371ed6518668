-- Quiet hours (SPEC §7.6): a marketing message due between 21:00 and 08:00 in the customer's
-- time zone is deferred to 08:00 local (:send_after, UTC), not dropped.
-- Parameters: :send_key, :send_after, :reason, :as_of.
UPDATE message_log
SET status = 'deferred_quiet_hours', send_after = :send_after, reason = :reason, decided_at = :as_of
WHERE send_key = :send_key
  AND status IN ('planned', 'deferred_quiet_hours')

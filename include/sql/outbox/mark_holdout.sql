-- A/B holdout (SPEC §7.8): members of the campaign's holdout group (a stable hash of campaign
-- and customer) get a 'holdout' row and no message. Parameters: :send_keys (list), :reason,
-- :as_of.
UPDATE message_log
SET status = 'holdout', reason = :reason, decided_at = :as_of
WHERE send_key IN :send_keys
  AND status IN ('planned', 'deferred_quiet_hours')

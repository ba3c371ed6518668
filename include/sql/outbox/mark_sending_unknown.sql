-- The rest of the interrupted rows: SES may or may not have accepted them. They are marked
-- 'unknown' (not re-sent); a later Send event still turns them into 'sent'.
-- Parameters: :stale_before, :batch_id (NULL = every batch), :as_of.
UPDATE message_log
SET status = 'unknown',
    reason = 'send interrupted before SES answered; not re-sent',
    decided_at = :as_of
WHERE status = 'sending'
  AND (claimed_at < :stale_before OR batch_id = :batch_id)

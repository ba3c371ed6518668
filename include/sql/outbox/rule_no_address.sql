-- No address, no message: due rows whose customer has no email are 'suppressed'.
-- Parameters: :as_of.
UPDATE message_log
SET status = 'suppressed', reason = 'customer has no email address', decided_at = :as_of
WHERE status = 'planned'
  AND due_at <= :as_of
  AND (email IS NULL OR email = '')

-- Erasure: the customer's messages not sent yet are never sent: 'suppressed' with the reason.
-- A row a send task is sending right now ('sending') is left to finish and be recorded.
-- Parameters: :customer_id, :now.
UPDATE message_log
SET status = 'suppressed', reason = 'erasure request: the customer asked to be forgotten', decided_at = :now
WHERE customer_id = :customer_id AND status IN ('planned', 'deferred_quiet_hours', 'queued')

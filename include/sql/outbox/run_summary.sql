-- What one dispatcher run decided: counts per campaign and status.
-- Parameters: :as_of (the run's decision time), :batch_ids (list: the batches the run claimed).
-- The rows decided at the run's as-of, and the rows of its batches: each set found through an
-- index (message_log_decided_at, message_log_batch), a row in both counted once.
SELECT campaign_id, status, COUNT(*) AS messages
FROM (
    SELECT send_key, campaign_id, status FROM message_log WHERE decided_at = :as_of
    UNION
    SELECT send_key, campaign_id, status FROM message_log WHERE batch_id IN :batch_ids
) run_rows
GROUP BY campaign_id, status
ORDER BY campaign_id, status

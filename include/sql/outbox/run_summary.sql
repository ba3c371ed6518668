-- What one dispatcher run decided: counts per campaign and status.
-- Parameters: :as_of (the run's decision time), :run_prefix (batch ids of the run, LIKE pattern).
SELECT campaign_id, status, COUNT(*) AS messages
FROM message_log
WHERE decided_at = :as_of OR batch_id LIKE :run_prefix
GROUP BY campaign_id, status
ORDER BY campaign_id, status

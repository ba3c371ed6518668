-- Campaigns with messages failed on a template error in one dispatcher run.
-- Parameters: :run_prefix (LIKE pattern of the run's batch ids), :prefix (LIKE pattern of the reason).
SELECT DISTINCT campaign_id
FROM message_log
WHERE batch_id LIKE :run_prefix
  AND status = 'failed'
  AND reason LIKE :prefix

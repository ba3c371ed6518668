-- Campaigns with messages failed on a template error in one dispatcher run.
-- Parameters: :batch_ids (list: the batches the run claimed), :prefix (LIKE pattern of the reason).
SELECT DISTINCT campaign_id
FROM message_log
WHERE batch_id IN :batch_ids
  AND status = 'failed'
  AND reason LIKE :prefix

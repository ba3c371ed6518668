-- Marketing messages of one dispatcher run failed because a signed unsubscribe link was needed
-- and the Variable tm_unsubscribe_secret is not set, per campaign.
-- Parameters: :batch_ids (list: the batches the run claimed), :prefix (LIKE pattern of the reason).
-- Grain: one row per campaign.
SELECT campaign_id, COUNT(*) AS messages
FROM message_log
WHERE batch_id IN :batch_ids
  AND status = 'failed'
  AND reason LIKE :prefix
GROUP BY campaign_id
ORDER BY campaign_id

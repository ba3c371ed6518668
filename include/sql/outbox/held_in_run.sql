-- Marketing rows the deliverability guard held in one dispatcher run (still waiting, reason
-- 'held: …', decided at the run's as-of), per campaign.
-- Parameters: :as_of, :prefix (LIKE pattern of the reason). Grain: one row per campaign.
SELECT campaign_id, COUNT(*) AS messages, MIN(reason) AS reason
FROM message_log
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND decided_at = :as_of
  AND reason LIKE :prefix
GROUP BY campaign_id
ORDER BY campaign_id

-- Intent-to-treat groups of the campaigns that hold customers out: per (campaign, customer)
-- that reached the holdout decision before :as_of, the first such decision and whether it was
-- 'holdout'. Rows a rule had already skipped (no consent, suppressed, expired …) never reach
-- that decision and are in neither group; everything after it (sent, capped, digested, deferred,
-- no_content, failed, unknown, in flight) is treatment.
-- Parameters: :as_of. Grain: one row per (campaign_id, customer_id).
SELECT m.campaign_id, m.customer_id,
       MIN(m.decided_at) AS first_decided_at,
       MAX(CASE WHEN m.status = 'holdout' THEN 1 ELSE 0 END) AS held_out
FROM message_log m
WHERE m.category = 'marketing'
  AND m.decided_at < :as_of
  AND m.status IN ('holdout', 'sent', 'capped', 'digested', 'deferred_quiet_hours', 'no_content', 'failed',
                   'unknown', 'queued', 'sending')
  AND m.campaign_id IN (SELECT h.campaign_id FROM message_log h WHERE h.status = 'holdout')
GROUP BY m.campaign_id, m.customer_id

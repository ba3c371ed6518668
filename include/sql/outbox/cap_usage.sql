-- Frequency-cap usage per customer: marketing messages reserved (claimed, being sent, sent or
-- of unknown fate) in the last day and the last 7 days before :as_of. Rolling windows.
-- Parameters: :customer_ids (list), :day_start, :week_start.
SELECT customer_id,
       SUM(CASE WHEN cap_reserved_at > :day_start THEN 1 ELSE 0 END) AS last_day,
       COUNT(*) AS last_week
FROM message_log
WHERE customer_id IN :customer_ids
  AND cap_reserved_at > :week_start
  AND status IN ('queued', 'sending', 'sent', 'unknown')
GROUP BY customer_id

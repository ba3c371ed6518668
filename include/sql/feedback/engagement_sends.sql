-- The decisions the engagement simulator (relance.shopsim.engagement, demo and tests only)
-- turns into SES notifications and orders: messages sent and holdout decisions taken in
-- [:since, :until). Parameters: :since, :until. Grain: one row per message_log row.
SELECT send_key, campaign_id, variant, customer_id, email, category, status, provider_message_id,
       sent_at, decided_at
FROM message_log
WHERE status IN ('sent', 'holdout')
  AND decided_at >= :since AND decided_at < :until
ORDER BY decided_at, send_key

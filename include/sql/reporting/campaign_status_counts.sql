-- Messages per campaign and status over the whole outbox (the demo's summary table).
-- No parameters. Grain: one row per (campaign_id, status).
SELECT campaign_id, status, COUNT(*) AS messages
FROM message_log
GROUP BY campaign_id, status
ORDER BY campaign_id, status

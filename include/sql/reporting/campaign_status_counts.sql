-- Messages per campaign, step and status over the whole outbox (the demo's summary table and
-- `relance report`); dry-run rows are left out (they were never going to be sent).
-- No parameters. Grain: one row per (campaign_id, step, status).
SELECT campaign_id, step, step_name, status, COUNT(*) AS messages
FROM message_log
WHERE status <> 'dry_run'
GROUP BY campaign_id, step, step_name, status
ORDER BY campaign_id, step, status

-- Sends and cost by channel (issue 12, item 3) over the whole outbox, for the demo's summary and
-- the Campaigns page: per channel ('email', 'sms'), the messages sent, and for SMS their segments
-- and cost (message_log.sms_cost: segments × tm_sms_cost_per_segment at send time). Dry runs
-- left out. No parameters. One row per channel that has messages.
SELECT channel,
       COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
       COALESCE(SUM(CASE WHEN status = 'sent' THEN sms_segments ELSE 0 END), 0) AS segments,
       COALESCE(SUM(CASE WHEN status = 'sent' THEN sms_cost ELSE 0 END), 0) AS cost
FROM message_log
WHERE status <> 'dry_run'
GROUP BY channel
ORDER BY channel

-- View campaign_daily: one row per (day, campaign_id), day = date of due_at (UTC).
-- planned = every outbox row but dry runs; one column per decision; delivered/opened/clicked come from SES
-- events (message_events), conversions/revenue from the attribution table (conversions).
SELECT
    date(m.due_at) AS day,
    m.campaign_id,
    SUM(CASE WHEN m.status <> 'dry_run' THEN 1 ELSE 0 END) AS planned,
    SUM(CASE WHEN m.status = 'sent' THEN 1 ELSE 0 END) AS sent,
    SUM(CASE WHEN m.status IN ('planned', 'queued', 'sending') THEN 1 ELSE 0 END) AS waiting,
    SUM(CASE WHEN m.status = 'dry_run' THEN 1 ELSE 0 END) AS dry_run,
    SUM(CASE WHEN m.status = 'holdout' THEN 1 ELSE 0 END) AS holdout,
    SUM(CASE WHEN m.status = 'capped' THEN 1 ELSE 0 END) AS capped,
    SUM(CASE WHEN m.status = 'suppressed' THEN 1 ELSE 0 END) AS suppressed,
    SUM(CASE WHEN m.status = 'no_consent' THEN 1 ELSE 0 END) AS no_consent,
    SUM(CASE WHEN m.status = 'unsubscribed' THEN 1 ELSE 0 END) AS unsubscribed,
    SUM(CASE WHEN m.status = 'deferred_quiet_hours' THEN 1 ELSE 0 END) AS deferred_quiet_hours,
    SUM(CASE WHEN m.status = 'expired' THEN 1 ELSE 0 END) AS expired,
    SUM(CASE WHEN m.status = 'exited' THEN 1 ELSE 0 END) AS exited,
    SUM(CASE WHEN m.status = 'no_content' THEN 1 ELSE 0 END) AS no_content,
    SUM(CASE WHEN m.status = 'failed' THEN 1 ELSE 0 END) AS failed,
    SUM(CASE WHEN m.status = 'unknown' THEN 1 ELSE 0 END) AS unknown,
    SUM(CASE WHEN EXISTS (SELECT 1 FROM message_events e
                          WHERE e.send_key = m.send_key AND e.event_type = 'Delivery') THEN 1 ELSE 0 END) AS delivered,
    SUM(CASE WHEN EXISTS (SELECT 1 FROM message_events e
                          WHERE e.send_key = m.send_key AND e.event_type = 'Open') THEN 1 ELSE 0 END) AS opened,
    SUM(CASE WHEN EXISTS (SELECT 1 FROM message_events e
                          WHERE e.send_key = m.send_key AND e.event_type = 'Click') THEN 1 ELSE 0 END) AS clicked,
    SUM((SELECT COUNT(*) FROM conversions c WHERE c.send_key = m.send_key)) AS conversions,
    SUM(COALESCE((SELECT SUM(c.revenue) FROM conversions c WHERE c.send_key = m.send_key), 0)) AS revenue
FROM message_log m
GROUP BY date(m.due_at), m.campaign_id

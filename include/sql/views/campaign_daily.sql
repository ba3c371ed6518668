-- View campaign_daily: one row per (day, campaign_id), day = date of due_at (UTC).
-- planned = every outbox row but dry runs; one column per decision; delivered / opened /
-- clicked / bounced / complained = messages with at least one such SES event (message_events,
-- loaded by ingest_ses_events; a click counts as an open); converted = messages credited with
-- an order, conversions = orders credited, revenue = their revenue (conversions, written by
-- campaign_report's last-touch attribution).
WITH events AS (
    SELECT send_key,
           MAX(CASE WHEN event_type = 'Delivery' THEN 1 ELSE 0 END) AS delivered,
           MAX(CASE WHEN event_type IN ('Open', 'Click') THEN 1 ELSE 0 END) AS opened,
           MAX(CASE WHEN event_type = 'Click' THEN 1 ELSE 0 END) AS clicked,
           MAX(CASE WHEN event_type = 'Bounce' THEN 1 ELSE 0 END) AS bounced,
           MAX(CASE WHEN event_type = 'Complaint' THEN 1 ELSE 0 END) AS complained
    FROM message_events
    WHERE send_key IS NOT NULL
    GROUP BY send_key
), credited AS (
    SELECT send_key, COUNT(*) AS orders, SUM(COALESCE(revenue, 0)) AS revenue
    FROM conversions
    GROUP BY send_key
)
SELECT
    date(m.due_at) AS day,
    m.campaign_id,
    SUM(CASE WHEN m.status <> 'dry_run' THEN 1 ELSE 0 END) AS planned,
    SUM(CASE WHEN m.status = 'sent' THEN 1 ELSE 0 END) AS sent,
    SUM(CASE WHEN m.status IN ('planned', 'queued', 'sending') THEN 1 ELSE 0 END) AS waiting,
    SUM(CASE WHEN m.status = 'dry_run' THEN 1 ELSE 0 END) AS dry_run,
    SUM(CASE WHEN m.status = 'holdout' THEN 1 ELSE 0 END) AS holdout,
    SUM(CASE WHEN m.status = 'capped' THEN 1 ELSE 0 END) AS capped,
    SUM(CASE WHEN m.status = 'digested' THEN 1 ELSE 0 END) AS digested,
    SUM(CASE WHEN m.status = 'suppressed' THEN 1 ELSE 0 END) AS suppressed,
    SUM(CASE WHEN m.status = 'no_consent' THEN 1 ELSE 0 END) AS no_consent,
    SUM(CASE WHEN m.status = 'unsubscribed' THEN 1 ELSE 0 END) AS unsubscribed,
    SUM(CASE WHEN m.status = 'deferred_quiet_hours' THEN 1 ELSE 0 END) AS deferred_quiet_hours,
    SUM(CASE WHEN m.status = 'expired' THEN 1 ELSE 0 END) AS expired,
    SUM(CASE WHEN m.status = 'exited' THEN 1 ELSE 0 END) AS exited,
    SUM(CASE WHEN m.status = 'no_content' THEN 1 ELSE 0 END) AS no_content,
    SUM(CASE WHEN m.status = 'failed' THEN 1 ELSE 0 END) AS failed,
    SUM(CASE WHEN m.status = 'unknown' THEN 1 ELSE 0 END) AS unknown,
    SUM(COALESCE(e.delivered, 0)) AS delivered,
    SUM(COALESCE(e.opened, 0)) AS opened,
    SUM(COALESCE(e.clicked, 0)) AS clicked,
    SUM(COALESCE(e.bounced, 0)) AS bounced,
    SUM(COALESCE(e.complained, 0)) AS complained,
    SUM(CASE WHEN c.orders > 0 THEN 1 ELSE 0 END) AS converted,
    SUM(COALESCE(c.orders, 0)) AS conversions,
    SUM(COALESCE(c.revenue, 0)) AS revenue
FROM message_log m
LEFT JOIN events e ON e.send_key = m.send_key
LEFT JOIN credited c ON c.send_key = m.send_key
GROUP BY date(m.due_at), m.campaign_id

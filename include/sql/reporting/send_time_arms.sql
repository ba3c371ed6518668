-- Send-time optimisation's A/B split (issue 12, item 5), for the demo's summary and relance
-- report: per campaign and arm ('best_hour': sent at the customer's learned best local hour,
-- 'fixed': the campaign's own time), the messages sent, how many of them were moved to a best
-- hour, opened (an open or a click), clicked, and credited with an order (conversions).
-- No parameters. Grain: one row per (campaign_id, arm) with messages sent.
WITH events AS (
    SELECT send_key,
           MAX(CASE WHEN event_type IN ('Open', 'Click') THEN 1 ELSE 0 END) AS opened,
           MAX(CASE WHEN event_type = 'Click' THEN 1 ELSE 0 END) AS clicked
    FROM message_events
    WHERE send_key IS NOT NULL
    GROUP BY send_key
), credited AS (
    SELECT send_key, COUNT(*) AS orders FROM conversions GROUP BY send_key
)
SELECT a.campaign_id, a.arm,
       COUNT(*) AS sent,
       SUM(CASE WHEN a.send_after IS NOT NULL THEN 1 ELSE 0 END) AS moved,
       SUM(COALESCE(e.opened, 0)) AS opened,
       SUM(COALESCE(e.clicked, 0)) AS clicked,
       SUM(CASE WHEN c.orders > 0 THEN 1 ELSE 0 END) AS converted
FROM send_time_arms a
JOIN message_log m ON m.send_key = a.send_key
LEFT JOIN events e ON e.send_key = a.send_key
LEFT JOIN credited c ON c.send_key = a.send_key
WHERE m.status = 'sent'
GROUP BY a.campaign_id, a.arm
ORDER BY a.campaign_id, a.arm

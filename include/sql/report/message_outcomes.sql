-- What happened to the messages sent before :as_of, per campaign, step and variant: counts of
-- messages delivered, opened, clicked and credited with an order, revenue and its sum of
-- squares per message (for the interval of revenue per recipient, computed in Python).
-- Parameters: :as_of. Grain: one row per (campaign_id, step, variant).
WITH events AS (
    SELECT send_key,
           MAX(CASE WHEN event_type = 'Delivery' THEN 1 ELSE 0 END) AS delivered,
           MAX(CASE WHEN event_type IN ('Open', 'Click') THEN 1 ELSE 0 END) AS opened,
           MAX(CASE WHEN event_type = 'Click' THEN 1 ELSE 0 END) AS clicked
    FROM message_events
    WHERE send_key IS NOT NULL AND occurred_at < :as_of
    GROUP BY send_key
), credited AS (
    SELECT send_key, COUNT(*) AS orders, SUM(COALESCE(revenue, 0)) AS revenue
    FROM conversions
    WHERE converted_at < :as_of
    GROUP BY send_key
)
SELECT m.campaign_id, m.step, MIN(m.step_name) AS step_name, m.variant,
       COUNT(*) AS recipients,
       SUM(COALESCE(e.delivered, 0)) AS delivered,
       SUM(COALESCE(e.opened, 0)) AS opened,
       SUM(COALESCE(e.clicked, 0)) AS clicked,
       SUM(CASE WHEN c.orders > 0 THEN 1 ELSE 0 END) AS converted,
       SUM(COALESCE(c.revenue, 0)) AS revenue,
       SUM(COALESCE(c.revenue, 0) * COALESCE(c.revenue, 0)) AS revenue_sq
FROM message_log m
LEFT JOIN events e ON e.send_key = m.send_key
LEFT JOIN credited c ON c.send_key = m.send_key
WHERE m.status = 'sent' AND m.sent_at < :as_of
GROUP BY m.campaign_id, m.step, m.variant
ORDER BY m.campaign_id, m.step, m.variant

-- When some customers engaged: their opens and clicks of any message (SES events linked by the
-- send_key tag) and their orders, in (:since, :as_of], with the customer's time zone — what
-- relance.campaigns.send_time learns each customer's best local hour from (the local hour is
-- computed in Python: SQLite has no time zones).
-- Parameters: :customer_ids (list), :since, :as_of. Grain: one row per open, click or order.
SELECT m.customer_id, c.timezone, e.occurred_at AS engaged_at
FROM message_events e
JOIN message_log m ON m.send_key = e.send_key
JOIN customers c ON c.customer_id = m.customer_id
WHERE m.customer_id IN :customer_ids
  AND e.event_type IN ('Open', 'Click')
  AND e.occurred_at > :since AND e.occurred_at <= :as_of
UNION ALL
SELECT o.customer_id, c.timezone, o.ordered_at AS engaged_at
FROM orders o
JOIN customers c ON c.customer_id = o.customer_id
WHERE o.customer_id IN :customer_ids
  AND o.ordered_at > :since AND o.ordered_at <= :as_of

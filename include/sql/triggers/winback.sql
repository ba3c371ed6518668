-- winback: one trigger per customer's latest order in (:since, :as_of] (any status): the
-- reminders come 90, 180 and 365 days after it, and the series exits (order_placed) as soon
-- as another order is placed — which is also the start of a new series.
-- Identity: trigger_id = the latest order's id; timing: trigger_at = its time.
-- Parameters: :as_of, :since (keep the lookback longer than 365 days).
-- Returns customer_id, trigger_id, trigger_at, last_order_id, last_ordered_at and order_id (the
-- same latest order: the content query order_complements offers what goes with it) (context).
WITH last_order AS (
    SELECT customer_id, MAX(ordered_at) AS last_ordered_at
    FROM orders
    WHERE ordered_at > :since
      AND ordered_at <= :as_of
    GROUP BY customer_id
)
SELECT lo.customer_id,
       (SELECT MIN(o.order_id) FROM orders o
        WHERE o.customer_id = lo.customer_id AND o.ordered_at = lo.last_ordered_at) AS trigger_id,
       lo.last_ordered_at AS trigger_at,
       (SELECT MIN(o.order_id) FROM orders o
        WHERE o.customer_id = lo.customer_id AND o.ordered_at = lo.last_ordered_at) AS last_order_id,
       lo.last_ordered_at,
       (SELECT MIN(o.order_id) FROM orders o
        WHERE o.customer_id = lo.customer_id AND o.ordered_at = lo.last_ordered_at) AS order_id
FROM last_order lo

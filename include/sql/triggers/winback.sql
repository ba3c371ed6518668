-- winback: one trigger per customer's latest order in (:since, :as_of] (any status): the
-- reminders come 90, 180 and 365 days after it, and the series exits (order_placed) as soon
-- as another order is placed — which is also the start of a new series.
-- Identity: trigger_id = the latest order's id; timing: trigger_at = its time.
-- Parameters: :as_of, :since (keep the lookback longer than 365 days), :due1_from … :due4_to
-- (relance.campaigns.planner.due_windows: only customers with a step due now are returned).
-- Returns customer_id, trigger_id, trigger_at, last_order_id, last_ordered_at and order_id (the
-- same latest order: the content query order_complements offers what goes with it) (context).
WITH due AS (
    -- only orders whose time makes a step due now (the planner's due windows, one per step):
    -- a customer whose latest order is 12 or 200 days old has nothing due this hour
    SELECT customer_id, ordered_at
    FROM orders
    WHERE ordered_at > :since
      AND ordered_at <= :as_of
      AND ((ordered_at > :due1_from AND ordered_at <= :due1_to)
        OR (ordered_at > :due2_from AND ordered_at <= :due2_to)
        OR (ordered_at > :due3_from AND ordered_at <= :due3_to)
        OR (ordered_at > :due4_from AND ordered_at <= :due4_to))
),
last_order AS (
    -- ... and is still the customer's latest order
    SELECT d.customer_id, MAX(d.ordered_at) AS last_ordered_at
    FROM due d
    WHERE NOT EXISTS (SELECT 1 FROM orders later
                      WHERE later.customer_id = d.customer_id
                        AND later.ordered_at > d.ordered_at
                        AND later.ordered_at <= :as_of)
    GROUP BY d.customer_id
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

-- replenishment: one trigger per (customer, consumable product) = the customer's latest
-- completed purchase of a product with a learned repurchase interval, in (:since, :as_of].
-- Returns customer_id, trigger_id ('<product_id>|<order_id>', the product_bought exit reads
-- the prefix), trigger_at (the purchase), delay_offset_hours (75 % of the interval: the
-- planner adds it to the step's delay), product_id, interval_days (context).
-- A re-purchase is a new trigger; the older one exits.
WITH purchases AS (
    SELECT o.customer_id, oi.product_id, o.order_id, o.ordered_at,
           ROW_NUMBER() OVER (PARTITION BY o.customer_id, oi.product_id
                              ORDER BY o.ordered_at DESC, o.order_id DESC) AS recency
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    JOIN product_repurchase_intervals ri ON ri.product_id = oi.product_id
    WHERE o.status = 'completed'
      AND o.ordered_at > :since
      AND o.ordered_at <= :as_of
)
SELECT p.customer_id,
       p.product_id || '|' || p.order_id AS trigger_id,
       p.ordered_at AS trigger_at,
       0.75 * ri.interval_days * 24 AS delay_offset_hours,
       p.product_id,
       ri.interval_days
FROM purchases p
JOIN product_repurchase_intervals ri ON ri.product_id = p.product_id
WHERE p.recency = 1

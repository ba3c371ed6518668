-- replenishment: one trigger per (customer, consumable product) = the customer's latest
-- completed purchase of a product with a learned repurchase interval, in (:since, :as_of].
-- The interval scales with the quantity bought: product_repurchase_intervals learns how long
-- a usual purchase lasts, so a purchase of `quantity` units lasts interval × quantity / the
-- usual quantity (the mean quantity of the product's other order lines; 1 when it has none):
-- two 4 kg bags last twice as long as one. The scaled interval is capped at 365 days.
-- Returns customer_id, trigger_id ('<product_id>|<order_id>', the product_bought exit reads
-- the prefix), trigger_at (the purchase), delay_offset_hours (75 % of the scaled interval:
-- the planner adds it to the step's delay), product_id, quantity, interval_days (learned,
-- per usual purchase) and scaled_interval_days (context).
-- Parameters: :as_of, :since (keep the lookback longer than 75 % of the 365-day cap),
-- :offset_due_from_epoch / :offset_due_to_epoch (relance.campaigns.planner.offset_due_window:
-- epoch seconds; only purchases whose reminder falls in them — due this run, a second either
-- side — are returned: a first run on a 1M shop read 900k purchases to plan 6k reminders).
-- A re-purchase is a new trigger; the older one exits.
WITH lines AS (
    SELECT o.customer_id, oi.product_id, o.order_id, o.ordered_at, SUM(oi.quantity) AS quantity
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    JOIN product_repurchase_intervals ri ON ri.product_id = oi.product_id
    WHERE o.status = 'completed'
      AND o.ordered_at <= :as_of
    GROUP BY o.customer_id, oi.product_id, o.order_id, o.ordered_at
),
usual AS (
    SELECT product_id, SUM(quantity) AS total_quantity, COUNT(*) AS purchases
    FROM lines
    GROUP BY product_id
),
latest AS (
    SELECT customer_id, product_id, order_id, ordered_at, quantity,
           ROW_NUMBER() OVER (PARTITION BY customer_id, product_id
                              ORDER BY ordered_at DESC, order_id DESC) AS recency
    FROM lines
    WHERE ordered_at > :since
),
scaled AS (
    SELECT l.customer_id, l.product_id, l.order_id, l.ordered_at, l.quantity, ri.interval_days,
           ri.interval_days * l.quantity
             / (CASE WHEN u.purchases > 1
                     THEN 1.0 * (u.total_quantity - l.quantity) / (u.purchases - 1)
                     ELSE 1.0 END) AS scaled_days
    FROM latest l
    JOIN usual u ON u.product_id = l.product_id
    JOIN product_repurchase_intervals ri ON ri.product_id = l.product_id
    WHERE l.recency = 1
)
SELECT customer_id,
       product_id || '|' || order_id AS trigger_id,
       ordered_at AS trigger_at,
       0.75 * 24 * capped_days AS delay_offset_hours,
       product_id,
       quantity,
       interval_days,
       capped_days AS scaled_interval_days
FROM (
    SELECT s.*, CASE WHEN scaled_days > 365 THEN 365 ELSE scaled_days END AS capped_days
    FROM scaled s
) capped
WHERE date_part('epoch', ordered_at) + 0.75 * 86400 * capped_days > :offset_due_from_epoch
  AND date_part('epoch', ordered_at) + 0.75 * 86400 * capped_days <= :offset_due_to_epoch

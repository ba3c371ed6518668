-- Implicit feedback for the recommender: per customer, product and kind of interaction
-- (view, cart, wishlist, order), a time-decayed count of touches in [:since, :as_of).
-- Decay is a step function of age: < 30 d = 1, < 90 d = 0.7, < 180 d = 0.45, < 365 d = 0.25,
-- older 0.1; Python weights the kinds. With :holdout_run = an evaluation's run id, the touches
-- of a customer held out in that run (ml_holdout_baskets) count only before their cutoff_at;
-- '' = no evaluation.
-- Parameters: :as_of, :since, :d30, :d90, :d180, :d365, :holdout_run.
-- Grain: one row per (customer_id, product_id, kind); last_at = for orders, the last purchase
-- (from which the recommender tells how due a consumable is), NULL for the other kinds;
-- quantity = for orders, the units bought (over all of the pair's orders), NULL otherwise.
WITH touches AS (
    SELECT e.customer_id, e.product_id,
           CASE e.event WHEN 'Product Viewed' THEN 'view' WHEN 'Product Added' THEN 'cart' ELSE 'wishlist' END
               AS kind,
           e.occurred_at AS touched_at, CAST(NULL AS INTEGER) AS quantity
    FROM events e
    WHERE e.event IN ('Product Viewed', 'Product Added', 'Product Added to Wishlist')
      AND e.customer_id IS NOT NULL AND e.product_id IS NOT NULL
      AND e.occurred_at >= :since AND e.occurred_at < :as_of
    UNION ALL
    SELECT o.customer_id, oi.product_id, 'order' AS kind, o.ordered_at AS touched_at, oi.quantity
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :as_of
)
SELECT t.customer_id, t.product_id, t.kind,
       SUM(CASE WHEN t.touched_at >= :d30 THEN 1.0
                WHEN t.touched_at >= :d90 THEN 0.7
                WHEN t.touched_at >= :d180 THEN 0.45
                WHEN t.touched_at >= :d365 THEN 0.25
                ELSE 0.1 END) AS weight,
       COUNT(*) AS touches,
       MAX(CASE WHEN t.kind = 'order' THEN t.touched_at END) AS last_at,
       SUM(t.quantity) AS quantity
FROM touches t
LEFT JOIN ml_holdout_baskets h ON h.run_id = :holdout_run AND h.customer_id = t.customer_id
WHERE h.customer_id IS NULL OR t.touched_at < h.cutoff_at
GROUP BY t.customer_id, t.product_id, t.kind

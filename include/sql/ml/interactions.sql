-- Implicit feedback for the recommender from browsing: per customer, product and kind of
-- interaction (view, cart, wishlist), a time-decayed count of touches in [:since, :as_of).
-- Decay is a step function of age: < 30 d = 1, < 90 d = 0.7, < 180 d = 0.45, < 365 d = 0.25,
-- older 0.1 (relance.ml.itemknn.DECAY; the orders, read once by order_lines.sql, are decayed
-- the same way in Python); Python weights the kinds. With :holdout_run = an evaluation's run
-- id, the touches of a customer held out in that run (ml_holdout_baskets) count only before
-- their cutoff_at; '' = no evaluation.
-- Parameters: :as_of, :since, :d30, :d90, :d180, :d365, :holdout_run.
-- Grain: one row per (customer_id, product_id, kind).
WITH touches AS (
    SELECT e.customer_id, e.product_id,
           CASE e.event WHEN 'Product Viewed' THEN 'view' WHEN 'Product Added' THEN 'cart' ELSE 'wishlist' END
               AS kind,
           e.occurred_at AS touched_at
    FROM events e
    WHERE e.event IN ('Product Viewed', 'Product Added', 'Product Added to Wishlist')
      AND e.customer_id IS NOT NULL AND e.product_id IS NOT NULL
      AND e.occurred_at >= :since AND e.occurred_at < :as_of
)
SELECT t.customer_id, t.product_id, t.kind,
       SUM(CASE WHEN t.touched_at >= :d30 THEN 1.0
                WHEN t.touched_at >= :d90 THEN 0.7
                WHEN t.touched_at >= :d180 THEN 0.45
                WHEN t.touched_at >= :d365 THEN 0.25
                ELSE 0.1 END) AS weight
FROM touches t
LEFT JOIN ml_holdout_baskets h ON h.run_id = :holdout_run AND h.customer_id = t.customer_id
WHERE h.customer_id IS NULL OR t.touched_at < h.cutoff_at
GROUP BY t.customer_id, t.product_id, t.kind

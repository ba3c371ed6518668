-- Repurchase intervals: every order of the (customer, product) pairs bought in at least two
-- different orders in [:since, :as_of) (cancelled ones excluded), with the units bought in it,
-- in no particular order; Python sorts them and takes the gaps (a gap after a 3-unit purchase
-- may be ~3x the per-unit interval: relance.ml.repeats decides per product).
-- With :holdout_run = an evaluation's run id, a customer held out in that run counts only
-- with the orders placed before their cutoff_at (their held-out basket teaches nothing);
-- '' = no evaluation.
-- Parameters: :since (as_of minus the
-- recommender's two-year history), :as_of, :holdout_run. Grain: one row per (customer_id, product_id, order).
WITH bought AS (
    SELECT o.customer_id, oi.product_id, o.order_id, o.ordered_at, SUM(oi.quantity) AS quantity
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    LEFT JOIN ml_holdout_baskets h ON h.run_id = :holdout_run AND h.customer_id = o.customer_id
    WHERE o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :as_of
      AND (h.customer_id IS NULL OR o.ordered_at < h.cutoff_at)
    GROUP BY o.customer_id, oi.product_id, o.order_id, o.ordered_at
),
counted AS (
    SELECT customer_id, product_id, ordered_at, quantity,
           COUNT(*) OVER (PARTITION BY customer_id, product_id) AS orders
    FROM bought
)
SELECT customer_id, product_id, ordered_at, quantity
FROM counted
WHERE orders >= 2

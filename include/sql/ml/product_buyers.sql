-- Buyers per product in [:since, :as_of) (cancelled orders excluded): how many distinct customers
-- bought it, and how many bought it again. With :holdout_run = an evaluation's run id, a
-- customer held out in that run counts only with the orders placed before their cutoff_at;
-- '' = no evaluation. Parameters: :since (as_of minus the
-- recommender's two-year history), :as_of, :holdout_run. Grain: one row per product.
WITH per_customer AS (
    SELECT o.customer_id, oi.product_id, COUNT(DISTINCT o.order_id) AS orders
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    LEFT JOIN ml_holdout_baskets h ON h.run_id = :holdout_run AND h.customer_id = o.customer_id
    WHERE o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :as_of
      AND (h.customer_id IS NULL OR o.ordered_at < h.cutoff_at)
    GROUP BY o.customer_id, oi.product_id
)
SELECT product_id, COUNT(*) AS buyers, SUM(CASE WHEN orders >= 2 THEN 1 ELSE 0 END) AS repeat_buyers
FROM per_customer
GROUP BY product_id

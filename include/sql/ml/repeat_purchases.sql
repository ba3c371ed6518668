-- Repurchase intervals: every order date of the (customer, product) pairs bought in at least
-- two different orders before :as_of (cancelled ones excluded); Python takes the gaps.
-- With :holdout_run = an evaluation's run id, a customer held out in that run counts only
-- with the orders placed before their cutoff_at (their held-out basket teaches nothing);
-- '' = no evaluation.
-- Parameters: :as_of, :holdout_run. Grain: one row per (customer_id, product_id, ordered_at).
WITH bought AS (
    SELECT DISTINCT o.customer_id, oi.product_id, o.order_id, o.ordered_at
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    LEFT JOIN ml_holdout_baskets h ON h.run_id = :holdout_run AND h.customer_id = o.customer_id
    WHERE o.status <> 'cancelled' AND o.ordered_at < :as_of
      AND (h.customer_id IS NULL OR o.ordered_at < h.cutoff_at)
),
repeated AS (
    SELECT customer_id, product_id FROM bought GROUP BY customer_id, product_id HAVING COUNT(*) >= 2
)
SELECT b.customer_id, b.product_id, b.ordered_at
FROM bought b
JOIN repeated r ON r.customer_id = b.customer_id AND r.product_id = b.product_id
ORDER BY b.customer_id, b.product_id, b.ordered_at

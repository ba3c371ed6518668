-- Repurchase intervals: every order date of the (customer, product) pairs bought in at least
-- two different orders before :as_of (cancelled ones excluded); Python takes the gaps.
-- Parameters: :as_of. Grain: one row per (customer_id, product_id, ordered_at).
WITH bought AS (
    SELECT DISTINCT o.customer_id, oi.product_id, o.order_id, o.ordered_at
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.status <> 'cancelled' AND o.ordered_at < :as_of
),
repeated AS (
    SELECT customer_id, product_id FROM bought GROUP BY customer_id, product_id HAVING COUNT(*) >= 2
)
SELECT b.customer_id, b.product_id, b.ordered_at
FROM bought b
JOIN repeated r ON r.customer_id = b.customer_id AND r.product_id = b.product_id
ORDER BY b.customer_id, b.product_id, b.ordered_at

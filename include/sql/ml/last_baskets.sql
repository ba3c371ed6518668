-- Offline evaluation (leave last basket out): the last order before :as_of of every customer
-- with at least two orders (cancelled ones excluded). Parameters: :as_of.
-- Grain: one row per customer.
WITH ranked AS (
    SELECT customer_id, order_id, ordered_at,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY ordered_at DESC, order_id DESC) AS rn,
           COUNT(*) OVER (PARTITION BY customer_id) AS orders
    FROM orders
    WHERE ordered_at < :as_of AND status <> 'cancelled'
)
SELECT customer_id, order_id, ordered_at
FROM ranked
WHERE rn = 1 AND orders >= 2
ORDER BY customer_id

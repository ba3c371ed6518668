-- Co-purchase baskets: the distinct products of each order placed in [:since, :as_of)
-- (cancelled ones excluded). Parameters: :since, :as_of. Grain: one row per (order_id, product_id).
SELECT DISTINCT oi.order_id, oi.product_id
FROM orders o
JOIN order_items oi ON oi.order_id = o.order_id
WHERE o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :as_of

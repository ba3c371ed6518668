-- Offline evaluation: the products of each held-out basket of one run (ml_holdout_baskets).
-- Parameters: :run_id. Grain: one row per (customer_id, product_id).
SELECT DISTINCT h.customer_id, oi.product_id
FROM ml_holdout_baskets h
JOIN order_items oi ON oi.order_id = h.order_id
WHERE h.run_id = :run_id

-- Content "cross_sell_products": up to 4 in-stock products to offer after an order: first its
-- complements (product_complements, best score first, kind 'complement'), then higher-end
-- alternatives of what was bought (same category, dearer than the price paid, the closest
-- price first, kind 'upgrade'); never a product the customer has already bought.
-- Parameters: :order_id, :customer_id. One row per product, best first.
WITH ordered AS (
    SELECT oi.product_id, oi.price, p.category
    FROM order_items oi
    LEFT JOIN products p ON p.product_id = oi.product_id
    WHERE oi.order_id = :order_id
),
bought AS (
    SELECT DISTINCT oi.product_id
    FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.customer_id = :customer_id
),
candidates AS (
    SELECT pc.complement_id AS product_id, 1 AS kind_rank, -pc.score AS sort_value
    FROM ordered od
    JOIN product_complements pc ON pc.product_id = od.product_id
    UNION ALL
    SELECT p.product_id, 2 AS kind_rank, COALESCE(p.sale_price, p.price) AS sort_value
    FROM ordered od
    JOIN products p ON p.category = od.category AND COALESCE(p.sale_price, p.price) > od.price
),
ranked AS (
    SELECT product_id, kind_rank, sort_value,
           ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY kind_rank, sort_value) AS rn
    FROM candidates
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       CASE WHEN r.kind_rank = 1 THEN 'complement' ELSE 'upgrade' END AS kind
FROM ranked r
JOIN products p ON p.product_id = r.product_id
WHERE r.rn = 1
  AND p.availability = 'in_stock'
  AND p.product_id NOT IN (SELECT product_id FROM bought)
ORDER BY r.kind_rank, r.sort_value, p.product_id
LIMIT 4

-- Content "cross_sell_products": up to 4 in-stock products to offer after an order: first its
-- complements (product_complements, best score first, kind 'complement'), then higher-end
-- alternatives of what was bought (kind 'upgrade'): the learned up-sells (product_upsells,
-- from train_recommendations: same product type, 15 % to 200 % dearer), else, before the
-- model has run, products of the same product_type (the full path, never just the top-level
-- category) 15 % to 200 % dearer than the price paid, the closest price first. Never a product
-- of the order, nor one the customer already bought unless it is a consumable (learned
-- repurchase interval). Parameters: :order_id, :customer_id. One row per product, best first.
WITH ordered AS (
    SELECT oi.product_id, oi.price, p.product_type
    FROM order_items oi
    LEFT JOIN products p ON p.product_id = oi.product_id
    WHERE oi.order_id = :order_id
),
learned_upsells AS (
    SELECT u.upsell_id AS product_id, -u.score AS sort_value
    FROM ordered od
    JOIN product_upsells u ON u.product_id = od.product_id
),
candidates AS (
    SELECT pc.complement_id AS product_id, 1 AS kind_rank, -pc.score AS sort_value
    FROM ordered od
    JOIN product_complements pc ON pc.product_id = od.product_id
    UNION ALL
    SELECT product_id, 2 AS kind_rank, sort_value FROM learned_upsells
    UNION ALL
    SELECT p.product_id, 3 AS kind_rank, COALESCE(p.sale_price, p.price) AS sort_value
    FROM ordered od
    JOIN products p ON p.product_type = od.product_type
    WHERE od.price > 0
      AND COALESCE(p.sale_price, p.price) >= od.price * 1.15
      AND COALESCE(p.sale_price, p.price) <= od.price * 3.0
      AND NOT EXISTS (SELECT 1 FROM learned_upsells)
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
  AND p.product_id NOT IN (SELECT product_id FROM ordered)
  AND (p.product_id IN (SELECT product_id FROM product_repurchase_intervals)
       OR NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                      WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id))
ORDER BY r.kind_rank, r.sort_value, p.product_id
LIMIT 4

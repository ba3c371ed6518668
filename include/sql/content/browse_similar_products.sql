-- Content "browse_similar_products": up to 4 in-stock products like those the customer viewed
-- (views since :browse_started_at): first the recommender's learned neighbours of the viewed
-- products (product_similarities), best score first; then products of the same product_type
-- (the full path, never just the top-level category), the most ordered first. Never a product
-- viewed then, nor one the customer already bought unless it is a consumable (learned
-- repurchase interval). Parameters: :customer_id, :browse_started_at, :as_of.
-- One row per product, best first.
WITH viewed AS (
    SELECT DISTINCT product_id
    FROM events
    WHERE customer_id = :customer_id
      AND event = 'Product Viewed'
      AND occurred_at >= :browse_started_at
      AND occurred_at <= :as_of
),
types AS (
    SELECT DISTINCT p.product_type FROM viewed v JOIN products p ON p.product_id = v.product_id
),
popularity AS (
    SELECT product_id, COUNT(*) AS orders FROM order_items GROUP BY product_id
),
candidates AS (
    SELECT s.similar_id AS product_id, 1 AS source_rank, -s.score AS sort_value
    FROM viewed v
    JOIN product_similarities s ON s.product_id = v.product_id
    UNION ALL
    SELECT p.product_id, 2 AS source_rank, -COALESCE(pop.orders, 0) AS sort_value
    FROM products p
    JOIN types t ON t.product_type = p.product_type
    LEFT JOIN popularity pop ON pop.product_id = p.product_id
),
ranked AS (
    SELECT product_id, source_rank, sort_value,
           ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY source_rank, sort_value) AS rn
    FROM candidates
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link
FROM ranked r
JOIN products p ON p.product_id = r.product_id
WHERE r.rn = 1
  AND p.availability = 'in_stock'
  AND p.product_id NOT IN (SELECT product_id FROM viewed)
  AND (p.product_id IN (SELECT product_id FROM product_repurchase_intervals)
       OR NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                      WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id))
ORDER BY r.source_rank, r.sort_value, p.product_id
LIMIT 4

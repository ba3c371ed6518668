-- Content "item_neighbours": up to 3 in-stock products like the trigger's product (context
-- column product_id): first the recommender's learned neighbours (product_similarities, from
-- train_recommendations: item-item cosine on views, carts, wishlists and orders), best score
-- first; then products of the same product_type (the full Merchant Center path, never just its
-- top-level category: no cat tree next to dog food), the most ordered first. Never the product
-- itself, nor one the customer already bought unless it is a consumable (learned repurchase
-- interval). Parameters: :product_id, :customer_id. One row per product, best first.
WITH target AS (
    SELECT product_type FROM products WHERE product_id = :product_id
),
popularity AS (
    SELECT product_id, COUNT(*) AS orders FROM order_items GROUP BY product_id
),
candidates AS (
    SELECT s.similar_id AS product_id, 1 AS source_rank, -s.score AS sort_value
    FROM product_similarities s
    WHERE s.product_id = :product_id
    UNION ALL
    SELECT p.product_id, 2 AS source_rank, -COALESCE(pop.orders, 0) AS sort_value
    FROM products p
    JOIN target t ON t.product_type = p.product_type
    LEFT JOIN popularity pop ON pop.product_id = p.product_id
),
ranked AS (
    SELECT product_id, source_rank, sort_value,
           ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY source_rank, sort_value) AS rn
    FROM candidates
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       CASE WHEN r.source_rank = 1 THEN 'neighbour' ELSE 'same_type' END AS kind
FROM ranked r
JOIN products p ON p.product_id = r.product_id
WHERE r.rn = 1
  AND p.product_id <> :product_id
  AND p.availability = 'in_stock'
  AND (p.product_id IN (SELECT product_id FROM product_repurchase_intervals)
       OR NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                      WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id))
ORDER BY r.source_rank, r.sort_value, p.product_id
LIMIT 3

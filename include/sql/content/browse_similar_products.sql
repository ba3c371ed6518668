-- Content "browse_similar_products": up to 4 in-stock products of the categories the customer
-- browsed (views since :browse_started_at), that they neither viewed then nor ever bought,
-- the most ordered first. Parameters: :customer_id, :browse_started_at, :as_of.
-- One row per product, best first.
WITH viewed AS (
    SELECT DISTINCT product_id
    FROM events
    WHERE customer_id = :customer_id
      AND event = 'Product Viewed'
      AND occurred_at >= :browse_started_at
      AND occurred_at <= :as_of
),
categories AS (
    SELECT DISTINCT p.category FROM viewed v JOIN products p ON p.product_id = v.product_id
),
popularity AS (
    SELECT product_id, COUNT(*) AS orders FROM order_items GROUP BY product_id
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link
FROM products p
JOIN categories c ON c.category = p.category
LEFT JOIN popularity pop ON pop.product_id = p.product_id
WHERE p.availability = 'in_stock'
  AND p.product_id NOT IN (SELECT product_id FROM viewed)
  AND NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                  WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id)
ORDER BY COALESCE(pop.orders, 0) DESC, p.product_id
LIMIT 4

-- Content "similar_products": up to 3 in-stock products of the same category as the
-- trigger's product (context column product_id), that the customer has not bought, the most
-- ordered first. Parameters: :product_id, :customer_id. One row per product, best first.
WITH target AS (
    SELECT category FROM products WHERE product_id = :product_id
),
popularity AS (
    SELECT oi.product_id, COUNT(*) AS orders
    FROM order_items oi
    GROUP BY oi.product_id
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link
FROM products p
JOIN target t ON t.category = p.category
LEFT JOIN popularity pop ON pop.product_id = p.product_id
WHERE p.product_id <> :product_id
  AND p.availability = 'in_stock'
  AND NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                  WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id)
ORDER BY COALESCE(pop.orders, 0) DESC, p.product_id
LIMIT 3

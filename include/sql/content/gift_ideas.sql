-- Content "gift_ideas": up to 4 in-stock gift products (same gift category as the trigger:
-- flowers or gifts, vases excepted): what the customer gave last time first (order
-- :order_id), then the most ordered. Parameters: :order_id. One row per product, best first.
WITH popularity AS (
    SELECT product_id, COUNT(*) AS orders FROM order_items GROUP BY product_id
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link
FROM products p
LEFT JOIN popularity pop ON pop.product_id = p.product_id
WHERE p.availability = 'in_stock'
  AND (LOWER(p.category) LIKE '%fleur%' OR LOWER(p.category) LIKE '%flower%'
       OR LOWER(p.category) LIKE '%cadeau%' OR LOWER(p.category) LIKE '%gift%')
  AND LOWER(COALESCE(p.product_type, '')) NOT LIKE '%vase%'
ORDER BY CASE WHEN p.product_id IN (SELECT product_id FROM order_items WHERE order_id = :order_id) THEN 0 ELSE 1 END,
         COALESCE(pop.orders, 0) DESC, p.product_id
LIMIT 4

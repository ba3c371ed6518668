-- Content "upsell_products": up to 3 in-stock higher-end alternatives (same product type,
-- 15 % to 200 % dearer: product_upsells, from train_recommendations) to the products of the
-- order that triggered the message, excluding what was ordered.
-- Parameters: :order_id. One row per product, best first.
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       MAX(u.score) AS score
FROM order_items oi
JOIN product_upsells u ON u.product_id = oi.product_id
JOIN products p ON p.product_id = u.upsell_id
WHERE oi.order_id = :order_id
  AND p.availability = 'in_stock'
  AND u.upsell_id NOT IN (SELECT product_id FROM order_items WHERE order_id = :order_id)
GROUP BY p.product_id, p.title, p.sale_price, p.price, p.currency, p.link, p.image_link
ORDER BY score DESC, p.product_id
LIMIT 3

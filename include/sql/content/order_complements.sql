-- Content "order_complements": up to 3 in-stock products that complement the order's
-- products (product_complements, from train_recommendations), excluding what was ordered and
-- anything the customer bought before, unless it is a consumable (learned repurchase interval).
-- Parameters: :order_id, :customer_id. One row per product, best first.
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       MAX(pc.score) AS score
FROM order_items oi
JOIN product_complements pc ON pc.product_id = oi.product_id
JOIN products p ON p.product_id = pc.complement_id
WHERE oi.order_id = :order_id
  AND p.availability = 'in_stock'
  AND pc.complement_id NOT IN (SELECT product_id FROM order_items WHERE order_id = :order_id)
  AND (p.product_id IN (SELECT product_id FROM product_repurchase_intervals)
       OR NOT EXISTS (SELECT 1 FROM orders o JOIN order_items bi ON bi.order_id = o.order_id
                      WHERE o.customer_id = :customer_id AND bi.product_id = p.product_id))
GROUP BY p.product_id, p.title, p.sale_price, p.price, p.currency, p.link, p.image_link
ORDER BY score DESC, p.product_id
LIMIT 3

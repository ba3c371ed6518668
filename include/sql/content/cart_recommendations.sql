-- Content "cart_recommendations": like "recommendations" (personal recommendations, else the
-- popularity fallback; never a product already bought unless consumable), without the
-- products already in the cart that triggered the message.
-- Parameters: :customer_id, :as_of, :cart_started_at. One row per product, best first.
WITH latest AS (
    SELECT customer_id, MAX(as_of) AS as_of
    FROM recommendations
    WHERE customer_id IN (:customer_id, '*') AND as_of <= :as_of
    GROUP BY customer_id
),
chosen AS (
    SELECT customer_id, as_of FROM latest
    WHERE customer_id = :customer_id
       OR NOT EXISTS (SELECT 1 FROM latest l2 WHERE l2.customer_id = :customer_id)
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       r.rank
FROM recommendations r
JOIN chosen c ON c.customer_id = r.customer_id AND c.as_of = r.as_of
JOIN products p ON p.product_id = r.product_id
WHERE p.availability = 'in_stock'
  AND NOT EXISTS (
        SELECT 1 FROM events e
        WHERE e.customer_id = :customer_id AND e.event = 'Product Added'
          AND e.product_id = r.product_id AND e.occurred_at >= :cart_started_at)
  AND (p.product_id IN (SELECT product_id FROM product_repurchase_intervals)
       OR NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                      WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id))
ORDER BY r.rank, p.product_id
LIMIT 4

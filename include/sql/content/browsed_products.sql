-- Content "browsed_products": up to 4 in-stock products the customer viewed since the start
-- of the browsing that triggered the message, the most recently viewed first.
-- Parameters: :customer_id, :browse_started_at, :as_of. One row per product.
WITH viewed AS (
    SELECT product_id, MAX(occurred_at) AS viewed_at
    FROM events
    WHERE customer_id = :customer_id
      AND event = 'Product Viewed'
      AND occurred_at >= :browse_started_at
      AND occurred_at <= :as_of
    GROUP BY product_id
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link
FROM viewed v
JOIN products p ON p.product_id = v.product_id
WHERE p.availability = 'in_stock'
ORDER BY v.viewed_at DESC, p.product_id
LIMIT 4

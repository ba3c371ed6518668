-- Content "cart_items": what is still in the cart that triggered the message: products added
-- (or in a started checkout) since the customer's last order before the trigger, minus those
-- removed since, with current catalog data. Parameters: :customer_id, :cart_started_at.
-- One row per product.
WITH adds AS (
    SELECT product_id, MAX(occurred_at) AS added_at
    FROM events
    WHERE customer_id = :customer_id AND event = 'Product Added' AND occurred_at >= :cart_started_at
    GROUP BY product_id
),
removes AS (
    SELECT product_id, MAX(occurred_at) AS removed_at
    FROM events
    WHERE customer_id = :customer_id AND event = 'Product Removed' AND occurred_at >= :cart_started_at
    GROUP BY product_id
)
SELECT a.product_id, COALESCE(p.title, a.product_id) AS title, COALESCE(p.sale_price, p.price) AS price,
       p.currency, p.link, p.image_link, p.availability
FROM adds a
LEFT JOIN removes r ON r.product_id = a.product_id
JOIN products p ON p.product_id = a.product_id
WHERE r.removed_at IS NULL OR r.removed_at < a.added_at
ORDER BY a.added_at DESC, a.product_id
LIMIT 6

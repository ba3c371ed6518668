-- Content "order_items": the lines of the order that triggered the message, with catalog data.
-- Parameters: :order_id. One row per order line.
SELECT oi.product_id, oi.quantity, oi.price, oi.quantity * oi.price AS line_total,
       COALESCE(p.title, oi.product_id) AS title, p.link, p.image_link, o.currency
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
LEFT JOIN products p ON p.product_id = oi.product_id
WHERE oi.order_id = :order_id
ORDER BY oi.line_no

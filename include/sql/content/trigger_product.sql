-- Content "trigger_product": the product a trigger is about (context column product_id),
-- from the newest catalog snapshot, only while it is in stock (else the message is
-- no_content when the step requires it). Parameters: :product_id. One row or none.
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.price AS regular_price,
       p.currency, p.link, p.image_link, p.availability, p.quantity AS stock_quantity
FROM products p
WHERE p.product_id = :product_id
  AND p.availability = 'in_stock'

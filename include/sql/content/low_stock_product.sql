-- Content "low_stock_product": the product of a low-stock trigger (context column product_id)
-- while it is still in stock and still low (quantity 1 to 5) in the newest snapshot; else
-- nothing (the step requires it: no_content). Parameters: :product_id. One row or none.
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       p.quantity AS stock_quantity
FROM products p
WHERE p.product_id = :product_id
  AND p.availability = 'in_stock'
  AND p.quantity > 0
  AND p.quantity <= 5

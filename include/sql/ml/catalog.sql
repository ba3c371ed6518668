-- The current catalogue as the recommender sees it: price (sale price if any), availability,
-- product type, brand and category. No parameters. Grain: one row per product.
SELECT product_id, COALESCE(sale_price, price) AS price, availability, product_type, brand, category
FROM products
ORDER BY product_id

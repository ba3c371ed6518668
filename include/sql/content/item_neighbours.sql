-- Content "item_neighbours": up to 3 in-stock products the recommender finds most similar to
-- the trigger's product (product_similarities, from train_recommendations: item-item cosine
-- on views, carts, wishlists and orders), that the customer has not bought.
-- Parameters: :product_id, :customer_id. One row per product, best first.
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       s.score
FROM product_similarities s
JOIN products p ON p.product_id = s.similar_id
WHERE s.product_id = :product_id
  AND p.availability = 'in_stock'
  AND NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                  WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id)
ORDER BY s.score DESC, p.product_id
LIMIT 3

-- Content "browsed_products": up to 4 in-stock products from the browsing that triggered the
-- message: first those the customer viewed since :browse_started_at, the most recently viewed
-- first (kind 'viewed'); then, for what they searched, products whose title or product_type
-- contains the search query, or whose product_type contains the searched category (kind
-- 'searched', the most ordered first) — so a search-only session has content too. Never a
-- product the customer already bought, unless it is a consumable (learned repurchase interval).
-- Parameters: :customer_id, :browse_started_at, :as_of, :search_query, :search_category
-- (lower-case, without LIKE wildcards, '' when none: the trigger transform prepares them).
-- One row per product, best first.
WITH viewed AS (
    SELECT product_id, MAX(occurred_at) AS viewed_at
    FROM events
    WHERE customer_id = :customer_id
      AND event = 'Product Viewed'
      AND occurred_at >= :browse_started_at
      AND occurred_at <= :as_of
    GROUP BY product_id
),
popularity AS (
    SELECT product_id, COUNT(*) AS orders FROM order_items GROUP BY product_id
),
searched AS (
    SELECT p.product_id, COALESCE(pop.orders, 0) AS orders
    FROM products p
    LEFT JOIN popularity pop ON pop.product_id = p.product_id
    WHERE (:search_query <> ''
           AND (LOWER(COALESCE(p.title, '')) LIKE '%' || :search_query || '%'
                OR LOWER(COALESCE(p.product_type, '')) LIKE '%' || :search_query || '%'))
       OR (:search_category <> ''
           AND LOWER(COALESCE(p.product_type, '')) LIKE '%' || :search_category || '%')
),
candidates AS (
    SELECT product_id, 1 AS kind_rank, ROW_NUMBER() OVER (ORDER BY viewed_at DESC, product_id) AS position
    FROM viewed
    UNION ALL
    SELECT product_id, 2 AS kind_rank, ROW_NUMBER() OVER (ORDER BY orders DESC, product_id) AS position
    FROM searched
    WHERE product_id NOT IN (SELECT product_id FROM viewed)
)
SELECT p.product_id, p.title, COALESCE(p.sale_price, p.price) AS price, p.currency, p.link, p.image_link,
       CASE WHEN c.kind_rank = 1 THEN 'viewed' ELSE 'searched' END AS kind
FROM candidates c
JOIN products p ON p.product_id = c.product_id
WHERE p.availability = 'in_stock'
  AND (p.product_id IN (SELECT product_id FROM product_repurchase_intervals)
       OR NOT EXISTS (SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
                      WHERE o.customer_id = :customer_id AND oi.product_id = p.product_id))
ORDER BY c.kind_rank, c.position, p.product_id
LIMIT 4

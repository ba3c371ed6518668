-- View product_snapshot_changes: each catalog snapshot row next to the same product's
-- previous snapshot (consecutive snapshot_dates): what price drops, restocks and low stock
-- are computed from (SPEC §5). Grain: one row per (product_id, snapshot_date).
-- effective_price = COALESCE(sale_price, price); previous_* are NULL on a product's first snapshot,
-- and previous_price is NULL when the currency changed (prices in two currencies do not compare).
SELECT product_id,
       snapshot_date,
       availability,
       quantity,
       currency,
       COALESCE(sale_price, price) AS effective_price,
       CASE WHEN COALESCE(LAG(currency) OVER by_product, '') = COALESCE(currency, '')
            THEN LAG(COALESCE(sale_price, price)) OVER by_product END AS previous_price,
       LAG(availability) OVER by_product AS previous_availability,
       LAG(quantity) OVER by_product AS previous_quantity
FROM product_snapshots
WINDOW by_product AS (PARTITION BY product_id ORDER BY snapshot_date)

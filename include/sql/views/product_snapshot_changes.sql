-- View product_snapshot_changes: each catalog snapshot row next to the same product's
-- previous snapshot (the one with the latest earlier snapshot_date): what price drops, restocks
-- and low stock are computed from (SPEC §5). Grain: one row per (product_id, snapshot_date).
-- effective_price = COALESCE(sale_price, price); previous_* are NULL on a product's first snapshot,
-- and previous_price is NULL when the currency changed (prices in two currencies do not compare).
-- The previous values are stored with each row when its snapshot loads (migration 0014,
-- ingest/snapshot_previous*.sql), so a trigger reading a few days pays for those days only.
SELECT product_id,
       snapshot_date,
       availability,
       quantity,
       currency,
       COALESCE(sale_price, price) AS effective_price,
       previous_price,
       previous_availability,
       previous_quantity
FROM product_snapshots

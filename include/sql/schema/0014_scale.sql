-- Migration 0014: the warehouse at a million customers (issue 9).
-- Runs unchanged on SQLite and PostgreSQL.

-- Five triggers scan orders by time (winback, purchase anniversary, cross-sell, replenishment,
-- the reports): an index serves those ranges.
CREATE INDEX IF NOT EXISTS orders_time ON orders (ordered_at);

-- Each snapshot row carries the same product's previous snapshot (the one with the latest
-- earlier snapshot_date), written at load: the view product_snapshot_changes reads them instead
-- of a LAG over every snapshot ever loaded. previous_price is the previous effective price
-- COALESCE(sale_price, price), NULL when the currency changed or on a first snapshot.
ALTER TABLE product_snapshots ADD COLUMN previous_price DOUBLE PRECISION;
ALTER TABLE product_snapshots ADD COLUMN previous_availability TEXT;
ALTER TABLE product_snapshots ADD COLUMN previous_quantity INTEGER;
UPDATE product_snapshots
SET previous_price = (
        SELECT CASE WHEN COALESCE(p.currency, '') = COALESCE(product_snapshots.currency, '')
                    THEN COALESCE(p.sale_price, p.price) END
        FROM product_snapshots p
        WHERE p.product_id = product_snapshots.product_id AND p.snapshot_date < product_snapshots.snapshot_date
        ORDER BY p.snapshot_date DESC LIMIT 1),
    previous_availability = (
        SELECT p.availability FROM product_snapshots p
        WHERE p.product_id = product_snapshots.product_id AND p.snapshot_date < product_snapshots.snapshot_date
        ORDER BY p.snapshot_date DESC LIMIT 1),
    previous_quantity = (
        SELECT p.quantity FROM product_snapshots p
        WHERE p.product_id = product_snapshots.product_id AND p.snapshot_date < product_snapshots.snapshot_date
        ORDER BY p.snapshot_date DESC LIMIT 1);

-- A catalog file's content hash: the newest snapshot is looked at every hour, and loaded again
-- only when its content changed (not deleted and reinserted 24 times a day).
ALTER TABLE ingest_files ADD COLUMN checksum TEXT;

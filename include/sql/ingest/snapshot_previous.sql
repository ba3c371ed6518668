-- Stores, on each row of one day's snapshot, the same product's previous snapshot values (the
-- latest earlier snapshot_date): previous effective price (NULL when the currency changed),
-- availability and quantity. Run right after the day is loaded. When the day was (re)loaded out
-- of order (a gap filled, a backfill), each product's next snapshot after it gets its previous
-- values again too (nothing more when the day is the newest). Parameters: :snapshot_date.
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
        ORDER BY p.snapshot_date DESC LIMIT 1)
WHERE snapshot_date = :snapshot_date
   OR (snapshot_date > :snapshot_date
       AND snapshot_date = (SELECT MIN(n.snapshot_date) FROM product_snapshots n
                            WHERE n.product_id = product_snapshots.product_id AND n.snapshot_date > :snapshot_date))

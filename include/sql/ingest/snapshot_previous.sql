-- Stores, on each row of one day's snapshot, the same product's previous snapshot values (the
-- latest earlier snapshot_date): previous effective price (NULL when the currency changed),
-- availability and quantity. Run right after the day is loaded. Parameters: :snapshot_date.
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

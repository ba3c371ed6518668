-- Removes one day's catalog snapshot before it is loaded again (same transaction).
-- Parameters: :snapshot_date.
DELETE FROM product_snapshots WHERE snapshot_date = :snapshot_date

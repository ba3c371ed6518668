-- Products absent from a snapshot newer than their own row: no longer in the feed, so they
-- become out_of_stock (never recommended, never "back in stock" until they return) with
-- delisted_on = the first snapshot that lacked them. Run only after a snapshot that loaded.
-- A product whose row was quarantined that day is still in the feed: it is kept.
-- Parameters: :snapshot_date, :kept_ids (list, never empty). Grain: updates products rows.
UPDATE products
SET availability = 'out_of_stock',
    delisted_on = :snapshot_date,
    snapshot_date = :snapshot_date
WHERE snapshot_date < :snapshot_date
  AND delisted_on IS NULL
  AND product_id NOT IN :kept_ids

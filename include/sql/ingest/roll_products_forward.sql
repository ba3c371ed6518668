-- Upserts products from one snapshot, only where that snapshot is at least as new as the row
-- already there: a backfill that reloads an old snapshot never moves the catalog back in time.
-- A product back in the feed is listed again (delisted_on NULL).
-- Parameters: :snapshot_date. Grain of products: one row per product_id.
INSERT INTO products (product_id, title, description, link, image_link, price, sale_price, currency,
                      availability, brand, product_type, category, quantity, snapshot_date)
SELECT product_id, title, description, link, image_link, price, sale_price, currency,
       availability, brand, product_type, category, quantity, snapshot_date
FROM product_snapshots
WHERE snapshot_date = :snapshot_date
ON CONFLICT (product_id) DO UPDATE SET
    title = excluded.title, description = excluded.description, link = excluded.link,
    image_link = excluded.image_link, price = excluded.price, sale_price = excluded.sale_price,
    currency = excluded.currency, availability = excluded.availability, brand = excluded.brand,
    product_type = excluded.product_type, category = excluded.category, quantity = excluded.quantity,
    snapshot_date = excluded.snapshot_date, delisted_on = NULL
WHERE excluded.snapshot_date >= products.snapshot_date

-- Whole-table refresh of product_similarities by train_recommendations: empties it, in the transaction
-- that then inserts the new rows. No parameters. Returns nothing (DELETE).
DELETE FROM product_similarities

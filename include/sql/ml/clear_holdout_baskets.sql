-- Offline evaluation: empties ml_holdout_baskets before a new leave-last-basket-out sample.
-- No parameters. Returns nothing (DELETE).
DELETE FROM ml_holdout_baskets

-- Models (issue 14): the offline evaluation's scratch table is keyed by run, so that two
-- train_recommendations runs at once (a backfill next to the daily run) never read or clear
-- each other's held-out baskets. A scratch table: nothing to keep, so it is recreated.
DROP TABLE IF EXISTS ml_holdout_baskets;
CREATE TABLE ml_holdout_baskets (
    run_id         TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    cutoff_at      TIMESTAMP NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, customer_id)
);

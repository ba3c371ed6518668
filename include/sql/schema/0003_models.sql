-- Models (issue 4): what build_segments and train_recommendations write besides the core
-- tables of 0001 (customer_segments, recommendations, product_complements).

-- RFM figures behind each segment, so analysts can see why a customer is where it is.
ALTER TABLE customer_segments ADD COLUMN recency_days DOUBLE PRECISION;
ALTER TABLE customer_segments ADD COLUMN frequency INTEGER;
ALTER TABLE customer_segments ADD COLUMN monetary DOUBLE PRECISION;
ALTER TABLE customer_segments ADD COLUMN model_version TEXT;
CREATE INDEX IF NOT EXISTS customer_segments_as_of ON customer_segments (as_of, segment);

-- Which model produced a day's recommendations.
ALTER TABLE recommendations ADD COLUMN model_version TEXT;
CREATE INDEX IF NOT EXISTS recommendations_as_of ON recommendations (as_of);

-- Item-item neighbours of the recommender (browse abandonment: "similar products").
CREATE TABLE IF NOT EXISTS product_similarities (
    product_id     TEXT NOT NULL,
    similar_id     TEXT NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (product_id, similar_id)
);

-- Up-sell candidates: same product type, higher price (post-purchase up-sell).
CREATE TABLE IF NOT EXISTS product_upsells (
    product_id     TEXT NOT NULL,
    upsell_id      TEXT NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    price_ratio    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (product_id, upsell_id)
);

-- Learned repurchase interval of consumable products (replenishment campaign).
CREATE TABLE IF NOT EXISTS product_repurchase_intervals (
    product_id     TEXT PRIMARY KEY,
    interval_days  DOUBLE PRECISION NOT NULL,
    gaps           INTEGER NOT NULL,
    repeat_buyers  INTEGER NOT NULL,
    buyers         INTEGER NOT NULL,
    as_of          DATE NOT NULL
);

-- Leave-last-basket-out evaluation: each evaluated customer's held-out order and the instant
-- before which their interactions may be used (scratch table of train_recommendations).
CREATE TABLE IF NOT EXISTS ml_holdout_baskets (
    customer_id    TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL,
    cutoff_at      TIMESTAMP NOT NULL
);

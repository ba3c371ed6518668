-- Migration 0005: the input side holds real feeds (issue 13, SPEC §5).
-- Runs unchanged on SQLite and PostgreSQL (ADD COLUMN with a constant default works on both).

-- Loyalty Points Updated: properties.points_balance as a number, the same value on both engines.
ALTER TABLE events ADD COLUMN points_balance DOUBLE PRECISION;
-- Sub-second order of calls: microseconds of the call's timestamp (occurred_at keeps whole
-- seconds); "latest wins" orders by (occurred_at, occurred_us, message_id).
ALTER TABLE events ADD COLUMN occurred_us INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS events_anonymous ON events (anonymous_id);
ALTER TABLE customer_traits ADD COLUMN observed_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stage_customer_traits ADD COLUMN observed_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consent_changes ADD COLUMN changed_us INTEGER NOT NULL DEFAULT 0;

-- Identity resolution: an anonymousId (or an alias call's previousId) joined to a userId by an
-- identify or alias call. The first link loaded wins. Grain: one row per anonymous_id.
CREATE TABLE IF NOT EXISTS identity_links (
    anonymous_id   TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    linked_at      TIMESTAMP NOT NULL,        -- timestamp of the linking call
    message_id     TEXT NOT NULL,             -- the linking call
    source         TEXT NOT NULL              -- identify | alias
);
CREATE INDEX IF NOT EXISTS identity_links_customer ON identity_links (customer_id);

-- A field dropped from a call that was otherwise loaded (bad birthday, unknown time zone …).
-- Grain: one row per (source_file, line_no, field).
CREATE TABLE IF NOT EXISTS dropped_fields (
    source_file    TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    message_id     TEXT,
    field          TEXT NOT NULL,
    value          TEXT,
    reason         TEXT NOT NULL,
    dropped_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source_file, line_no, field)
);

-- Products gone from the newest catalog snapshot: availability becomes out_of_stock and
-- delisted_on the date of the first snapshot that lacked them (NULL while listed).
ALTER TABLE products ADD COLUMN delisted_on DATE;

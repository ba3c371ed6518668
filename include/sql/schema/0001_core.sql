-- Migration 0001: the core warehouse (SPEC §9).
-- Runs unchanged on SQLite and PostgreSQL. Timestamps are UTC (naive); see docs/data_dictionary.md.

-- Behaviour -------------------------------------------------------------------------------

-- One row per Segment call that passed validation, deduplicated on messageId.
CREATE TABLE IF NOT EXISTS events (
    message_id     TEXT PRIMARY KEY,
    type           TEXT NOT NULL,              -- identify | track
    event          TEXT,                       -- track event name (NULL for identify)
    customer_id    TEXT,                       -- Segment userId
    anonymous_id   TEXT,
    occurred_at    TIMESTAMP NOT NULL,         -- the call's own timestamp
    product_id     TEXT,                       -- properties.product_id when present
    order_id       TEXT,                       -- properties.order_id when present
    properties     TEXT,                       -- JSON: properties (track) or traits (identify)
    source_file    TEXT NOT NULL,
    loaded_at      TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS events_customer_time ON events (customer_id, occurred_at);
CREATE INDEX IF NOT EXISTS events_name_time ON events (event, occurred_at);
CREATE INDEX IF NOT EXISTS events_product ON events (product_id, event);
CREATE INDEX IF NOT EXISTS events_order ON events (order_id);

-- Latest value of each identify trait (and consent), whatever order the calls arrived in.
CREATE TABLE IF NOT EXISTS customer_traits (
    customer_id    TEXT NOT NULL,
    trait          TEXT NOT NULL,
    value          TEXT,
    observed_at    TIMESTAMP NOT NULL,
    message_id     TEXT NOT NULL,
    PRIMARY KEY (customer_id, trait)
);

-- Staging for one file's traits, merged by include/sql/ingest/merge_customer_traits.sql.
CREATE TABLE IF NOT EXISTS stage_customer_traits (
    batch_id       TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    trait          TEXT NOT NULL,
    value          TEXT,
    observed_at    TIMESTAMP NOT NULL,
    message_id     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stage_customer_traits_batch ON stage_customer_traits (batch_id);

-- One row per known customer: the traits folded from customer_traits.
CREATE TABLE IF NOT EXISTS customers (
    customer_id    TEXT PRIMARY KEY,
    email          TEXT,
    first_name     TEXT,
    last_name      TEXT,
    phone          TEXT,
    birthday       DATE,
    birthday_mmdd  TEXT,                       -- 'MM-DD', for birthday triggers on both engines
    locale         TEXT,
    timezone       TEXT,
    created_at     TIMESTAMP,
    email_opt_in   BOOLEAN,                    -- NULL = unknown = no marketing
    sms_opt_in     BOOLEAN,
    updated_at     TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_email ON customers (email);

CREATE TABLE IF NOT EXISTS orders (
    order_id       TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    ordered_at     TIMESTAMP NOT NULL,
    revenue        DOUBLE PRECISION,
    currency       TEXT,
    status         TEXT NOT NULL,              -- completed | refunded | cancelled
    status_at      TIMESTAMP,
    message_id     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_customer_time ON orders (customer_id, ordered_at);

CREATE TABLE IF NOT EXISTS order_items (
    order_id       TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    product_id     TEXT NOT NULL,
    quantity       INTEGER NOT NULL,
    price          DOUBLE PRECISION,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX IF NOT EXISTS order_items_product ON order_items (product_id);

-- Consent history: every opt-in / opt-out we learned of, and where from.
CREATE TABLE IF NOT EXISTS consent_changes (
    message_id     TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    channel        TEXT NOT NULL,              -- email | sms
    opt_in         BOOLEAN NOT NULL,
    changed_at     TIMESTAMP NOT NULL,
    source         TEXT NOT NULL,              -- identify | unsubscribe_event | ses_subscription
    PRIMARY KEY (message_id, channel)
);
CREATE INDEX IF NOT EXISTS consent_changes_customer ON consent_changes (customer_id, changed_at);

-- Catalog ---------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS product_snapshots (
    snapshot_date  DATE NOT NULL,
    product_id     TEXT NOT NULL,
    title          TEXT,
    description    TEXT,
    link           TEXT,
    image_link     TEXT,
    price          DOUBLE PRECISION,
    sale_price     DOUBLE PRECISION,
    currency       TEXT,
    availability   TEXT NOT NULL,              -- in_stock | out_of_stock | preorder | backorder
    brand          TEXT,
    product_type   TEXT,
    category       TEXT,                       -- first level of product_type
    quantity       INTEGER,
    PRIMARY KEY (snapshot_date, product_id)
);
CREATE INDEX IF NOT EXISTS product_snapshots_product ON product_snapshots (product_id, snapshot_date);

-- The newest snapshot of each product (never moved back in time by a backfill).
CREATE TABLE IF NOT EXISTS products (
    product_id     TEXT PRIMARY KEY,
    title          TEXT,
    description    TEXT,
    link           TEXT,
    image_link     TEXT,
    price          DOUBLE PRECISION,
    sale_price     DOUBLE PRECISION,
    currency       TEXT,
    availability   TEXT NOT NULL,
    brand          TEXT,
    product_type   TEXT,
    category       TEXT,
    quantity       INTEGER,
    snapshot_date  DATE NOT NULL
);

-- Ingestion bookkeeping ------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS ingest_files (
    source_file    TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,              -- events | catalog
    size_bytes     BIGINT,
    lines          INTEGER NOT NULL,
    loaded         INTEGER NOT NULL,           -- rows new to the warehouse on the first load
    duplicates     INTEGER NOT NULL,
    quarantined    INTEGER NOT NULL,
    loaded_at      TIMESTAMP NOT NULL
);

-- Bad input, kept whole with the reason (SPEC §5): nothing is lost.
CREATE TABLE IF NOT EXISTS quarantine (
    source_file    TEXT NOT NULL,
    line_no        INTEGER NOT NULL,           -- 1-based line (events) or row (catalog, header = 1)
    raw            TEXT NOT NULL,
    field          TEXT,                       -- the offending field, when there is one
    reason         TEXT NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source_file, line_no)
);

-- Models (filled by build_segments and train_recommendations) ----------------------------

CREATE TABLE IF NOT EXISTS customer_segments (
    customer_id         TEXT NOT NULL,
    as_of               DATE NOT NULL,
    segment             TEXT NOT NULL,
    purchase_propensity DOUBLE PRECISION,
    PRIMARY KEY (customer_id, as_of)
);

CREATE TABLE IF NOT EXISTS recommendations (
    customer_id    TEXT NOT NULL,
    product_id     TEXT NOT NULL,
    rank           INTEGER NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    as_of          DATE NOT NULL,
    PRIMARY KEY (customer_id, as_of, rank)
);

CREATE TABLE IF NOT EXISTS product_complements (
    product_id     TEXT NOT NULL,
    complement_id  TEXT NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (product_id, complement_id)
);

-- Campaigns and the outbox ---------------------------------------------------------------

CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id    TEXT PRIMARY KEY,
    version_hash   TEXT NOT NULL,
    category       TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    enabled        BOOLEAN NOT NULL,
    definition     TEXT NOT NULL,              -- JSON of the validated YAML
    loaded_at      TIMESTAMP NOT NULL
);

-- The outbox and decision log (SPEC §7.2, §7.3): one row per planned message, whose status
-- moves planned → queued → sending → sent, or to a skip status with its reason.
CREATE TABLE IF NOT EXISTS message_log (
    send_key            TEXT PRIMARY KEY,      -- deterministic: campaign, step, customer, trigger
    campaign_id         TEXT NOT NULL,
    campaign_version    TEXT NOT NULL,
    step                INTEGER NOT NULL,      -- 1-based
    step_name           TEXT NOT NULL,
    variant             TEXT NOT NULL,
    customer_id         TEXT NOT NULL,
    email               TEXT,
    locale              TEXT,
    category            TEXT NOT NULL,         -- transactional | marketing
    priority            INTEGER NOT NULL,
    trigger_id          TEXT NOT NULL,         -- what triggered it (order id, cart start event …)
    trigger_at          TIMESTAMP NOT NULL,    -- when the trigger happened
    due_at              TIMESTAMP NOT NULL,    -- trigger_at + the step's delay
    context             TEXT,                  -- JSON: ids the template needs (order, products)
    status              TEXT NOT NULL,
    reason              TEXT,
    planned_at          TIMESTAMP NOT NULL,    -- the planner run's as-of
    planned_by          TEXT,                  -- planner run id
    decided_at          TIMESTAMP,             -- the dispatcher run's as-of when the status was set
    batch_id            TEXT,                  -- dispatcher batch (run id + number) that took the row
    queued_at           TIMESTAMP,             -- wall clock when it was put in a batch
    claimed_at          TIMESTAMP,             -- wall clock when a send task took the row
    attempts            INTEGER NOT NULL DEFAULT 0,
    sent_at             TIMESTAMP,             -- wall clock of SES acceptance
    provider_message_id TEXT                   -- SES MessageId
);
CREATE INDEX IF NOT EXISTS message_log_status_due ON message_log (status, due_at);
CREATE INDEX IF NOT EXISTS message_log_customer ON message_log (customer_id, status);
CREATE INDEX IF NOT EXISTS message_log_campaign ON message_log (campaign_id, status);
CREATE INDEX IF NOT EXISTS message_log_batch ON message_log (batch_id);
CREATE INDEX IF NOT EXISTS message_log_provider ON message_log (provider_message_id);

-- Feedback --------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS message_events (
    event_id            TEXT PRIMARY KEY,
    provider_message_id TEXT,
    send_key            TEXT,
    event_type          TEXT NOT NULL,         -- Send | Delivery | Bounce | Complaint | Open | Click …
    occurred_at         TIMESTAMP NOT NULL,
    email               TEXT,
    detail              TEXT,                  -- JSON
    received_at         TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS message_events_send_key ON message_events (send_key, event_type);

CREATE TABLE IF NOT EXISTS suppressions (
    email          TEXT PRIMARY KEY,           -- lower-cased
    reason         TEXT NOT NULL,              -- hard_bounce | complaint | manual
    source         TEXT,
    created_at     TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS conversions (
    order_id       TEXT NOT NULL,
    send_key       TEXT NOT NULL,
    campaign_id    TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    converted_at   TIMESTAMP NOT NULL,
    revenue        DOUBLE PRECISION,
    PRIMARY KEY (order_id, send_key)
);

-- Migration 0006: closing the loop (issue 8, SPEC §5b, §9): SES events, suppressions,
-- attribution and the reporting tables behind the ab_results and holdout_lift views.
-- Runs unchanged on SQLite and PostgreSQL.

-- SES events (ingest_ses_events). event_id is a stable hash of what identifies the event
-- (type, SES MessageId, feedbackId or the event's own timestamp, recipient), so a notification
-- delivered twice — or a bounce reported by both SES formats — is stored once.
ALTER TABLE message_events ADD COLUMN campaign_id TEXT;       -- mail.tags.campaign_id
ALTER TABLE message_events ADD COLUMN bounce_type TEXT;       -- Permanent | Transient | Undetermined
ALTER TABLE message_events ADD COLUMN bounce_subtype TEXT;    -- General, MailboxFull, Suppressed …
ALTER TABLE message_events ADD COLUMN feedback_format TEXT;   -- event_publishing | feedback_notification
ALTER TABLE message_events ADD COLUMN sqs_message_id TEXT;    -- the SQS message that carried it
CREATE INDEX IF NOT EXISTS message_events_provider ON message_events (provider_message_id);
CREATE INDEX IF NOT EXISTS message_events_email ON message_events (email, event_type, occurred_at);
CREATE INDEX IF NOT EXISTS message_events_type_time ON message_events (event_type, occurred_at);

-- The event that put an address on the suppression list (NULL for manual entries).
ALTER TABLE suppressions ADD COLUMN event_id TEXT;

-- Attribution (campaign_report): one row per attributed order (an order is credited to at most
-- one message; the 0001 key (order_id, send_key) stays, the unique index makes it one per order).
ALTER TABLE conversions ADD COLUMN step INTEGER;
ALTER TABLE conversions ADD COLUMN variant TEXT;
ALTER TABLE conversions ADD COLUMN touch TEXT;                -- click | open
ALTER TABLE conversions ADD COLUMN touched_at TIMESTAMP;      -- the click or open credited
ALTER TABLE conversions ADD COLUMN report_date DATE;          -- the campaign_report day that wrote it
CREATE UNIQUE INDEX IF NOT EXISTS conversions_one_per_order ON conversions (order_id);
CREATE INDEX IF NOT EXISTS conversions_send_key ON conversions (send_key);
CREATE INDEX IF NOT EXISTS conversions_report_date ON conversions (report_date);

-- Reporting tables (campaign_report), one snapshot per report day: a re-run of a day replaces
-- that day's rows. The statistics (Wilson intervals, normal intervals, two-proportion z-test)
-- are computed in Python (SQLite has no portable sqrt/erf); the views ab_results and
-- holdout_lift show the newest day.

-- Per (campaign, step, variant): what the recipients of the sent messages did.
CREATE TABLE IF NOT EXISTS report_ab_results (
    report_date            DATE NOT NULL,
    campaign_id            TEXT NOT NULL,
    step                   INTEGER NOT NULL,
    step_name              TEXT,
    variant                TEXT NOT NULL,
    is_control             BOOLEAN NOT NULL,      -- the campaign's first variant
    recipients             INTEGER NOT NULL,      -- messages sent
    delivered              INTEGER NOT NULL,
    opened                 INTEGER NOT NULL,
    clicked                INTEGER NOT NULL,
    converted              INTEGER NOT NULL,      -- messages credited with at least one order
    revenue                DOUBLE PRECISION NOT NULL,
    delivery_rate          DOUBLE PRECISION,      -- delivered / recipients
    delivery_rate_low      DOUBLE PRECISION,
    delivery_rate_high     DOUBLE PRECISION,
    open_rate              DOUBLE PRECISION,      -- opened / delivered
    open_rate_low          DOUBLE PRECISION,
    open_rate_high         DOUBLE PRECISION,
    click_rate             DOUBLE PRECISION,      -- clicked / delivered
    click_rate_low         DOUBLE PRECISION,
    click_rate_high        DOUBLE PRECISION,
    conversion_rate        DOUBLE PRECISION,      -- converted / recipients
    conversion_rate_low    DOUBLE PRECISION,
    conversion_rate_high   DOUBLE PRECISION,
    revenue_per_recipient  DOUBLE PRECISION,
    revenue_per_recipient_low  DOUBLE PRECISION,
    revenue_per_recipient_high DOUBLE PRECISION,
    conversion_p_value     DOUBLE PRECISION,      -- two-proportion z-test against the control (NULL for it)
    confidence             DOUBLE PRECISION NOT NULL,
    computed_at            TIMESTAMP NOT NULL,
    PRIMARY KEY (report_date, campaign_id, step, variant)
);

-- Per campaign, intent-to-treat: customers whose decision was 'holdout' against customers
-- assigned to treatment, orders within the window after their first decision.
CREATE TABLE IF NOT EXISTS report_holdout_lift (
    report_date                 DATE NOT NULL,
    campaign_id                 TEXT NOT NULL,
    window_days                 INTEGER NOT NULL,
    treated_customers           INTEGER NOT NULL,
    treated_converted           INTEGER NOT NULL,
    treated_revenue             DOUBLE PRECISION NOT NULL,
    holdout_customers           INTEGER NOT NULL,
    holdout_converted           INTEGER NOT NULL,
    holdout_revenue             DOUBLE PRECISION NOT NULL,
    treated_conversion_rate     DOUBLE PRECISION,
    holdout_conversion_rate     DOUBLE PRECISION,
    conversion_lift             DOUBLE PRECISION,  -- treated - holdout (absolute)
    conversion_lift_low         DOUBLE PRECISION,
    conversion_lift_high        DOUBLE PRECISION,
    conversion_lift_relative    DOUBLE PRECISION,  -- treated / holdout - 1
    conversion_lift_relative_low  DOUBLE PRECISION,
    conversion_lift_relative_high DOUBLE PRECISION,
    conversion_p_value          DOUBLE PRECISION,
    treated_revenue_per_customer DOUBLE PRECISION,
    holdout_revenue_per_customer DOUBLE PRECISION,
    revenue_lift                DOUBLE PRECISION,  -- per customer, treated - holdout
    revenue_lift_low            DOUBLE PRECISION,
    revenue_lift_high           DOUBLE PRECISION,
    revenue_lift_relative       DOUBLE PRECISION,
    revenue_lift_relative_low   DOUBLE PRECISION,
    revenue_lift_relative_high  DOUBLE PRECISION,
    confidence                  DOUBLE PRECISION NOT NULL,
    computed_at                 TIMESTAMP NOT NULL,
    PRIMARY KEY (report_date, campaign_id)
);

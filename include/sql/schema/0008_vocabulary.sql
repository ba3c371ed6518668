-- Migration 0008 (issue 11): the message_log status vocabulary, enforced by the schema.
--
-- message_statuses is the vocabulary: one row per status a message can have, what it means,
-- and the flags the SQL files select on instead of repeating lists of statuses:
--   is_waiting          the dispatcher may still decide it (planned, deferred_quiet_hours);
--   is_claimed          a dispatcher run holds it (queued, sending);
--   is_final            nothing changes it any more (unknown is not final: a late SES Send
--                       event still turns it into sent);
--   counts_against_caps it holds a slot of the customer's frequency caps (with cap_reserved_at).
--
-- Enforcement: message_log.status gets CHECK (status IN (...)) with the same list. SQLite
-- cannot ALTER TABLE ADD CONSTRAINT, so message_log is rebuilt, the portable way on both
-- engines: new table with the constraint, copy, drop, rename, indexes again (a row with an
-- unknown status makes this migration fail, naming it). The views that read message_log are
-- dropped before and recreated after any migration by relance.warehouse.migrations. A CHECK
-- and not a foreign key: SQLite enforces foreign keys only when asked per connection, and a
-- CHECK costs nothing per row; tests/test_data_dictionary.py proves the CHECK list and this
-- table agree, and that every status the code writes is in it. A new status = a new
-- migration that adds its row and rebuilds the CHECK.
--
-- How SQL files use it: a query that filters on status as a residual condition joins this
-- table by flag (outbox/cap_usage.sql: counts_against_caps). The rules' hot path keeps the
-- literal list ('planned', 'deferred_quiet_hours'): with a join PostgreSQL can no longer use
-- the (campaign_id, status) / (status, due_at) indexes to skip the final rows (measured on
-- 300,000 rows, 2 % waiting: due_candidates 57 ms with the join, 29 ms with the list, and the
-- gap grows with history). tests/test_data_dictionary.py proves every status list of
-- include/sql/outbox equals a flag of this table and every status any SQL file names exists.

CREATE TABLE IF NOT EXISTS message_statuses (
    status              TEXT PRIMARY KEY,
    is_waiting          BOOLEAN NOT NULL,
    is_claimed          BOOLEAN NOT NULL,
    is_final            BOOLEAN NOT NULL,
    counts_against_caps BOOLEAN NOT NULL,
    meaning             TEXT NOT NULL
);
INSERT INTO message_statuses (status, is_waiting, is_claimed, is_final, counts_against_caps, meaning) VALUES
    ('planned',              TRUE,  FALSE, FALSE, FALSE, 'planned by a planner run, waiting to be due and decided'),
    ('deferred_quiet_hours', TRUE,  FALSE, FALSE, FALSE, 'due in the customer''s quiet hours: waits until send_after, then is decided again'),
    ('queued',               FALSE, TRUE,  FALSE, TRUE,  'claimed into a batch by a dispatcher run'),
    ('sending',              FALSE, TRUE,  FALSE, TRUE,  'a send task took it and is calling SES'),
    ('sent',                 FALSE, FALSE, TRUE,  TRUE,  'SES accepted it (provider_message_id)'),
    ('unknown',              FALSE, FALSE, FALSE, TRUE,  'a send was interrupted before SES answered: never re-sent, a Send event makes it sent'),
    ('exited',               FALSE, FALSE, TRUE,  FALSE, 'the step''s exit condition held (the customer ordered, bought the product)'),
    ('expired',              FALSE, FALSE, TRUE,  FALSE, 'due more than the campaign''s max_lateness before the wall clock'),
    ('suppressed',           FALSE, FALSE, TRUE,  FALSE, 'no address, or the address bounced or complained'),
    ('unsubscribed',         FALSE, FALSE, TRUE,  FALSE, 'marketing to a customer who explicitly opted out'),
    ('no_consent',           FALSE, FALSE, TRUE,  FALSE, 'marketing without email_opt_in = true'),
    ('holdout',              FALSE, FALSE, TRUE,  FALSE, 'the customer is in the campaign''s holdout group'),
    ('capped',               FALSE, FALSE, TRUE,  FALSE, 'over a frequency cap: another message won'),
    ('no_content',           FALSE, FALSE, TRUE,  FALSE, 'a content block the template needs was empty'),
    ('failed',               FALSE, FALSE, TRUE,  FALSE, 'template or header error, campaign undefined, or SES refused it'),
    ('dry_run',              FALSE, FALSE, TRUE,  FALSE, 'a dry run''s record of what it would do (send_key starts with dry-)');

CREATE TABLE message_log_checked (
    send_key            TEXT PRIMARY KEY,
    campaign_id         TEXT NOT NULL,
    campaign_version    TEXT NOT NULL,
    step                INTEGER NOT NULL,
    step_name           TEXT NOT NULL,
    variant             TEXT NOT NULL,
    customer_id         TEXT NOT NULL,
    email               TEXT,
    locale              TEXT,
    category            TEXT NOT NULL,
    priority            INTEGER NOT NULL,
    trigger_id          TEXT NOT NULL,
    trigger_at          TIMESTAMP NOT NULL,
    due_at              TIMESTAMP NOT NULL,
    context             TEXT,
    status              TEXT NOT NULL CONSTRAINT message_log_status_known CHECK (status IN (
        'planned', 'deferred_quiet_hours', 'queued', 'sending', 'sent', 'unknown', 'exited', 'expired',
        'suppressed', 'unsubscribed', 'no_consent', 'holdout', 'capped', 'no_content', 'failed', 'dry_run')),
    reason              TEXT,
    planned_at          TIMESTAMP NOT NULL,
    planned_by          TEXT,
    decided_at          TIMESTAMP,
    batch_id            TEXT,
    queued_at           TIMESTAMP,
    claimed_at          TIMESTAMP,
    attempts            INTEGER NOT NULL DEFAULT 0,
    sent_at             TIMESTAMP,
    provider_message_id TEXT,
    send_after          TIMESTAMP,
    cap_reserved_at     TIMESTAMP,
    consent_basis       TEXT
);
INSERT INTO message_log_checked (
    send_key, campaign_id, campaign_version, step, step_name, variant, customer_id, email, locale, category,
    priority, trigger_id, trigger_at, due_at, context, status, reason, planned_at, planned_by, decided_at,
    batch_id, queued_at, claimed_at, attempts, sent_at, provider_message_id, send_after, cap_reserved_at,
    consent_basis)
SELECT
    send_key, campaign_id, campaign_version, step, step_name, variant, customer_id, email, locale, category,
    priority, trigger_id, trigger_at, due_at, context, status, reason, planned_at, planned_by, decided_at,
    batch_id, queued_at, claimed_at, attempts, sent_at, provider_message_id, send_after, cap_reserved_at,
    consent_basis
FROM message_log;
DROP TABLE message_log;
ALTER TABLE message_log_checked RENAME TO message_log;
CREATE INDEX IF NOT EXISTS message_log_status_due ON message_log (status, due_at);
CREATE INDEX IF NOT EXISTS message_log_customer ON message_log (customer_id, status);
CREATE INDEX IF NOT EXISTS message_log_campaign ON message_log (campaign_id, status);
CREATE INDEX IF NOT EXISTS message_log_batch ON message_log (batch_id);
CREATE INDEX IF NOT EXISTS message_log_provider ON message_log (provider_message_id);
CREATE INDEX IF NOT EXISTS message_log_caps ON message_log (customer_id, cap_reserved_at);
ANALYZE message_statuses;

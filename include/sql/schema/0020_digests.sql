-- Migration 0020 (issue 12, item 4): digests instead of silence.
--
-- A marketing message that loses the daily cap, from a campaign with `digest: true`, is folded
-- into the customer's next digest (the `digest` campaign) instead of being dropped: its row gets
-- the new final status 'digested' and message_log.digest_send_key, the send_key of the digest
-- that carries it (NULL on every other row). The digest is one marketing email, which counts
-- once against the caps; what became of it is its own row (join digest_send_key = send_key).
--
-- A new status = a new row of message_statuses and the CHECK of message_log rebuilt with it,
-- the portable way of migration 0008 (new table, copy, drop, rename, every index again): every
-- column of migrations 0001-0019 (the SMS channel's included) is copied. The views that read
-- message_log are dropped before and recreated after by the migration runner.

INSERT INTO message_statuses (status, is_waiting, is_claimed, is_final, counts_against_caps, meaning) VALUES
    ('digested', FALSE, FALSE, TRUE, FALSE, 'lost the daily cap and was folded into the customer''s next digest (digest_send_key)');

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
        'suppressed', 'unsubscribed', 'no_consent', 'holdout', 'capped', 'no_content', 'failed', 'dry_run',
        'digested')),
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
    consent_basis       TEXT,
    lease_until         TIMESTAMP,
    channel             TEXT NOT NULL DEFAULT 'email',
    channel_options     TEXT,
    phone               TEXT,
    sms_segments        INTEGER,
    sms_encoding        TEXT,
    sms_cost            DOUBLE PRECISION,
    digest_send_key     TEXT
);
INSERT INTO message_log_checked (
    send_key, campaign_id, campaign_version, step, step_name, variant, customer_id, email, locale, category,
    priority, trigger_id, trigger_at, due_at, context, status, reason, planned_at, planned_by, decided_at,
    batch_id, queued_at, claimed_at, attempts, sent_at, provider_message_id, send_after, cap_reserved_at,
    consent_basis, lease_until, channel, channel_options, phone, sms_segments, sms_encoding, sms_cost)
SELECT
    send_key, campaign_id, campaign_version, step, step_name, variant, customer_id, email, locale, category,
    priority, trigger_id, trigger_at, due_at, context, status, reason, planned_at, planned_by, decided_at,
    batch_id, queued_at, claimed_at, attempts, sent_at, provider_message_id, send_after, cap_reserved_at,
    consent_basis, lease_until, channel, channel_options, phone, sms_segments, sms_encoding, sms_cost
FROM message_log;
DROP TABLE message_log;
ALTER TABLE message_log_checked RENAME TO message_log;
CREATE INDEX IF NOT EXISTS message_log_status_due ON message_log (status, due_at);
CREATE INDEX IF NOT EXISTS message_log_customer ON message_log (customer_id, status);
CREATE INDEX IF NOT EXISTS message_log_campaign ON message_log (campaign_id, status);
CREATE INDEX IF NOT EXISTS message_log_batch ON message_log (batch_id);
CREATE INDEX IF NOT EXISTS message_log_provider ON message_log (provider_message_id);
CREATE INDEX IF NOT EXISTS message_log_caps ON message_log (customer_id, cap_reserved_at);
CREATE INDEX IF NOT EXISTS message_log_sent_at ON message_log (status, sent_at);
CREATE INDEX IF NOT EXISTS message_log_trigger ON message_log (campaign_id, trigger_id, customer_id);
CREATE INDEX IF NOT EXISTS message_log_digest ON message_log (digest_send_key);
ANALYZE message_statuses;
ANALYZE message_log;

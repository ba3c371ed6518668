-- Migration 0009: the deliverability guard (issue 8 item 2, SPEC §7.5) reads the messages sent
-- in its window every dispatcher run: an index on (status, sent_at) keeps that a range scan.
-- Runs unchanged on SQLite and PostgreSQL.
CREATE INDEX IF NOT EXISTS message_log_sent_at ON message_log (status, sent_at);

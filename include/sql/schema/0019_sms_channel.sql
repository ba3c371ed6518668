-- Migration 0019 (issue 12, item 3): SMS as a second channel, in the same outbox and decision log.
--
-- message_log.channel is how the row's message goes out: 'email' (every row before this
-- migration) or 'sms'. channel_options is the step's channels in order of preference when it
-- has more than one ('email sms': by email where the customer may get email, else by SMS);
-- the dispatcher re-chooses channel from it on every run until the row is decided
-- (outbox/refresh_recipients.sql). phone is the recipient's E.164 number, copied like email.
-- sms_segments / sms_encoding / sms_cost: what an SMS cost — its length in segments (GSM-7:
-- 160 characters, 153 each when split; UCS-2: 70 / 67), and segments × the Variable
-- tm_sms_cost_per_segment at send time. NULL for email. SQLite and PostgreSQL.
ALTER TABLE message_log ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE message_log ADD COLUMN channel_options TEXT;
ALTER TABLE message_log ADD COLUMN phone TEXT;
ALTER TABLE message_log ADD COLUMN sms_segments INTEGER;
ALTER TABLE message_log ADD COLUMN sms_encoding TEXT;
ALTER TABLE message_log ADD COLUMN sms_cost DOUBLE PRECISION;
CREATE INDEX IF NOT EXISTS customers_phone ON customers (phone);

-- Migration 0002: the sending rules of SPEC §7 (issue 3).

-- Quiet hours: a marketing message due at night is deferred to this instant (08:00 local).
ALTER TABLE message_log ADD COLUMN send_after TIMESTAMP;
-- Frequency caps: set (to the dispatcher run's as-of) on the marketing rows that count
-- against the customer's caps when a run claims them; a row that ends unsent stops counting.
ALTER TABLE message_log ADD COLUMN cap_reserved_at TIMESTAMP;
CREATE INDEX IF NOT EXISTS message_log_caps ON message_log (customer_id, cap_reserved_at);

-- Migration 0015: indexes for the hourly trigger queries at a million customers (issue 9).
-- Runs unchanged on SQLite and PostgreSQL.

-- birthday: the customers whose birthday_mmdd is around today (not a scan of every customer)
CREATE INDEX IF NOT EXISTS customers_birthday ON customers (birthday_mmdd);
-- vip_rewards: is a champions row the customer's latest segment (a probe, not a GROUP BY of
-- every segment ever computed)
CREATE INDEX IF NOT EXISTS customer_segments_customer ON customer_segments (customer_id, as_of);

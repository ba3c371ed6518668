-- Migration 0013 (issue 9): one send rate for the whole deployment (SPEC §7.10). Each send task
-- takes its send slots from a shared timeline (relance.messaging.ratelimit): one row per
-- limiter ('ses': the deployment's SES account) holding the instant of the next free slot,
-- moved forward atomically by every reservation (include/sql/ratelimit/reserve_send_slots.sql).
-- Epoch seconds as a float: slots are milliseconds apart. Runs unchanged on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS send_rate_limits (
    limiter_id     TEXT PRIMARY KEY,
    next_slot_at   DOUBLE PRECISION NOT NULL
);

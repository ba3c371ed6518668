-- Migration 0021 (issue 12, item 5): send-time optimisation, opt-in per campaign (send_time: best_hour).
--
-- One row per outbox row planned by a campaign with send_time: best_hour: the A/B arm its
-- customer is in (a stable hash of campaign and customer: 'best_hour' or 'fixed'), the
-- customer's best local hour learned from their opens, clicks and orders when planned (NULL:
-- too little history, the campaign's own time is kept), and the send_after the planner gave
-- the row (NULL: the campaign's time). Written with the outbox row, insert-if-absent: a re-plan
-- changes nothing. message_log itself is not touched (0020 rebuilt it). SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS send_time_arms (
    send_key       TEXT PRIMARY KEY,
    campaign_id    TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    arm            TEXT NOT NULL CHECK (arm IN ('best_hour', 'fixed')),
    best_hour      INTEGER,
    engagements    INTEGER NOT NULL,
    send_after     TIMESTAMP,
    planned_at     TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS send_time_arms_campaign ON send_time_arms (campaign_id, arm);

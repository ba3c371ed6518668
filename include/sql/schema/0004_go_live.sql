-- Migration 0004 (issue 7): deployment facts the planners need.

-- Key/value facts about this deployment. 'live_since': the instant Relance went live (the
-- start of the first planner run's interval, unless the Variable tm_live_since says
-- otherwise). Nothing is planned due before it, and history imported before it (the
-- onboarding import: years of orders in the first folder) triggers nothing.
CREATE TABLE IF NOT EXISTS relance_state (
    key            TEXT PRIMARY KEY,
    value          TEXT NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

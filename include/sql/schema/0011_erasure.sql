-- Migration 0011 (issue 10): erasure requests (`relance forget CUSTOMER_ID`, SPEC §9).
--
-- customers.email_hash: 'sha256:<hex>' of the lower-cased, trimmed address
-- (relance.keys.address_hash), written by ingest next to the address. An erased customer's
-- addresses stay on `suppressions` only in that hashed form; the suppression rule
-- (include/sql/outbox/rule_suppressed.sql) matches it against the recipient's email_hash, so an
-- address that comes back in a later identify is still never mailed, and nothing stores it in
-- clear for that. Customers folded before this migration have no hash until their next
-- identify; an erasure hashes the addresses it suppresses on every customer that has them.
ALTER TABLE customers ADD COLUMN email_hash TEXT;
CREATE INDEX IF NOT EXISTS customers_email_hash ON customers (email_hash);

-- One row per erasure request carried out: when, and what it changed, without who (the
-- subject is only the hash of the customer id, so a request can be shown to have been done).
-- Grain: one row per (subject_hash, erased_at).
CREATE TABLE IF NOT EXISTS erasures (
    subject_hash   TEXT NOT NULL,              -- 'sha256:<hex>' of the customer id
    erased_at      TIMESTAMP NOT NULL,         -- wall clock of the erasure
    addresses      INTEGER NOT NULL,           -- addresses put on suppressions, hashed
    rows_changed   INTEGER NOT NULL,           -- rows deleted or scrubbed, all tables
    detail         TEXT NOT NULL,              -- JSON: rows changed per table
    PRIMARY KEY (subject_hash, erased_at)
);

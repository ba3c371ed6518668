-- Migration 0018: the triggers that ask "is this trigger instance already in the outbox?"
-- (cart_abandonment's planned flag, loyalty_reminder's quarterly reminder) probe an index on
-- (campaign_id, trigger_id, customer_id) instead of scanning the campaign's rows once per
-- candidate: with stale statistics right after a first planning run of a large shop that scan
-- was a 37k × 20k nested loop (145 s at 100k customers). Issue 9. SQLite and PostgreSQL.
CREATE INDEX IF NOT EXISTS message_log_trigger ON message_log (campaign_id, trigger_id, customer_id);

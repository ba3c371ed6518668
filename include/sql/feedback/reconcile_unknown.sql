-- Rows marked 'unknown' (a send interrupted before SES answered, include/sql/outbox/
-- mark_sending_unknown.sql) that SES did send: a Send event carrying their send_key tag turns
-- them into 'sent' with the SES MessageId and time. The 'sending' rows are put right by
-- include/sql/outbox/reconcile_sending.sql, which ingest_ses_events runs too.
-- Parameters: :as_of. Grain: updates message_log rows.
UPDATE message_log
SET status = 'sent',
    reason = 'reconciled from the SES Send event',
    decided_at = :as_of,
    provider_message_id = (
        SELECT MIN(me.provider_message_id) FROM message_events me
        WHERE me.send_key = message_log.send_key AND me.event_type = 'Send'),
    sent_at = (
        SELECT MIN(me.occurred_at) FROM message_events me
        WHERE me.send_key = message_log.send_key AND me.event_type = 'Send')
WHERE status = 'unknown'
  AND EXISTS (
        SELECT 1 FROM message_events me
        WHERE me.send_key = message_log.send_key AND me.event_type = 'Send')

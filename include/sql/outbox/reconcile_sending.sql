-- Rows left in 'sending' (a send task died between claiming a row and recording SES's answer)
-- are never re-sent blindly. Those SES reports as sent (a Send event carrying the send_key
-- tag, loaded by ingest_ses_events) become 'sent', with the SES MessageId and time. With
-- :unknown_too = 1 (ingest_ses_events), so do the rows already marked 'unknown' (a send
-- interrupted before SES answered: outbox/mark_sending_unknown.sql) that SES did send.
-- Parameters: :stale_before, :batch_id (NULL = every batch), :unknown_too (0 or 1), :as_of.
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
WHERE ((status = 'sending' AND (claimed_at < :stale_before OR batch_id = :batch_id))
       OR (status = 'unknown' AND :unknown_too = 1))
  AND EXISTS (
        SELECT 1 FROM message_events me
        WHERE me.send_key = message_log.send_key AND me.event_type = 'Send')

-- Deliverability guard (SPEC §7.5): how the messages SES accepted recently fared. Returns one
-- row: sends (message_log rows 'sent' by email with sent_at in [:since, :until) — marketing and
-- transactional alike, as SES counts them for the account; an SMS is no SES send), bounced (of those, the messages
-- with a permanent bounce) and complained (the messages with a complaint). An event is linked
-- to its message by the send_key tag or by the SES MessageId (feedback notifications carry no
-- tag), and a message counts once however many events it got.
-- Parameters: :since, :until (Python computes the window: relance.dispatch.policy).
-- Grain: one row for the whole deployment.
SELECT COUNT(*) AS sends,
       COALESCE(SUM(CASE WHEN EXISTS (
                   SELECT 1 FROM message_events e
                   WHERE e.send_key = m.send_key AND e.event_type = 'Bounce' AND e.bounce_type = 'Permanent')
                 OR EXISTS (
                   SELECT 1 FROM message_events e
                   WHERE e.provider_message_id = m.provider_message_id
                     AND e.event_type = 'Bounce' AND e.bounce_type = 'Permanent')
            THEN 1 ELSE 0 END), 0) AS bounced,
       COALESCE(SUM(CASE WHEN EXISTS (
                   SELECT 1 FROM message_events e
                   WHERE e.send_key = m.send_key AND e.event_type = 'Complaint')
                 OR EXISTS (
                   SELECT 1 FROM message_events e
                   WHERE e.provider_message_id = m.provider_message_id AND e.event_type = 'Complaint')
            THEN 1 ELSE 0 END), 0) AS complained
FROM message_log m
WHERE m.status = 'sent'
  AND m.channel = 'email'
  AND m.sent_at >= :since
  AND m.sent_at < :until

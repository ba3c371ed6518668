-- Transient (and undetermined) bounces of some addresses since their last delivery: how many
-- distinct messages bounced, the first and the last bounce. Python applies the rule (so many
-- bounces spread over so many days → suppressed; relance.feedback.store.SOFT_BOUNCE_RULE).
-- Parameters: :emails (list, lower-cased). Grain: one row per address with such bounces.
SELECT b.email,
       COUNT(DISTINCT b.provider_message_id) AS bounces,
       MIN(b.occurred_at) AS first_at,
       MAX(b.occurred_at) AS last_at
FROM message_events b
WHERE b.email IN :emails
  AND b.event_type = 'Bounce'
  AND b.bounce_type IN ('Transient', 'Undetermined')
  AND NOT EXISTS (
        SELECT 1 FROM message_events d
        WHERE d.email = b.email AND d.event_type = 'Delivery' AND d.occurred_at >= b.occurred_at)
GROUP BY b.email

-- Links SES events that carry no send_key tag (feedback notifications) to their outbox row
-- through the SES MessageId, and fills their campaign_id. Only events received since :since
-- are looked at (older unlinked events belong to mail Relance did not send).
-- Parameters: :since. Grain: updates message_events rows.
UPDATE message_events
SET send_key = (SELECT MIN(ml.send_key) FROM message_log ml
                WHERE ml.provider_message_id = message_events.provider_message_id),
    campaign_id = COALESCE(campaign_id, (SELECT MIN(ml.campaign_id) FROM message_log ml
                                         WHERE ml.provider_message_id = message_events.provider_message_id))
WHERE send_key IS NULL
  AND received_at >= :since
  AND EXISTS (SELECT 1 FROM message_log ml WHERE ml.provider_message_id = message_events.provider_message_id)

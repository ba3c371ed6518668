-- Records what an SMS the send task handed to the provider took: its segments, their encoding
-- (GSM-7 | UCS-2) and its cost (segments × tm_sms_cost_per_segment at send time).
-- Parameters: :send_key, :segments, :encoding, :cost. One row.
UPDATE message_log
SET sms_segments = :segments, sms_encoding = :encoding, sms_cost = :cost
WHERE send_key = :send_key

-- Gives anonymous events (no userId) the customer their anonymousId was linked to by an
-- identify or alias call, whichever arrived first (late links and late events both end here).
-- Parameters: :anonymous_ids (list). Grain: updates events rows.
UPDATE events
SET customer_id = (SELECT l.customer_id FROM identity_links l WHERE l.anonymous_id = events.anonymous_id)
WHERE customer_id IS NULL
  AND anonymous_id IN :anonymous_ids
  AND EXISTS (SELECT 1 FROM identity_links l WHERE l.anonymous_id = events.anonymous_id)

-- The suppression rows of some addresses (in clear): their reasons survive in hashed form.
-- One row per address. Parameters: :emails (list, lower-cased).
SELECT email, reason, source, created_at, event_id FROM suppressions WHERE email IN :emails

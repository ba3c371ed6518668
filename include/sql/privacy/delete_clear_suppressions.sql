-- Removes the suppression rows of some addresses in clear (their hashed copies were just
-- written). Parameters: :emails (list, lower-cased).
DELETE FROM suppressions WHERE email IN :emails

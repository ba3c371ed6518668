-- Any other customer with an erased address gets its hash, so the hashed suppression matches
-- them too (customers folded before migration 0011 have none yet).
-- Parameters: :email (lower-cased), :email_hash.
UPDATE customers SET email_hash = :email_hash
WHERE LOWER(email) = :email AND (email_hash IS NULL OR email_hash <> :email_hash)

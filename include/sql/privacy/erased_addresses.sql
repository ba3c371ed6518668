-- Which of some hashed addresses an erasure request left on the suppression list (relance.privacy).
-- One row per hash found. Parameters: :hashes (list of 'sha256:<hex>').
SELECT email FROM suppressions WHERE email IN :hashes AND source = 'erasure'

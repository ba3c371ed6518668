-- Erasure: quarantined lines that quote the customer (an address, or the customer id as a JSON
-- string) lose their raw text; file, line, field and reason stay.
-- Parameters: :pattern (a LIKE pattern, lower-cased, '!' escapes), :replacement.
UPDATE quarantine SET raw = :replacement
WHERE LOWER(raw) LIKE :pattern ESCAPE '!' AND raw <> :replacement

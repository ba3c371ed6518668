-- Before writing a day's recommendations: removes that day's rows (a re-run replaces them) and
-- the rows older than the retention. Parameters: :as_of (the model's day), :oldest (the first
-- day kept). Returns nothing (DELETE); grain of the table: (customer_id, as_of, rank).
DELETE FROM recommendations WHERE as_of = :as_of OR as_of < :oldest

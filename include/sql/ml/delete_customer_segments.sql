-- Before writing a day's segments: removes that day's rows (a re-run replaces them).
-- Parameters: :as_of (the day). Returns nothing (DELETE); grain of the table: (customer_id, as_of).
DELETE FROM customer_segments WHERE as_of = :as_of

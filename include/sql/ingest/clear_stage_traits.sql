-- Empties the staging rows of one ingest batch (a landing file).
-- Parameters: :batch_id (the file's address).
DELETE FROM stage_customer_traits WHERE batch_id = :batch_id

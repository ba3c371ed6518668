-- A send task takes its batch (again, if it is Airflow's retry of the same map index): the
-- rows still queued in it get a new lease. Rows another run took back meanwhile are not in
-- the batch any more and stay theirs.
-- Parameters: :batch_id, :lease_until (wall clock).
UPDATE message_log
SET lease_until = :lease_until
WHERE batch_id = :batch_id
  AND status = 'queued'

-- Dispatcher (issue 10): a claimed row carries the lease of its batch. A row a run put in a
-- batch (queued) belongs to that batch's send task until lease_until (wall clock): the time the
-- batch should take to send at the deployment's rate, plus a margin; the send task renews it
-- when it starts (Airflow's retry of the same map index takes its own batch back). Once the
-- lease is over, any dispatcher run may put the row back in the waiting set. NULL for rows
-- never claimed (and rows queued before this migration: their lease is over).
ALTER TABLE message_log ADD COLUMN lease_until TIMESTAMP;

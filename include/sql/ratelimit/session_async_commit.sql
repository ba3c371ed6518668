-- PostgreSQL only, on the send-rate limiter's own connection: its reservations commit without
-- waiting for the WAL flush (a reservation lost in a database crash costs at most a few slots
-- given twice right after the crash; nothing else is written on that connection).
-- (SQLite: not run.) No parameters.
SET synchronous_commit TO OFF

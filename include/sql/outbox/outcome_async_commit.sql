-- PostgreSQL only, on the connection a send task records outcomes with (record_outcome,
-- release_for_retry, record_in_batch; nothing else is written on it): those commits do not
-- wait for the WAL flush. Lost in a database crash, a row is found 'sending' again and
-- reconciled from SES's Send events (or marked unknown) — never sent twice. The claim before
-- the SES call, on another connection, keeps waiting for the flush: it is what stops a second
-- send. (SQLite: not run.) No parameters.
SET synchronous_commit TO OFF

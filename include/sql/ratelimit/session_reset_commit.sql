-- PostgreSQL only: the limiter's connection goes back to the pool as it came (undoes
-- session_async_commit.sql). (SQLite: not run.) No parameters.
RESET synchronous_commit

-- The status of a digest row, if the planner wrote it already (a message is folded only into a
-- digest still to come: absent, or waiting). Parameters: :send_key. One row or none.
SELECT status FROM message_log WHERE send_key = :send_key

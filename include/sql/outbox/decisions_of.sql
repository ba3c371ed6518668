-- Current status and reason of some rows (a dry run reads them before rolling back).
-- Parameters: :send_keys (list).
SELECT send_key, status, reason FROM message_log WHERE send_key IN :send_keys

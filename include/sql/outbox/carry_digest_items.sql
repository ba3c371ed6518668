-- A digest that lost the daily cap is carried over to the customer's next digest: the messages
-- folded into it now point at the next one (their reason says so). The digest row itself is
-- marked 'digested' pointing there by outbox/mark_digested.sql.
-- Parameters: :from_key (the digest carried over), :to_key (the next digest), :note.
UPDATE message_log
SET digest_send_key = :to_key, reason = COALESCE(reason, '') || :note
WHERE digest_send_key = :from_key
  AND status = 'digested'

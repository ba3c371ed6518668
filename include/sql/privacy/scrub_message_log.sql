-- Erasure: the address (email, phone) and the template context (trigger columns) of the customer's messages;
-- a reason that quotes an address is replaced. Status, campaign, times and the SES MessageId
-- stay (the decision log and the attribution of orders still add up). A row being sent
-- ('sending') keeps its address until it is recorded: the next erasure run scrubs it.
-- Parameters: :customer_id.
UPDATE message_log
SET email = NULL, phone = NULL,
    context = NULL,
    reason = CASE WHEN reason LIKE '%@%' THEN 'erased (the reason quoted an address)' ELSE reason END
WHERE customer_id = :customer_id AND status <> 'sending'
  AND (email IS NOT NULL OR phone IS NOT NULL OR context IS NOT NULL OR reason LIKE '%@%')

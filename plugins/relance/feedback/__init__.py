"""``ingest_ses_events``: SES event notifications from SQS into the warehouse (SPEC §5b).

* :mod:`relance.feedback.parse` — SQS bodies → SES event rows (pure);
* :mod:`relance.feedback.store` — rows → ``message_events``, suppressions, consent, outbox
  reconciliation, in one transaction;
* :mod:`relance.feedback.queue` — the drain loop: receive, store, commit, delete.
"""

from relance.feedback.queue import drain

__all__ = ["drain"]

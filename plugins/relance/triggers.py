"""Airflow triggers of Relance (they run in Airflow's triggerer, asyncio).

:class:`SqsMessagesWaiting` wakes the ``transactional_now`` DAG (an ``AssetWatcher`` on the asset
``relance_events_queue``) as soon as Segment calls wait on the events queue. It long-polls SQS
(``ReceiveMessage`` with ``WaitTimeSeconds`` 20: SQS itself holds the request until a message
arrives, no sleep-and-retry loop) with a visibility timeout of 0, so it only *peeks*: the
messages stay on the queue for the DAG's task, which loads them, commits, then deletes them
(:mod:`relance.realtime`). Its event says that messages wait, never what they hold, so no
personal data lands in Airflow's metadata database.

Why not the Amazon provider's ``SqsSensorTrigger`` (or common-messaging's ``MessageQueueTrigger``,
which uses it): it needs ``aiobotocore``, whose releases pin ``botocore`` below the version our
``boto3`` pin brings (aiobotocore 3.10: botocore < 1.43.118; constraints.txt: 1.44.5), and it
deletes messages on reception, before anything is stored. This one calls boto3 in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

try:
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
except ImportError:  # pragma: no cover - Airflow without event triggers
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger
    from airflow.triggers.base import TriggerEvent

#: seconds SQS holds one ReceiveMessage open waiting for a message (its maximum)
LONG_POLL_SECONDS = 20


class SqsMessagesWaiting(BaseEventTrigger):
    """Fires once messages wait on ``queue`` (a URL or a name), leaving them on the queue."""

    def __init__(self, queue: str, wait_seconds: int = LONG_POLL_SECONDS):
        super().__init__()
        self.queue, self.wait_seconds = queue, int(wait_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"queue": self.queue, "wait_seconds": self.wait_seconds})

    def _peek(self) -> int:
        from relance import aws
        from relance.feedback.queue import queue_url

        sqs = aws.client("sqs")
        answer = sqs.receive_message(QueueUrl=queue_url(sqs, self.queue), MaxNumberOfMessages=1,
                                     WaitTimeSeconds=self.wait_seconds, VisibilityTimeout=0)
        return len(answer.get("Messages", []))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while not await asyncio.to_thread(self._peek):
            pass  # the long poll itself waited: ask again at once
        yield TriggerEvent({"queue": self.queue, "messages_waiting": True})

"""Draining the SES event queue (SPEC §5b): receive, store and apply, commit, then delete.

Messages are taken in chunks (up to :data:`CHUNK` per transaction, received 10 at a time with
a visibility timeout long enough to process them). A chunk's events and effects are committed
in one transaction *before* its messages are deleted from the queue: a crash in between only
brings the messages back, and storing them again changes nothing. A body that is not an SES
event is quarantined (``source_file`` = ``sqs://<queue>/<SQS message id>``) and deleted too —
it never blocks the queue. A failing warehouse write leaves the chunk on the queue and fails
the task (Airflow retries it).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

from relance.feedback.parse import Rejected, SesEvent, parse_body
from relance.feedback.store import apply_events
from relance.timeutil import utc
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

#: SQS messages per warehouse transaction.
CHUNK = 500
#: Seconds a received message stays invisible to other consumers while we process it.
VISIBILITY_TIMEOUT = 300


def queue_url(sqs: Any, name_or_url: str) -> str:
    """The queue's URL from the Variable ``tm_ses_events_queue`` (a URL or a queue name)."""
    if name_or_url.startswith(("http://", "https://")):
        return name_or_url
    return sqs.get_queue_url(QueueName=name_or_url)["QueueUrl"]


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def source_of(queue: str, sqs_message_id: str) -> str:
    """Where a quarantined body came from, as the quarantine table's ``source_file``."""
    return f"sqs://{queue}/{sqs_message_id}"


def receive_messages(sqs: Any, url: str, wait_seconds: int) -> list[dict[str, Any]]:
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
                                 VisibilityTimeout=VISIBILITY_TIMEOUT)
    return answer.get("Messages", [])


def receive_chunk(sqs: Any, url: str, wait_seconds: int, size: int = CHUNK) -> list[dict[str, Any]]:
    """Up to ``size`` waiting messages (SQS answers 10 at a time), for one warehouse transaction;
    fewer when the queue runs dry, none when it is empty."""
    chunk: list[dict[str, Any]] = []
    while len(chunk) < size:
        received = receive_messages(sqs, url, wait_seconds)
        if not received:
            break
        chunk.extend(received)
    return chunk


def delete_messages(sqs: Any, url: str, messages: list[dict[str, Any]]) -> int:
    """Delete processed messages; a failed delete only means the message comes back (harmless)."""
    deleted = 0
    for start in range(0, len(messages), 10):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                   for i, m in enumerate(messages[start:start + 10])]
        answer = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        deleted += len(answer.get("Successful", []))
        for failure in answer.get("Failed", []):
            log.warning("could not delete an SQS message (it will be received again): %s", failure)
    return deleted


def process_messages(wh: Warehouse, queue: str, messages: list[dict[str, Any]], as_of: datetime) -> dict[str, int]:
    """Parse and store some received messages in one transaction (no deletion)."""
    events: list[SesEvent] = []
    quarantined: list[dict[str, Any]] = []
    sqs_ids: dict[str, str] = {}
    seen: set[str] = set()
    for message in messages:
        if message["MessageId"] in seen:
            continue  # the same message twice in one receive (at-least-once)
        seen.add(message["MessageId"])
        body = message.get("Body", "")
        try:
            parsed = parse_body(body)
        except Rejected as rej:
            quarantined.append({"source_file": source_of(queue, message["MessageId"]), "line_no": 1,
                                "raw": body, "field": rej.field, "reason": rej.reason, "quarantined_at": as_of})
            continue
        for event in parsed:
            sqs_ids.setdefault(event.event_id, message["MessageId"])
        events.extend(parsed)
    with wh.begin() as conn:
        return apply_events(wh, conn, events, quarantined, as_of, sqs_ids)


def drain(wh: Warehouse, sqs: Any, name_or_url: str, as_of: datetime, max_messages: int = 50_000,
          wait_seconds: int = 1, time_budget: float = 600.0) -> dict[str, int]:
    """Drain the queue until it is empty (or ``max_messages`` / ``time_budget`` seconds are
    spent: the next run goes on). Returns counts: messages, events, new_events, quarantined,
    suppressed, opted_out, reconciled, deleted."""
    as_of = utc(as_of)
    url = queue_url(sqs, name_or_url)
    queue = queue_name(url)
    totals: Counter[str] = Counter()
    started = time.monotonic()
    while totals["messages"] < max_messages and time.monotonic() - started < time_budget:
        chunk = receive_chunk(sqs, url, wait_seconds)
        if not chunk:
            break
        totals.update(process_messages(wh, queue, chunk, as_of))
        totals["messages"] += len(chunk)
        totals["deleted"] += delete_messages(sqs, url, chunk)
        log.info("%s: %d messages so far (%s)", queue, totals["messages"], dict(totals))
        if len(chunk) < CHUNK:
            break  # the queue answered empty
    return dict(totals)

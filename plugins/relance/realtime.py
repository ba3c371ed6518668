"""Transactional mail in minutes (issue 12 item 2): Segment calls from an SQS queue → receipts and
status notices, through the same warehouse, outbox and rules as the hourly path.

The ``transactional_now`` DAG runs :func:`run_fast_path` whenever :class:`relance.triggers.SqsMessagesWaiting`
(an ``AssetWatcher`` in Airflow's triggerer) sees messages on the queue named by ``tm_events_queue``
(Segment's Amazon SQS / EventBridge destination):

1. :func:`drain_events` receives the calls (a body is a Segment call, or an SNS envelope around
   one), loads them with the landing zone's own loader (:func:`relance.ingest.events.load_events_file`:
   the same validation and quarantine, deduplicated on ``messageId``), commits, *then* deletes the
   messages — a crash in between only brings them back, and loading them again changes nothing;
2. plans the transactional campaigns (``order_confirmation``, ``order_status``) as of now — the
   moment it read the queue (an event-driven run has no interval: its work is what waited);
3. decides (``prepare``, the dispatcher's rules, limited to those campaigns) and sends their
   batches at once.

Exactly once: the hourly path later loads the same calls from the landing zone (same
``messageId``: nothing new), its planners compute the same ``send_key`` (insert-if-absent: nothing
new) and its dispatcher finds those rows already ``sent``. If this path is down, the hourly path
sends them as before: it is the fallback, not a second sender. Nothing personal travels through
Airflow's metadata database: the trigger only says that messages wait; the task reads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from relance.campaigns.config import Campaign
from relance.campaigns.planner import plan_campaign
from relance.dispatch import failed_templates, prepare, send_batch, summary
from relance.feedback.queue import delete_messages, queue_name, queue_url, receive_chunk
from relance.ingest.events import load_events_file
from relance.timeutil import utc
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

#: messages loaded per warehouse transaction
CHUNK = 500


def segment_call(body: str) -> str:
    """The Segment call in an SQS body: the body itself, or the ``Message`` of an SNS envelope
    (a body that is neither is passed on as it is: the loader quarantines it with the reason)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return doc["Message"]
    return body


def drain_events(wh: Warehouse, sqs: Any, name_or_url: str, now: datetime, max_messages: int = 10_000,
                 wait_seconds: int = 0) -> dict[str, int]:
    """Load every waiting Segment call of the queue (chunk by chunk: load, commit, delete)."""
    url = queue_url(sqs, name_or_url)
    queue = queue_name(url)
    totals = {"messages": 0, "loaded": 0, "duplicates": 0, "quarantined": 0, "deleted": 0}
    while totals["messages"] < max_messages:
        chunk = receive_chunk(sqs, url, wait_seconds, CHUNK)
        if not chunk:
            break
        ids = sorted({m["MessageId"] for m in chunk})
        # one ingest_files row per chunk, named after its messages: a chunk received again
        # after a crash is recognised, and its calls dedupe on messageId anyway
        source = f"sqs://{queue}/{hashlib.sha256(' '.join(ids).encode()).hexdigest()[:16]}"
        lines = [segment_call(m.get("Body", "")).encode() for m in chunk]
        counts = load_events_file(wh, lines, source, None, utc(now))
        for key in ("loaded", "duplicates", "quarantined"):
            totals[key] += counts.get(key, 0)
        totals["messages"] += len(chunk)
        totals["deleted"] += delete_messages(sqs, url, chunk)
        if len(chunk) < CHUNK:
            break
    return totals


def transactional(campaigns: dict[str, Campaign]) -> dict[str, Campaign]:
    """The enabled transactional email campaigns: what the fast path plans and sends."""
    return {cid: c for cid, c in campaigns.items() if c.category == "transactional" and c.enabled}


def run_fast_path(wh: Warehouse, sqs: Any, name_or_url: str, campaigns: dict[str, Campaign], now: datetime,
                  run_id: str, make_sender: Callable[[], Any]) -> dict[str, Any]:
    """Drain the queue, plan and send the transactional messages due now. ``make_sender``: a
    context manager giving an :class:`relance.messaging.ses.SesSender` (paced by the shared rate)."""
    now = utc(now)
    loaded = drain_events(wh, sqs, name_or_url, now)
    chosen = transactional(campaigns)
    planned = sum(plan_campaign(wh, c, now, run_id=run_id)["planned"] for c in chosen.values())
    sent: dict[str, int] = {}
    batch_ids = prepare(wh, chosen, now, now, run_id=run_id)
    for batch_id in batch_ids:
        with make_sender() as sender:
            for key, value in send_batch(wh, batch_id, campaigns, sender, now).items():
                if isinstance(value, int):
                    sent[key] = sent.get(key, 0) + value
    decided = summary(wh, now, batch_ids)
    log.info("fast path: %s messages read, %s planned, decisions %s", loaded["messages"], planned, decided)
    # a template error fails its campaign closed (no send): the run turns red for ops, like the
    # dispatcher's report (the hourly path would fail the same rows the same way)
    broken = failed_templates(wh, batch_ids)
    return {"queue": loaded, "planned": planned, "sent": sent, "decisions": decided,
            "problems": [f"template errors, campaigns failed closed: {broken}"] if broken else []}

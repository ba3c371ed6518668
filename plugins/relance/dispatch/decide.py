"""``prepare``: decide every due row by the sending policy (:mod:`relance.dispatch.policy`) and
claim the sendable ones into batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign
from relance.dispatch.policy import (
    BEFORE_SENDING,
    DELIVERABILITY_MIN_EVENTS,
    DELIVERABILITY_MIN_SENDS,
    DELIVERABILITY_WINDOW,
    MAX_BATCHES,
    MIN_BATCH_SIZE,
    STALE_CLAIM,
    batch_lease,
)
from relance.dispatch.rules import CHUNK, Decision, due_candidates
from relance.keys import dry_run_key
from relance.timeutil import utc
from relance.warehouse import Warehouse


class _DryRunRollback(Exception):
    """Raised inside a dry run's transaction to roll every decision back."""


def prepare(wh: Warehouse, campaigns: dict[str, Campaign], as_of: datetime, now: datetime, run_id: str,
            dry_run: bool = False, caps: tuple[int, int] | None = None) -> list[str]:
    """Decide the due rows and claim the sendable ones into batches; returns batch ids.

    One transaction (``BEGIN IMMEDIATE`` on SQLite; row locks on the customers whose caps are
    reserved on PostgreSQL), so two overlapping runs never both take a row nor both spend a
    customer's last cap slot. A dry run makes the same decisions in the same transaction,
    reads them, rolls everything back, and records them as separate ``dry_run`` rows.
    """
    as_of, now = utc(as_of), utc(now)
    decisions: list[dict[str, Any]] = []
    batch_ids: list[str] = []
    try:
        with wh.begin() as conn:
            rate = settings.max_send_rate()
            run = Decision(wh, conn, campaigns, as_of, now, run_id, caps or settings.frequency_caps(),
                           STALE_CLAIM, MAX_BATCHES, MIN_BATCH_SIZE, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS,
                           guard_min_events=DELIVERABILITY_MIN_EVENTS,
                           batch_lease=lambda position, rows: batch_lease(position, rows, rate,
                                                                          settings.SES_POOL_SLOTS))
            candidates_before = due_candidates(wh, conn, campaigns, as_of) if dry_run else []
            for rule in BEFORE_SENDING:
                rule.apply(run)
            batch_ids = run.batch_ids
            if dry_run:
                keys = [c["send_key"] for c in candidates_before]
                for start in range(0, len(keys), CHUNK):
                    decisions += wh.query("outbox/decisions_of", {"send_keys": keys[start:start + CHUNK]}, conn)
                raise _DryRunRollback
    except _DryRunRollback:
        _record_dry_run(wh, decisions, as_of, run_id)
        return []
    return batch_ids


def _record_dry_run(wh: Warehouse, decisions: list[dict[str, Any]], as_of: datetime, run_id: str) -> None:
    with wh.begin() as conn:
        for row in decisions:
            status = "sent" if row["status"] == "queued" else row["status"]
            outcome = "would be sent" if status == "sent" else f"would be {status}: {row['reason']}"
            wh.execute("outbox/copy_as_dry_run", {"dry_key": dry_run_key(run_id, row["send_key"]),
                                                  "send_key": row["send_key"], "reason": f"dry run: {outcome}",
                                                  "as_of": as_of}, conn)

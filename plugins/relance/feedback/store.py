"""SES events → warehouse effects, in the caller's transaction (SPEC §5b, §7.2, §7.5).

For a batch of parsed events (and the bodies that could not be parsed):

1. ``message_events``: insert-if-absent on the stable ``event_id`` (a redelivery is a no-op);
2. the outbox is put right: ``sending`` rows a dead send task left behind and ``unknown`` rows
   become ``sent`` when a Send event carries their ``send_key`` tag;
3. events without the tag (feedback notifications) are linked to their outbox row by SES
   MessageId;
4. ``suppressions``: permanent bounces (``hard_bounce``), complaints (``complaint``) and
   addresses that soft-bounce repeatedly (``soft_bounce``, :data:`SOFT_BOUNCE_RULE`);
5. consent: complaints and SES ``Subscription`` opt-outs write a ``consent_changes`` row
   (source ``ses_complaint`` / ``ses_subscription``) and the ``email_opt_in`` trait, for
   every customer of the message and every customer using the address;
6. ``quarantine``: the bodies that were not SES events, with the reason.

An event about an address an erasure request removed (on ``suppressions`` only hashed) is
stored without the address and its payload, and suppresses nothing in clear.

Every write is insert-if-absent or a guarded update, so applying the same batch twice changes
nothing: a message deleted from the queue only after the commit may safely come back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from relance import settings
from relance.feedback.parse import SesEvent
from relance.keys import address_hash
from relance.timeutil import utc
from relance.warehouse import Warehouse

SOFT_BOUNCE_RULE = ("an address is suppressed (reason soft_bounce) once the transient or undetermined bounces "
                    "of at least {limit} different messages, with no delivery since the first, span at least "
                    "{days} days")
#: Unlinked events older than this are not looked at again by the send_key linking.
LINK_LOOKBACK = timedelta(days=7)


def _chunks(items: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def apply_events(wh: Warehouse, conn, events: list[SesEvent], quarantined: list[dict[str, Any]],
                 as_of: datetime, sqs_ids: dict[str, str] | None = None) -> dict[str, int]:
    """Write one batch's events and their effects in ``conn``'s transaction; returns counts."""
    as_of = utc(as_of)
    sqs_ids = sqs_ids or {}
    unique: dict[str, SesEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    events = list(unique.values())
    stats = {"events": len(events), "quarantined": len(quarantined)}
    erased = _erased_addresses(wh, conn, events)
    rows = []
    for event in events:
        row = event.row(as_of, sqs_ids.get(event.event_id))
        if event.email in erased:  # about an address an erasure request removed: not stored again
            row.update(email=None, detail=None)
        rows.append(row)
    stats["new_events"] = wh.insert_rows("message_events", rows, conn, on_conflict_do_nothing=["event_id"])
    wh.insert_rows("quarantine", quarantined, conn, on_conflict_do_nothing=["source_file", "line_no"])
    if any(e.event_type == "Send" for e in events):
        from relance.dispatch import STALE_CLAIM

        stats["reconciled"] = (wh.execute("outbox/reconcile_sending", {
            "stale_before": settings.wall_clock() - STALE_CLAIM, "batch_id": None, "unknown_too": 1,
            "as_of": as_of}, conn) or 0)
    wh.execute("feedback/link_send_keys", {"since": as_of - LINK_LOOKBACK}, conn)
    stats["suppressed"] = _suppress(wh, conn, [e for e in events if e.email not in erased])
    stats["opted_out"] = _consent(wh, conn, events)
    return stats


def _erased_addresses(wh: Warehouse, conn, events: list[SesEvent]) -> set[str]:
    """The events' addresses that an erasure request keeps suppressed only hashed
    (:mod:`relance.privacy`): a late event about one stores neither the address nor its payload,
    and puts no address in clear on the suppression list (it is on it already, hashed)."""
    hashes = {address_hash(e.email): e.email for e in events if e.email}
    found: set[str] = set()
    for chunk in _chunks(sorted(hashes)):
        found.update(hashes[r["email"]] for r in wh.query("privacy/erased_addresses", {"hashes": chunk}, conn))
    return found


def _suppress(wh: Warehouse, conn, events: list[SesEvent]) -> int:
    rows = []
    for event in events:
        if not event.email:
            continue
        if event.is_hard_bounce:
            rows.append({"email": event.email, "reason": "hard_bounce", "event_id": event.event_id,
                         "source": f"ses Bounce Permanent/{event.bounce_subtype or 'General'}",
                         "created_at": event.occurred_at})
        elif event.is_complaint:
            kind = event.detail.get("complaintFeedbackType") or "unspecified"
            rows.append({"email": event.email, "reason": "complaint", "event_id": event.event_id,
                         "source": f"ses Complaint ({kind})", "created_at": event.occurred_at})
    soft = sorted({e.email for e in events if e.is_soft_bounce and e.email})
    if soft:
        limit, days = settings.soft_bounce_rule()
        for chunk in _chunks(soft):
            for streak in wh.query("feedback/soft_bounce_streaks", {"emails": chunk}, conn):
                first, last = utc(streak["first_at"]), utc(streak["last_at"])
                if int(streak["bounces"]) >= limit and last - first >= timedelta(days=days):
                    rows.append({"email": streak["email"], "reason": "soft_bounce", "event_id": None,
                                 "source": f"ses {streak['bounces']} transient bounces from {first:%Y-%m-%d} "
                                           f"to {last:%Y-%m-%d}, no delivery since",
                                 "created_at": last})
    return wh.insert_rows("suppressions", rows, conn, on_conflict_do_nothing=["email"])


def _consent(wh: Warehouse, conn, events: list[SesEvent]) -> int:
    """Complaints and SES unsubscribes → consent history and the customer's email_opt_in."""
    changes = []
    for event in events:
        if event.is_complaint:
            changes.append((event, False, "ses_complaint"))
        elif event.unsubscribes is not None:
            changes.append((event, not event.unsubscribes, "ses_subscription"))
    if not changes:
        return 0
    owners: dict[str, set[str]] = {}  # event_id → customer ids
    keys = sorted({e.send_key for e, _, _ in changes if e.send_key}) or [""]
    ids = sorted({e.provider_message_id for e, _, _ in changes}) or [""]
    by_key: dict[str, set[str]] = {}
    for key_chunk in _chunks(keys):
        for id_chunk in _chunks(ids):
            for row in wh.query("feedback/recipients_of_messages", {"send_keys": key_chunk,
                                                                    "message_ids": id_chunk}, conn):
                by_key.setdefault(row["send_key"], set()).add(row["customer_id"])
                if row["provider_message_id"]:
                    by_key.setdefault(row["provider_message_id"], set()).add(row["customer_id"])
    emails = sorted({e.email for e, _, _ in changes if e.email}) or [""]
    by_email: dict[str, set[str]] = {}
    for chunk in _chunks(emails):
        for row in wh.query("feedback/customers_with_emails", {"emails": chunk}, conn):
            by_email.setdefault(row["email"], set()).add(row["customer_id"])
    consent_rows, trait_rows = [], []
    for event, opt_in, source in changes:
        owners[event.event_id] = (by_key.get(event.send_key or "", set()) | by_key.get(event.provider_message_id, set())
                                  | by_email.get(event.email or "", set()))
        for customer_id in sorted(owners[event.event_id]):
            consent_rows.append({"message_id": event.event_id, "customer_id": customer_id, "channel": "email",
                                 "opt_in": opt_in, "changed_at": event.occurred_at, "source": source})
            trait_rows.append({"customer_id": customer_id, "trait": "email_opt_in", "value": "1" if opt_in else "0",
                               "observed_at": event.occurred_at, "observed_us": 0, "message_id": event.event_id})
    if not consent_rows:
        return 0
    written = wh.insert_rows("consent_changes", consent_rows, conn, on_conflict_do_nothing=["message_id", "channel"])
    # The trait goes through the same staging and merge as an identify's, so the latest change
    # wins whatever the arrival order, then the customers are folded again.
    from relance.ingest.events import refresh_customers

    latest: dict[str, dict[str, Any]] = {}
    for row in trait_rows:
        best = latest.get(row["customer_id"])
        if best is None or (row["observed_at"], row["message_id"]) > (best["observed_at"], best["message_id"]):
            latest[row["customer_id"]] = row
    batch_id = f"ses-events:{uuid.uuid4().hex}"
    wh.insert_rows("stage_customer_traits", [{**r, "batch_id": batch_id} for r in latest.values()], conn)
    wh.execute("ingest/merge_customer_traits", {"batch_id": batch_id}, conn)
    wh.execute("ingest/clear_stage_traits", {"batch_id": batch_id}, conn)
    refresh_customers(wh, conn, sorted(latest))
    return written

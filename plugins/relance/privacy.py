"""Erasure requests (GDPR art. 17): ``relance forget CUSTOMER_ID`` and the ``forget_customer_ids``
Param of ``ingest_behaviour``.

:func:`forget_customer` removes a customer's personal data from every table of the warehouse,
in one transaction, with the SQL of ``include/sql/privacy/`` (every value a bound parameter):

* deleted: ``customers``, ``customer_traits`` (and ingest's scratch copy), ``identity_links``,
  ``customer_segments``, ``recommendations``, the recommender's evaluation scratch rows;
* scrubbed, rows kept: ``events`` (payload and anonymous id; type, time, product and order ids
  stay, so a landing file loaded again is still recognised as loaded and counts add up),
  ``dropped_fields`` (the value), ``message_log`` (address, template context, a reason quoting
  an address; waiting messages become ``suppressed``), ``message_events`` (address and SES
  payload), ``quarantine`` (a raw line quoting the customer), ``order_status_changes`` (the
  tracking link and number of their shipments);
* ``suppressions``: every address the customer was known by (customers, traits, outbox, the
  payloads of their events) is kept **only hashed** (``sha256:<hex>``, :func:`relance.keys.address_hash`),
  with the reason it had (``erasure`` if none): the suppression rule matches it against
  ``customers.email_hash``, so if the address comes back in a later identify, nothing is mailed
  to it, and it is not stored in clear for that;
* kept as they are: ``orders`` / ``order_items`` (accounting), ``consent_changes`` (the proof
  of consent and opt-outs; ids, channel, time and source, no personal field), ``conversions``.

An ``erasures`` row records when and how many rows, under the hash of the customer id. Running
it again changes nothing more (idempotent); nothing it logs or returns holds an address.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from relance.keys import address_hash, subject_hash
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

#: what replaces a quarantined line that quoted an erased customer
ERASED_RAW = "[erased: the line quoted a customer who asked to be forgotten]"
#: the suppression reason of an address erased while it was on no suppression list
ERASURE_REASON = "erasure"

#: (SQL file, the table whose rows it changes, its parameters), run in this order once the
#: addresses are read and hashed
_STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("privacy/suppress_waiting_messages", "message_log", ("customer_id", "now")),
    ("privacy/scrub_message_events", "message_events", ("customer_id", "emails")),
    ("privacy/scrub_message_log", "message_log", ("customer_id",)),
    ("privacy/scrub_dropped_fields", "dropped_fields", ("customer_id", "anonymous_ids")),
    ("privacy/scrub_events", "events", ("customer_id", "anonymous_ids")),
    ("privacy/scrub_order_status_changes", "order_status_changes", ("customer_id",)),
    ("privacy/delete_identity_links", "identity_links", ("customer_id", "anonymous_ids")),
    ("privacy/delete_customer_traits", "customer_traits", ("customer_id",)),
    ("privacy/delete_stage_traits", "stage_customer_traits", ("customer_id",)),
    ("privacy/delete_customer", "customers", ("customer_id",)),
    ("privacy/delete_segments", "customer_segments", ("customer_id",)),
    ("privacy/delete_recommendations", "recommendations", ("customer_id",)),
    ("privacy/delete_holdout_baskets", "ml_holdout_baskets", ("customer_id",)),
)


def _addresses_in(payload: str | None) -> set[str]:
    """Addresses in one event payload (JSON): any string value with an '@' under a key that
    names an email (``email``, ``Email``, ``user_email``…), at any depth."""
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and "email" in str(key).lower() and "@" in value:
                    found.add(value.strip().lower())
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _like_literal(text: str) -> str:
    """``text`` as a LIKE pattern matching itself anywhere (escape character ``!``)."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def forget_customer(wh: Warehouse, customer_id: str, now: datetime) -> dict[str, Any]:
    """Carry out an erasure request for ``customer_id`` (see the module's docstring).

    Returns counts only — ``{"addresses": n, "rows_changed": n, "tables": {table: rows}}`` —
    never an address or the customer id, so it is safe in task logs and XCom.
    """
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise ValueError("an erasure request needs a customer id (a non-empty string)")
    tables: dict[str, int] = {}

    def count(table: str, rows: int) -> None:
        if rows and rows > 0:
            tables[table] = tables.get(table, 0) + rows

    with wh.begin() as conn:
        who = {"customer_id": customer_id}
        # an empty list would bind as an integer set on PostgreSQL: '' stands for "none" (ingest
        # never stores an empty anonymous id, and an address always has an '@')
        anonymous_ids = sorted({r["anonymous_id"] for r in wh.query("privacy/anonymous_ids", who, conn)}) or [""]
        scope = {**who, "anonymous_ids": anonymous_ids}
        emails = {r["email"].strip().lower() for r in wh.query("privacy/customer_addresses", who, conn)
                  if r["email"] and "@" in r["email"]}
        for row in wh.query("privacy/event_payloads", scope, conn):
            emails |= _addresses_in(row["properties"])
        emails_list = sorted(emails)

        # suppressions: every address, hashed, with the reason it had in clear (if any)
        if emails_list:
            had = {r["email"]: r for r in wh.query("privacy/suppression_reasons", {"emails": emails_list}, conn)}
            hashed = [{"email": address_hash(e),
                       "reason": had[e]["reason"] if e in had else ERASURE_REASON,
                       "source": "erasure", "created_at": had[e]["created_at"] if e in had else now,
                       "event_id": had[e]["event_id"] if e in had else None} for e in emails_list]
            count("suppressions", wh.insert_rows("suppressions", hashed, conn, on_conflict_do_nothing=["email"]))
            count("suppressions", wh.execute("privacy/delete_clear_suppressions", {"emails": emails_list}, conn))
            for email in emails_list:
                count("customers", wh.execute("privacy/hash_shared_address",
                                              {"email": email, "email_hash": address_hash(email)}, conn))

        values = {**scope, "emails": emails_list or [""], "now": now}
        for sql, table, names in _STEPS:
            count(table, wh.execute(sql, {name: values[name] for name in names}, conn))

        patterns = [_like_literal(e) for e in emails_list] + [_like_literal(json.dumps(customer_id))]
        for pattern in patterns:
            count("quarantine", wh.execute("privacy/scrub_quarantine",
                                           {"pattern": pattern, "replacement": ERASED_RAW}, conn))

        rows_changed = sum(tables.values())
        wh.insert_rows("erasures", [{
            "subject_hash": subject_hash(customer_id), "erased_at": now, "addresses": len(emails_list),
            "rows_changed": rows_changed, "detail": json.dumps(tables, sort_keys=True)}], conn,
            on_conflict_do_nothing=["subject_hash", "erased_at"])
    return {"addresses": len(emails_list), "rows_changed": rows_changed, "tables": tables}


def forget_customers(wh: Warehouse, customer_ids: list[str], now: datetime) -> dict[str, Any]:
    """Several erasure requests (the ``forget_customer_ids`` Param): each customer in its own
    transaction; the totals, without ids or addresses."""
    if not isinstance(customer_ids, list | tuple) or not all(isinstance(c, str) and c.strip() for c in customer_ids):
        raise ValueError("forget_customer_ids must be a list of non-empty customer ids")
    totals: dict[str, Any] = {"customers": 0, "addresses": 0, "rows_changed": 0, "tables": {}}
    for customer_id in dict.fromkeys(customer_ids):
        done = forget_customer(wh, customer_id, now)
        totals["customers"] += 1
        totals["addresses"] += done["addresses"]
        totals["rows_changed"] += done["rows_changed"]
        for table, rows in done["tables"].items():
            totals["tables"][table] = totals["tables"].get(table, 0) + rows
    log.info("erasure requests carried out: %d customers, %d addresses suppressed (hashed), %d rows changed %s",
             totals["customers"], totals["addresses"], totals["rows_changed"], totals["tables"])
    return totals

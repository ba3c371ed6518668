"""Digests instead of silence (issue 12, item 4), on the dispatcher's side.

* :func:`cap_or_fold` — a candidate over the frequency caps is ``capped``, unless it lost the
  *daily* cap only, its campaign allows it (``digest: true``) and the ``digest`` campaign is
  enabled: then it is folded (``digested``, ``digest_send_key``) into the customer's next
  digest (:func:`relance.campaigns.digest.digest_day`) — provided that digest is still to come
  (not planned yet, or waiting); a digest already decided never gains an item it did not show.
  A digest that loses the daily cap itself (the cart series took its day) is carried over the
  same way: ``digested`` into the next digest, its items pointed there too.
* :func:`digest_sections` — what the digest shows: one section per folded message, built with
  that message's own campaign step and content queries as of the digest's send; a section whose
  required content is empty by now (the product is out of stock again, already bought) is left
  out, and so is one whose step's exit condition holds by now (``order_placed``,
  ``product_bought``: the customer bought it since); a digest left with no section is
  ``no_content`` like any message; a message due more than :data:`MAX_ITEM_AGE` ago (carried
  over for a week) is left out too.

The digest itself is an ordinary marketing row of the ``digest`` campaign: consent,
suppression, quiet hours and the caps decide it, and it counts once against the caps. Its
folded rows stay ``digested`` whatever becomes of it; what did is the digest's own row
(``message_log d ON d.send_key = m.digest_send_key``): sent, carried over (``digested``, and
they point at the next digest then), or not sent (no consent, suppressed …).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from relance import settings
from relance.campaigns.config import Campaign
from relance.campaigns.digest import DIGEST_CAMPAIGN, digest_day, digest_send_key
from relance.dispatch.caps import WEEK, CapLedger
from relance.timeutil import utc
from relance.warehouse import Warehouse

if TYPE_CHECKING:
    from relance.dispatch.rules import Decision

#: Statuses of a digest row that may still take items (the waiting ones).
_OPEN = ("planned", "deferred_quiet_hours")


def lost_daily_cap_only(ledger: CapLedger, customer_id: str) -> bool:
    """True when the weekly cap still has room (so what :meth:`CapLedger.check` refused was the
    daily cap): a digest could carry the message on another day of the week."""
    week = [r for r in ledger.used.get(customer_id, []) if r.at > ledger.as_of - WEEK]
    return len(week) < ledger.per_week


def folds_into_digest(campaigns: dict[str, Campaign], campaign: Campaign) -> bool:
    """Whether a daily-cap loser of ``campaign`` goes into a digest: its campaign says
    ``digest: true`` — or it is a digest itself (it rolls over to the next one) — and the
    ``digest`` campaign is known to this run and enabled."""
    digest = campaigns.get(DIGEST_CAMPAIGN)
    return bool((campaign.digest or campaign.id == DIGEST_CAMPAIGN) and digest is not None and digest.enabled)


def cap_or_fold(run: Decision, ledger: CapLedger, row: dict[str, Any], reason: str) -> str:
    """Decide a candidate the caps refused (``reason``): ``digested`` or ``capped``; returns which."""
    campaign = run.campaigns[row["campaign_id"]]
    email = (row.get("channel") or "email") == "email"  # the digest is an email: an SMS is not folded
    if email and folds_into_digest(run.campaigns, campaign) and lost_daily_cap_only(ledger, row["customer_id"]):
        day = digest_day(run.as_of, row["timezone"], settings.digest_every())
        key = digest_send_key(row["customer_id"], day)
        state = run.wh.query("outbox/digest_state", {"send_key": key}, run.conn)
        if not state or state[0]["status"] in _OPEN:
            run.wh.execute("outbox/mark_digested", {
                "send_key": row["send_key"], "digest_send_key": key, "as_of": run.as_of,
                "reason": f"{reason}; folded into the digest of {day.isoformat()} ({key})"}, run.conn)
            if campaign.id == DIGEST_CAMPAIGN:  # a digest that lost its day: its items go to the next one
                run.wh.execute("outbox/carry_digest_items", {
                    "from_key": row["send_key"], "to_key": key,
                    "note": f"; carried over to the digest of {day.isoformat()} ({key})"}, run.conn)
            return "digested"
        reason = f"{reason}; its digest of {day.isoformat()} ({key}) is already {state[0]['status']}"
    run.wh.execute("outbox/mark_capped", {"send_key": row["send_key"], "as_of": run.as_of, "reason": reason},
                   run.conn)
    return "capped"


#: A folded message older than this (due_at) is no longer shown, however often its digest was
#: carried over.
MAX_ITEM_AGE = timedelta(days=7)
#: exit conditions digest_items.sql re-checks for each folded message (a flag column each)
_EXITS = ("order_placed", "product_bought")
#: per folding campaign, the content list a section shows as its products (else the first
#: required content of the step)
_PRODUCTS = {"browse_abandonment": "browsed_products"}


def digest_sections(wh: Warehouse, items: list[dict[str, Any]], campaigns: dict[str, Campaign], row: dict[str, Any],
                    as_of, build_context) -> list[dict[str, Any]]:
    """The folded messages (``content/digest_items.sql``) → the digest's sections, in order:
    each the folded message's own template context (its trigger context and content queries,
    as of now) plus ``campaign_id``, ``step_name`` and ``products`` (the product list it shows)."""
    sections = []
    for item in items:
        campaign = campaigns.get(item["campaign_id"])
        if campaign is None or campaign.id == DIGEST_CAMPAIGN or not 1 <= item["step"] <= len(campaign.steps):
            continue  # an earlier digest carried over here: its items were carried over too
        if utc(item["due_at"]) < utc(as_of) - MAX_ITEM_AGE:
            continue  # carried over from digest to digest for a week: no longer news
        step = campaign.steps[item["step"] - 1]
        if step.exit in _EXITS and int(item.get(step.exit) or 0):
            continue  # its exit condition holds by now (the customer bought it): the message would have exited
        folded = {**item, "first_name": row.get("first_name"), "last_name": row.get("last_name"),
                  "email": row.get("email"), "locale": row.get("locale")}
        context, missing = build_context(wh, campaign, step, folded, as_of)
        if missing:
            continue
        listing = _PRODUCTS.get(campaign.id) or (step.required or step.content or [None])[0]
        sections.append({**context, "campaign_id": campaign.id, "step_name": step.name,
                         "send_key": item["send_key"], "products": context.get(listing) or []})
    return sections

"""Send-time optimisation (issue 12, item 5): opt-in per campaign with ``send_time: best_hour``.

For a campaign whose steps have slack (``max_lateness`` of at least :data:`MIN_SLACK`, 12 h: winback,
cross-sell, anniversary, replenishment — not the 2 h cart reminder), the planner gives each
new outbox row of a customer in the ``best_hour`` arm a ``send_after``: the next time, after
the row's ``due_at``, that the clock shows the customer's **best local hour** — the local hour
at which they opened, clicked or ordered most often in the last :data:`LOOKBACK` (at least
:data:`MIN_ENGAGEMENTS` engagements, the hour itself at least :data:`MIN_AT_HOUR`, and only
hours outside quiet hours count). With too little history, or when that time is not within
``max_lateness`` of ``due_at``, the row keeps the campaign's time. The other arm (``fixed``,
a stable half of the customers by hash of campaign and customer, like variants and holdouts)
always keeps the campaign's time: ``send_time_arms`` records each row's arm and the report
compares the two (:func:`relance.reporting.send_time_figures`).

Nothing else changes: the row is planned insert-if-absent as any (a re-plan neither moves it
nor records it again), every rule of the dispatcher reads ``COALESCE(send_after, due_at)``
(the staleness guard, exits, caps and quiet hours apply at the moved time).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from relance import settings
from relance.campaigns.config import SEND_TIME_MIN_SLACK, Campaign
from relance.keys import bucket
from relance.timeutil import customer_zone, utc
from relance.warehouse import Warehouse

#: engagement history the best hour is learned from
LOOKBACK = timedelta(days=180)
#: engagements (opens, clicks, orders) a customer needs for a best hour of their own ...
MIN_ENGAGEMENTS = 3
#: ... and at least this many at the hour itself (one stray open at 14:00 is no habit)
MIN_AT_HOUR = 2
#: the share of customers in the ``best_hour`` arm (the rest: ``fixed``, the control)
BEST_HOUR_PCT = 50.0
#: a campaign must allow at least this lateness to move a message within it (validated in config)
MIN_SLACK = SEND_TIME_MIN_SLACK
CHUNK = 500

ARMS = ("best_hour", "fixed")


def arm(campaign: Campaign, customer_id: str) -> str:
    """The customer's arm of the campaign's send-time split (stable, independent of the variant)."""
    return "best_hour" if bucket(campaign.id, customer_id, "send_time") < BEST_HOUR_PCT else "fixed"


def allowed_hour(hour: int) -> bool:
    """Outside email's quiet hours (SPEC §7.6)."""
    return settings.QUIET_HOURS_END <= hour < settings.QUIET_HOURS_START


def best_hour(moments: list[datetime], timezone: str | None) -> int | None:
    """The local hour (0-23) of most engagements outside quiet hours (ties: the earliest hour),
    or None with too little history (pure)."""
    if len(moments) < MIN_ENGAGEMENTS:
        return None
    zone = customer_zone(timezone)
    hours = Counter(h for h in (utc(m).astimezone(zone).hour for m in moments) if allowed_hour(h))
    if not hours:
        return None
    hour, count = min(hours.items(), key=lambda item: (-item[1], item[0]))
    return hour if count >= MIN_AT_HOUR else None


def send_after(due_at: datetime, hour: int | None, timezone: str | None, max_lateness: timedelta) -> datetime | None:
    """The next ``hour``:00 local after ``due_at`` (UTC), if within ``max_lateness`` of it;
    None to keep ``due_at`` (no best hour, due in that very hour already, or too far) (pure)."""
    if hour is None:
        return None
    zone = customer_zone(timezone)
    local = utc(due_at).astimezone(zone)
    if local.hour == hour:
        return None
    day = local.date()
    target = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    if target <= local:
        day += timedelta(days=1)
        target = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    moved = target.astimezone(UTC)
    return moved if moved - utc(due_at) < max_lateness else None


def engagement(wh: Warehouse, customer_ids: list[str], as_of: datetime, conn) -> dict[str, tuple[str | None, list]]:
    """Customer → (time zone, engagement moments) from ``send_time/engagement_times.sql``."""
    out: dict[str, tuple[str | None, list]] = {}
    for start in range(0, len(customer_ids), CHUNK):
        params = {"customer_ids": customer_ids[start:start + CHUNK], "since": as_of - LOOKBACK, "as_of": as_of}
        for row in wh.query("send_time/engagement_times", params, conn):
            out.setdefault(row["customer_id"], (row["timezone"], []))[1].append(row["engaged_at"])
    return out


def apply_send_time(wh: Warehouse, campaign: Campaign, rows: list[dict[str, Any]], as_of: datetime,
                    conn) -> list[dict[str, Any]]:
    """Give the rows of a ``send_time: best_hour`` campaign their ``send_after`` (in place) and
    return the ``send_time_arms`` rows to record with them. Nothing for other campaigns."""
    if campaign.send_time != "best_hour" or not rows:
        return []
    keys = [r["send_key"] for r in rows]
    planned = set()  # rows planned by an earlier run keep their time: the insert leaves them be
    for start in range(0, len(keys), CHUNK):
        planned |= {r["send_key"] for r in wh.query("outbox/decisions_of", {"send_keys": keys[start:start + CHUNK]},
                                                     conn)}
    for row in rows:
        row["send_after"] = None
    rows = [r for r in rows if r["send_key"] not in planned]
    treated = sorted({r["customer_id"] for r in rows if arm(campaign, r["customer_id"]) == "best_hour"})
    history = engagement(wh, treated, as_of, conn) if treated else {}
    arms = []
    for row in rows:
        customer = row["customer_id"]
        chosen = arm(campaign, customer)
        timezone, moments = history.get(customer, (None, []))
        hour = best_hour(moments, timezone) if chosen == "best_hour" else None
        row["send_after"] = send_after(row["due_at"], hour, timezone, campaign.max_lateness_td)
        arms.append({"send_key": row["send_key"], "campaign_id": campaign.id, "customer_id": customer,
                     "arm": chosen, "best_hour": hour, "engagements": len(moments),
                     "send_after": row["send_after"], "planned_at": as_of})
    return arms

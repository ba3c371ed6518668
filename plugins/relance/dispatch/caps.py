"""Frequency caps (SPEC §7.4): marketing email per customer ≤ ``per_day`` per calendar day in
the customer's time zone and ≤ ``per_week`` per rolling 7 days; transactional mail never
counts and is never capped.

*One journey, one conversation*: the steps of one journey (same campaign, same trigger
instance — e.g. the 2 h, 24 h and 48 h reminders of one cart) never take each other's daily
slot. A step whose earlier step went out the same local day (quiet hours can push a 2 h
reminder into the morning of the 24 h one) is not capped by it; it still counts, so no other
campaign gets that day, and the weekly cap counts every message. This is what lets the
default cart series reach a customer who gets nothing else.

Pure bookkeeping: the dispatcher loads what each customer already used (``cap_usage.sql``),
then asks :meth:`CapLedger.check` for each candidate in arbitration order and
:meth:`CapLedger.reserve` for those it claims — all inside the transaction that holds the
customers' locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from relance.timeutil import customer_zone, utc

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Reservation:
    send_key: str
    campaign_id: str
    step_name: str
    trigger_id: str
    at: datetime

    @property
    def journey(self) -> tuple[str, str]:
        return self.campaign_id, self.trigger_id

    def describe(self) -> str:
        return f"{self.campaign_id}/{self.step_name} ({self.send_key})"


@dataclass
class CapLedger:
    """What each customer has used of their caps, as of one dispatcher run."""

    as_of: datetime
    per_day: int
    per_week: int
    used: dict[str, list[Reservation]] = field(default_factory=dict)

    def load(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.used.setdefault(row["customer_id"], []).append(Reservation(
                row["send_key"], row["campaign_id"], row["step_name"], row["trigger_id"],
                utc(row["cap_reserved_at"])))

    def local_day(self, moment: datetime, timezone: str | None) -> date:
        return moment.astimezone(customer_zone(timezone)).date()

    def check(self, customer_id: str, campaign_id: str, trigger_id: str, timezone: str | None) -> str | None:
        """``None`` if the message fits the caps now, else the reason it is capped (naming the
        message that won)."""
        mine = (campaign_id, trigger_id)
        week = [r for r in self.used.get(customer_id, []) if r.at > self.as_of - WEEK]
        today = self.local_day(self.as_of, timezone)
        zone = customer_zone(timezone).key
        others_today = [r for r in week if self.local_day(r.at, timezone) == today and r.journey != mine]
        if len(others_today) >= self.per_day:
            return (f"frequency cap reached ({self.per_day} per local day, {today.isoformat()} in {zone}): "
                    f"{others_today[0].describe()} won")
        if len(week) >= self.per_week:
            return f"frequency cap reached ({self.per_week} per 7 days): {week[0].describe()} was first"
        return None

    def reserve(self, customer_id: str, send_key: str, campaign_id: str, step_name: str, trigger_id: str) -> None:
        self.used.setdefault(customer_id, []).append(
            Reservation(send_key, campaign_id, step_name, trigger_id, self.as_of))

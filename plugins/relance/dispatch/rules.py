"""The functions the sending policy runs (:mod:`relance.dispatch.policy` lists them, in order).

Each takes the :class:`Decision` of one dispatcher run — the warehouse, its open transaction,
the campaigns, the run's as-of — and decides some of the due rows: a status and a reason on
each row it catches. SQL rules decide set-based over every due row; the Python rules walk the
candidates (the due rows still waiting, in arbitration order, ``due_candidates.sql``), which
are read again after any SQL rule. The thresholds come from the policy, through the
:class:`Decision`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign
from relance.campaigns.planner import apply_exits
from relance.dispatch.caps import WEEK, CapLedger
from relance.dispatch.digests import cap_or_fold
from relance.keys import bucket
from relance.timeutil import customer_zone
from relance.warehouse import Warehouse

#: Rows are decided and claimed by chunks of this many send keys (bound parameters).
CHUNK = 500


@dataclass
class Decision:
    """One dispatcher run deciding the due rows, inside one transaction."""

    wh: Warehouse
    conn: Any
    campaigns: dict[str, Campaign]
    as_of: datetime
    now: datetime
    run_id: str
    caps: tuple[int, int]
    #: the thresholds of :mod:`relance.dispatch.policy`
    stale_claim: timedelta
    max_batches: int
    min_batch_size: int
    #: the deliverability guard's window and minimum volume (:mod:`relance.dispatch.policy`)
    guard_window: timedelta = timedelta(days=7)
    guard_min_sends: int = 200
    guard_min_events: int = 2
    #: (position of a batch in the run, its rows) → how long its send task has it
    #: (:func:`relance.dispatch.policy.batch_lease` at the deployment's send rate)
    batch_lease: Callable[[int, int], timedelta] = lambda position, rows: timedelta(minutes=30)
    batch_ids: list[str] = field(default_factory=list)
    #: set by the deliverability guard when it holds marketing: the reason written on the rows
    held: str | None = None
    #: the SMS caps (per local day, per 7 days); None: settings.sms_frequency_caps()
    sms_caps: tuple[int, int] | None = None
    _candidates: list[dict[str, Any]] | None = None

    @property
    def scope(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "campaign_ids": sorted(self.campaigns) or [""]}

    @property
    def candidates(self) -> list[dict[str, Any]]:
        """The due rows still waiting, in arbitration order (read once after the SQL rules)."""
        if self._candidates is None:
            rows = due_candidates(self.wh, self.conn, self.campaigns, self.as_of)
            if self.held:  # held marketing stays waiting: no later rule may decide or claim it
                rows = [r for r in rows if r["category"] != "marketing"]
            self._candidates = rows
        return self._candidates

    @candidates.setter
    def candidates(self, rows: list[dict[str, Any]]) -> None:
        self._candidates = rows

    def changed_in_sql(self) -> None:
        """An SQL rule decided rows: the candidates are read again when next needed."""
        self._candidates = None


def due_candidates(wh: Warehouse, conn, campaigns: dict[str, Campaign], as_of: datetime) -> list[dict[str, Any]]:
    if not campaigns:
        return []
    return wh.query("outbox/due_candidates", {"as_of": as_of, "as_of_date": as_of.date(),
                                              "campaign_ids": sorted(campaigns)}, conn)


# -- before the rules: what a dead run left behind ------------------------------------------
def requeue_stale_queued(run: Decision) -> None:
    prefix = f"{run.run_id}#"
    run.wh.execute("outbox/requeue_stale_queued", {"now": run.now, "run_prefix": prefix,
                                                   "run_prefix_len": len(prefix)}, run.conn)


def reconcile_interrupted(run: Decision) -> None:
    """Rows left ``sending``: ``sent`` if SES reported them, else ``unknown`` (never re-sent)."""
    params = {"stale_before": run.now - run.stale_claim, "batch_id": None, "unknown_too": 0, "as_of": run.as_of}
    run.wh.execute("outbox/reconcile_sending", params, run.conn)
    run.wh.execute("outbox/mark_sending_unknown", params, run.conn)


# -- the rules -------------------------------------------------------------------------------
def exit_journeys(run: Decision) -> None:
    for campaign in run.campaigns.values():
        apply_exits(run.wh, campaign, run.as_of, run.conn)
    run.changed_in_sql()


def expire_stale(run: Decision) -> None:
    for campaign in run.campaigns.values():
        run.wh.execute("outbox/expire_stale", {"campaign_id": campaign.id, "as_of": run.as_of,
                                               "stale_before": run.now - campaign.max_lateness_td}, run.conn)
    run.changed_in_sql()


def sql_rule(name: str) -> Callable[[Decision], None]:
    """A rule that is one ``UPDATE`` of ``include/sql/<name>.sql`` over the run's due rows."""
    def apply(run: Decision) -> None:
        run.wh.execute(name, run.scope, run.conn)
        run.changed_in_sql()

    apply.__name__ = apply.__qualname__ = f"sql_rule({name!r})"
    return apply


# -- the deliverability guard ---------------------------------------------------------------
#: The reason prefix of marketing the guard holds (the rows stay due).
HELD = "held:"


@dataclass(frozen=True)
class Deliverability:
    """Bounce and complaint rates of the messages sent in the guard's window."""

    since: datetime
    until: datetime
    sends: int
    bounced: int
    complained: int
    max_bounce_rate: float
    max_complaint_rate: float
    min_sends: int
    min_events: int

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.sends if self.sends else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.sends if self.sends else 0.0

    @property
    def days(self) -> int:
        return round((self.until - self.since) / timedelta(days=1))

    def breaches(self) -> list[str]:
        """What is over its threshold, in words (empty: marketing may go; too few sends, or a
        single bounce or complaint, to judge too: policy.DELIVERABILITY_MIN_SENDS / _MIN_EVENTS)."""
        if self.sends < self.min_sends:
            return []
        over = []
        if self.bounce_rate > self.max_bounce_rate and self.bounced >= self.min_events:
            over.append(f"bounce rate {self.bounce_rate:.2%} over {self.days} days > {self.max_bounce_rate:.2%}")
        if self.complaint_rate > self.max_complaint_rate and self.complained >= self.min_events:
            over.append(f"complaint rate {self.complaint_rate:.3%} over {self.days} days "
                        f"> {self.max_complaint_rate:.3%}")
        return over

    @property
    def tripped(self) -> bool:
        return bool(self.breaches())

    def reason(self) -> str:
        return f"{HELD} {'; '.join(self.breaches())} ({self.bounced} bounced, {self.complained} complained " \
               f"of {self.sends} sent)"


def deliverability(wh: Warehouse, as_of: datetime, window: timedelta, min_sends: int, min_events: int,
                   conn=None) -> Deliverability:
    """The rates of ``outbox/deliverability_rates.sql`` over [as_of - window, as_of), with the
    thresholds of :func:`relance.settings.max_bounce_rate` / ``max_complaint_rate``."""
    since = as_of - window
    (row,) = wh.query("outbox/deliverability_rates", {"since": since, "until": as_of}, conn)
    return Deliverability(since, as_of, int(row["sends"] or 0), int(row["bounced"] or 0),
                          int(row["complained"] or 0), settings.max_bounce_rate(), settings.max_complaint_rate(),
                          min_sends, min_events)


def deliverability_guard(run: Decision) -> None:
    """Over a threshold, the due marketing rows are held (still waiting, with the reason) and
    leave the candidates; transactional mail goes on. Below, nothing is held: it resumes by itself."""
    state = deliverability(run.wh, run.as_of, run.guard_window, run.guard_min_sends, run.guard_min_events,
                           run.conn)
    if not state.tripped:
        return
    run.held = state.reason()
    run.wh.execute("outbox/hold_marketing", {**run.scope, "reason": run.held}, run.conn)
    run.changed_in_sql()


def in_holdout(campaign: Campaign, customer_id: str) -> bool:
    return campaign.holdout_pct > 0 and bucket(campaign.id, customer_id, "holdout") < campaign.holdout_pct


def hold_out(run: Decision) -> None:
    keep, held = [], {}
    for row in run.candidates:
        campaign = run.campaigns[row["campaign_id"]]
        if in_holdout(campaign, row["customer_id"]):
            held.setdefault(campaign.id, []).append(row["send_key"])
        else:
            keep.append(row)
    for campaign_id, keys in held.items():
        reason = f"holdout group ({run.campaigns[campaign_id].holdout_pct:g} % of customers, stable per campaign)"
        for start in range(0, len(keys), CHUNK):
            run.wh.execute("outbox/mark_holdout", {"send_keys": keys[start:start + CHUNK], "reason": reason,
                                                   "as_of": run.as_of}, run.conn)
    run.candidates = keep


def quiet_hours_end(as_of: datetime, timezone: str | None, hours: tuple[int, int] | None = None) -> datetime | None:
    """If ``as_of`` falls in the customer's quiet hours (``hours`` = (start, end) local hours,
    default email's), the next end of them (UTC); else None."""
    start, end = hours or (settings.QUIET_HOURS_START, settings.QUIET_HOURS_END)
    zone = customer_zone(timezone)
    local = as_of.astimezone(zone)
    if end <= local.hour < start:
        return None
    day = local.date() if local.hour < end else local.date() + timedelta(days=1)
    wake = datetime(day.year, day.month, day.day, end, tzinfo=zone)
    return wake.astimezone(UTC)


def defer_quiet_hours(run: Decision) -> None:
    keep = []
    # each channel its quiet hours: email's (SPEC §7.6), SMS's (settings.sms_quiet_hours)
    hours = {"email": (settings.QUIET_HOURS_START, settings.QUIET_HOURS_END), "sms": settings.sms_quiet_hours()}
    for row in run.candidates:
        campaign = run.campaigns[row["campaign_id"]]
        channel = row.get("channel") or "email"
        quiet = hours[channel]
        wake = quiet_hours_end(run.as_of, row["timezone"], quiet) if campaign.observes_quiet_hours_on(channel) \
            else None
        if wake is None:
            keep.append(row)
            continue
        zone = customer_zone(row["timezone"]).key
        start, end = f"{quiet[0]:02d}:00", f"{quiet[1]:02d}:00"
        what = "SMS quiet hours" if channel == "sms" else "quiet hours"
        run.wh.execute("outbox/defer_quiet_hours", {
            "send_key": row["send_key"], "send_after": wake, "as_of": run.as_of,
            "reason": f"{what} {start}-{end} in {zone}: deferred to {end} local"}, run.conn)
    run.candidates = keep


def cap_and_claim(run: Decision) -> None:
    """Claim the candidates into batches, in arbitration order; the frequency caps
    (:mod:`relance.dispatch.caps`) are counted and reserved inside this transaction, customers
    locked first on PostgreSQL. A candidate over a cap is ``capped`` instead — or ``digested``
    (:func:`relance.dispatch.digests.cap_or_fold`: folded into the customer's next digest)."""
    wh, conn, campaigns, as_of, candidates = run.wh, run.conn, run.campaigns, run.as_of, run.candidates
    if not candidates:
        return
    # each channel its own caps: email's (SPEC §7.4), SMS's (settings.sms_frequency_caps)
    ledgers = {"email": CapLedger(as_of, *run.caps),
               "sms": CapLedger(as_of, *(run.sms_caps or settings.sms_frequency_caps()))}
    capped_ids = sorted({r["customer_id"] for r in candidates if not campaigns[r["campaign_id"]].is_cap_exempt})
    for start in range(0, len(capped_ids), CHUNK):
        ids = capped_ids[start:start + CHUNK]
        if not wh.is_sqlite:
            wh.query("outbox/lock_customers", {"customer_ids": ids}, conn)
        usage = wh.query("outbox/cap_usage", {"customer_ids": ids, "week_start": as_of - WEEK}, conn)
        for channel, ledger in ledgers.items():
            ledger.load([u for u in usage if (u.get("channel") or "email") == channel])
    size = max(run.min_batch_size, math.ceil(len(candidates) / run.max_batches))
    batch_ids: list[str] = []
    in_batch, lease_until = size, run.now
    for row in candidates:
        campaign = campaigns[row["campaign_id"]]
        reserve = not campaign.is_cap_exempt
        ledger = ledgers[row.get("channel") or "email"]
        if reserve:
            reason = ledger.check(row["customer_id"], row["campaign_id"], row["trigger_id"], row["timezone"])
            if reason:
                cap_or_fold(run, ledger, row, reason)  # capped, or folded into the next digest
                continue
        if in_batch >= size:
            batch_ids.append(f"{run.run_id}#{len(batch_ids):04d}")
            lease_until = run.now + run.batch_lease(len(batch_ids) - 1, size)
            in_batch = 0
        claimed = wh.execute("outbox/claim_into_batch", {
            "send_key": row["send_key"], "batch_id": batch_ids[-1], "queued_at": run.now, "as_of": as_of,
            "lease_until": lease_until, "cap_reserved_at": as_of if reserve else None}, conn)
        if claimed:
            in_batch += 1
            if reserve:
                ledger.reserve(row["customer_id"], row["send_key"], row["campaign_id"], row["step_name"],
                               row["trigger_id"])
    if batch_ids and in_batch == 0:
        batch_ids.pop()  # the last batch got nothing (its rows were taken by another run)
    run.batch_ids = batch_ids
    run.candidates = []

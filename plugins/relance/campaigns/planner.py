"""Planning: trigger SQL as of a run's "now" → ``planned`` rows in the outbox (SPEC §6, §7.2).

A planner run with as-of ``T``:

1. records the campaign definition (``campaigns``, with its version hash);
2. runs ``include/sql/triggers/<id>.sql`` with ``:as_of = T`` and ``:since = T - lookback``;
   each row is a trigger instance (``customer_id``, ``trigger_id``, ``trigger_at`` and any
   other columns, kept as the message's context);
3. for every step whose ``due_at = trigger_at + delay`` falls in ``(T - max_lateness, T]``
   writes one row with a deterministic ``send_key`` — insert-if-absent, so re-runs, retries,
   overlapping runs and backfills never duplicate a message;
4. applies the steps' exit conditions to the rows still waiting.

A dry run does 1 and 2, then records what step 3 would write as ``dry_run`` rows (reason
``dry run: would be planned`` / ``already planned``) instead of ``planned`` ones.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from relance import settings
from relance.campaigns import send_time, transforms
from relance.campaigns.config import Campaign
from relance.keys import bucket, dry_run_key, send_key
from relance.timeutil import customer_zone, utc
from relance.warehouse import Warehouse

__all__ = ["apply_exits", "assign_variant", "bucket", "calendar_params", "dry_run_key", "due_windows", "live_since",
           "local_midnight", "mark_live_since", "plan_campaign", "plan_rows", "record_campaign", "send_key"]

REQUIRED_COLUMNS = ("customer_id", "trigger_id", "trigger_at")
#: columns of a trigger row that are not copied into the message context
TRIGGER_COLUMNS = (*REQUIRED_COLUMNS, "trigger_local_date", "delay_offset_hours", "consent_basis", "history_at")


def assign_variant(campaign: Campaign, customer_id: str) -> str:
    total = sum(v.weight for v in campaign.variants)
    point = bucket(campaign.id, customer_id, "variant") / 100 * total
    for variant in campaign.variants:
        point -= variant.weight
        if point < 0:
            return variant.name
    return campaign.variants[-1].name


def record_campaign(wh: Warehouse, campaign: Campaign, now: datetime, conn=None) -> None:
    wh.execute("outbox/upsert_campaign", {
        "campaign_id": campaign.id, "version_hash": campaign.version_hash, "category": campaign.category,
        "priority": campaign.priority, "enabled": campaign.enabled,
        "definition": json.dumps(campaign.model_dump(mode="json"), sort_keys=True), "loaded_at": now,
    }, conn)


def local_midnight(local_date: Any, timezone: str | None) -> datetime:
    """Midnight of a calendar date in the customer's time zone, in UTC (the shop's default
    time zone if unknown, :func:`relance.timeutil.customer_zone`).

    Lets a trigger SQL speak in local days (a birthday, an anniversary) without date
    arithmetic in SQL: it returns ``trigger_local_date`` (+ ``timezone``) instead of
    ``trigger_at``, and a step's delay then counts from local midnight (``9h`` = 09:00 local).
    """
    day = local_date if isinstance(local_date, date) else date.fromisoformat(str(local_date)[:10])
    zone = customer_zone(timezone)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def calendar_params(as_of: datetime) -> dict[str, str]:
    """Calendar values of ``as_of`` (UTC) for trigger SQL, which does no date arithmetic.

    ``as_of_date``, ``day_before_date``, ``day_after_date`` ('YYYY-MM-DD'), their month-days
    ``*_mmdd`` ('MM-DD'; a 29 February birthday is celebrated on the 28th in common years:
    ``*_mmdd_leap`` is then '02-29', else ''), ``as_of_month`` ('YYYY-MM'), ``as_of_quarter``
    ('YYYY-Qn') and ``quarter_start_date``. Birthdays are matched within a day either side of the UTC
    date, so every time zone's local day is covered.
    """
    day = utc(as_of).date()
    quarter = (day.month - 1) // 3
    out = {"as_of_month": f"{day:%Y-%m}", "as_of_quarter": f"{day.year}-Q{quarter + 1}",
           "quarter_start_date": date(day.year, 3 * quarter + 1, 1).isoformat()}
    for name, moment in (("day_before", day - timedelta(days=1)), ("as_of", day), ("day_after", day + timedelta(days=1))):
        common_feb_28 = moment.month == 2 and moment.day == 28 and not calendar.isleap(moment.year)
        out[f"{name}_date"] = moment.isoformat()
        out[f"{name}_mmdd"] = f"{moment:%m-%d}"
        out[f"{name}_mmdd_leap"] = "02-29" if common_feb_28 else ""
    return out


#: due windows a trigger SQL may use (:due1_from, :due1_to … :due4_to)
DUE_WINDOWS = 4
#: a run that plans this many rows refreshes the outbox's planner statistics
ANALYZE_AFTER_PLANNED = 10_000


def _horizon_start(campaign: Campaign, as_of: datetime, live_since: datetime | None) -> datetime:
    """Steps due in ``(horizon_start, as_of]`` are planned: ``max_lateness`` back, and nothing
    due before go-live (``live_since``, itself included)."""
    horizon_start = as_of - campaign.max_lateness_td
    if live_since is not None:
        horizon_start = max(horizon_start, live_since - timedelta(microseconds=1))
    return horizon_start


def due_windows(campaign: Campaign, as_of: datetime, live_since: datetime | None = None) -> dict[str, datetime]:
    """The trigger times that make some step due now, for trigger SQL to filter on.

    A step with delay ``d`` is due for a trigger at ``t`` when ``t + d`` falls in
    ``(horizon_start, as_of]`` (:func:`plan_rows`), i.e. ``t`` in ``(horizon_start - d, as_of - d]``.
    Returned as :data:`DUE_WINDOWS` windows ``:dueN_from`` (exclusive) / ``:dueN_to``
    (inclusive): one per step, the closest merged when there are more steps, the spare ones
    empty (``from = to``). Their union always covers every due step, so a trigger SQL that keeps
    only ``trigger_at`` in one of them plans exactly what it planned before — but winback looks at
    the customers whose latest order is 90, 180 or 365 days old (± max_lateness), not at a year
    of customers. Meaningless for per-row delay offsets and local-day triggers (don't use them
    there)."""
    horizon_start = _horizon_start(campaign, as_of, live_since)
    windows = sorted((horizon_start - step.delay_td, as_of - step.delay_td) for step in campaign.steps)
    merged: list[tuple[datetime, datetime]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    while len(merged) > DUE_WINDOWS:  # merge across the smallest gap
        gap = min(range(len(merged) - 1), key=lambda i: merged[i + 1][0] - merged[i][1])
        merged[gap:gap + 2] = [(merged[gap][0], merged[gap + 1][1])]
    merged += [(as_of, as_of)] * (DUE_WINDOWS - len(merged))
    out: dict[str, datetime] = {}
    for number, (start, end) in enumerate(merged, start=1):
        out[f"due{number}_from"], out[f"due{number}_to"] = start, end
    return out


def offset_due_window(campaign: Campaign, as_of: datetime, live_since: datetime | None = None) -> dict[str, float]:
    """For trigger SQL whose rows carry a per-row ``delay_offset_hours`` (replenishment): the
    bounds, in epoch seconds, of ``trigger_at + offset`` for some step to be due now —
    ``(horizon_start - longest delay, as_of - shortest delay]``, a second wider either side (the
    SQL adds the offset in floating point; :func:`plan_rows` keeps the exact test). The SQL
    keeps only those rows instead of returning every purchase of its lookback."""
    horizon_start = _horizon_start(campaign, as_of, live_since)
    delays = [step.delay_td for step in campaign.steps]
    return {"offset_due_from_epoch": (horizon_start - max(delays)).timestamp() - 1,
            "offset_due_to_epoch": (as_of - min(delays)).timestamp() + 1}


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def plan_rows(campaign: Campaign, triggers: list[dict[str, Any]], as_of: datetime, run_id: str,
              live_since: datetime | None = None) -> list[dict[str, Any]]:
    """Trigger instances → the outbox rows due in ``(as_of - max_lateness, as_of]`` (pure).

    Nothing due before ``live_since`` (when Relance went live) is planned, and a campaign
    with ``skip_history`` plans nothing for a trigger anchored before it (``trigger_at``, or
    the optional ``history_at`` column: an order's status notice is anchored at the order).
    """
    horizon_start = _horizon_start(campaign, as_of, live_since)
    # per step, parsed once: most trigger rows make no step due this hour (a first run reads
    # every replenishment purchase of 280 days), so nothing else is computed for them
    steps = [(number, step, step.delay_td, campaign.channels_for(step))
             for number, step in enumerate(campaign.steps, start=1)]
    rows = []
    for trig in triggers:
        if trig.get("trigger_at") in (None, "") and trig.get("trigger_local_date"):
            trig = {**trig, "trigger_at": local_midnight(trig["trigger_local_date"], trig.get("timezone"))}
        required = [trig.get(c) for c in REQUIRED_COLUMNS]
        if None in required or "" in required:
            missing = [c for c in REQUIRED_COLUMNS if trig.get(c) in (None, "")]
            raise ValueError(f"trigger SQL {campaign.trigger_sql}.sql returned a row without {missing}: {trig}")
        trigger_at = utc(trig["trigger_at"])
        # a trigger may shift every step by a per-row offset (replenishment: 75 % of the
        # product's learned repurchase interval), computed as a plain number in SQL
        offset_hours = trig.get("delay_offset_hours")
        start = trigger_at + timedelta(hours=float(offset_hours)) if offset_hours else trigger_at
        due = [(number, step, start + delay, channels) for number, step, delay, channels in steps
               if horizon_start < start + delay <= as_of]
        if not due:
            continue
        # history_at: when the trigger's story began, if before trigger_at (an order's status
        # notice: the order) — a story begun before go-live is the old system's to tell
        began_at = utc(trig["history_at"]) if trig.get("history_at") not in (None, "") else trigger_at
        if campaign.skip_history and live_since is not None and min(trigger_at, began_at) < live_since:
            continue
        customer_id, trigger_id = str(trig["customer_id"]), str(trig["trigger_id"])
        context = {k: (utc(v).isoformat() if k.endswith("_at") else v)
                   for k, v in trig.items() if k not in TRIGGER_COLUMNS and v is not None}
        variant = assign_variant(campaign, customer_id)
        for number, step, due_at, channels in due:
            rows.append({
                "send_key": send_key(campaign.id, number, customer_id, trigger_id),
                "campaign_id": campaign.id, "campaign_version": campaign.version_hash,
                "step": number, "step_name": step.name, "variant": variant,
                "customer_id": customer_id, "category": campaign.category, "priority": campaign.priority,
                "trigger_id": trigger_id, "trigger_at": trigger_at, "due_at": due_at,
                "context": json.dumps(context, sort_keys=True, default=_json_default),
                "status": "planned", "planned_at": as_of, "planned_by": run_id,
                # 'request': the shopper asked for this very message (a guest's "notify me")
                "consent_basis": trig.get("consent_basis"),
                # the first channel; the dispatcher re-chooses among several by consent
                "channel": channels[0], "channel_options": " ".join(channels) if len(channels) > 1 else None,
            })
    return rows


def live_since(wh: Warehouse, conn=None) -> datetime | None:
    """When Relance went live: the Variable ``tm_live_since`` (ISO 8601) if set, else what the
    first planner run recorded (:func:`mark_live_since`); ``None`` before any run."""
    value = settings.variable("tm_live_since") or wh.scalar("outbox/live_since", conn=conn)
    return utc(value) if value else None


def mark_live_since(wh: Warehouse, start: datetime) -> None:
    """Record ``start`` (a planner run's interval start) as the go-live instant if none is."""
    wh.execute("outbox/mark_live_since", {"value": utc(start).isoformat(), "updated_at": utc(start)})


def apply_exits(wh: Warehouse, campaign: Campaign, as_of: datetime, conn) -> int:
    """Mark ``exited`` the waiting rows of steps whose exit condition now holds."""
    exited = 0
    by_exit: dict[str, list[int]] = {}
    for number, step in enumerate(campaign.steps, start=1):
        if step.exit:
            by_exit.setdefault(step.exit, []).append(number)
    for exit_name, steps in by_exit.items():
        exited += wh.execute(f"exits/{exit_name}", {"campaign_id": campaign.id, "steps": steps, "as_of": as_of},
                             conn) or 0
    return exited


def _record_dry_run(wh: Warehouse, campaign: Campaign, rows: list[dict[str, Any]], run_id: str,
                    triggers: list[dict[str, Any]], conn) -> dict[str, Any]:
    """A dry run writes what it would plan as ``dry_run`` rows under keys of its own, which no
    rule, cap or sender ever picks up (and a real run later plans the real rows)."""
    new = [r["send_key"] for r in rows]
    existing = set()
    for start in range(0, len(new), 500):
        existing |= {r["send_key"] for r in wh.query("outbox/decisions_of", {"send_keys": new[start:start + 500]},
                                                     conn)}
    dry = [{**r, "send_key": dry_run_key(run_id, r["send_key"]), "status": "dry_run",
            "reason": "dry run: " + ("already planned" if r["send_key"] in existing else "would be planned")}
           for r in rows]
    wh.insert_rows("message_log", dry, conn, on_conflict_do_nothing=["send_key"])
    return {"campaign_id": campaign.id, "dry_run": True, "triggers": len(triggers), "due": len(rows),
            "would_plan": len(new) - len(existing), "planned": 0}


def plan_campaign(wh: Warehouse, campaign: Campaign, as_of: datetime, run_id: str = "manual",
                  dry_run: bool = False) -> dict[str, Any]:
    """Plan one campaign as of ``as_of``. Returns counts.

    A dry run plans no real row: it records the campaign's definition (``campaigns``, as any
    run) and what it would plan as ``dry_run`` rows under keys of their own
    (:func:`relance.keys.dry_run_key`), which nothing ever sends; exits are not applied."""
    as_of = utc(as_of)
    params = {"as_of": as_of, "since": as_of - campaign.lookback_td, "campaign_id": campaign.id,
              **calendar_params(as_of)}
    with wh.begin() as conn:
        record_campaign(wh, campaign, as_of, conn)
        if not campaign.enabled:
            return {"campaign_id": campaign.id, "enabled": False, "triggers": 0, "due": 0, "planned": 0}
        went_live = live_since(wh, conn)
        params.update(due_windows(campaign, as_of, went_live))
        params.update(offset_due_window(campaign, as_of, went_live))
        triggers = transforms.apply(campaign.trigger_transform, wh.query(campaign.trigger_sql, params, conn), as_of)
        rows = plan_rows(campaign, triggers, as_of, run_id, went_live)
        # send_time: best_hour — a send_after at the customer's best local hour, and the A/B arm
        arms = send_time.apply_send_time(wh, campaign, rows, as_of, conn)
        if dry_run:
            return _record_dry_run(wh, campaign, rows, run_id, triggers, conn)
        inserted = wh.insert_rows("message_log", rows, conn, on_conflict_do_nothing=["send_key"])
        wh.insert_rows("send_time_arms", arms, conn, on_conflict_do_nothing=["send_key"])
        if inserted >= ANALYZE_AFTER_PLANNED:
            # a backlog planned at once (a first run on a large shop): the next queries on the
            # outbox should not be planned for the table it was before (PostgreSQL)
            wh.analyze(("message_log",), conn)
        exited = apply_exits(wh, campaign, as_of, conn)
    return {"campaign_id": campaign.id, "triggers": len(triggers), "due": len(rows), "planned": inserted,
            "exited": exited, "as_of": as_of.astimezone(UTC).isoformat()}

"""A/B results and holdout lift, as of a report day (the tables behind the ``ab_results`` and
``holdout_lift`` views). Counts come from SQL; the intervals and tests from
:mod:`relance.results.stats` (SQLite has no portable sqrt / erf).

**A/B** — per campaign, step and variant, over every message sent before the report's end:
recipients (messages sent), delivery rate (delivered / recipients), open and click rates (over
delivered; a click counts as an open), conversion rate (messages credited with an order /
recipients), revenue per recipient, each with its interval, and the p-value of a two-proportion
z-test of the conversion rate against the campaign's first variant (the control).

**Holdout (intent-to-treat)** — per campaign with a holdout: every customer whose decision was
``holdout`` against every customer assigned to treatment (their message reached the holdout
decision and was not held out, whatever happened next: sent, capped, deferred …). Outcome: the
customer's completed orders within ``window_days`` after their first decision (cut at the
report's end for both groups alike), conversion = at least one such order. Lift: treated minus
holdout (absolute, Newcombe / Welch intervals) and treated / holdout - 1 (relative, log
intervals), plus the p-value of the conversion difference.
"""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime, timedelta
from typing import Any

from relance.results import stats
from relance.timeutil import utc
from relance.warehouse import Warehouse


def _controls(wh: Warehouse, conn) -> dict[str, str]:
    """Campaign → its first declared variant."""
    out = {}
    for row in wh.query("report/campaign_variants", None, conn):
        try:
            variants = json.loads(row["definition"]).get("variants") or []
            if variants:
                out[row["campaign_id"]] = variants[0]["name"]
        except (ValueError, TypeError, KeyError):
            continue
    return out


def _bounds(interval: stats.Interval, prefix: str) -> dict[str, float | None]:
    return {f"{prefix}_low": interval[0], f"{prefix}_high": interval[1]}


def ab_rows(outcomes: list[dict[str, Any]], controls: dict[str, str], report_date: date, computed_at: datetime,
            confidence: float = stats.CONFIDENCE) -> list[dict[str, Any]]:
    """The report_ab_results rows of some per-variant counts (pure)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in outcomes:
        groups.setdefault((row["campaign_id"], int(row["step"])), []).append(row)
    out = []
    for (campaign_id, step), rows in sorted(groups.items()):
        names = [r["variant"] for r in rows]
        control_name = controls.get(campaign_id) if controls.get(campaign_id) in names else sorted(names)[0]
        control = next(r for r in rows if r["variant"] == control_name)
        for row in rows:
            n, delivered = int(row["recipients"]), int(row["delivered"])
            opened, clicked, converted = int(row["opened"]), int(row["clicked"]), int(row["converted"])
            revenue, revenue_sq = float(row["revenue"] or 0), float(row["revenue_sq"] or 0)
            is_control = row["variant"] == control_name
            out.append({
                "report_date": report_date, "campaign_id": campaign_id, "step": step,
                "step_name": row["step_name"], "variant": row["variant"], "is_control": is_control,
                "recipients": n, "delivered": delivered, "opened": opened, "clicked": clicked,
                "converted": converted, "revenue": revenue,
                "delivery_rate": stats.rate(delivered, n), **_bounds(stats.wilson(delivered, n, confidence),
                                                                      "delivery_rate"),
                "open_rate": stats.rate(opened, delivered), **_bounds(stats.wilson(opened, delivered, confidence),
                                                                       "open_rate"),
                "click_rate": stats.rate(clicked, delivered), **_bounds(stats.wilson(clicked, delivered, confidence),
                                                                         "click_rate"),
                "conversion_rate": stats.rate(converted, n), **_bounds(stats.wilson(converted, n, confidence),
                                                                        "conversion_rate"),
                "revenue_per_recipient": revenue / n if n else None,
                **_bounds(stats.mean_interval(revenue, revenue_sq, n, confidence), "revenue_per_recipient"),
                "conversion_p_value": None if is_control else stats.two_proportion_p_value(
                    converted, n, int(control["converted"]), int(control["recipients"])),
                "confidence": confidence, "computed_at": computed_at,
            })
    return out


Outcome = tuple[bool, float]  # (ordered within the window, revenue of those orders)


def holdout_row(campaign_id: str, treated: list[Outcome], held: list[Outcome], window_days: int,
                report_date: date, computed_at: datetime, confidence: float = stats.CONFIDENCE) -> dict[str, Any]:
    """One report_holdout_lift row from each group's per-customer outcomes (pure)."""
    nt, nh = len(treated), len(held)
    kt, kh = sum(1 for c, _ in treated if c), sum(1 for c, _ in held if c)
    st, sh = stats.summarise([v for _, v in treated]), stats.summarise([v for _, v in held])
    pt, ph = stats.rate(kt, nt), stats.rate(kh, nh)
    mt, mh = (st[0] / nt if nt else None), (sh[0] / nh if nh else None)
    rel = stats.ratio_of_proportions(kt, nt, kh, nh, confidence)
    rel_rev = stats.ratio_of_means(st, sh, confidence)
    return {
        "report_date": report_date, "campaign_id": campaign_id, "window_days": window_days,
        "treated_customers": nt, "treated_converted": kt, "treated_revenue": st[0],
        "holdout_customers": nh, "holdout_converted": kh, "holdout_revenue": sh[0],
        "treated_conversion_rate": pt, "holdout_conversion_rate": ph,
        "conversion_lift": pt - ph if None not in (pt, ph) else None,
        **_bounds(stats.difference_of_proportions(kt, nt, kh, nh, confidence), "conversion_lift"),
        "conversion_lift_relative": pt / ph - 1 if pt is not None and ph else None,
        "conversion_lift_relative_low": rel[0] - 1 if rel[0] is not None else None,
        "conversion_lift_relative_high": rel[1] - 1 if rel[1] is not None else None,
        "conversion_p_value": stats.two_proportion_p_value(kt, nt, kh, nh),
        "treated_revenue_per_customer": mt, "holdout_revenue_per_customer": mh,
        "revenue_lift": mt - mh if None not in (mt, mh) else None,
        **_bounds(stats.difference_of_means(st, sh, confidence), "revenue_lift"),
        "revenue_lift_relative": mt / mh - 1 if mt is not None and mh else None,
        "revenue_lift_relative_low": rel_rev[0] - 1 if rel_rev[0] is not None else None,
        "revenue_lift_relative_high": rel_rev[1] - 1 if rel_rev[1] is not None else None,
        "confidence": confidence, "computed_at": computed_at,
    }


def _customer_outcomes(wh: Warehouse, conn, population: list[dict[str, Any]], window: timedelta,
                       as_of: datetime) -> dict[tuple[str, str], Outcome]:
    """(campaign, customer) → (any order, revenue) in (first decision, first decision + window],
    never past ``as_of``."""
    if not population:
        return {}
    firsts = {(p["campaign_id"], p["customer_id"]): utc(p["first_decided_at"]) for p in population}
    since = min(firsts.values())
    customers = sorted({c for _, c in firsts})
    orders: dict[str, list[tuple[datetime, float]]] = {}
    for start in range(0, len(customers), 500):
        for row in wh.query("report/orders_of_customers", {"customer_ids": customers[start:start + 500],
                                                           "since": since, "until": as_of}, conn):
            orders.setdefault(row["customer_id"], []).append((utc(row["ordered_at"]), float(row["revenue"] or 0)))
    out = {}
    for (campaign_id, customer_id), first in firsts.items():
        placed = sorted(orders.get(customer_id, []))
        times = [t for t, _ in placed]
        lo = bisect.bisect_right(times, first)
        hi = bisect.bisect_right(times, min(first + window, as_of))
        out[(campaign_id, customer_id)] = (hi > lo, sum(v for _, v in placed[lo:hi]))
    return out


def compute_results(wh: Warehouse, report_date: date, as_of: datetime, window_days: int,
                    computed_at: datetime, confidence: float = stats.CONFIDENCE) -> dict[str, int]:
    """Replace the report day's A/B and holdout snapshots (one transaction)."""
    as_of = utc(as_of)
    with wh.begin() as conn:
        ab = ab_rows(wh.query("report/message_outcomes", {"as_of": as_of}, conn), _controls(wh, conn),
                     report_date, computed_at, confidence)
        population = wh.query("report/holdout_population", {"as_of": as_of}, conn)
        revenue = _customer_outcomes(wh, conn, population, timedelta(days=window_days), as_of)
        groups: dict[str, tuple[list[Outcome], list[Outcome]]] = {}
        for person in population:
            treated, held = groups.setdefault(person["campaign_id"], ([], []))
            (held if int(person["held_out"]) else treated).append(
                revenue[(person["campaign_id"], person["customer_id"])])
        holdout = [holdout_row(cid, t, h, window_days, report_date, computed_at, confidence)
                   for cid, (t, h) in sorted(groups.items())]
        wh.execute("report/delete_ab_day", {"report_date": report_date}, conn)
        wh.execute("report/delete_holdout_day", {"report_date": report_date}, conn)
        wh.insert_rows("report_ab_results", ab, conn)
        wh.insert_rows("report_holdout_lift", holdout, conn)
    return {"ab_rows": len(ab), "holdout_campaigns": len(holdout)}

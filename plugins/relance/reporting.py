"""Summaries of the outbox for people: the demo's table and ``relance report``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from relance.warehouse import Warehouse

#: statuses of a message that may still be sent
WAITING = ("planned", "queued", "sending", "deferred_quiet_hours")


def _entry(name: str) -> dict[str, Any]:
    return {"name": name, "planned": 0, "sent": 0, "waiting": 0, "skipped": {}}


def _count(entry: dict[str, Any], status: str, messages: int) -> None:
    entry["planned"] += messages
    if status == "sent":
        entry["sent"] += messages
    elif status in WAITING:
        entry["waiting"] += messages
    else:
        entry["skipped"][status] = entry["skipped"].get(status, 0) + messages


def campaign_summary(wh: Warehouse) -> list[dict[str, Any]]:
    """Per campaign (and per step, for campaigns of several steps): messages planned, sent,
    still waiting, and skipped by status."""
    out: dict[str, dict[str, Any]] = {}
    for row in wh.query("reporting/campaign_status_counts"):
        campaign = out.setdefault(row["campaign_id"], {**_entry(row["campaign_id"]), "campaign_id": row["campaign_id"],
                                                       "steps": {}})
        step = campaign["steps"].setdefault(row["step"], _entry(f"{row['step']}. {row['step_name']}"))
        _count(campaign, row["status"], row["messages"])
        _count(step, row["status"], row["messages"])
    return list(out.values())


def format_campaign_summary(summary: list[dict[str, Any]]) -> str:
    header = f"{'campaign / step':<32} {'planned':>8} {'sent':>7} {'waiting':>8}  skipped by reason"
    lines = [header, "-" * len(header)]

    def line(entry: dict[str, Any], label: str) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(entry["skipped"].items())) or "-"
        return f"{label:<32} {entry['planned']:>8} {entry['sent']:>7} {entry['waiting']:>8}  {skipped}"

    for entry in summary:
        lines.append(line(entry, entry["campaign_id"]))
        if len(entry["steps"]) > 1:
            lines += [line(step, f"  {step['name']}") for _, step in sorted(entry["steps"].items())]
    if not summary:
        lines.append("(no messages planned yet)")
    folded = sum(entry["skipped"].get("digested", 0) for entry in summary if entry["campaign_id"] != "digest")
    if folded:
        digests = next((e for e in summary if e["campaign_id"] == "digest"), _entry("digest"))
        lines.append(f"digests: {folded} messages that lost the daily cap folded into digests; "
                     f"{digests['sent']} digests sent, {digests['waiting']} to come")
    return "\n".join(lines)


def channel_figures(wh: Warehouse) -> list[dict[str, Any]]:
    """Per channel (``email``, ``sms``): messages ``sent``, and for SMS their ``segments`` and
    ``cost`` (``tm_sms_cost_per_segment`` at send time)."""
    return [{"channel": r["channel"], "sent": int(r["sent"] or 0), "segments": int(r["segments"] or 0),
             "cost": _number(r["cost"])} for r in wh.query("reporting/channel_counts")]


def format_channels(figures: list[dict[str, Any]]) -> str:
    """One line: sends by channel, and what the SMS cost (the demo's summary)."""
    parts = []
    for row in figures:
        if row["channel"] == "sms":
            parts.append(f"sms {row['sent']} sent ({row['segments']} segments, cost {row['cost']:.2f})")
        else:
            parts.append(f"{row['channel']} {row['sent']} sent")
    return "by channel: " + ("; ".join(parts) if parts else "nothing sent yet")


def send_time_figures(wh: Warehouse) -> list[dict[str, Any]]:
    """Send-time optimisation's A/B split (issue 12, item 5), per campaign with ``send_time:
    best_hour``: per arm (``best_hour``, ``fixed``) the messages ``sent``, how many were ``moved``
    to a best hour, ``opened``, ``clicked``, ``converted`` and their rates over sent; for the
    best-hour arm the p-value of a two-proportion z-test of its click and conversion rates
    against the fixed arm's (``click_p_value``, ``conversion_p_value``)."""
    from relance.results import stats

    by_campaign: dict[str, dict[str, dict[str, Any]]] = {}
    for row in wh.query("reporting/send_time_arms"):
        entry = {key: int(row[key] or 0) for key in ("sent", "moved", "opened", "clicked", "converted")}
        for key in ("opened", "clicked", "converted"):
            entry[f"{key}_rate"] = stats.rate(entry[key], entry["sent"])
        by_campaign.setdefault(row["campaign_id"], {})[row["arm"]] = entry
    out = []
    for campaign_id, arms in sorted(by_campaign.items()):
        best, fixed = arms.get("best_hour"), arms.get("fixed")
        p_values = {"click_p_value": None, "conversion_p_value": None}
        if best and fixed:
            for key in ("clicked", "converted"):
                name = "click_p_value" if key == "clicked" else "conversion_p_value"
                p_values[name] = stats.two_proportion_p_value(best[key], best["sent"], fixed[key], fixed["sent"])
        out.append({"campaign_id": campaign_id, "best_hour": best, "fixed": fixed, **p_values})
    return out


def format_send_time(figures: list[dict[str, Any]]) -> str:
    """Send-time optimisation against the fixed hour, one line per campaign and arm."""
    lines = ["Send-time optimisation (best local hour vs the campaign's fixed time; p-value against fixed)"]
    for row in figures:
        for arm in ("best_hour", "fixed"):
            entry = row[arm]
            if not entry:
                lines.append(f"  {row['campaign_id']} {arm}: nothing sent yet")
                continue
            moved = f" ({entry['moved']} moved)" if arm == "best_hour" else ""
            test = ""
            if arm == "best_hour" and row["click_p_value"] is not None:
                conversion = row["conversion_p_value"]
                test = f"; click p = {row['click_p_value']:.2f}" + (
                    "" if conversion is None else f", conversion p = {conversion:.2f}")
            lines.append(f"  {row['campaign_id']} {arm}: {entry['sent']} sent{moved}, opened "
                         f"{_pct(entry['opened_rate'])}, clicked {_pct(entry['clicked_rate'])}, converted "
                         f"{_pct(entry['converted_rate'], 2)}{test}")
    if not figures:
        lines.append("  (no campaign with send_time: best_hour has sent yet)")
    return "\n".join(lines)


def digest_figures(wh: Warehouse) -> dict[str, int]:
    """Digests (issue 12): messages folded into one (``folded``), digests ``digests_sent``,
    ``digests_waiting``, ``digests_carried_over`` (lost the daily cap themselves: their items went
    to the next digest) and ``digests_not_sent`` (no consent, no content …)."""
    (row,) = wh.query("reporting/digest_counts")
    return {key: int(value or 0) for key, value in row.items()}


# --- the report's headline figures (campaign_report's views) ---------------------------------

#: the funnel's stages, in order, as the campaign_daily view names them
FUNNEL = ("sent", "delivered", "opened", "clicked", "converted")
#: a variant "wins" only when its conversion differs from the control's at this p-value
WINNER_P_VALUE = 0.05


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _rows(wh: Warehouse, name: str) -> list[dict[str, Any]]:
    out = []
    for row in wh.query(name):
        out.append({k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()})
    return out


def ab_verdicts(ab_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (campaign, step) with several variants: the variant with the best conversion rate,
    and whether it beats the control (p-value below :data:`WINNER_P_VALUE`)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in ab_rows:
        groups.setdefault((row["campaign_id"], int(row["step"])), []).append(row)
    verdicts = []
    for (campaign_id, step), rows in sorted(groups.items()):
        if len(rows) < 2:
            continue
        control = next((r for r in rows if r["is_control"]), rows[0])
        best = max(rows, key=lambda r: (_number(r["conversion_rate"]), r is control))
        p_value = best["conversion_p_value"] if best is not control else None
        significant = p_value is not None and p_value < WINNER_P_VALUE
        verdicts.append({"campaign_id": campaign_id, "step": step, "step_name": rows[0]["step_name"],
                         "control": control["variant"], "leader": best["variant"],
                         "winner": best["variant"] if significant else None, "p_value": p_value,
                         "variants": rows})
    return verdicts


def headline(wh: Warehouse) -> dict[str, Any]:
    """The report's headline figures: the funnel per campaign (campaign_daily), the A/B
    verdicts (ab_results) and the holdout lift (holdout_lift), as of the newest report day."""
    funnel = _rows(wh, "reporting/campaign_funnel")
    for row in funnel:
        for key, value in row.items():
            if key != "campaign_id":
                row[key] = _number(value) if key == "revenue" else int(value or 0)
    ab = _rows(wh, "reporting/ab_results")
    lift = _rows(wh, "reporting/holdout_lift")
    report_dates = {str(r["report_date"]) for r in ab + lift}
    return {"funnel": funnel, "ab": ab, "verdicts": ab_verdicts(ab), "lift": lift,
            "report_date": max(report_dates) if report_dates else None}


def _pct(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * float(value):.{digits}f} %"


def _interval(row: dict[str, Any], key: str, digits: int = 1) -> str:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None:
        return _pct(row.get(key), digits)
    return f"{_pct(row.get(key), digits)} [{_pct(low, digits)}, {_pct(high, digits)}]"


def _signed_pp(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):+.1f} pp"


def format_headline(figures: dict[str, Any]) -> str:
    """The headline figures as text (the end of ``make demo`` and ``relance report``)."""
    header = (f"{'campaign':<24} {'sent':>6} {'delivered':>9} {'opened':>7} {'clicked':>7} "
              f"{'converted':>9} {'revenue':>10}")
    as_of = figures["report_date"] or "no campaign_report run yet"
    lines = [f"Campaign results (campaign_report as of {as_of})", header, "-" * len(header)]
    for row in figures["funnel"]:
        lines.append(f"{row['campaign_id']:<24} {row['sent']:>6} {row['delivered']:>9} {row['opened']:>7} "
                     f"{row['clicked']:>7} {row['converted']:>9} {row['revenue']:>10.2f}")
    if not figures["funnel"]:
        lines.append("(no messages yet)")
    lines += ["", "A/B tests (conversion rate, 95 % interval; p-value against the control)"]
    for verdict in figures["verdicts"]:
        if verdict["winner"]:
            outcome = f"winner {verdict['winner']} (p = {verdict['p_value']:.3f})"
        else:
            p = "" if verdict["p_value"] is None else f", p = {verdict['p_value']:.2f}"
            outcome = f"no significant winner (leading: {verdict['leader']}{p})"
        lines.append(f"  {verdict['campaign_id']} step {verdict['step']} ({verdict['step_name']}): {outcome}")
        for row in verdict["variants"]:
            control = " (control)" if row["is_control"] else ""
            lines.append(f"    {row['variant']}{control}: {row['recipients']} recipients, "
                         f"conversion {_interval(row, 'conversion_rate', 2)}")
    if not figures["verdicts"]:
        lines.append("  (no campaign with several variants has results yet)")
    lines += ["", "Holdout lift (conversion within the window, treated vs held out; 95 % interval)"]
    for row in figures["lift"]:
        low, high = row.get("conversion_lift_low"), row.get("conversion_lift_high")
        interval = "" if low is None or high is None else f" [{_signed_pp(low)}, {_signed_pp(high)}]"
        relative = row.get("conversion_lift_relative")
        rel = "" if relative is None else f", relative {100 * float(relative):+.0f} %"
        lines.append(f"  {row['campaign_id']}: treated {_pct(row['treated_conversion_rate'])} of "
                     f"{row['treated_customers']}, holdout {_pct(row['holdout_conversion_rate'])} of "
                     f"{row['holdout_customers']}: lift {_signed_pp(row['conversion_lift'])}{interval}{rel}")
    if not figures["lift"]:
        lines.append("  (no campaign with a holdout has results yet)")
    return "\n".join(lines)

"""Summaries of the outbox for people: the demo's table and ``relance report``."""

from __future__ import annotations

from typing import Any

from relance.warehouse import Warehouse


def campaign_summary(wh: Warehouse) -> list[dict[str, Any]]:
    """Per campaign: rows planned, sent, still waiting, and skips by status."""
    rows = wh.query("reporting/campaign_status_counts")
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["campaign_id"], {"campaign_id": row["campaign_id"], "planned": 0, "sent": 0,
                                                    "waiting": 0, "skipped": {}})
        entry["planned"] += row["messages"]
        if row["status"] == "sent":
            entry["sent"] += row["messages"]
        elif row["status"] in ("planned", "queued", "sending", "deferred_quiet_hours"):
            entry["waiting"] += row["messages"]
        else:
            entry["skipped"][row["status"]] = entry["skipped"].get(row["status"], 0) + row["messages"]
    return list(out.values())


def format_campaign_summary(summary: list[dict[str, Any]]) -> str:
    header = f"{'campaign':<26} {'planned':>8} {'sent':>7} {'waiting':>8}  skipped by reason"
    lines = [header, "-" * len(header)]
    for entry in summary:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(entry["skipped"].items())) or "-"
        lines.append(f"{entry['campaign_id']:<26} {entry['planned']:>8} {entry['sent']:>7} "
                     f"{entry['waiting']:>8}  {skipped}")
    if not summary:
        lines.append("(no messages planned yet)")
    return "\n".join(lines)

"""What a dispatcher run decided: counts per campaign and status, campaigns whose template broke,
and what makes the run red (:func:`run_problems`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relance.dispatch.policy import DELIVERABILITY_MIN_EVENTS, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_WINDOW
from relance.dispatch.rules import HELD, deliverability
from relance.dispatch.send import MISSING_SECRET, TEMPLATE_ERROR
from relance.timeutil import utc
from relance.warehouse import Warehouse


def summary(wh: Warehouse, as_of: datetime, batch_ids: list[str]) -> list[dict[str, Any]]:
    """Counts per campaign and status of the rows decided at ``as_of`` and of the run's batches
    (the ids :func:`relance.dispatch.prepare` returned: passed, not matched by a ``LIKE
    'run#%'`` that no index serves)."""
    return wh.query("outbox/run_summary", {"as_of": utc(as_of), "batch_ids": list(batch_ids)})


def failed_templates(wh: Warehouse, batch_ids: list[str]) -> list[str]:
    """Campaigns whose messages failed on a template error in this run's batches."""
    rows = wh.query("outbox/template_failures", {"batch_ids": list(batch_ids), "prefix": f"{TEMPLATE_ERROR}%"})
    return sorted(r["campaign_id"] for r in rows)


def run_problems(wh: Warehouse, as_of: datetime, batch_ids: list[str]) -> list[str]:
    """Why this run must turn red (empty: green): a campaign failed closed on a template error;
    the deliverability guard holds marketing (the rates as of the run, and what it held);
    marketing failed for want of ``tm_unsubscribe_secret``."""
    as_of = utc(as_of)
    problems = []
    broken = failed_templates(wh, batch_ids)
    if broken:
        problems.append(f"template errors, campaigns failed closed: {broken}")
    state = deliverability(wh, as_of, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    held = wh.query("outbox/held_in_run", {"as_of": as_of, "prefix": f"{HELD}%"})
    if state.tripped or held:
        counts = ", ".join(f"{r['campaign_id']}: {r['messages']}" for r in held) or "nothing due"
        problems.append(f"deliverability guard: marketing held ({state.reason() if state.tripped else held[0]['reason']})"
                        f" — bounce rate {state.bounce_rate:.2%} (max {state.max_bounce_rate:.2%}), complaint rate "
                        f"{state.complaint_rate:.3%} (max {state.max_complaint_rate:.3%}) over {state.sends} sends "
                        f"since {state.since:%Y-%m-%d %H:%M}; held: {counts}; transactional mail went on")
    secret = wh.query("outbox/missing_secret_failures", {"batch_ids": list(batch_ids), "prefix": f"{MISSING_SECRET}%"})
    if secret:
        counts = ", ".join(f"{r['campaign_id']}: {r['messages']}" for r in secret)
        problems.append(f"marketing failed: the Variable tm_unsubscribe_secret is not set and signed unsubscribe "
                        f"links need it ({counts})")
    return problems

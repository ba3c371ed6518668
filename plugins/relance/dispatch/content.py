"""What a template sees: the customer, the trigger's context and the step's content queries.

The send loop runs the content queries of many rows at once (:func:`fetch_content`: each
content query for up to CONTENT_CHUNK rows in one go, right before those rows are sent);
:func:`build_context` runs one row's queries itself for what was not fetched (a digest's
sections, a row outside the send loop)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign, Step
from relance.dispatch.digests import digest_sections
from relance.timeutil import utc
from relance.warehouse import Warehouse, load_sql
from relance.warehouse.cursor import cursor_statements
from relance.warehouse.sqlfiles import PARAM


@cache
def query_params(query: str) -> frozenset[str]:
    """The ``:name`` parameters of a content query."""
    return frozenset(PARAM.findall(load_sql(f"content/{query}")))


def _param(key: str, value: Any) -> Any:
    """Context values back to SQL parameters: ``*_at`` keys are timestamps."""
    if key.endswith("_at") and isinstance(value, str):
        return utc(value)
    return value


def _query_params(trigger_context: dict[str, Any], row: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    """Every parameter a content query of the row may name: the trigger's context and the row's keys."""
    params = {key: _param(key, value) for key, value in trigger_context.items()}
    params.update({"customer_id": row["customer_id"], "trigger_id": row["trigger_id"], "send_key": row.get("send_key"),
                   "trigger_at": utc(row["trigger_at"]), "as_of": utc(as_of)})
    return params


def _bound(query: str, params: dict[str, Any]) -> dict[str, Any]:
    # a context column a newer trigger adds is absent from rows planned before: NULL
    return {name: params.get(name) for name in query_params(query)}


def build_context(wh: Warehouse, campaign: Campaign, step: Step, row: dict[str, Any], as_of: datetime,
                  campaigns: dict[str, Campaign] | None = None,
                  fetched: dict[str, list[dict[str, Any]]] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Template variables for one outbox row, and the required content blocks that are empty.

    ``fetched``: the row's content query results already fetched (:func:`fetch_content`); the
    queries not in it are run here. A digest (the ``digest`` campaign) gets its folded messages
    as sections (:func:`relance.dispatch.digests.digest_sections`, built with their own
    campaigns from ``campaigns``): ``digest_items`` holds the sections still worth showing."""
    trigger_context = json.loads(row.get("context") or "{}")
    params = _query_params(trigger_context, row, as_of)
    context: dict[str, Any] = {
        **trigger_context,
        "customer": {"customer_id": row["customer_id"], "first_name": row.get("first_name"),
                     "last_name": row.get("last_name"), "email": row.get("email"), "locale": row.get("locale")},
        "campaign": {"id": campaign.id, "step": step.name, "variant": row["variant"]},
        "shop": {"name": settings.SHOP_NAME, "url": settings.SHOP_URL},
        "unsubscribe_url": None,
    }
    for query in step.content:
        if fetched is not None and query in fetched:
            context[query] = list(fetched[query])  # a list of its own: rows with the same parameters share theirs
        else:
            context[query] = wh.query(f"content/{query}", _bound(query, params))
    if "digest_items" in context:
        context["digest_items"] = digest_sections(wh, context["digest_items"], campaigns or {campaign.id: campaign},
                                                  row, as_of, build_context)
    missing = [name for name in step.required if not context.get(name)]
    return context, missing


#: Rows whose content is fetched at once at most. The send loop fetches the content of the
#: next CONTENT_CHUNK rows of its batch at once, and again once that is CONTENT_MAX_AGE seconds
#: old: a message shows its content as of at most that long (or that many sends) before it is
#: rendered — an out-of-stock product is still never mailed later than that after the snapshot.
CONTENT_CHUNK = 50
CONTENT_MAX_AGE = 2.0


def query_many(wh: Warehouse, query: str, param_sets: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rows of the content query ``query`` for each parameter set (identical sets queried
    once): the per-row statement, prepared once, run for every set through the DB-API cursor of
    a pinned connection (:meth:`CursorStatements.query_each`: on PostgreSQL every set in one
    round trip, pipelined; on SQLite in one read transaction) — the per-row query as it stands,
    so the content is what it gives, set by set. (One statement of CONTENT_CHUNK copies of the
    query instead, tried first: compiled and planned afresh for every batch, since a send task's
    connections live one batch — 0.28 ms of CPU a row on SQLite, 0.4 ms of the server's on
    PostgreSQL.) A warehouse not pinned runs the query per set."""
    distinct: dict[tuple, int] = {}
    unique: list[dict[str, Any]] = []
    which = []
    for params in param_sets:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in distinct:
            distinct[key] = len(unique)
            unique.append(params)
        which.append(distinct[key])
    statements = cursor_statements(wh)
    if statements is not None:
        results = statements.query_each(f"content/{query}", unique)
    else:
        results = [wh.query(f"content/{query}", params) for params in unique]
    return [results[i] for i in which]


def fetch_content(wh: Warehouse, campaigns: dict[str, Campaign], rows: list[dict[str, Any]],
                  as_of: datetime) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The content query results of ``rows`` (send_key → query → rows), each content query run
    once for all the rows whose step names it (:func:`query_many`). Rows of an unknown campaign
    or step are left out (render_one fails them)."""
    wanted: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for row in rows:
        campaign = campaigns.get(row["campaign_id"])
        if campaign is None or not 1 <= row["step"] <= len(campaign.steps):
            continue
        params = _query_params(json.loads(row.get("context") or "{}"), row, as_of)
        for query in campaign.steps[row["step"] - 1].content:
            wanted.setdefault(query, []).append((row["send_key"], _bound(query, params)))
    fetched: dict[str, dict[str, list[dict[str, Any]]]] = {row["send_key"]: {} for row in rows}
    for query, items in wanted.items():
        for (send_key, _), result in zip(items, query_many(wh, query, [p for _, p in items]), strict=True):
            fetched[send_key][query] = result
    return fetched

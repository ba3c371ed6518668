"""What a template sees: the customer, the trigger's context and the step's content queries."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign, Step
from relance.dispatch.digests import digest_sections
from relance.timeutil import utc
from relance.warehouse import Warehouse, load_sql

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@cache
def query_params(query: str) -> frozenset[str]:
    """The ``:name`` parameters of a content query."""
    return frozenset(_PARAM.findall(load_sql(f"content/{query}")))


def _param(key: str, value: Any) -> Any:
    """Context values back to SQL parameters: ``*_at`` keys are timestamps."""
    if key.endswith("_at") and isinstance(value, str):
        return utc(value)
    return value


def build_context(wh: Warehouse, campaign: Campaign, step: Step, row: dict[str, Any], as_of: datetime,
                  campaigns: dict[str, Campaign] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Template variables for one outbox row, and the required content blocks that are empty.

    A digest (the ``digest`` campaign) gets its folded messages as sections
    (:func:`relance.dispatch.digests.digest_sections`, built with their own campaigns from
    ``campaigns``): ``digest_items`` holds the sections still worth showing."""
    trigger_context = json.loads(row.get("context") or "{}")
    params = {key: _param(key, value) for key, value in trigger_context.items()}
    params.update({"customer_id": row["customer_id"], "trigger_id": row["trigger_id"], "send_key": row.get("send_key"),
                   "trigger_at": utc(row["trigger_at"]), "as_of": utc(as_of)})
    context: dict[str, Any] = {
        **trigger_context,
        "customer": {"customer_id": row["customer_id"], "first_name": row.get("first_name"),
                     "last_name": row.get("last_name"), "email": row.get("email"), "locale": row.get("locale")},
        "campaign": {"id": campaign.id, "step": step.name, "variant": row["variant"]},
        "shop": {"name": settings.SHOP_NAME, "url": settings.SHOP_URL},
        "unsubscribe_url": None,
    }
    for query in step.content:
        # a context column a newer trigger adds is absent from rows planned before: NULL
        bound = {name: params.get(name) for name in query_params(query)}
        context[query] = wh.query(f"content/{query}", bound)
    if "digest_items" in context:
        context["digest_items"] = digest_sections(wh, context["digest_items"], campaigns or {campaign.id: campaign},
                                                  row, as_of, build_context)
    missing = [name for name in step.required if not context.get(name)]
    return context, missing

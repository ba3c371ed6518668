"""Customer features for segments and propensity, computed in SQL (``include/sql/ml/``).

The warehouse aggregates (orders, revenue, behaviour per customer); pandas only turns the
returned timestamps into ages in days, as of the run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from relance.ml.frames import read_frame
from relance.warehouse import Warehouse

#: Features of the propensity model (all derived from ``customer_features.sql``).
PROPENSITY_FEATURES = ["recency_days", "frequency", "monetary", "orders_90d", "orders_365d", "tenure_days",
                       "avg_order_value", "refunds", "views_30d", "carts_30d", "wishlists_30d", "never_bought",
                       "decayed_orders", "trend", "recency_vs_gap", "p_alive", "expected_90d"]
#: Added by :func:`relance.ml.bgnbd.features` with the parameters fitted on the training snapshot.
BGNBD_FEATURES = ["p_alive", "expected_90d"]


def _days_before(moment: datetime, column: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(column, utc=True, errors="coerce", format="mixed")
    return (pd.Timestamp(moment) - stamps).dt.total_seconds() / 86400.0


def customer_features(wh: Warehouse, as_of: datetime, snapshot: bool = False) -> pd.DataFrame:
    """One row per customer known before ``as_of``: RFM and behaviour as of then, order statuses
    included (index: customer_id). ``snapshot``: a past snapshot (training, evaluation), whose
    population is only the customers with evidence of existing before ``as_of``; otherwise
    (scoring as of the run) customers without a ``created_at`` trait are scored too."""
    params = {"as_of": as_of, "d30": as_of - timedelta(days=30), "d90": as_of - timedelta(days=90),
              "d180": as_of - timedelta(days=180), "d365": as_of - timedelta(days=365),
              "snapshot": int(snapshot)}
    frame = read_frame(wh, "ml/customer_features", params)
    if frame.empty:
        frame = pd.DataFrame(columns=["customer_id", "created_at", "frequency", "monetary", "refunds",
                                      "orders_90d", "orders_prev_90d", "orders_365d", "first_order_at",
                                      "last_order_at",
                                      "views_30d", "carts_30d", "wishlists_30d", "last_seen_at"])
    frame = frame.set_index("customer_id")
    for col in ("frequency", "monetary", "refunds", "orders_90d", "orders_prev_90d", "orders_365d", "views_30d",
                "carts_30d", "wishlists_30d"):
        frame[col] = pd.to_numeric(frame[col]).fillna(0).astype(float)
    tenure_from = frame["created_at"].where(frame["created_at"].notna(), frame["first_order_at"])
    frame["tenure_days"] = _days_before(as_of, tenure_from).fillna(0.0).clip(lower=0)
    # never bought: recency is the tenure (how long they have been waiting), flagged separately
    frame["recency_days"] = _days_before(as_of, frame["last_order_at"]).fillna(frame["tenure_days"])
    frame["never_bought"] = (frame["frequency"] == 0).astype(float)
    frame["avg_order_value"] = np.where(frame["frequency"] > 0, frame["monetary"] / frame["frequency"].clip(1), 0.0)
    # time-decayed order count (weights 1, 0.6, 0.3, 0.1 by age: < 90 d, < 180 d, < 365 d, older)
    older = (frame["orders_365d"] - frame["orders_90d"] - frame["orders_prev_90d"]).clip(lower=0)
    frame["decayed_orders"] = (frame["orders_90d"] + 0.6 * frame["orders_prev_90d"] + 0.3 * older
                               + 0.1 * (frame["frequency"] - frame["orders_365d"]).clip(lower=0))
    # trend: the last 90 days against the 90 before (> 1 = buying more)
    frame["trend"] = (frame["orders_90d"] + 1) / (frame["orders_prev_90d"] + 1)
    # recency relative to the customer's own gap between orders (0 with fewer than two orders)
    frame["first_order_days"] = _days_before(as_of, frame["first_order_at"])  # NaN if never ordered
    span = frame["first_order_days"] - frame["recency_days"]
    gap = (span / (frame["frequency"] - 1).clip(lower=1)).clip(lower=1.0)
    frame["recency_vs_gap"] = np.where(frame["frequency"] >= 2, frame["recency_days"] / gap, 0.0)
    return frame


def purchase_labels(wh: Warehouse, start: datetime, end: datetime) -> set[str]:
    """Customers with at least one order in ``(start, end]``."""
    return set(read_frame(wh, "ml/purchase_labels", {"start": start, "end": end})["customer_id"])

"""Repeat purchases: which products are consumables, and how often their buyers buy again.

A leaf of ``relance.ml`` (used by :mod:`relance.ml.recommender` to write
``product_repurchase_intervals`` and by :mod:`relance.ml.evaluation`, which learns them again
without the held-out baskets).

**Repurchase interval**: the median gap between consecutive purchases of the same product by
the same customer, for products that enough buyers buy again (``MIN_REPEAT_SHARE``) at regular
intervals (``MAX_SPREAD``: chance repeats of durable goods are irregular); those products
count as consumables (they may be recommended again to the customers who bought them).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from relance.ml.frames import read_frame
from relance.ml.itemknn import HISTORY
from relance.warehouse import Warehouse

MIN_GAP_DAYS = 3.0
MIN_GAPS = 3
MIN_REPEAT_SHARE = 0.10
#: Regular habits only: median absolute deviation of the gaps, relative to their median.
MAX_SPREAD = 0.25
COLUMNS = ["product_id", "interval_days", "gaps", "repeat_buyers", "buyers"]


def repurchase_intervals(wh: Warehouse, as_of: datetime, holdout_run: str = "",
                         touches: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per product bought again by enough of its buyers: median days between purchases.

    ``holdout_run``: an offline evaluation's run id — the customers it holds out count only
    with what they bought before their cutoff (``ml_holdout_baskets``). ``touches``: the
    recommender's feedback read with the same ``holdout_run``
    (:func:`relance.ml.itemknn.interactions`, the same window): buyers per product are counted
    from it instead of another pass over every order line."""
    params = {"since": as_of - HISTORY, "as_of": as_of, "holdout_run": holdout_run}
    repeats = read_frame(wh, "ml/repeat_purchases", params)
    if touches is None:
        buyers = read_frame(wh, "ml/product_buyers", params)
    else:
        buyers = touches.loc[touches["bought"].astype(bool), "product_id"].value_counts().rename("buyers")
        repeat_buyers = repeats.drop_duplicates(["customer_id", "product_id"])["product_id"].value_counts()
        buyers = pd.DataFrame({"buyers": buyers, "repeat_buyers": repeat_buyers.reindex(buyers.index).fillna(0)})
        buyers = buyers.rename_axis("product_id").reset_index()
    if repeats.empty or buyers.empty:
        return pd.DataFrame(columns=COLUMNS)
    repeats["ordered_at"] = pd.to_datetime(repeats["ordered_at"], utc=True, format="mixed")
    repeats = repeats.sort_values(["customer_id", "product_id", "ordered_at"], kind="stable")
    same_pair = (repeats["customer_id"] == repeats["customer_id"].shift()) & (
        repeats["product_id"] == repeats["product_id"].shift())
    gap_days = repeats["ordered_at"].diff().dt.total_seconds() / 86400.0
    gaps = pd.DataFrame({"product_id": repeats["product_id"], "gap": gap_days})[same_pair]
    gaps = gaps[gaps["gap"] >= MIN_GAP_DAYS]
    if gaps.empty:
        return pd.DataFrame(columns=COLUMNS)
    per_product = gaps.groupby("product_id")["gap"].agg(interval_days="median", gaps="count").reset_index()
    deviation = (gaps["gap"] - gaps["product_id"].map(per_product.set_index("product_id")["interval_days"])).abs()
    spread = deviation.groupby(gaps["product_id"]).median()
    per_product["spread"] = per_product["product_id"].map(spread) / per_product["interval_days"]
    per_product = per_product.merge(buyers, on="product_id")
    per_product["repeat_buyers"] = per_product["repeat_buyers"].astype(int)
    per_product["buyers"] = per_product["buyers"].astype(int)
    keep = ((per_product["gaps"] >= MIN_GAPS)
            & (per_product["repeat_buyers"] >= MIN_REPEAT_SHARE * per_product["buyers"])
            & (per_product["spread"] <= MAX_SPREAD))
    out = per_product[keep].copy()
    out["interval_days"] = out["interval_days"].round(1)
    return out[COLUMNS].sort_values("product_id").reset_index(drop=True)

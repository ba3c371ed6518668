"""Repeat purchases: which products are consumables, how often their buyers buy again, and
when each customer's next one is due.

A leaf of ``relance.ml`` (used by :mod:`relance.ml.recommender` to write
``product_repurchase_intervals`` and by :mod:`relance.ml.evaluation`, which learns them again
without the held-out baskets).

**Repurchase interval**: the median gap between consecutive purchases of the same product by
the same customer, for products that enough buyers buy again (``MIN_REPEAT_SHARE``) at regular
intervals (``MAX_SPREAD``: chance repeats of durable goods are irregular); those products
count as consumables (they may be recommended again to the customers who bought them).

**Quantity-aware** (issue 14 item 5): a customer who bought 3 units may wait ~3x the
per-unit interval. Whether a product's gaps scale with the units of the purchase before them
is decided from its own data: over the gaps that follow a multi-unit purchase, the per-unit
reading (gap / units against the single-unit interval) must fit better than the per-order one
(gap against it), with at least ``MIN_MULTI_GAPS`` such gaps. ``interval_days`` is then the
interval of one unit and ``per_unit`` is set; otherwise units are ignored.

**Spread**: the median absolute deviation of the log gaps (log(gap / interval)), so 0.35 means
a typical gap within ~±40 % of the interval — real replenishment is that loose; chance repeats
of durable goods spread far wider (an exponential's log gaps have a MAD near 0.8).

**Expected interval of a (customer, product)** (:func:`expected_intervals`): the product's
interval (times the units of the customer's last purchase when ``per_unit``), pulled towards
the customer's own median gap for the product by their number of gaps against
``CUSTOMER_PRIOR_GAPS`` pseudo-gaps of the product's (in log space).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import sparse

from relance.ml.itemknn import ItemKNN, interactions, order_lines, pair_keys
from relance.warehouse import Warehouse

MIN_GAP_DAYS = 3.0
MIN_GAPS = 3
MIN_REPEAT_SHARE = 0.10
#: Regular habits only: median absolute deviation of the log gaps (chosen on the evaluation's
#: validation half among 0.2–0.5, keeping ≥ 90 % of the learned consumables planted ones).
MAX_SPREAD = 0.35
#: Gaps after a multi-unit purchase needed before a product may be read per unit.
MIN_MULTI_GAPS = 3
#: Pseudo-gaps of the product's interval in a customer's own expected interval (chosen on the
#: validation half; larger = the product's interval alone).
CUSTOMER_PRIOR_GAPS = 3.0
COLUMNS = ["product_id", "interval_days", "gaps", "repeat_buyers", "buyers"]


@dataclass
class Repeats:
    """What the repeat purchases taught: ``intervals`` (one row per consumable: COLUMNS plus
    ``spread`` and ``per_unit``) and ``pairs`` (per (customer, product) bought in two orders or
    more: ``own_gaps``, ``own_interval`` (median of their gaps, per unit where the product is
    read per unit) and ``last_quantity``)."""

    intervals: pd.DataFrame
    pairs: pd.DataFrame
    #: what they were learned from (the evaluation learns them again with other settings)
    orders: pd.DataFrame | None = None
    buyers: pd.DataFrame | None = None


def repurchase_intervals(wh: Warehouse, as_of: datetime, holdout_run: str = "",
                         touches: pd.DataFrame | None = None, max_spread: float = MAX_SPREAD) -> pd.DataFrame:
    """Per product bought again by enough of its buyers: median days between purchases (see
    :func:`learn_repeats`)."""
    return learn_repeats(wh, as_of, holdout_run, touches, max_spread).intervals


def learn_repeats(wh: Warehouse, as_of: datetime, holdout_run: str = "", touches: pd.DataFrame | None = None,
                  max_spread: float = MAX_SPREAD, lines: pd.DataFrame | None = None) -> Repeats:
    """Consumables, their intervals and each repeat buyer's own gaps, from the orders before as_of.

    ``holdout_run``: an offline evaluation's run id — the customers it holds out count only
    with what they bought before their cutoff (``ml_holdout_baskets``). ``lines``: the order
    lines read with the same ``holdout_run`` (:func:`relance.ml.itemknn.order_lines`; read here
    if not given). ``touches``: the recommender's feedback from those lines
    (:func:`relance.ml.itemknn.interactions`): buyers per product are counted from it."""
    if lines is None:
        lines = order_lines(wh, as_of, holdout_run)
    if touches is None:
        touches = interactions(wh, as_of, holdout_run, lines=lines)
    repeats = repeat_orders(lines)
    buyers = touches.loc[touches["bought"].astype(bool), "product_id"].value_counts().rename("buyers")
    repeat_buyers = repeats.drop_duplicates(["customer_id", "product_id"])["product_id"].value_counts()
    buyers = pd.DataFrame({"buyers": buyers, "repeat_buyers": repeat_buyers.reindex(buyers.index).fillna(0)})
    buyers = buyers.rename_axis("product_id").reset_index()
    learned = intervals_from_orders(repeats, buyers, max_spread)
    return replace(learned, orders=repeats, buyers=buyers)


def repeat_orders(lines: pd.DataFrame) -> pd.DataFrame:
    """Every order of the (customer, product) pairs bought in at least two different orders, with
    the units bought in it (the order's lines of the product summed; NaN if none is known):
    (customer_id, product_id, ordered_at, quantity), in no particular order."""
    columns = ["customer_id", "product_id", "ordered_at", "quantity"]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    pair, pair_ids = pair_keys(lines["customer_id"], lines["product_id"])
    orders, _ = pd.factorize(lines["order_id"])
    per_line = pd.DataFrame({"pair": pair, "order": orders, "ordered_at": lines["ordered_at"].array,
                             "quantity": lines["quantity"].to_numpy(float)})
    grouped = per_line.groupby(["pair", "order"], sort=False)
    per_order = pd.DataFrame({"ordered_at": grouped["ordered_at"].first(),
                              "quantity": grouped["quantity"].sum(min_count=1)}).reset_index()
    orders_per_pair = per_order["pair"].map(per_order["pair"].value_counts())
    per_order = per_order[orders_per_pair.to_numpy() >= 2]
    customer_ids, product_ids = pair_ids(per_order["pair"].to_numpy(np.int64))
    return pd.DataFrame({"customer_id": customer_ids, "product_id": product_ids,
                         "ordered_at": per_order["ordered_at"].array,
                         "quantity": per_order["quantity"].to_numpy(float)})


def intervals_from_orders(repeats: pd.DataFrame, buyers: pd.DataFrame, max_spread: float = MAX_SPREAD) -> Repeats:
    """:class:`Repeats` from the orders of repeat pairs (customer_id, product_id, ordered_at
    and optionally quantity) and the buyers per product (product_id, buyers, repeat_buyers)."""
    empty = Repeats(pd.DataFrame(columns=[*COLUMNS, "spread", "per_unit"]),
                    pd.DataFrame(columns=["customer_id", "product_id", "own_gaps", "own_interval", "last_quantity"]))
    if repeats.empty or buyers.empty:
        return empty
    repeats = repeats.copy()
    repeats["ordered_at"] = pd.to_datetime(repeats["ordered_at"], utc=True, format="mixed")
    units = (pd.to_numeric(repeats["quantity"], errors="coerce") if "quantity" in repeats
             else pd.Series(1.0, index=repeats.index))
    repeats["quantity"] = units.fillna(1).clip(lower=1).astype(float)
    repeats = repeats.sort_values(["customer_id", "product_id", "ordered_at"], kind="stable")
    same_pair = (repeats["customer_id"] == repeats["customer_id"].shift()) & (
        repeats["product_id"] == repeats["product_id"].shift())
    gaps = pd.DataFrame({"customer_id": repeats["customer_id"], "product_id": repeats["product_id"],
                         "gap": repeats["ordered_at"].diff().dt.total_seconds() / 86400.0,
                         "units": repeats["quantity"].shift()})[same_pair]
    gaps = gaps[gaps["gap"] >= MIN_GAP_DAYS]
    if gaps.empty:
        return empty
    per_unit = _reads_per_unit(gaps)
    gaps["norm"] = np.where(gaps["product_id"].map(per_unit).fillna(False).to_numpy(bool),
                            gaps["gap"] / gaps["units"], gaps["gap"])
    per_product = gaps.groupby("product_id")["norm"].agg(interval_days="median", gaps="count").reset_index()
    interval = gaps["product_id"].map(per_product.set_index("product_id")["interval_days"])
    spread = np.log(gaps["norm"] / interval).abs().groupby(gaps["product_id"]).median()
    per_product["spread"] = per_product["product_id"].map(spread)
    per_product["per_unit"] = per_product["product_id"].map(per_unit).fillna(False).astype(bool)
    per_product = per_product.merge(buyers, on="product_id")
    per_product["repeat_buyers"] = per_product["repeat_buyers"].astype(int)
    per_product["buyers"] = per_product["buyers"].astype(int)
    keep = ((per_product["gaps"] >= MIN_GAPS)
            & (per_product["repeat_buyers"] >= MIN_REPEAT_SHARE * per_product["buyers"])
            & (per_product["spread"] <= max_spread))
    out = per_product[keep].copy()
    out["interval_days"] = out["interval_days"].round(1)
    out["spread"] = out["spread"].round(4)
    intervals = out[[*COLUMNS, "spread", "per_unit"]].sort_values("product_id").reset_index(drop=True)
    kept = gaps[gaps["product_id"].isin(intervals["product_id"])]
    pairs = kept.groupby(["customer_id", "product_id"], sort=False)["norm"].agg(
        own_gaps="count", own_interval="median").reset_index()
    last = repeats.drop_duplicates(["customer_id", "product_id"], keep="last").set_index(
        ["customer_id", "product_id"])["quantity"]
    pairs["last_quantity"] = last.reindex(pd.MultiIndex.from_frame(pairs[["customer_id", "product_id"]])).to_numpy()
    return Repeats(intervals, pairs)


def _reads_per_unit(gaps: pd.DataFrame) -> pd.Series:
    """Per product: do its gaps scale with the units bought before them? Over the gaps after a
    multi-unit purchase, log(gap / single-unit interval) must sit closer to log(units) than to
    0, with at least ``MIN_MULTI_GAPS`` of them."""
    single = gaps[gaps["units"] <= 1].groupby("product_id")["gap"].median()
    multi = gaps[gaps["units"] > 1]
    multi = multi[multi["product_id"].isin(single.index)]
    if multi.empty:
        return pd.Series(dtype=bool)
    ratio = np.log(multi["gap"] / multi["product_id"].map(single))
    as_order = ratio.abs().groupby(multi["product_id"]).median()
    as_units = (ratio - np.log(multi["units"])).abs().groupby(multi["product_id"]).median()
    count = multi.groupby("product_id").size()
    return (as_units < as_order) & (count >= MIN_MULTI_GAPS)


def expected_intervals(model: ItemKNN, touches: pd.DataFrame, repeats: Repeats,
                       prior_gaps: float = CUSTOMER_PRIOR_GAPS) -> sparse.csr_matrix:
    """Users × items of the model: the days after their last purchase at which each customer's
    next purchase of each consumable they bought is expected (0 elsewhere): the product's
    interval, times the units of their last purchase if the product is read per unit, pulled
    towards their own median gap by ``own_gaps / (own_gaps + prior_gaps)`` in log space."""
    shape = (len(model.users), len(model.items))
    intervals = repeats.intervals
    if intervals.empty or model.last_bought is None:
        return sparse.csr_matrix(shape, dtype=np.float64)
    product = intervals.set_index("product_id")
    bought = touches[touches["bought"].astype(bool) & touches["product_id"].isin(product.index)]
    bought = bought[bought["product_id"].isin(model.items)]
    units = (pd.to_numeric(bought["quantity"], errors="coerce") if "quantity" in bought
             else pd.Series(1.0, index=bought.index)).fillna(1).clip(lower=1).to_numpy(float)
    frame = pd.DataFrame({"customer_id": bought["customer_id"].to_numpy(), "product_id": bought["product_id"].to_numpy(),
                          "units": units})
    frame = frame.merge(repeats.pairs, on=["customer_id", "product_id"], how="left")
    # a pair bought once: its units are that purchase's; bought again: the last purchase's
    units = frame["last_quantity"].fillna(frame["units"]).to_numpy(float)
    base = frame["product_id"].map(product["interval_days"]).to_numpy(float)
    per_unit = frame["product_id"].map(product["per_unit"]).fillna(False).to_numpy(bool)
    own_gaps = frame["own_gaps"].fillna(0).to_numpy(float)
    own = frame["own_interval"].fillna(1.0).clip(lower=MIN_GAP_DAYS).to_numpy(float)
    share = own_gaps / (own_gaps + prior_gaps) if np.isfinite(prior_gaps) else np.zeros(len(frame))
    unit_interval = np.exp((1 - share) * np.log(base) + share * np.log(own))
    expected = unit_interval * np.where(per_unit, units, 1.0)
    rows = model.users.get_indexer(frame["customer_id"])
    cols = model.items.get_indexer(frame["product_id"])
    ok = (rows >= 0) & (cols >= 0)
    return sparse.csr_matrix((expected[ok], (rows[ok], cols[ok])), shape=shape)

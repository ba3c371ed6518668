"""Offline evaluation of the recommender: leave the last basket out.

For a sample of customers with at least two orders, their last order before as-of is held out
(``ml_holdout_baskets``), and the model is retrained on everything else, each evaluated
customer's touches counting only until the day before that order (so the views and carts
of the very session that led to it do not leak it). Then, over those customers, the top ``k``
products of the recommender and of the popularity baseline (the same exclusions: nothing the
customer bought before unless consumable, nothing unknown) are compared with the products of
the held-out basket:

* ``recall@k`` = share of the basket's products found in the top ``k``;
* ``NDCG@k`` = discounted cumulative gain of the hits, normalised by the best possible ranking.

Stock is not filtered here (today's stock says nothing about the past basket).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from relance.ml.itemknn import MAX_ITEMS, ItemKNN, catalog, eligibility, interactions
from relance.warehouse import Warehouse

SESSION_GUARD = timedelta(days=1)


def sample_customers(customers: pd.Series, max_customers: int) -> pd.Series:
    """A deterministic sample (by hash of the id), stable from one day to the next."""
    if len(customers) <= max_customers:
        return customers
    keys = customers.map(lambda c: hashlib.blake2b(str(c).encode(), digest_size=8).hexdigest())
    return customers[keys.sort_values(kind="stable").index[:max_customers]]


def ranking_metrics(recommended: np.ndarray, relevant: list[set[int]], k: int) -> dict[str, float]:
    """Mean recall@k and NDCG@k; ``recommended`` holds item positions (-1 = none)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for row, truth in zip(recommended[:, :k], relevant, strict=True):
        if not truth:
            continue
        hits = np.array([item in truth for item in row], dtype=float)
        recalls.append(hits.sum() / len(truth))
        ideal = discounts[: min(len(truth), k)].sum()
        ndcgs.append(float((hits * discounts).sum() / ideal))
    if not recalls:
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0, "customers": 0}
    return {f"recall@{k}": round(float(np.mean(recalls)), 4), f"ndcg@{k}": round(float(np.mean(ndcgs)), 4),
            "customers": len(recalls)}


def popularity_top(model, allowed: np.ndarray, consumable: np.ndarray, user_rows: np.ndarray,
                   k: int) -> np.ndarray:
    """The baseline: most popular allowed products, minus what each customer already bought."""
    order = np.argsort(-np.where(allowed, model.popularity, -np.inf), kind="stable")
    order = order[np.isfinite(np.where(allowed, model.popularity, -np.inf))[order]]
    out = np.full((len(user_rows), k), -1, dtype=np.int64)
    for n, row in enumerate(user_rows):
        bought = set(model.bought[row].indices.tolist())
        picks = [i for i in order[: k + len(bought)] if i not in bought or consumable[i]][:k]
        out[n, : len(picks)] = picks
    return out


def holdout_split(wh: Warehouse, as_of: datetime, consumables: set[str], max_customers: int = 20_000,
                  max_items: int | None = None) -> dict[str, Any] | None:
    """Write ``ml_holdout_baskets`` for a sample of customers, retrain on what precedes their
    baskets; returns the model, the item masks, the evaluated user rows and their baskets."""
    last = pd.DataFrame(wh.query("ml/last_baskets", {"as_of": as_of}))
    if last.empty:
        return None
    chosen = last.loc[sample_customers(last["customer_id"], max_customers).index]
    ordered_at = pd.to_datetime(chosen["ordered_at"], utc=True, format="mixed")
    holdout_rows = [{"customer_id": c, "order_id": o, "cutoff_at": (t - SESSION_GUARD).to_pydatetime()}
                    for c, o, t in zip(chosen["customer_id"], chosen["order_id"], ordered_at, strict=True)]
    with wh.begin() as conn:
        wh.execute("ml/clear_holdout_baskets", None, conn)
        wh.insert_rows("ml_holdout_baskets", holdout_rows, conn)
    touches = interactions(wh, as_of, holdout=True)
    truth = pd.DataFrame(wh.query("ml/holdout_items"))
    model = ItemKNN.fit(touches, max_items=max_items or MAX_ITEMS)
    allowed, consumable = eligibility(model, catalog(wh), consumables, check_stock=False)

    evaluated = [c for c in chosen["customer_id"] if c in model.users]
    truth = truth[truth["customer_id"].isin(evaluated)]
    truth_sets: dict[str, set[int]] = {c: set() for c in evaluated}
    positions = model.items.get_indexer(truth["product_id"])
    for customer, pos in zip(truth["customer_id"], positions, strict=True):
        truth_sets[customer].add(int(pos))  # -1 (a product never seen in training) can never be hit
    return {"model": model, "allowed": allowed, "consumable": consumable, "held_out": int(len(chosen)),
            "user_rows": model.users.get_indexer(evaluated), "relevant": [truth_sets[c] for c in evaluated]}


def leave_last_basket_out(wh: Warehouse, as_of: datetime, consumables: set[str], top_n: int = 10,
                          max_customers: int = 20_000, max_items: int | None = None) -> dict[str, Any]:
    split = holdout_split(wh, as_of, consumables, max_customers, max_items)
    if split is None:
        return {"skipped": "no customer with two orders yet"}
    model, allowed, consumable = split["model"], split["allowed"], split["consumable"]
    recommended, _ = model.recommend(split["user_rows"], allowed, consumable, n=top_n)
    baseline = popularity_top(model, allowed, consumable, split["user_rows"], top_n)
    ours = ranking_metrics(recommended, split["relevant"], top_n)
    popular = ranking_metrics(baseline, split["relevant"], top_n)
    result: dict[str, Any] = {
        "protocol": "leave last basket out: each sampled customer's last order held out, training on "
                    "touches before the day preceding it; same exclusions for both rankings",
        "held_out_customers": split["held_out"],
        "evaluated_customers": ours["customers"],
        "recommender": ours,
        "popularity": popular,
    }
    key = f"recall@{top_n}"
    if popular[key] > 0:
        result[f"{key}_lift_over_popularity"] = round(ours[key] / popular[key], 3)
    ndcg = f"ndcg@{top_n}"
    if popular[ndcg] > 0:
        result[f"{ndcg}_lift_over_popularity"] = round(ours[ndcg] / popular[ndcg], 3)
    return result

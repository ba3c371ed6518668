"""Offline evaluation of the recommender: leave the last basket out, honestly.

For a sample of customers with at least two orders, their last order before as-of is held out
and everything is learned again without it — the feedback matrix, the item-item model *and*
the consumables (repurchase intervals): each evaluated customer counts only with what they did
before the day preceding that order (``SESSION_GUARD``: the views and carts of the very
session that led to it do not leak it). Learning the consumables from all orders would let a
held-out re-purchase make its own product a consumable, which the own-feedback term then ranks
first for exactly that customer (the leak of issue 14).

The held-out baskets are written to ``ml_holdout_baskets`` under a run id of their own (so
that two evaluations at once never see each other's) and removed when the evaluation ends.

Evaluated customers are split by a hash of their id into a **validation** half (for tuning
weights and baselines' settings, e.g. ALS's alpha in the benchmark) and a **test** half, the
only one the model card reports. Over the test half, the top ``k`` products of each ranking
(the same exclusions: nothing the customer bought before unless consumable, nothing unknown)
are compared with the products of the held-out basket:

* ``recall@k`` = share of the basket's products found in the top ``k``;
* ``NDCG@k`` = discounted cumulative gain of the hits, normalised by the best possible ranking.

Each customer is ranked as of the moment of the prediction: a held-out customer as of their
cutoff, so how due their consumables are is judged the day before the basket.

Rankings compared: the recommender; its ablations (``knn_only``: no own-feedback nor due-ness
term; ``repeat_only``: own feedback, due-ness and the popularity tie-break, no neighbours;
``no_due``: everything but the due-ness term); and the baselines
``popularity`` (by purchases: distinct buyers per product), ``popularity_weighted`` (the
recommender's view-weighted popularity) and ``own_history`` (the customer's own re-buys and
re-views, then popularity by purchases). Stock is not filtered (today's stock says nothing
about the past basket).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from relance.ml.itemknn import (
    COLD_WEIGHT,
    MAX_ITEMS,
    ItemKNN,
    catalog,
    eligibility,
    epoch_days,
    interactions,
    order_lines,
)
from relance.ml.repeats import CUSTOMER_PRIOR_GAPS, expected_intervals, intervals_from_orders, learn_repeats
from relance.warehouse import Warehouse

SESSION_GUARD = timedelta(days=1)
#: Leftovers of a crashed evaluation are removed by the next one after this long.
STALE_AFTER = timedelta(days=1)


def _hash(value: Any) -> str:
    return hashlib.blake2b(str(value).encode(), digest_size=8).hexdigest()


def sample_customers(customers: pd.Series, max_customers: int) -> pd.Series:
    """A deterministic sample (by hash of the id), stable from one day to the next."""
    if len(customers) <= max_customers:
        return customers
    keys = customers.map(_hash)
    return customers[keys.sort_values(kind="stable").index[:max_customers]]


def is_validation(customer_id: Any) -> bool:
    """Half of the evaluated customers, by a hash of the id independent of the sample's."""
    return int(_hash(f"validation:{customer_id}"), 16) % 2 == 0


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


def purchase_popularity(model: ItemKNN) -> np.ndarray:
    """Distinct buyers per item in the training data (the plain popularity baseline)."""
    return np.asarray((model.bought > 0).sum(axis=0), dtype=np.float64).ravel()


def popularity_top(model: ItemKNN, allowed: np.ndarray, consumable: np.ndarray, user_rows: np.ndarray,
                   k: int, popularity: np.ndarray | None = None) -> np.ndarray:
    """The most popular allowed products (default: by purchases), minus what each customer
    already bought (unless consumable)."""
    popularity = purchase_popularity(model) if popularity is None else popularity
    masked = np.where(allowed, popularity, -np.inf)
    order = np.argsort(-masked, kind="stable")
    order = order[np.isfinite(masked[order])]
    out = np.full((len(user_rows), k), -1, dtype=np.int64)
    for n, row in enumerate(user_rows):
        bought = set(model.bought[row].indices.tolist())
        picks = [i for i in order[: k + len(bought)] if i not in bought or consumable[i]][:k]
        out[n, : len(picks)] = picks
    return out


def holdout_split(wh: Warehouse, as_of: datetime, max_customers: int = 20_000,
                  max_items: int | None = None, run_id: str | None = None) -> dict[str, Any] | None:
    """Hold out the last basket of a sample of customers and learn everything again without
    it (touches, item-item model, consumables). Returns the model, the item masks, the
    evaluated user rows, their baskets, which of them are validation customers, and the
    consumables learned for the evaluation; ``None`` when nobody has two orders yet."""
    last = pd.DataFrame(wh.query("ml/last_baskets", {"as_of": as_of}))
    if last.empty:
        return None
    run_id = run_id or uuid.uuid4().hex
    now = datetime.now(UTC)
    chosen = last.loc[sample_customers(last["customer_id"], max_customers).index]
    ordered_at = pd.to_datetime(chosen["ordered_at"], utc=True, format="mixed")
    holdout_rows = [{"run_id": run_id, "customer_id": c, "order_id": o,
                     "cutoff_at": (t - SESSION_GUARD).to_pydatetime(), "created_at": now}
                    for c, o, t in zip(chosen["customer_id"], chosen["order_id"], ordered_at, strict=True)]
    clear = {"run_id": run_id, "stale_before": now - STALE_AFTER}
    with wh.begin() as conn:
        wh.execute("ml/clear_holdout_baskets", clear, conn)
        wh.insert_rows("ml_holdout_baskets", holdout_rows, conn)
    try:
        lines = order_lines(wh, as_of, holdout_run=run_id)
        touches = interactions(wh, as_of, holdout_run=run_id, lines=lines)
        repeats = learn_repeats(wh, as_of, holdout_run=run_id, touches=touches, lines=lines)
        truth = pd.DataFrame(wh.query("ml/holdout_items", {"run_id": run_id}),
                             columns=["customer_id", "product_id"])
    finally:
        wh.execute("ml/clear_holdout_baskets", clear)
    base = ItemKNN.fit(touches, max_items=max_items or MAX_ITEMS)
    products = catalog(wh)
    model = base.with_cold_items(products)  # products without feedback before the cutoffs: by content
    consumables = set(repeats.intervals["product_id"])
    allowed, consumable = eligibility(model, products, consumables, check_stock=False)

    # each held-out customer is scored as of their cutoff (the day before their basket), the rest as of as_of
    now_days = np.full(len(model.users), epoch_days(as_of)[0])
    cutoffs = pd.Series(epoch_days(ordered_at - SESSION_GUARD), index=chosen["customer_id"].to_numpy())
    at = model.users.get_indexer(cutoffs.index)
    now_days[at[at >= 0]] = cutoffs.to_numpy()[at >= 0]
    item_intervals = repeats.intervals.set_index("product_id")["interval_days"].reindex(model.items).to_numpy(float)
    evaluated = [c for c in chosen["customer_id"] if c in model.users]
    truth = truth[truth["customer_id"].isin(evaluated)]
    truth_sets: dict[str, set[int]] = {c: set() for c in evaluated}
    positions = model.items.get_indexer(truth["product_id"])
    for customer, pos in zip(truth["customer_id"], positions, strict=True):
        truth_sets[customer].add(int(pos))  # -1 (a product never seen in training) can never be hit
    return {"model": model, "allowed": allowed, "consumable": consumable, "consumables": consumables,
            "intervals": item_intervals, "now_days": now_days, "base": base, "products": products,
            "touches": touches, "repeats": repeats, "expected": expected_intervals(model, touches, repeats),
            "held_out": int(len(chosen)), "user_rows": model.users.get_indexer(evaluated),
            "relevant": [truth_sets[c] for c in evaluated],
            "validation": np.array([is_validation(c) for c in evaluated], dtype=bool), "run_id": run_id}


#: Settings that change the item-item similarity, the repeat model, or the cold products' weight.
SIMILARITY_KEYS = ("neighbours", "shrink", "weighting", "kind", "alpha", "beta")
REPEAT_KEYS = ("max_spread", "prior_gaps")


def variant(split: dict[str, Any], settings: dict[str, Any]) -> tuple[ItemKNN, dict[str, Any], dict[str, Any]]:
    """The split's model and timing with other settings (similarity: ``SIMILARITY_KEYS``;
    repeats: ``REPEAT_KEYS``; ``cold_weight``), and the remaining settings (ranking weights).
    Same customers, same cutoffs: for tuning on the validation half and for the contenders."""
    similarity = {k: settings[k] for k in SIMILARITY_KEYS if k in settings}
    repeat = {k: settings[k] for k in REPEAT_KEYS if k in settings}
    rest = {k: v for k, v in settings.items() if k not in (*SIMILARITY_KEYS, *REPEAT_KEYS, "cold_weight")}
    model = split["model"]
    if similarity or "cold_weight" in settings:
        base = split["base"].with_similarity(**similarity) if similarity else split["base"]
        model = base.with_cold_items(split["products"], settings.get("cold_weight", COLD_WEIGHT))
    repeats = split["repeats"]
    if "max_spread" in repeat and repeats.orders is not None:
        repeats = intervals_from_orders(repeats.orders, repeats.buyers, repeat["max_spread"])
    consumable = model.items.isin(list(repeats.intervals["product_id"]))
    timing = {"intervals": repeats.intervals.set_index("product_id")["interval_days"].reindex(model.items).to_numpy(float),
              "consumable": np.asarray(consumable, bool), "allowed": split["allowed"]
              if len(split["allowed"]) == len(model.items) else np.asarray(model.items.isin(split["products"].index)),
              "expected": (expected_intervals(model, split["touches"], repeats, repeat.get("prior_gaps", CUSTOMER_PRIOR_GAPS))
                           if repeat or model is not split["model"] else split["expected"])}
    return model, timing, rest


def _ranked(model: ItemKNN, timing: dict[str, Any], split: dict[str, Any], rows: np.ndarray, k: int,
            **weights: Any) -> np.ndarray:
    return model.recommend(rows, timing["allowed"], timing["consumable"], n=k, intervals=timing["intervals"],
                           now_days=split["now_days"][rows], expected=timing["expected"], **weights)[0]


#: The contenders of the card: the item-item model as it was before issue 14 item 6 (plain
#: shrunk cosine, 50 neighbours) and RP3beta, each with our repeat and due-ness terms.
CONTENDERS = {"cosine_untuned": {"kind": "cosine", "weighting": "none", "neighbours": 50, "shrink": 0.06},
              "cosine_bm25": {"kind": "cosine", "weighting": "bm25"},
              "rp3beta": {"kind": "rp3beta", "alpha": 0.5, "beta": 0.0, "neighbours": 50},
              "no_content_cold_start": {"cold_weight": 0.0},
              "due_per_product_only": {"prior_gaps": float("inf")}}


def rankings(split: dict[str, Any], rows: np.ndarray, k: int, **weights: float) -> dict[str, np.ndarray]:
    """Top ``k`` of the recommender (``weights``: its ``repeat_weight`` / ``knn_weight`` /
    ``due_weight`` if not the defaults), its ablations, contenders and the baselines for the
    given user rows."""
    model, allowed, consumable = split["model"], split["allowed"], split["consumable"]
    timing = {"intervals": split["intervals"], "now_days": split["now_days"][rows], "expected": split["expected"]}
    by_purchases = purchase_popularity(model)

    def ours(**override: float) -> np.ndarray:
        return model.recommend(rows, allowed, consumable, n=k, **timing, **{**weights, **override})[0]

    contenders = {}
    for name, settings in CONTENDERS.items():
        other, other_timing, rest = variant(split, settings)
        contenders[name] = _ranked(other, other_timing, split, rows, k, **{**weights, **rest})
    return {
        "recommender": ours(),
        "knn_only": ours(repeat_weight=0.0, due_weight=0.0),
        "repeat_only": ours(knn_weight=0.0),
        "no_due": ours(due_weight=0.0),
        **contenders,
        "own_history": model.recommend(rows, allowed, consumable, n=k, knn_weight=0.0, popularity=by_purchases)[0],
        "popularity": popularity_top(model, allowed, consumable, rows, k, by_purchases),
        "popularity_weighted": popularity_top(model, allowed, consumable, rows, k, model.popularity),
    }


def validation_grid(split: dict[str, Any], grid: list[dict[str, float]], k: int = 10) -> list[dict[str, Any]]:
    """NDCG@k and recall@k of the recommender on the **validation** half for each set of weights
    (how the defaults of :mod:`relance.ml.itemknn` were chosen; the test half is never used)."""
    validation = split["validation"]
    rows = split["user_rows"][validation]
    relevant = [r for r, keep in zip(split["relevant"], validation, strict=True) if keep]
    out = []
    for settings in grid:
        model, timing, weights = variant(split, settings)
        top = _ranked(model, timing, split, rows, k, **weights)
        out.append({**settings, **ranking_metrics(top, relevant, k)})
    return out


def leave_last_basket_out(wh: Warehouse, as_of: datetime, top_n: int = 10, max_customers: int = 20_000,
                          max_items: int | None = None) -> dict[str, Any]:
    split = holdout_split(wh, as_of, max_customers, max_items)
    if split is None:
        return {"skipped": "no customer with two orders yet"}
    test = ~split["validation"]
    relevant = [r for r, keep in zip(split["relevant"], test, strict=True) if keep]
    figures = {name: ranking_metrics(top, relevant, top_n)
               for name, top in rankings(split, split["user_rows"][test], top_n).items()}
    ours = figures["recommender"]
    result: dict[str, Any] = {
        "protocol": "leave last basket out: each sampled customer's last order held out; touches, item-item "
                    "model and consumables learned again from what precedes the day before it; figures on the "
                    "test half of the evaluated customers (the other half is for tuning); same exclusions for "
                    "every ranking",
        "held_out_customers": split["held_out"],
        "evaluated_customers": ours["customers"],
        "validation_customers": int(split["validation"].sum()),
        "consumables": len(split["consumables"]),
        "recommender": ours,
        "ablations": {name: figures[name] for name in ("knn_only", "repeat_only", "no_due")},
        "contenders": {name: figures[name] for name in CONTENDERS},
        "cold_products": {"without_feedback": split["model"].stats.get("cold_products", 0),
                          "reachable_by_content": split["model"].stats.get("cold_reachable", 0)},
        "quantity_aware_consumables": int(split["repeats"].intervals["per_unit"].sum())
        if "per_unit" in split["repeats"].intervals else 0,
        "baselines": {name: figures[name] for name in ("popularity", "popularity_weighted", "own_history")},
        "popularity": figures["popularity"],
    }
    for metric in (f"recall@{top_n}", f"ndcg@{top_n}"):
        best = max(figures[name][metric] for name in result["baselines"])
        if best > 0:
            result[f"{metric}_lift_over_best_baseline"] = round(ours[metric] / best, 3)
    return result

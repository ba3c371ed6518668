"""``train_recommendations``: item-item recommender, co-purchase complements, up-sells,
popularity fallback and repurchase intervals.

* **Feedback**: views (1), wishlists (2), carts (3) and orders (5) per customer and product,
  each touch decayed by its age (orders: ``include/sql/ml/order_lines.sql``, read once; browsing:
  ``include/sql/ml/interactions.sql``), summed, then ``log1p``
  so that a weekly coffee buyer does not drown everything else.
* **Item-item**: cosine similarity between product columns (scipy.sparse, shrunk towards 0 for
  products with little support), the ``NEIGHBOURS`` best neighbours kept per product. At most
  ``MAX_ITEMS`` products take part (the most interacted with): the similarity matrix is
  ``items × items``. A customer's score for a product is ``KNN_WEIGHT`` × the
  similarity-weighted sum of what they touched, plus ``REPEAT_WEIGHT`` × their own feedback on the product itself (a consumable
  they buy again, a product they keep viewing), plus ``DUE_WEIGHT`` × how due a consumable
  they bought is (time since their last purchase of it against its learned interval: 1 at the
  interval, ½ at ~0.66× and ~1.5× it), plus a tiny popularity term that orders the rest (so
  everyone gets ``top_n``).
* **Exclusions**: products already bought (unless learned as consumable: see below), not
  ``in_stock``, or unknown to the catalogue.
* **Complements** (cross-sell): co-purchase lift in orders, ``lift = n(i,j)·N / (n(i)·n(j))``,
  with at least ``MIN_SUPPORT`` common orders.
* **Up-sells**: same product type, 15 %–200 % dearer, in stock, ranked by popularity.
* **Popularity fallback**: the most interacted-with in-stock products (time-decayed), stored in
  ``recommendations`` under ``customer_id = '*'``.
* **Repurchase intervals** (:mod:`relance.ml.repeats`): median gap between consecutive purchases
  of the same product by the same customer, for products bought again at regular intervals —
  ``product_repurchase_intervals``; those products count as consumables.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from relance.ml.evaluation import leave_last_basket_out
from relance.ml.frames import write_frame, write_frames
from relance.ml.itemknn import (
    BM25_B,
    BM25_K1,
    COLD_WEIGHT,
    DUE_SPREAD,
    DUE_WEIGHT,
    HISTORY,
    KIND_WEIGHTS,
    KNN_WEIGHT,
    MAX_ITEMS,
    NEIGHBOURS,
    REPEAT_WEIGHT,
    RP3_ALPHA,
    RP3_BETA,
    SHRINK,
    SIMILARITY,
    TOP_N,
    WEIGHTING,
    ItemKNN,
    catalog,
    eligibility,
    epoch_days,
    interactions,
    order_lines,
    top_k_per_row,
)
from relance.ml.repeats import (
    CUSTOMER_PRIOR_GAPS,
    MAX_SPREAD,
    MIN_MULTI_GAPS,
    expected_intervals,
    learn_repeats,
)
from relance.ml.store import ModelStore
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

MODEL = "recommender"
FALLBACK_N = 20
SIMILAR_N = 10
COMPLEMENTS_N = 5
MIN_SUPPORT = 3
MIN_LIFT = 2.0
UPSELLS_N = 3
UPSELL_PRICE_RATIO = (1.15, 3.0)
RETENTION = timedelta(days=14)
#: Customers scored per chunk of recommendations written (the COPY sends one while the next is scored).
SCORE_CHUNK = 50_000


# -- side products --------------------------------------------------------------------------
def complements(wh: Warehouse, as_of: datetime, n: int = COMPLEMENTS_N, lines: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """Co-purchase lift: (product_id, complement_id, score, support), from the distinct products
    of each order (``lines``: :func:`order_lines` as of ``as_of``, read here if not given)."""
    baskets = order_lines(wh, as_of) if lines is None else lines
    empty = pd.DataFrame(columns=["product_id", "complement_id", "score", "support"])
    if baskets.empty:
        return empty
    order_codes, _ = pd.factorize(baskets["order_id"])
    item_codes, items = pd.factorize(baskets["product_id"])
    matrix = sparse.csr_matrix((np.ones(len(baskets), np.float32), (order_codes, item_codes)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # an order holding a product on two lines counts it once
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    co = (matrix.T @ matrix).tocoo()
    keep = (co.row != co.col) & (co.data >= MIN_SUPPORT)
    row, col, support = co.row[keep], co.col[keep], co.data[keep]
    lift = support * matrix.shape[0] / (counts[row] * counts[col])
    pairs = pd.DataFrame({"product_id": np.asarray(items)[row], "complement_id": np.asarray(items)[col],
                          "score": np.round(lift, 4), "support": support.astype(int)})
    pairs = pairs[pairs["score"] >= MIN_LIFT]
    if pairs.empty:
        return empty
    pairs = pairs.sort_values(["product_id", "score", "support", "complement_id"], ascending=[True, False, False, True])
    return pairs.groupby("product_id", sort=False).head(n).reset_index(drop=True)


def upsells(products: pd.DataFrame, popularity: pd.Series, n: int = UPSELLS_N) -> pd.DataFrame:
    """Same product type, dearer by UPSELL_PRICE_RATIO, in stock: (product_id, upsell_id, score, price_ratio)."""
    base = products[products["product_type"].notna() & (products["price"] > 0)].reset_index()
    candidates = base[base["availability"] == "in_stock"]
    pairs = base[["product_id", "product_type", "price"]].merge(
        candidates[["product_id", "product_type", "price"]], on="product_type", suffixes=("", "_up"))
    pairs["price_ratio"] = pairs["price_up"] / pairs["price"]
    low, high = UPSELL_PRICE_RATIO
    pairs = pairs[(pairs["price_ratio"] >= low) & (pairs["price_ratio"] <= high)]
    pop = popularity / max(float(popularity.max()) if len(popularity) else 0.0, 1e-9)
    pairs = pairs.assign(upsell_id=pairs["product_id_up"],
                         score=pairs["product_id_up"].map(pop).fillna(0.0).round(6),
                         price_ratio=pairs["price_ratio"].round(4))
    pairs = pairs.sort_values(["product_id", "score", "upsell_id"], ascending=[True, False, True])
    return pairs.groupby("product_id", sort=False).head(n)[["product_id", "upsell_id", "score", "price_ratio"]]


# -- the DAG's entry point ------------------------------------------------------------------
def train_recommendations(wh: Warehouse, as_of: datetime, store: ModelStore | None = None,
                          top_n: int = TOP_N, evaluate: bool = True, max_eval_customers: int = 20_000,
                          max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """Train on everything before ``as_of``; replace that day's recommendations and the
    product tables; write the model card. Returns a small summary."""
    day: date = as_of.date()
    version = f"{MODEL}@{day.isoformat()}"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    products = catalog(wh)
    lines = order_lines(wh, as_of)  # one pass over the order lines: feedback, repeats, complements
    touches = interactions(wh, as_of, lines=lines)
    repeats = learn_repeats(wh, as_of, touches=touches, lines=lines)
    intervals = repeats.intervals
    consumables = set(intervals["product_id"])
    timings["read_s"] = round(time.perf_counter() - started, 2)

    t = time.perf_counter()
    learned = ItemKNN.fit(touches, max_items=max_items)
    model = learned.with_cold_items(products)  # new products (no feedback yet) by content
    allowed, consumable = eligibility(model, products, consumables)
    item_intervals = intervals.set_index("product_id")["interval_days"].reindex(model.items).to_numpy(float)
    expected = expected_intervals(model, touches, repeats)
    timings["train_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    popularity = pd.Series(learned.popularity, index=learned.items)
    in_stock_popular = popularity[allowed[: len(learned.items)]].sort_values(ascending=False, kind="stable").head(FALLBACK_N)
    comp = complements(wh, as_of, lines=lines)
    del lines
    ups = upsells(products, popularity)
    similar = _similar_pairs(learned)
    timings["side_tables_s"] = round(time.perf_counter() - t, 2)

    top_pop = float(in_stock_popular.max()) if len(in_stock_popular) else 1.0
    fallback = pd.DataFrame({"customer_id": "*", "product_id": in_stock_popular.index.astype(str),
                             "rank": np.arange(1, len(in_stock_popular) + 1),
                             "score": np.round(in_stock_popular.to_numpy(float) / top_pop, 6),
                             "as_of": day, "model_version": version})
    served: list[int] = []  # customers with at least one recommendation, per chunk

    def scored():
        """Every customer's top ``top_n``, a chunk of customers at a time: written (COPY) while the
        next chunk is scored."""
        now = float(epoch_days(as_of)[0])
        for lo in range(0, len(model.users), SCORE_CHUNK):
            users = np.arange(lo, min(lo + SCORE_CHUNK, len(model.users)))
            top_items, top_scores = model.recommend(users, allowed, consumable, n=top_n, intervals=item_intervals,
                                                    now_days=now, expected=expected)
            served.append(int((top_items[:, 0] >= 0).sum()))
            yield _recommendation_frame(model, users, top_items, top_scores, day, version)

    t = time.perf_counter()
    with wh.begin() as conn:
        wh.execute("ml/delete_recommendations", {"as_of": day, "oldest": day - RETENTION}, conn)
        recommended = write_frames(wh, "recommendations", scored(), conn)
        recommended += write_frame(wh, "recommendations", fallback, conn)
        for table, frame, cols in (
                ("product_complements", comp, ["product_id", "complement_id", "score"]),
                ("product_similarities", similar, ["product_id", "similar_id", "score"]),
                ("product_upsells", ups, ["product_id", "upsell_id", "score", "price_ratio"]),
                ("product_repurchase_intervals", intervals.assign(as_of=day),
                 ["product_id", "interval_days", "gaps", "repeat_buyers", "buyers", "as_of"])):
            wh.execute(f"ml/clear_{table}", None, conn)  # whole-table refresh, same transaction
            write_frame(wh, table, frame[cols], conn)
    timings["score_and_write_s"] = round(time.perf_counter() - t, 2)

    evaluation = (leave_last_basket_out(wh, as_of, top_n=top_n, max_customers=max_eval_customers,
                                        max_items=max_items) if evaluate else {"skipped": "evaluate=False"})
    card = {
        "model": MODEL, "version": version, "as_of": as_of.isoformat(),
        "algorithm": f"item-item {SIMILARITY} kNN on implicit feedback (views 1, wishlists 2, carts 3, orders 5; "
                     f"time-decayed; log1p; customers weighed: {WEIGHTING}) + own feedback + how due each "
                     "consumable is (quantity-aware, the customer's own gaps) + new products by content "
                     "(type, brand, price band), popularity tie-break; co-purchase lift complements; "
                     "same-type dearer up-sells",
        "training_window": [(as_of - HISTORY).isoformat(), as_of.isoformat()],
        "hyperparameters": {"kind_weights": KIND_WEIGHTS, "neighbours": NEIGHBOURS, "shrink": SHRINK,
                            "similarity": SIMILARITY, "weighting": WEIGHTING, "bm25_k1_b": [BM25_K1, BM25_B],
                            "rp3_alpha_beta": [RP3_ALPHA, RP3_BETA], "cold_weight": COLD_WEIGHT,
                            "max_spread": MAX_SPREAD, "customer_prior_gaps": CUSTOMER_PRIOR_GAPS,
                            "min_multi_unit_gaps": MIN_MULTI_GAPS,
                            "repeat_weight": REPEAT_WEIGHT, "due_weight": DUE_WEIGHT, "due_spread": DUE_SPREAD,
                            "knn_weight": KNN_WEIGHT,
                            "max_items": max_items, "top_n": top_n, "fallback_n": FALLBACK_N,
                            "min_support": MIN_SUPPORT, "min_lift": MIN_LIFT},
        "data": {**model.stats, "in_stock_products": int(allowed.sum()), "consumables": len(consumables),
                 "consumables_per_unit": int(intervals["per_unit"].sum()) if len(intervals) else 0},
        "outputs": {"recommendations": recommended, "customers_with_recommendations": sum(served),
                    "product_complements": len(comp), "product_similarities": len(similar),
                    "product_upsells": len(ups), "product_repurchase_intervals": len(intervals)},
        "evaluation": evaluation,
        "timings": timings,
    }
    buffer = io.BytesIO()
    sparse.save_npz(buffer, learned.similarity)
    artifacts = {"item_similarity.npz": buffer.getvalue(),
                 "items.txt": "\n".join(map(str, learned.items)).encode()}
    card_uri = (store or ModelStore()).save(MODEL, day, card, artifacts)
    summary = {"as_of": day.isoformat(), "customers": card["outputs"]["customers_with_recommendations"],
               "recommendations": recommended, "complements": len(comp), "repurchase_intervals": len(intervals),
               "card": card_uri}
    for name in ("recommender", "popularity"):
        if name in evaluation:
            summary[f"{name}_recall@{top_n}"] = evaluation[name][f"recall@{top_n}"]
    log.info("recommendations as of %s: %s", day, summary)
    return summary


def _similar_pairs(model: ItemKNN) -> pd.DataFrame:
    best = top_k_per_row(model.similarity, SIMILAR_N).tocoo()
    items = np.asarray(model.items)
    return pd.DataFrame({"product_id": items[best.row], "similar_id": items[best.col],
                         "score": np.round(best.data.astype(float), 6)})


def _recommendation_frame(model: ItemKNN, users: np.ndarray, top_items: np.ndarray, top_scores: np.ndarray,
                          day: date, version: str) -> pd.DataFrame:
    """One row per (customer, rank) of the given user rows; the ids, the day and the version as
    categoricals (millions of rows, a few distinct values: the writer lays each distinct value
    out once)."""
    users = np.repeat(users, top_items.shape[1])
    ranks = np.tile(np.arange(1, top_items.shape[1] + 1), top_items.shape[0])
    flat = top_items.ravel()
    keep = flat >= 0
    n = int(keep.sum())
    return pd.DataFrame({"customer_id": pd.Categorical.from_codes(users[keep], categories=model.users),
                         "product_id": pd.Categorical.from_codes(flat[keep], categories=model.items),
                         "rank": ranks[keep], "score": np.round(top_scores.ravel()[keep].astype(float), 6),
                         "as_of": pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[day]),
                         "model_version": pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[version])})

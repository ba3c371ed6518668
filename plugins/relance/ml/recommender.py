"""``train_recommendations``: item-item recommender, co-purchase complements, up-sells,
popularity fallback and repurchase intervals.

* **Feedback**: views (1), wishlists (2), carts (3) and orders (5) per customer and product,
  each touch decayed by its age (``include/sql/ml/interactions.sql``), summed, then ``log1p``
  so that a weekly coffee buyer does not drown everything else.
* **Item-item**: cosine similarity between product columns (scipy.sparse, shrunk towards 0 for
  products with little support), the ``NEIGHBOURS`` best neighbours kept per product. At most
  ``MAX_ITEMS`` products take part (the most interacted with): the similarity matrix is
  ``items × items``. A customer's score for a product is the similarity-weighted sum of what they
  touched, plus ``REPEAT_WEIGHT`` × their own feedback on the product itself (a consumable
  they buy again, a product they keep viewing), plus a tiny popularity term that orders the
  rest (so everyone gets ``top_n``).
* **Exclusions**: products already bought (unless learned as consumable: see below), not
  ``in_stock``, or unknown to the catalogue.
* **Complements** (cross-sell): co-purchase lift in orders, ``lift = n(i,j)·N / (n(i)·n(j))``,
  with at least ``MIN_SUPPORT`` common orders.
* **Up-sells**: same product type, 15 %–200 % dearer, in stock, ranked by popularity.
* **Popularity fallback**: the most interacted-with in-stock products (time-decayed), stored in
  ``recommendations`` under ``customer_id = '*'``.
* **Repurchase intervals**: median gap between consecutive purchases of the same product by the
  same customer, for products that enough buyers buy again (``MIN_REPEAT_SHARE``) at regular
  intervals (``MAX_SPREAD``: chance repeats of durable goods are irregular) —
  ``product_repurchase_intervals``; those products count as consumables.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from relance.ml.store import ModelStore
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

MODEL = "recommender"
KIND_WEIGHTS = {"view": 1.0, "wishlist": 2.0, "cart": 3.0, "order": 5.0}
HISTORY = timedelta(days=730)
MAX_ITEMS = 20_000
NEIGHBOURS = 50
SHRINK = 5.0
POPULARITY_TIE_BREAK = 1e-3
#: Weight of a customer's own feedback on a product (consumables bought again, products viewed).
REPEAT_WEIGHT = 1.0
TOP_N = 10
FALLBACK_N = 20
SIMILAR_N = 10
COMPLEMENTS_N = 5
MIN_SUPPORT = 3
MIN_LIFT = 2.0
UPSELLS_N = 3
UPSELL_PRICE_RATIO = (1.15, 3.0)
MIN_GAP_DAYS = 3.0
MIN_GAPS = 3
MIN_REPEAT_SHARE = 0.10
#: Regular habits only: median absolute deviation of the gaps, relative to their median.
MAX_SPREAD = 0.25
RETENTION = timedelta(days=14)
BATCH = 4096


# -- reading the warehouse -----------------------------------------------------------------
def read_frame(wh: Warehouse, name: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Result of an ``include/sql`` query as a DataFrame, fetched in chunks (less memory than dicts)."""
    with wh.begin() as conn:
        result = conn.execute(wh.statement(name, params), wh.params(params))
        columns = list(result.keys())
        chunks = []
        while rows := result.fetchmany(200_000):
            chunks.append(pd.DataFrame(rows, columns=columns))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)


def interactions(wh: Warehouse, as_of: datetime, holdout: bool = False) -> pd.DataFrame:
    """(customer_id, product_id, weight, bought): kind-weighted, time-decayed touches before as_of."""
    params = {"as_of": as_of, "since": as_of - HISTORY, "holdout": int(holdout),
              **{f"d{d}": as_of - timedelta(days=d) for d in (30, 90, 180, 365)}}
    frame = read_frame(wh, "ml/interactions", params)
    if frame.empty:
        return pd.DataFrame({"customer_id": [], "product_id": [], "weight": [], "bought": []})
    frame["weight"] = frame["weight"].astype(float) * frame["kind"].map(KIND_WEIGHTS).fillna(0.0)
    frame["bought"] = frame["kind"] == "order"
    return frame.groupby(["customer_id", "product_id"], sort=False, as_index=False).agg(
        weight=("weight", "sum"), bought=("bought", "max"))


def catalog(wh: Warehouse) -> pd.DataFrame:
    frame = read_frame(wh, "ml/catalog")
    frame["price"] = pd.to_numeric(frame["price"], errors="coerce")
    return frame.set_index("product_id")


# -- the model -------------------------------------------------------------------------------
@dataclass
class ItemKNN:
    """Customers × products feedback matrix and the pruned item-item cosine similarities."""

    users: pd.Index
    items: pd.Index
    feedback: sparse.csr_matrix  # users × items, log1p of the decayed weights
    bought: sparse.csr_matrix  # users × items, 1 where ordered
    similarity: sparse.csr_matrix  # items × items, top NEIGHBOURS per row, no diagonal
    popularity: np.ndarray  # per item, decayed weight summed over customers
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, touches: pd.DataFrame, max_items: int = MAX_ITEMS, neighbours: int = NEIGHBOURS) -> ItemKNN:
        popularity_all = touches.groupby("product_id")["weight"].sum().sort_values(ascending=False, kind="stable")
        guarded = len(popularity_all) > max_items
        kept = popularity_all.index[:max_items]
        if guarded:
            touches = touches[touches["product_id"].isin(kept)]
        items = pd.Index(sorted(kept))
        user_codes, users = pd.factorize(touches["customer_id"], sort=True)
        item_codes = items.get_indexer(touches["product_id"])
        shape = (len(users), len(items))
        feedback = sparse.csr_matrix((np.log1p(touches["weight"].to_numpy(np.float32)), (user_codes, item_codes)),
                                     shape=shape, dtype=np.float32)
        bought_mask = touches["bought"].to_numpy(bool)
        bought = sparse.csr_matrix((np.ones(bought_mask.sum(), np.float32),
                                    (user_codes[bought_mask], item_codes[bought_mask])), shape=shape)
        similarity = item_similarity(feedback, neighbours)
        popularity = popularity_all.reindex(items).to_numpy(np.float64)
        stats = {"customers": int(len(users)), "products": int(len(items)), "interactions": int(feedback.nnz),
                 "item_guard": {"max_items": max_items, "applied": bool(guarded),
                                "products_seen": int(len(popularity_all))},
                 "similarity_nnz": int(similarity.nnz)}
        return cls(pd.Index(users), items, feedback, bought, similarity, popularity, stats)

    def recommend(self, user_rows: np.ndarray, allowed: np.ndarray, consumable: np.ndarray,
                  n: int = TOP_N) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (item positions, scores) for the given user rows; ``allowed`` and
        ``consumable`` are boolean per item. Position -1 where fewer than ``n`` items qualify."""
        pop = self.popularity / max(float(self.popularity.max(initial=0.0)), 1e-9)
        base = np.where(allowed, POPULARITY_TIE_BREAK * pop, -np.inf).astype(np.float32)
        out_items = np.full((len(user_rows), n), -1, dtype=np.int64)
        out_scores = np.zeros((len(user_rows), n), dtype=np.float32)
        k = min(n, len(self.items))
        for lo in range(0, len(user_rows), BATCH):
            rows = user_rows[lo: lo + BATCH]
            own = self.feedback[rows]
            scores = (own @ self.similarity + REPEAT_WEIGHT * own).toarray() + base
            already = self.bought[rows].multiply(sparse.csr_matrix(~consumable, dtype=np.float32)).tocoo()
            scores[already.row, already.col] = -np.inf
            if k == 0:
                continue
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -top_scores), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            valid = np.isfinite(top_scores)
            out_items[lo: lo + len(rows), :k] = np.where(valid, top, -1)
            out_scores[lo: lo + len(rows), :k] = np.where(valid, top_scores, 0.0)
        return out_items, out_scores


def item_similarity(feedback: sparse.csr_matrix, neighbours: int) -> sparse.csr_matrix:
    """Shrunk cosine between item columns, keeping the ``neighbours`` best per item."""
    csc = feedback.tocsc()
    norms = np.sqrt(np.asarray(csc.multiply(csc).sum(axis=0)).ravel())
    co = (csc.T @ csc).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co = co.tocoo()
    values = co.data / (norms[co.row] * norms[co.col] + SHRINK)
    return top_k_per_row(sparse.csr_matrix((values.astype(np.float32), (co.row, co.col)), shape=co.shape), neighbours)


def top_k_per_row(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        if start == end:
            continue
        data, idx = matrix.data[start:end], matrix.indices[start:end]
        if len(data) > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(idx), i))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sparse.csr_matrix(matrix.shape, dtype=np.float32)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=matrix.shape, dtype=np.float32)


# -- side products --------------------------------------------------------------------------
def complements(wh: Warehouse, as_of: datetime, n: int = COMPLEMENTS_N) -> pd.DataFrame:
    """Co-purchase lift: (product_id, complement_id, score, support)."""
    baskets = read_frame(wh, "ml/basket_items", {"since": as_of - HISTORY, "as_of": as_of})
    empty = pd.DataFrame(columns=["product_id", "complement_id", "score", "support"])
    if baskets.empty:
        return empty
    order_codes, _ = pd.factorize(baskets["order_id"])
    item_codes, items = pd.factorize(baskets["product_id"])
    matrix = sparse.csr_matrix((np.ones(len(baskets), np.float32), (order_codes, item_codes)))
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


def repurchase_intervals(wh: Warehouse, as_of: datetime) -> pd.DataFrame:
    """Per product bought again by enough of its buyers: median days between purchases."""
    columns = ["product_id", "interval_days", "gaps", "repeat_buyers", "buyers"]
    repeats = read_frame(wh, "ml/repeat_purchases", {"as_of": as_of})
    buyers = read_frame(wh, "ml/product_buyers", {"as_of": as_of})
    if repeats.empty or buyers.empty:
        return pd.DataFrame(columns=columns)
    repeats["ordered_at"] = pd.to_datetime(repeats["ordered_at"], utc=True, format="mixed")
    repeats = repeats.sort_values(["customer_id", "product_id", "ordered_at"], kind="stable")
    same_pair = (repeats["customer_id"] == repeats["customer_id"].shift()) & (
        repeats["product_id"] == repeats["product_id"].shift())
    gap_days = repeats["ordered_at"].diff().dt.total_seconds() / 86400.0
    gaps = pd.DataFrame({"product_id": repeats["product_id"], "gap": gap_days})[same_pair]
    gaps = gaps[gaps["gap"] >= MIN_GAP_DAYS]
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
    return out[columns].sort_values("product_id").reset_index(drop=True)


# -- the DAG's entry point ------------------------------------------------------------------
def _eligibility(model: ItemKNN, products: pd.DataFrame, consumables: set[str],
                 check_stock: bool = True) -> tuple[np.ndarray, np.ndarray]:
    known = model.items.isin(products.index)
    if check_stock:
        availability = products["availability"].reindex(model.items)
        allowed = known & (availability.to_numpy() == "in_stock")
    else:
        allowed = known
    return np.asarray(allowed, bool), np.asarray(model.items.isin(list(consumables)), bool)


def train_recommendations(wh: Warehouse, as_of: datetime, store: ModelStore | None = None,
                          top_n: int = TOP_N, evaluate: bool = True, max_eval_customers: int = 20_000,
                          max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """Train on everything before ``as_of``; replace that day's recommendations and the
    product tables; write the model card. Returns a small summary."""
    from relance.ml.evaluation import leave_last_basket_out

    day: date = as_of.date()
    version = f"{MODEL}@{day.isoformat()}"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    products = catalog(wh)
    intervals = repurchase_intervals(wh, as_of)
    consumables = set(intervals["product_id"])
    touches = interactions(wh, as_of)
    timings["read_s"] = round(time.perf_counter() - started, 2)

    t = time.perf_counter()
    model = ItemKNN.fit(touches, max_items=max_items)
    allowed, consumable = _eligibility(model, products, consumables)
    top_items, top_scores = model.recommend(np.arange(len(model.users)), allowed, consumable, n=top_n)
    timings["train_and_score_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    popularity = pd.Series(model.popularity, index=model.items)
    in_stock_popular = popularity[allowed].sort_values(ascending=False, kind="stable").head(FALLBACK_N)
    comp = complements(wh, as_of)
    ups = upsells(products, popularity)
    similar = _similar_pairs(model)
    timings["side_tables_s"] = round(time.perf_counter() - t, 2)

    rows = _recommendation_rows(model, top_items, top_scores, day, version)
    top_pop = float(in_stock_popular.max()) if len(in_stock_popular) else 1.0
    rows += [{"customer_id": "*", "product_id": pid, "rank": rank, "score": round(float(w) / top_pop, 6),
              "as_of": day, "model_version": version}
             for rank, (pid, w) in enumerate(in_stock_popular.items(), start=1)]
    t = time.perf_counter()
    with wh.begin() as conn:
        wh.execute("DELETE FROM recommendations WHERE as_of = :as_of OR as_of < :oldest",
                   {"as_of": day, "oldest": day - RETENTION}, conn)
        wh.insert_rows("recommendations", rows, conn)
        for table, frame, cols in (
                ("product_complements", comp, ["product_id", "complement_id", "score"]),
                ("product_similarities", similar, ["product_id", "similar_id", "score"]),
                ("product_upsells", ups, ["product_id", "upsell_id", "score", "price_ratio"]),
                ("product_repurchase_intervals", intervals.assign(as_of=day),
                 ["product_id", "interval_days", "gaps", "repeat_buyers", "buyers", "as_of"])):
            wh.execute(f"DELETE FROM {table}", None, conn)  # whole-table refresh, same transaction
            wh.insert_rows(table, _records(frame, cols), conn)
    timings["write_s"] = round(time.perf_counter() - t, 2)

    evaluation = (leave_last_basket_out(wh, as_of, consumables, top_n=top_n, max_customers=max_eval_customers,
                                        max_items=max_items) if evaluate else {"skipped": "evaluate=False"})
    card = {
        "model": MODEL, "version": version, "as_of": as_of.isoformat(),
        "algorithm": "item-item cosine kNN on implicit feedback (views 1, wishlists 2, carts 3, orders 5; "
                     "time-decayed; log1p), popularity tie-break; co-purchase lift complements; "
                     "same-type dearer up-sells",
        "training_window": [(as_of - HISTORY).isoformat(), as_of.isoformat()],
        "hyperparameters": {"kind_weights": KIND_WEIGHTS, "neighbours": NEIGHBOURS, "shrink": SHRINK,
                            "repeat_weight": REPEAT_WEIGHT,
                            "max_items": max_items, "top_n": top_n, "fallback_n": FALLBACK_N,
                            "min_support": MIN_SUPPORT, "min_lift": MIN_LIFT},
        "data": {**model.stats, "in_stock_products": int(allowed.sum()), "consumables": len(consumables)},
        "outputs": {"recommendations": len(rows), "customers_with_recommendations": int((top_items[:, 0] >= 0).sum()),
                    "product_complements": len(comp), "product_similarities": len(similar),
                    "product_upsells": len(ups), "product_repurchase_intervals": len(intervals)},
        "evaluation": evaluation,
        "timings": timings,
    }
    buffer = io.BytesIO()
    sparse.save_npz(buffer, model.similarity)
    artifacts = {"item_similarity.npz": buffer.getvalue(),
                 "items.txt": "\n".join(map(str, model.items)).encode()}
    card_uri = (store or ModelStore()).save(MODEL, day, card, artifacts)
    summary = {"as_of": day.isoformat(), "customers": card["outputs"]["customers_with_recommendations"],
               "recommendations": len(rows), "complements": len(comp), "repurchase_intervals": len(intervals),
               "card": card_uri}
    for name in ("recommender", "popularity"):
        if name in evaluation:
            summary[f"{name}_recall@{top_n}"] = evaluation[name][f"recall@{top_n}"]
    log.info("recommendations as of %s: %s", day, summary)
    return summary


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    out = frame[columns].copy()
    for col in columns:
        if pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype(object).map(int)
        elif pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype(object).map(float)
    return out.to_dict("records")


def _similar_pairs(model: ItemKNN) -> pd.DataFrame:
    best = top_k_per_row(model.similarity, SIMILAR_N).tocoo()
    items = np.asarray(model.items)
    return pd.DataFrame({"product_id": items[best.row], "similar_id": items[best.col],
                         "score": np.round(best.data.astype(float), 6)})


def _recommendation_rows(model: ItemKNN, top_items: np.ndarray, top_scores: np.ndarray, day: date,
                         version: str) -> list[dict[str, Any]]:
    users = np.repeat(np.asarray(model.users), top_items.shape[1])
    ranks = np.tile(np.arange(1, top_items.shape[1] + 1), top_items.shape[0])
    flat = top_items.ravel()
    keep = flat >= 0
    items = np.asarray(model.items)[flat[keep]]
    scores = np.round(top_scores.ravel()[keep].astype(float), 6)
    return [{"customer_id": c, "product_id": p, "rank": int(r), "score": float(s), "as_of": day,
             "model_version": version}
            for c, p, r, s in zip(users[keep], items, ranks[keep], scores, strict=True)]

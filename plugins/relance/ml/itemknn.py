"""The item-item model the recommender trains and the offline evaluation retrains: reading
the feedback and the catalogue, :class:`ItemKNN`, and which items may be recommended.

A leaf of ``relance.ml``: :mod:`relance.ml.recommender` (training, side tables, the DAG's entry
point) and :mod:`relance.ml.evaluation` (leave the last basket out) both build on it, so
neither imports the other's internals. See :mod:`relance.ml.recommender` for the method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from relance.warehouse import Warehouse

KIND_WEIGHTS = {"view": 1.0, "wishlist": 2.0, "cart": 3.0, "order": 5.0}
HISTORY = timedelta(days=730)
MAX_ITEMS = 20_000
NEIGHBOURS = 50
SHRINK = 5.0
POPULARITY_TIE_BREAK = 1e-3
#: Weight of a customer's own feedback on a product (consumables bought again, products viewed).
REPEAT_WEIGHT = 1.0
TOP_N = 10
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


def interactions(wh: Warehouse, as_of: datetime, holdout_run: str = "") -> pd.DataFrame:
    """(customer_id, product_id, weight, bought): kind-weighted, time-decayed touches before as_of.

    ``holdout_run``: an offline evaluation's run id — the customers it holds out count only
    with their touches before their cutoff (``ml_holdout_baskets``)."""
    params = {"as_of": as_of, "since": as_of - HISTORY, "holdout_run": holdout_run,
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
                  n: int = TOP_N, repeat_weight: float = REPEAT_WEIGHT, knn_weight: float = 1.0,
                  popularity: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (item positions, scores) for the given user rows; ``allowed`` and
        ``consumable`` are boolean per item. Position -1 where fewer than ``n`` items qualify.

        ``knn_weight`` × the neighbours' term + ``repeat_weight`` × the customer's own feedback
        + a popularity tie-break (``popularity`` per item, default the model's); the offline
        evaluation varies them for its ablations and baselines."""
        popularity = self.popularity if popularity is None else popularity
        pop = popularity / max(float(popularity.max(initial=0.0)), 1e-9)
        base = np.where(allowed, POPULARITY_TIE_BREAK * pop, -np.inf).astype(np.float32)
        out_items = np.full((len(user_rows), n), -1, dtype=np.int64)
        out_scores = np.zeros((len(user_rows), n), dtype=np.float32)
        k = min(n, len(self.items))
        for lo in range(0, len(user_rows), BATCH):
            rows = user_rows[lo: lo + BATCH]
            own = self.feedback[rows]
            combined = repeat_weight * own
            if knn_weight:
                combined = combined + knn_weight * (own @ self.similarity)
            scores = combined.toarray() + base
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


# -- which items may be recommended ----------------------------------------------------------
def eligibility(model: ItemKNN, products: pd.DataFrame, consumables: set[str],
                check_stock: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per model item: may it be recommended (known to the catalogue and, with ``check_stock``,
    in stock), and is it a consumable (may be recommended again to those who bought it)."""
    known = model.items.isin(products.index)
    if check_stock:
        availability = products["availability"].reindex(model.items)
        allowed = known & (availability.to_numpy() == "in_stock")
    else:
        allowed = known
    return np.asarray(allowed, bool), np.asarray(model.items.isin(list(consumables)), bool)

"""The item-item model the recommender trains and the offline evaluation retrains: reading
the feedback and the catalogue, :class:`ItemKNN`, and which items may be recommended.

A leaf of ``relance.ml``: :mod:`relance.ml.recommender` (training, side tables, the DAG's entry
point) and :mod:`relance.ml.evaluation` (leave the last basket out) both build on it, so
neither imports the other's internals. See :mod:`relance.ml.recommender` for the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from relance.ml.frames import read_frame
from relance.warehouse import Warehouse

KIND_WEIGHTS = {"view": 1.0, "wishlist": 2.0, "cart": 3.0, "order": 5.0}
HISTORY = timedelta(days=730)
MAX_ITEMS = 20_000
NEIGHBOURS = 50
#: Shrinkage of the cosine, in mean squared item norms (so that it means the same at any shop
#: size): ``co(i, j) / (|i|·|j| + SHRINK · mean |i|²)``. Chosen on the validation half (10k:
#: 0.06–1000 tried, best 25–50; the old absolute 5 was 0.06 of it): pairs with little support
#: fall back towards 0, which favours well-supported neighbours.
SHRINK = 30.0
#: How customers weigh in the item-item similarity (issue 14 item 6, chosen on the validation
#: half with ``NEIGHBOURS`` and ``SHRINK``): "none" (their log1p feedback), "iuf" (inverse user
#: frequency: a customer who touched many products says less about any two of them) or "bm25"
#: (saturated, length-normalised feedback; ``BM25_K1``, ``BM25_B``).
WEIGHTING = "none"
BM25_K1, BM25_B = 1.2, 0.75
#: "cosine" (shrunk cosine) or "rp3beta" (random walk user→item→user→item, popularity ** beta
#: discounted; ``RP3_ALPHA``, ``RP3_BETA``), the contender of "Are we really making much progress?".
SIMILARITY = "cosine"
RP3_ALPHA, RP3_BETA = 0.5, 0.0
#: New products (no interactions yet): scored by content — the customer's feedback on the known
#: products of the same product type, brand and price band (``content_similarity``), times this.
COLD_WEIGHT = 0.3
POPULARITY_TIE_BREAK = 1e-3
#: Weight of a customer's own feedback on a product (consumables bought again, products viewed).
REPEAT_WEIGHT = 1.0
#: Weight of how due a consumable the customer bought is (:func:`due_score`), and of the
#: neighbours' term: chosen on the evaluation's validation half
#: (:func:`relance.ml.evaluation.validation_grid`, 10k and 100k shops: due 0–4 × kNN 0.3–1 ×
#: repeat 0.5–1; best NDCG@10 at due 4, kNN 0.3, repeat 1 on both).
DUE_WEIGHT = 4.0
KNN_WEIGHT = 0.3
#: Width of the due-ness bump, in log(time since the last purchase / interval).
DUE_SPREAD = 0.35
TOP_N = 10
BATCH = 4096


# -- reading the warehouse -----------------------------------------------------------------
#: Decay of a touch by its age (days, lower bound → weight): the step function of interactions.sql.
DECAY = ((30, 1.0), (90, 0.7), (180, 0.45), (365, 0.25))
DECAY_OLDER = 0.1


def order_lines(wh: Warehouse, as_of: datetime, holdout_run: str = "") -> pd.DataFrame:
    """Every order line in the two years before ``as_of`` (``include/sql/ml/order_lines.sql``):
    customer_id, product_id, order_id, ordered_at (UTC), quantity (NaN if unknown). Read once
    and shared by the feedback (:func:`interactions`), the repeat purchases
    (:func:`relance.ml.repeats.learn_repeats`) and the complements — one pass over the order
    lines instead of one per use (at 1M customers each pass joins 2.7M lines to 1.7M orders).

    ``holdout_run``: an offline evaluation's run id — the customers it holds out count only
    with their orders before their cutoff (``ml_holdout_baskets``)."""
    frame = read_frame(wh, "ml/order_lines", {"as_of": as_of, "since": as_of - HISTORY, "holdout_run": holdout_run})
    if frame.empty:
        return pd.DataFrame({"customer_id": pd.Series([], dtype=object), "product_id": pd.Series([], dtype=object),
                             "order_id": pd.Series([], dtype=object),
                             "ordered_at": pd.Series([], dtype="datetime64[us, UTC]"),
                             "quantity": pd.Series([], dtype=float)})
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True, format="mixed")
    frame["quantity"] = pd.to_numeric(frame["quantity"], errors="coerce").astype(float)
    return frame


def pair_keys(customer_ids: pd.Series, product_ids: pd.Series
              ) -> tuple[np.ndarray, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    """One int64 key per (customer, product) row — grouping on it is much cheaper than on two
    columns of strings — and the function that turns keys back into (customer ids, product ids)."""
    customers, customer_index = pd.factorize(customer_ids)
    products, product_index = pd.factorize(product_ids)
    width = max(len(product_index), 1)
    customer_index = np.asarray(customer_index, dtype=object)
    product_index = np.asarray(product_index, dtype=object)

    def ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return customer_index[keys // width], product_index[keys % width]

    return customers.astype(np.int64) * width + products, ids


def _decay(moments: pd.Series, as_of: datetime) -> np.ndarray:
    """The decay weight of each moment (UTC timestamps): interactions.sql's step function."""
    end = pd.Timestamp(as_of)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    weights = np.full(len(moments), DECAY_OLDER)
    for days, weight in reversed(DECAY):  # the most recent band last: it wins
        weights[(moments >= end - timedelta(days=days)).to_numpy(bool)] = weight
    return weights


def interactions(wh: Warehouse, as_of: datetime, holdout_run: str = "",
                 lines: pd.DataFrame | None = None) -> pd.DataFrame:
    """(customer_id, product_id, weight, bought, last_bought_days, quantity): kind-weighted,
    time-decayed touches before as_of, one row per (customer, product) — browsing from
    ``interactions.sql``, orders from :func:`order_lines` (``lines``, read here if not given:
    each line weighs ``KIND_WEIGHTS['order']`` × its decay; ``last_bought_days`` = the last
    purchase, :func:`epoch_days`; ``quantity`` = the units bought over all of the pair's lines).

    ``holdout_run``: an offline evaluation's run id — the customers it holds out count only
    with their touches before their cutoff (``ml_holdout_baskets``); ``lines`` must be read
    with the same run id."""
    params = {"as_of": as_of, "since": as_of - HISTORY, "holdout_run": holdout_run,
              **{f"d{d}": as_of - timedelta(days=d) for d in (30, 90, 180, 365)}}
    if lines is None:
        lines = order_lines(wh, as_of, holdout_run)
    browsing = read_frame(wh, "ml/interactions", params)
    stamps = lines["ordered_at"]
    n_lines, n_browsing = len(lines), len(browsing)
    if not n_lines + n_browsing:
        return pd.DataFrame({"customer_id": [], "product_id": [], "weight": [], "bought": [],
                             "last_bought_days": [], "quantity": []})
    weight = np.concatenate([KIND_WEIGHTS["order"] * _decay(stamps, as_of),
                             pd.to_numeric(browsing["weight"]).to_numpy(float)
                             * browsing["kind"].map(KIND_WEIGHTS).fillna(0.0).to_numpy(float)])
    key, pair_ids = pair_keys(pd.concat([lines["customer_id"], browsing["customer_id"]], ignore_index=True),
                              pd.concat([lines["product_id"], browsing["product_id"]], ignore_index=True))
    frame = pd.DataFrame({"key": key, "weight": weight,
                          "bought": np.concatenate([np.ones(n_lines, bool), np.zeros(n_browsing, bool)]),
                          "last_bought_days": np.concatenate([epoch_days(stamps) if n_lines else np.zeros(0),
                                                              np.zeros(n_browsing)]),
                          "quantity": np.concatenate([lines["quantity"].to_numpy(float), np.zeros(n_browsing)])})
    grouped = frame.groupby("key", sort=False).agg(weight=("weight", "sum"), bought=("bought", "max"),
                                                   last_bought_days=("last_bought_days", "max"),
                                                   quantity=("quantity", "sum"))
    customer_ids, product_ids = pair_ids(grouped.index.to_numpy(np.int64))
    return pd.DataFrame({"customer_id": customer_ids, "product_id": product_ids,
                         "weight": grouped["weight"].to_numpy(float), "bought": grouped["bought"].to_numpy(bool),
                         "last_bought_days": grouped["last_bought_days"].to_numpy(float),
                         "quantity": grouped["quantity"].to_numpy(float)})


def epoch_days(moments) -> np.ndarray:
    """Days since 1970-01-01 UTC (float) of timestamps (a Series, an array or one datetime)."""
    stamps = pd.to_datetime(pd.Series(moments) if not isinstance(moments, pd.Series) else moments, utc=True)
    return ((stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds() / 86400.0).to_numpy(np.float64)


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
    last_bought: sparse.csr_matrix | None = None  # users × items, day (epoch_days) of the last purchase

    @classmethod
    def fit(cls, touches: pd.DataFrame, max_items: int = MAX_ITEMS, neighbours: int = NEIGHBOURS,
            **similarity_settings: Any) -> ItemKNN:
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
        last_bought = None
        if "last_bought_days" in touches:
            last_bought = sparse.csr_matrix((touches["last_bought_days"].to_numpy(np.float64)[bought_mask],
                                             (user_codes[bought_mask], item_codes[bought_mask])), shape=shape)
        similarity = item_similarity(feedback, neighbours, **similarity_settings)
        popularity = popularity_all.reindex(items).to_numpy(np.float64)
        stats = {"customers": int(len(users)), "products": int(len(items)), "interactions": int(feedback.nnz),
                 "item_guard": {"max_items": max_items, "applied": bool(guarded),
                                "products_seen": int(len(popularity_all))},
                 "similarity_nnz": int(similarity.nnz)}
        return cls(pd.Index(users), items, feedback, bought, similarity, popularity, stats, last_bought)

    def with_similarity(self, neighbours: int = NEIGHBOURS, **similarity_settings: Any) -> ItemKNN:
        """The same feedback with another item-item similarity (tuning on the validation half)."""
        return replace(self, similarity=item_similarity(self.feedback, neighbours, **similarity_settings))

    def with_cold_items(self, products: pd.DataFrame, weight: float = COLD_WEIGHT) -> ItemKNN:
        """The model plus the catalogue's products it has no feedback on (new products), each
        reachable through ``weight`` × its content similarity to the known products
        (:func:`content_similarity`): the neighbours' term then scores it for the customers who
        touched products of the same type, brand and price band. No popularity, no feedback."""
        cold = products.index[~products.index.isin(self.items) & products["product_type"].notna()]
        if not len(cold) or not weight:
            return self
        content = weight * content_similarity(products, self.items, pd.Index(cold))  # known × cold
        m = len(cold)

        def pad(matrix: sparse.csr_matrix | None) -> sparse.csr_matrix | None:
            if matrix is None:
                return None
            return sparse.hstack([matrix, sparse.csr_matrix((matrix.shape[0], m), dtype=matrix.dtype)]).tocsr()

        similarity = sparse.bmat([[self.similarity, content], [None, sparse.csr_matrix((m, m), dtype=np.float32)]],
                                 format="csr", dtype=np.float32)
        stats = {**self.stats, "cold_products": int(m), "cold_reachable": int((content.getnnz(axis=0) > 0).sum())}
        return replace(self, items=self.items.append(pd.Index(cold)), feedback=pad(self.feedback),
                       bought=pad(self.bought), similarity=similarity, last_bought=pad(self.last_bought),
                       popularity=np.concatenate([self.popularity, np.zeros(m)]), stats=stats)

    def recommend(self, user_rows: np.ndarray, allowed: np.ndarray, consumable: np.ndarray,
                  n: int = TOP_N, repeat_weight: float = REPEAT_WEIGHT, knn_weight: float = KNN_WEIGHT,
                  popularity: np.ndarray | None = None, intervals: np.ndarray | None = None,
                  now_days: np.ndarray | float | None = None,
                  due_weight: float = DUE_WEIGHT,
                  expected: sparse.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (item positions, scores) for the given user rows; ``allowed`` and
        ``consumable`` are boolean per item. Position -1 where fewer than ``n`` items qualify.

        ``knn_weight`` × the neighbours' term + ``repeat_weight`` × the customer's own feedback
        + a popularity tie-break (``popularity`` per item, default the model's); the offline
        evaluation varies them for its ablations and baselines. With ``intervals`` (learned
        repurchase interval per item, NaN for non-consumables) and ``now_days`` (the moment of
        the recommendation per user row, :func:`epoch_days`), a consumable the customer bought
        also scores ``due_weight`` × how due it is (:func:`due_score`) — against ``expected``
        instead where given (users × items: the interval expected for that customer and product,
        :func:`relance.ml.repeats.expected_intervals`; quantity and own habit included)."""
        popularity = self.popularity if popularity is None else popularity
        pop = popularity / max(float(popularity.max(initial=0.0)), 1e-9)
        base = np.where(allowed, POPULARITY_TIE_BREAK * pop, -np.inf).astype(np.float32)
        out_items = np.full((len(user_rows), n), -1, dtype=np.int64)
        out_scores = np.zeros((len(user_rows), n), dtype=np.float32)
        k = min(n, len(self.items))
        if k == 0:
            return out_items, out_scores
        # the popular allowed items, best first (ties: lower position first, as in the dense ranking)
        popular = np.argsort(-base, kind="stable")
        popular = popular[np.isfinite(base[popular])][: 2 * k + 10]
        durable = sparse.diags((~consumable).astype(np.float32))
        for lo in range(0, len(user_rows), BATCH):
            rows = user_rows[lo: lo + BATCH]
            own = self.feedback[rows]
            combined = repeat_weight * own
            if knn_weight:
                combined = combined + knn_weight * (own @ self.similarity)
            if due_weight and intervals is not None and self.last_bought is not None:
                now = now_days[lo: lo + BATCH] if isinstance(now_days, np.ndarray) else np.full(len(rows), now_days)
                due = (_due_matrix(self.last_bought[rows], intervals, now) if expected is None
                       else _due_expected(self.last_bought[rows], expected[rows], now))
                combined = combined + due_weight * due
            excluded = (self.bought[rows] @ durable).tocsr()
            excluded.eliminate_zeros()
            top, top_scores, short = _top_k_sparse(combined.tocsr(), excluded, base, popular, k)
            if len(short):  # fewer than k popular items left after exclusions: rank those rows densely
                scores = combined[short].toarray() + base
                already = excluded[short].tocoo()
                scores[already.row, already.col] = -np.inf
                top[short], top_scores[short] = _top_k_dense(scores, k)
            valid = np.isfinite(top_scores) & (top >= 0)
            out_items[lo: lo + len(rows), :k] = np.where(valid, top, -1)
            out_scores[lo: lo + len(rows), :k] = np.where(valid, top_scores, 0.0)
        return out_items, out_scores


def due_score(age_days: np.ndarray, interval_days: np.ndarray) -> np.ndarray:
    """How due a repeat purchase is, in [0, 1]: 1 when the time since the last purchase equals
    the product's interval, falling off in log-ratio (half at ~0.66× and ~1.5× the interval)."""
    ratio = np.clip(age_days, 0.5, None) / interval_days
    return np.exp(-np.log(ratio) ** 2 / (2 * DUE_SPREAD ** 2))


def _due_matrix(last_bought: sparse.csr_matrix, intervals: np.ndarray, now: np.ndarray) -> sparse.csr_matrix:
    coo = last_bought.tocoo()
    interval = intervals[coo.col]
    keep = np.isfinite(interval) & (coo.data > 0)
    due = due_score(now[coo.row[keep]] - coo.data[keep], interval[keep]).astype(np.float32)
    return sparse.csr_matrix((due, (coo.row[keep], coo.col[keep])), shape=last_bought.shape)


def _due_expected(last_bought: sparse.csr_matrix, expected: sparse.csr_matrix, now: np.ndarray) -> sparse.csr_matrix:
    coo = expected.tocoo()
    if not coo.nnz:  # (scipy cannot index by two empty arrays)
        return sparse.csr_matrix(expected.shape, dtype=np.float32)
    last = np.asarray(last_bought[coo.row, coo.col]).ravel()
    keep = (coo.data > 0) & (last > 0)
    due = due_score(now[coo.row[keep]] - last[keep], coo.data[keep]).astype(np.float32)
    return sparse.csr_matrix((due, (coo.row[keep], coo.col[keep])), shape=expected.shape)


def _top_k_dense(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` best columns (score descending, then column ascending: ties resolved
    the same way as :func:`_top_k_sparse`). A full sort: only for the few rows that need it."""
    columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    top = np.lexsort((columns, -scores), axis=1)[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


def _member(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin`` for int64 keys by binary search (numpy 2's hash-based isin is far slower here)."""
    of = np.sort(of)
    if not len(of):
        return np.zeros(values.shape, bool)
    at = np.minimum(np.searchsorted(of, values), len(of) - 1)
    return of[at] == values


def _rank_keys(rows: np.ndarray, scores: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One int64 per entry that sorts by row, then float32 score descending, then column — the
    order of ``np.lexsort((cols, -scores, rows))`` at a fraction of its cost (rows < 2^16,
    columns < 2^15: the bits of a finite float32 mapped to an order-preserving uint32)."""
    bits = scores.astype(np.float32).view(np.uint32).astype(np.int64)
    ascending = np.where(bits & 0x80000000, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    return (rows.astype(np.int64) << 47) | ((0xFFFFFFFF - ascending) << 15) | cols.astype(np.int64)


def _top_k_sparse(part: sparse.csr_matrix, excluded: sparse.csr_matrix, base: np.ndarray, popular: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dense ranking ``part + base`` (excluded cells and ``base = -inf`` items out) without
    the dense matrix: an item outside a row's nonzeros scores ``base`` alone, so the row's best
    are among its nonzeros and the ``popular`` items (the best by ``base``), provided at least
    ``k`` of those survive the row's exclusions. Returns the top ``k`` columns and scores per
    row (-1 / -inf where missing) and the rows where fewer than ``k`` popular items survive
    (the caller ranks those densely)."""
    n_rows, n_items = part.shape
    part = part.tocsr()
    part.sum_duplicates()
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(part.indptr))
    cols = part.indices.astype(np.int64)
    scores = part.data.astype(np.float32) + base[cols]  # the dense ranking's float32 arithmetic
    out = excluded.tocoo()
    out_keys = out.row.astype(np.int64) * n_items + out.col
    keep = np.isfinite(scores) & ~_member(rows * n_items + cols, out_keys)
    rows, cols, scores = rows[keep], cols[keep], scores[keep]
    # (1) the row's own nonzeros: the k best of each row
    order = np.argsort(_rank_keys(rows, scores, cols))
    rows, cols, scores = rows[order], cols[order], scores[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    best = rank < k
    cand_cols = np.full((n_rows, 2 * k), -1, dtype=np.int64)
    cand_scores = np.full((n_rows, 2 * k), -np.inf, dtype=np.float32)
    cand_cols[rows[best], rank[best]] = cols[best]
    cand_scores[rows[best], rank[best]] = scores[best]
    # (2) the popular items neither among the row's nonzeros (already ranked) nor excluded, in order
    grid = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + popular[None, :].astype(np.int64)
    taken = _member(grid, np.concatenate([(rows * n_items + cols), out_keys]))
    free = ~taken
    position = np.cumsum(free, axis=1) - 1
    pick = free & (position < k)
    r, c = np.nonzero(pick)
    cand_cols[r, k + position[r, c]] = popular[c]
    cand_scores[r, k + position[r, c]] = base[popular[c]]
    # (3) merge: score descending, then column ascending (missing ones last)
    sort_cols = np.where(cand_cols >= 0, cand_cols, n_items)
    order = np.lexsort((sort_cols, -cand_scores), axis=1)[:, :k]
    top = np.take_along_axis(cand_cols, order, axis=1)
    top_scores = np.take_along_axis(cand_scores, order, axis=1)
    excluded_popular = _member(grid, out_keys).sum(axis=1)
    short = np.flatnonzero(len(popular) - excluded_popular < k)
    return top, top_scores, short


def weigh_users(feedback: sparse.csr_matrix, weighting: str = WEIGHTING, k1: float = BM25_K1,
                b: float = BM25_B) -> sparse.csr_matrix:
    """The feedback as the similarity sees it: unchanged ("none"); each customer's row times
    log(products / products they touched) ("iuf"); or BM25 with customers as documents —
    ``f·(k1+1) / (f + k1·(1 − b + b·n_u / mean n_u))`` ("bm25")."""
    if weighting == "none":
        return feedback
    feedback = feedback.tocsr().astype(np.float32)
    per_user = np.diff(feedback.indptr).astype(np.float64)
    if weighting == "iuf":
        scale = np.log(feedback.shape[1] / np.maximum(per_user, 1.0)).clip(min=0.1)
        return sparse.diags(scale.astype(np.float32)) @ feedback
    if weighting == "bm25":
        length = per_user / max(per_user[per_user > 0].mean() if (per_user > 0).any() else 1.0, 1e-9)
        norm = np.repeat(k1 * (1 - b + b * length), np.diff(feedback.indptr)).astype(np.float32)
        out = feedback.copy()
        out.data = out.data * (k1 + 1) / (out.data + norm)
        return out
    raise ValueError(f"unknown weighting {weighting!r}")


def item_similarity(feedback: sparse.csr_matrix, neighbours: int = NEIGHBOURS, shrink: float = SHRINK,
                    weighting: str = WEIGHTING, kind: str = SIMILARITY, alpha: float = RP3_ALPHA,
                    beta: float = RP3_BETA) -> sparse.csr_matrix:
    """Item × item similarities, keeping the ``neighbours`` best per item: shrunk cosine between
    the (``weighting``-weighed) item columns, or RP3beta."""
    if kind == "rp3beta":
        return rp3beta_similarity(feedback, neighbours, alpha, beta)
    csc = weigh_users(feedback, weighting).tocsc()
    norms = np.sqrt(np.asarray(csc.multiply(csc).sum(axis=0)).ravel())
    co = (csc.T @ csc).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co = co.tocoo()
    values = co.data / (norms[co.row] * norms[co.col] + shrink * float((norms ** 2).mean() if len(norms) else 0.0))
    return top_k_per_row(sparse.csr_matrix((values.astype(np.float32), (co.row, co.col)), shape=co.shape), neighbours)


def rp3beta_similarity(feedback: sparse.csr_matrix, neighbours: int = NEIGHBOURS, alpha: float = RP3_ALPHA,
                       beta: float = RP3_BETA) -> sparse.csr_matrix:
    """RP3beta (Paudel et al. 2017): the probability of a 3-step random walk item → customer →
    item on the feedback graph (each step's transition probabilities raised to ``alpha``),
    divided by the popularity of the arrival item raised to ``beta``; rows scaled to a maximum
    of 1 (the kNN weight then means the same as with cosine); ``neighbours`` best per item."""
    binary = feedback.tocsr().astype(np.float32)
    user_to_item = sparse.diags(1.0 / np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1e-9)) @ binary
    item_to_user = sparse.diags(1.0 / np.maximum(np.asarray(binary.sum(axis=0)).ravel(), 1e-9)) @ binary.T.tocsr()
    if alpha != 1.0:
        user_to_item = user_to_item.power(alpha)
        item_to_user = item_to_user.power(alpha)
    walk = (item_to_user @ user_to_item).tocsr()
    degree = np.asarray((binary > 0).sum(axis=0)).ravel().astype(np.float64)
    walk = walk @ sparse.diags((1.0 / np.maximum(degree, 1.0) ** beta).astype(np.float32))
    walk = walk.tocsr()
    walk.setdiag(0)
    walk.eliminate_zeros()
    best = top_k_per_row(walk, neighbours)
    peak = np.asarray(best.max(axis=1).todense()).ravel()
    return (sparse.diags((1.0 / np.where(peak > 0, peak, 1.0)).astype(np.float32)) @ best).tocsr().astype(np.float32)


def content_similarity(products: pd.DataFrame, known: pd.Index, cold: pd.Index,
                       neighbours: int = NEIGHBOURS) -> sparse.csr_matrix:
    """Known × cold products: 0.6 for the same product type, + 0.25 the same brand, + 0.15 the
    same price band (quintiles of the catalogue's log price), for the known products of the
    same type only; the ``neighbours`` closest known products of each cold one (ties: the
    lower position), each divided by how many were kept (the customer's mean feedback over
    them, not their number, drives the score)."""
    catalogue = products.reindex(known.append(cold))
    price = pd.to_numeric(catalogue["price"], errors="coerce")
    band = pd.qcut(np.log(price.where(price > 0)), 5, labels=False, duplicates="drop") if price.gt(0).sum() >= 5 \
        else pd.Series(0, index=catalogue.index)
    frame = pd.DataFrame({"type": catalogue["product_type"].to_numpy(),
                          "brand": catalogue["brand"].to_numpy() if "brand" in catalogue else None,
                          "band": np.asarray(band, dtype=float), "pos": np.arange(len(catalogue))})
    old, new = frame.iloc[: len(known)], frame.iloc[len(known):]
    pairs = new.merge(old.dropna(subset=["type"]), on="type", suffixes=("_new", "_old"))
    if pairs.empty:
        return sparse.csr_matrix((len(known), len(cold)), dtype=np.float32)
    score = (0.6 + 0.25 * (pairs["brand_new"].notna() & (pairs["brand_new"] == pairs["brand_old"]))
             + 0.15 * (pairs["band_new"] == pairs["band_old"]))
    pairs = pairs.assign(score=score).sort_values(["pos_new", "score", "pos_old"], ascending=[True, False, True])
    pairs = pairs.groupby("pos_new", sort=False).head(neighbours)
    kept = pairs.groupby("pos_new")["score"].transform("size")
    return sparse.csr_matrix(((pairs["score"] / kept).to_numpy(np.float32),
                              (pairs["pos_old"].to_numpy(), pairs["pos_new"].to_numpy() - len(known))),
                             shape=(len(known), len(cold)))


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

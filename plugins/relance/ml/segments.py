"""``build_segments``: RFM segments with stable names, and the 90-day purchase propensity.

**Segments.** Each buyer gets three RFM scores in [0, 1] — percentile ranks of recency (recent
= high), order count and revenue among the day's buyers. Percentile ranks move slowly from one
day to the next, whatever the shop's size. A k-means (scikit-learn) is started *from fixed,
named anchors* in that score space (``ANCHORS``: champions high on all three, at risk = used to
buy often but long ago …) with one initialisation, and each final cluster takes the name of an
anchor through a one-to-one assignment of centroids to anchors (Hungarian). Cluster indices
therefore never name anything: the name follows where the centroid sits, so names do not
reshuffle between days, and a customer changes segment only when their behaviour does.
Customers who never ordered are ``prospects`` (no clustering needed).

**Propensity.** P(at least one order in the 90 days after as-of), a logistic regression on
log-scaled RFM and behaviour features (:data:`relance.ml.features.PROPENSITY_FEATURES`: RFM,
time-decayed orders, trend, recency against the customer's own gap, browsing) — or a
gradient-boosted model fitted beside it, kept only if it wins on the held-out window by
``MIN_AUC_GAIN`` with a Brier score no worse —
trained on a time split: features as of T0 = as_of − 180 d, label = an order in (T0, T0 + 90 d];
evaluated out of time on the held-out period (features as of T1 = as_of − 90 d, label = an
order in (T1, as_of]): AUC, Brier score and a reliability table go to the model card. The
model is then refitted on the held-out period (same settings) and scores every customer as of
as_of.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from relance.ml import bgnbd
from relance.ml.features import BGNBD_FEATURES, PROPENSITY_FEATURES, customer_features, purchase_labels
from relance.ml.frames import write_frame
from relance.ml.store import ModelStore
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

MODEL = "segments"
HORIZON = timedelta(days=90)
NO_ORDER = "prospects"
#: Named anchors in (recency score, frequency score, monetary score), each a percentile in [0, 1].
ANCHORS: dict[str, tuple[float, float, float]] = {
    "champions": (0.85, 0.85, 0.85),
    "loyal": (0.55, 0.80, 0.70),
    "new": (0.85, 0.25, 0.35),
    "need_attention": (0.50, 0.40, 0.40),
    "at_risk": (0.20, 0.75, 0.70),
    "hibernating": (0.15, 0.20, 0.20),
}
SEGMENTS = [*ANCHORS, NO_ORDER]
MIN_TRAINING_POSITIVES = 20
#: Fits (k-means, logistic regression) on at most this many rows, a fixed random sample: three
#: RFM scores or twelve features need no more, and a 1M-customer shop fits in seconds; every
#: customer is still scored and the held-out figures use every held-out customer.
MAX_FIT_ROWS = 200_000
#: Pseudo-orders at the shop's average order value in each customer's expected order value.
VALUE_PRIOR_ORDERS = 2.0
#: The gradient-boosted propensity replaces the logistic one only with at least this much more
#: held-out AUC and a Brier score no worse (calibration intact).
MIN_AUC_GAIN = 0.005
ALGORITHMS = {"logistic": "LogisticRegression(C=1) on log1p + standardised features",
              "gradient_boosting": "HistGradientBoostingClassifier(200 iterations, early stopping)"}
#: Training rows from this many snapshots, ``STACK_STEP`` apart (the newest as of T0; each labelled
#: by its own next 90 days, all of them ending by T1, so the held-out window stays unseen).
STACKED_SNAPSHOTS = 2
STACK_STEP = timedelta(days=45)
#: Weight of each anchor's prior, in average segment sizes (0 = plain k-means, large = fixed anchors).
ANCHOR_WEIGHT = 0.5


def rfm_scores(features: pd.DataFrame) -> pd.DataFrame:
    """Percentile-rank RFM scores of the buyers (rows with at least one order)."""
    buyers = features[features["frequency"] > 0]
    return pd.DataFrame({
        "r": (-buyers["recency_days"]).rank(pct=True, method="average"),
        "f": buyers["frequency"].rank(pct=True, method="average"),
        "m": buyers["monetary"].rank(pct=True, method="average"),
    }, index=buyers.index)


def name_segments(scores: pd.DataFrame) -> tuple[pd.Series, dict[str, list[float]]]:
    """Anchored k-means: each named anchor joins the data as a pseudo-customer of weight
    ``ANCHOR_WEIGHT`` × (buyers / segments) — a prior that keeps its cluster's centroid near it
    — and k-means starts from the anchors. Each cluster is then named by a one-to-one
    assignment of centroids to anchors. Returns (segment per buyer, centroid per segment)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    anchors = np.array(list(ANCHORS.values()))
    names = list(ANCHORS)
    sample = scores.to_numpy()[_fit_sample(len(scores))]
    points = np.vstack([sample, anchors])
    weight = np.concatenate([np.ones(len(sample)),
                             np.full(len(anchors), max(1.0, ANCHOR_WEIGHT * len(sample) / len(anchors)))])
    km = KMeans(n_clusters=len(anchors), init=anchors, n_init=1, max_iter=100, random_state=0)
    km.fit(points, sample_weight=weight)
    labels = km.predict(scores.to_numpy())
    cost = ((km.cluster_centers_[:, None, :] - anchors[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    cluster_name = {int(r): names[c] for r, c in zip(rows, cols, strict=True)}
    centroids = {cluster_name[i]: [round(float(x), 4) for x in km.cluster_centers_[i]] for i in range(len(anchors))}
    return pd.Series([cluster_name[int(label)] for label in labels], index=scores.index), centroids


def _fit_sample(rows: int) -> np.ndarray:
    """Row positions to fit on: all of them, or a fixed random sample of ``MAX_FIT_ROWS``."""
    if rows <= MAX_FIT_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, MAX_FIT_ROWS, replace=False))


def _fit_propensity(x: np.ndarray, y: np.ndarray, make=None):
    rows = _fit_sample(len(y))
    return (make or _propensity_pipeline)().fit(x[rows], y[rows])


def _boosting_pipeline():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31,
                                          early_stopping=True, random_state=0)


def _propensity_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(FunctionTransformer(np.log1p), StandardScaler(),
                         LogisticRegression(C=1.0, max_iter=1000))


def _design(features: pd.DataFrame, columns: list[str] = PROPENSITY_FEATURES) -> np.ndarray:
    return features[columns].to_numpy(dtype=float).clip(min=0)


class _Reads:
    """The warehouse reads of a run, each done once: feature snapshots and label windows. With
    ``prefetch`` (PostgreSQL), :meth:`prefetch` starts them on two threads, each on a connection
    of its own, so the server computes the next snapshot while Python converts the previous one
    and fits (at 1M customers each snapshot is a 1M-row aggregate)."""

    def __init__(self, wh: Warehouse, prefetch: bool = False):
        self.wh = wh
        self.pool = ThreadPoolExecutor(max_workers=2) if prefetch and not wh.is_sqlite else None
        self.done: dict[tuple, Future] = {}

    def _get(self, key: tuple, read, *args):
        if key not in self.done:
            if self.pool is not None:
                self.done[key] = self.pool.submit(read, self.wh, *args)
            else:
                self.done[key] = Future()
                self.done[key].set_result(read(self.wh, *args))
        return self.done[key]

    def features(self, moment: datetime, snapshot: bool = True) -> pd.DataFrame:
        return self._get(("features", moment, snapshot), customer_features, moment, snapshot).result()

    def buyers(self, start: datetime, end: datetime) -> set[str]:
        return self._get(("buyers", start, end), purchase_labels, start, end).result()

    def prefetch(self, as_of: datetime) -> None:
        """Start every read of :func:`build_segments` as of ``as_of``, in the order it needs them."""
        if self.pool is None:
            return
        self._get(("features", as_of, False), customer_features, as_of, False)
        for newest in _windows(as_of):
            for moment in _stack(newest):
                self._get(("features", moment, True), customer_features, moment, True)
                self._get(("buyers", moment, moment + HORIZON), purchase_labels, moment, moment + HORIZON)

    def close(self) -> None:
        """Wait for the reads under way (none is left running) and let go of the frames."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.done.clear()


def _windows(as_of: datetime) -> tuple[datetime, datetime]:
    """(T0, T1): the propensity model is fitted on the snapshots as of T0 (labels up to T1),
    evaluated on T1 (labels up to as_of), then refitted on the snapshots as of T1."""
    t1 = as_of - HORIZON
    return t1 - HORIZON, t1


def _stack(newest: datetime) -> list[datetime]:
    """The moments of the ``STACKED_SNAPSHOTS`` feature snapshots ending at ``newest``, newest first."""
    return [newest - i * STACK_STEP for i in range(STACKED_SNAPSHOTS)]


def _snapshots(reads: _Reads, newest: datetime) -> tuple[list[pd.DataFrame], list[np.ndarray]]:
    """``STACKED_SNAPSHOTS`` feature snapshots (newest first) and their labels: an order in the 90
    days after each."""
    frames, labels = [], []
    for moment in _stack(newest):
        frame = reads.features(moment)
        frames.append(frame)
        labels.append(frame.index.isin(reads.buyers(moment, moment + HORIZON)).astype(int))
    return frames, labels


def _with_bgnbd(frames: list[pd.DataFrame], params: dict[str, float]) -> pd.DataFrame:
    return pd.concat([bgnbd.features(frame, params) for frame in frames])


def expected_order_value(features: pd.DataFrame) -> np.ndarray:
    """Per customer: their revenue kept per order (a refunded one counts 0), shrunk towards the shop's average by
    ``VALUE_PRIOR_ORDERS`` pseudo-orders (one big order says little); the shop's average for
    customers who never ordered. Times the propensity, the dispatcher's expected value."""
    frequency = features["frequency"].to_numpy(float)
    monetary = features["monetary"].to_numpy(float)
    shop_average = monetary.sum() / frequency.sum() if frequency.sum() > 0 else 0.0
    return (monetary + VALUE_PRIOR_ORDERS * shop_average) / (frequency + VALUE_PRIOR_ORDERS)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Calibration table: customers split in deciles of predicted probability."""
    order = np.argsort(p, kind="stable")
    table = []
    for chunk in np.array_split(order, bins):
        if len(chunk):
            table.append({"customers": int(len(chunk)), "predicted": round(float(p[chunk].mean()), 4),
                          "observed": round(float(y[chunk].mean()), 4)})
    return table


def train_propensity(wh: Warehouse, as_of: datetime, reads: _Reads | None = None) -> tuple[Any | None, dict[str, Any]]:
    """Fit on (T0, T0 + 90 d], evaluate on (T1, as_of], refit on the latter. Returns (model, card
    part). ``reads``: the run's reads (prefetched by :func:`build_segments`), else read here."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    reads = reads or _Reads(wh)
    t0, t1 = _windows(as_of)
    train_frames, train_labels = _snapshots(reads, t0)
    params = bgnbd.fit_frame(train_frames[0])  # BG/NBD on the training snapshot only
    train_x, train_y = _with_bgnbd(train_frames, params), np.concatenate(train_labels)
    test_raw = reads.features(t1)
    test_x = bgnbd.features(test_raw, params)
    test_y = test_x.index.isin(reads.buyers(t1, as_of)).astype(int)  # the refit's newest window too
    card: dict[str, Any] = {
        "target": "at least one order in the 90 days after as_of",
        "features": PROPENSITY_FEATURES,
        "training_window": {"features_as_of": t0.isoformat(), "label_window": [t0.isoformat(), t1.isoformat()],
                            "customers": int(len(train_y)), "positives": int(train_y.sum()),
                            "fitted_on": int(min(len(train_y), MAX_FIT_ROWS)),
                            "stacked_snapshots": [moment.isoformat() for moment in _stack(t0)]},
        "bgnbd": {k: round(v, 4) if isinstance(v, float) else v for k, v in params.items()},
        "held_out_window": {"features_as_of": t1.isoformat(), "label_window": [t1.isoformat(), as_of.isoformat()],
                            "customers": int(len(test_y)), "positives": int(test_y.sum())},
    }
    if train_y.sum() < MIN_TRAINING_POSITIVES or train_y.sum() == len(train_y):
        card["skipped"] = "not enough history for a time split (needs buyers in both 90-day windows)"
        return None, card
    kinds = {"logistic": _propensity_pipeline, "gradient_boosting": _boosting_pipeline}
    models = {name: _fit_propensity(_design(train_x), train_y, make) for name, make in kinds.items()}
    chosen = "logistic"
    if 0 < test_y.sum() < len(test_y):
        held_out = {}
        for name, candidate in models.items():
            p = candidate.predict_proba(_design(test_x))[:, 1]
            held_out[name] = {
                "auc": round(float(roc_auc_score(test_y, p)), 4),
                "brier": round(float(brier_score_loss(test_y, p)), 4),
                "base_rate": round(float(test_y.mean()), 4),
                "mean_predicted": round(float(p.mean()), 4),
                "reliability": reliability(test_y, p),
            }
        # ablation: the logistic model without the BG/NBD features, same rows
        plain = [f for f in PROPENSITY_FEATURES if f not in BGNBD_FEATURES]
        p = _fit_propensity(_design(train_x, plain), train_y).predict_proba(_design(test_x, plain))[:, 1]
        card["logistic_without_bgnbd"] = {"auc": round(float(roc_auc_score(test_y, p)), 4),
                                          "brier": round(float(brier_score_loss(test_y, p)), 4)}
        # the boosted model only if it ranks better on the held-out window with calibration intact
        boosted, logistic = held_out["gradient_boosting"], held_out["logistic"]
        if boosted["auc"] >= logistic["auc"] + MIN_AUC_GAIN and boosted["brier"] <= logistic["brier"]:
            chosen = "gradient_boosting"
        card["held_out"] = held_out[chosen]
        card["candidates"] = {name: {k: v for k, v in figures.items() if k != "reliability"}
                              for name, figures in held_out.items()}
        # refit on the latest windows (BG/NBD fitted again on the newest of them)
        latest_frames, latest_labels = _snapshots(reads, t1)
        params = bgnbd.fit_frame(test_raw)
        model = _fit_propensity(_design(_with_bgnbd(latest_frames, params)), np.concatenate(latest_labels),
                                kinds[chosen])
        card["scored_with"] = f"{chosen}, refitted on the held-out window (features as of as_of - 90 d)"
    else:
        model = models[chosen]
        card["scored_with"] = "the model trained on the first window (held-out window has one class only)"
    model.bgnbd_params_ = params  # the scoring snapshot's BG/NBD features use the model's own fit
    card["algorithm"] = ALGORITHMS[chosen]
    card["chosen"] = chosen
    if chosen == "logistic":
        coefficients = model[-1].coef_[0]
        card["coefficients"] = {f: round(float(c), 4) for f, c in zip(PROPENSITY_FEATURES, coefficients, strict=True)}
    return model, card


def build_segments(wh: Warehouse, as_of: datetime, store: ModelStore | None = None) -> dict[str, Any]:
    """Segment every customer and score their propensity as of ``as_of``; replace that day's
    rows of ``customer_segments``; write the model and its card. Returns a small summary."""
    import joblib

    day: date = as_of.date()
    version = f"{MODEL}@{day.isoformat()}"
    reads = _Reads(wh, prefetch=True)
    try:
        reads.prefetch(as_of)
        features = reads.features(as_of, snapshot=False)
        scores = rfm_scores(features)
        segment = pd.Series(NO_ORDER, index=features.index, dtype=object)
        centroids: dict[str, list[float]] = {}
        if len(scores):
            named, centroids = name_segments(scores)
            segment.loc[named.index] = named
        model, propensity_card = train_propensity(wh, as_of, reads)
    finally:
        reads.close()
    propensity = (model.predict_proba(_design(bgnbd.features(features, model.bgnbd_params_)))[:, 1]
                  if model is not None and len(features)
                  else np.full(len(features), np.nan))
    order_value = expected_order_value(features)
    bought = features["frequency"].to_numpy() > 0
    rows = pd.DataFrame({"customer_id": features.index.astype(str), "as_of": day, "segment": segment.to_numpy(),
                         "purchase_propensity": np.round(propensity.astype(float), 6),
                         "recency_days": np.where(bought, np.round(features["recency_days"].to_numpy(float), 2), np.nan),
                         "frequency": features["frequency"].to_numpy().astype(int),
                         "monetary": np.round(features["monetary"].to_numpy(float), 2),
                         "expected_order_value": np.round(order_value, 2), "model_version": version})
    with wh.begin() as conn:
        wh.execute("ml/delete_customer_segments", {"as_of": day}, conn)
        write_frame(wh, "customer_segments", rows, conn)
    sizes = {name: int((segment == name).sum()) for name in SEGMENTS}
    by_segment = (pd.DataFrame({"segment": segment, "p": propensity}).groupby("segment")["p"].mean()
                  if len(features) else pd.Series(dtype=float))
    card = {
        "model": MODEL, "version": version, "as_of": as_of.isoformat(), "customers": int(len(features)),
        "segments": {
            "method": "k-means (scikit-learn) on percentile RFM scores, started from named anchors; "
                      "clusters named by a one-to-one centroid-to-anchor assignment",
            "anchors": {k: list(v) for k, v in ANCHORS.items()}, "centroids": centroids, "sizes": sizes,
            "mean_propensity": {k: round(float(v), 4) for k, v in by_segment.items() if not np.isnan(v)},
        },
        "propensity": propensity_card,
    }
    buffer = io.BytesIO()
    joblib.dump({"anchors": ANCHORS, "centroids": centroids, "propensity": model, "features": PROPENSITY_FEATURES},
                buffer)
    card_uri = (store or ModelStore()).save(MODEL, day, card, {"model.joblib": buffer.getvalue()})
    auc = propensity_card.get("held_out", {}).get("auc")
    log.info("segments as of %s: %s; propensity held-out AUC %s; card %s", day, sizes, auc, card_uri)
    return {"as_of": day.isoformat(), "customers": len(rows), "sizes": sizes, "auc": auc, "card": card_uri}

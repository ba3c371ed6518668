"""The propensity model, BG/NBD and the RFM segments on real transactions: CDNOW.

CDNOW (Fader & Hardie's cohort of 23,570 customers who first bought at the CD retailer in
Q1 1997, every purchase until June 1998: customer, day, CDs, dollars) is shipped in the
``Lifetimes`` wheel (``lifetimes/datasets/CDNOW_master.txt``). ``make bench`` installs that
wheel with ``--no-deps`` (``requirements-bench-data.txt``): only its data file is read, located
through the distribution's metadata — ``lifetimes`` itself is never imported (its own
dependencies are not installed) and is no runtime dependency of Relance.

CDNOW has no product ids and no browsing: it evaluates the **purchase propensity** (an order
in the next 90 days), **BG/NBD** and the **RFM segments**, not the recommender; the behaviour
features (views, carts, wishlists in 30 days) are 0 for everyone.

Loading: straight into ``customers`` (``created_at`` = the first purchase) and ``orders`` of a
fresh warehouse (one order per customer and day — CDNOW's same-day lines summed, as is usual
for this data — status ``completed``), not through ``ingest_window``: the Segment path parses
and validates ~93k calls for nothing the models read (no order lines, no traits beyond
``created_at``).

Then exactly what ``build_segments`` runs: :func:`relance.ml.segments.train_propensity` as of
``AS_OF`` (features as of T0 = as_of − 180 d and T0 − 45 d, labelled by their next 90 days;
BG/NBD fitted on the T0 snapshot only; logistic and gradient boosting evaluated on the held-out
window, features as of T1 = as_of − 90 d, label (T1, as_of]); beside it, on the same held-out
rows, simple baselines fitted on the same training rows (a constant, "bought in the last 90
days", recency only, frequency only, recency + frequency, BG/NBD's expected purchases alone,
P(alive) alone) and BG/NBD's own forecast against the purchases that happened. Segments: named
as of T1, with each segment's observed purchase rate in (T1, as_of], and how many customers keep
their segment a week later.

    python -m benchmarks.real_data [--url sqlite:///…]   # .local/bench_real_data.{json,md}
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".local" / "bench_real_data.json"
#: The day after CDNOW's last (1998-06-30): the held-out label window (T1, as_of] is its last 90 days.
AS_OF = datetime(1998, 7, 1, tzinfo=UTC)
#: Orders are dated by day only: placed at noon UTC.
ORDER_HOUR = 12
WEEK = timedelta(days=7)


def cdnow_path() -> Path:
    """``CDNOW_master.txt`` from the installed ``Lifetimes`` distribution (not imported)."""
    from importlib import metadata

    try:
        path = Path(metadata.distribution("Lifetimes").locate_file("lifetimes/datasets/CDNOW_master.txt"))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise SystemExit("CDNOW not found: pip install --no-deps -r requirements-bench-data.txt (make bench does)")
    return path


def read_cdnow(lines: Iterable[str]) -> pd.DataFrame:
    """CDNOW_master lines (header optional, whitespace-separated: id, YYYYMMDD, CDs, dollars) →
    one row per customer and day (same-day lines summed): customer_id, day, cds, dollars."""
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # header or blank
        rows.append((parts[0], parts[1], int(parts[2]), float(parts[3])))
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "cds", "dollars"])
    frame["day"] = pd.to_datetime(frame["day"], format="%Y%m%d").dt.date
    return frame.groupby(["customer_id", "day"], as_index=False)[["cds", "dollars"]].sum()


def load_cdnow(wh, frame: pd.DataFrame) -> dict[str, int]:
    """Insert the transactions of :func:`read_cdnow` into ``customers`` and ``orders``."""

    def at(day: date) -> Any:
        return wh.to_db(datetime(day.year, day.month, day.day, ORDER_HOUR, tzinfo=UTC))

    first = frame.groupby("customer_id")["day"].min()
    customers = [{"customer_id": cid, "created_at": at(day), "updated_at": at(day)} for cid, day in first.items()]
    orders = [{"order_id": f"cdnow-{r.customer_id}-{r.day:%Y%m%d}", "customer_id": r.customer_id,
               "ordered_at": at(r.day), "revenue": round(float(r.dollars), 2), "currency": "USD",
               "status": "completed", "status_at": at(r.day), "message_id": f"cdnow-{r.customer_id}-{r.day:%Y%m%d}"}
              for r in frame.itertuples(index=False)]
    with wh.begin() as conn:
        wh.insert_rows("customers", customers, conn)
        for lo in range(0, len(orders), 20_000):
            wh.insert_rows("orders", orders[lo: lo + 20_000], conn)
    return {"customers": len(customers), "orders": len(orders)}


def _figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    return {"auc": round(float(roc_auc_score(y, p)), 4), "brier": round(float(brier_score_loss(y, p)), 4)}


def baselines(train: pd.DataFrame, train_y: np.ndarray, test: pd.DataFrame, test_y: np.ndarray
              ) -> dict[str, dict[str, float]]:
    """Simple rules on the held-out rows, each turned into a probability by a fit on the same
    training rows as the product's models (one- or two-feature logistic on log1p, or the
    training rate per group)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    out: dict[str, dict[str, float]] = {}
    rate = float(train_y.mean())
    out["constant (training base rate)"] = {"auc": 0.5, "brier": round(float(((test_y - rate) ** 2).mean()), 4)}
    recent_train = train["orders_90d"].to_numpy() > 0
    recent_test = test["orders_90d"].to_numpy() > 0
    p = np.where(recent_test, train_y[recent_train].mean(), train_y[~recent_train].mean())
    out["rule: bought in the last 90 days"] = _figures(test_y, p)
    for name, columns in {"recency only": ["recency_days"], "frequency only": ["frequency"],
                          "recency + frequency": ["recency_days", "frequency"],
                          "BG/NBD expected purchases (90 d) only": ["expected_90d"],
                          "BG/NBD P(alive) only": ["p_alive"]}.items():
        model = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(train[columns].to_numpy(float).clip(min=0), train_y)
        out[name] = _figures(test_y, model.predict_proba(test[columns].to_numpy(float).clip(min=0))[:, 1])
    return out


def evaluate(wh, as_of: datetime = AS_OF) -> dict[str, Any]:
    """The product's propensity training and evaluation as of ``as_of``, the baselines, BG/NBD's
    forecast and the segments' purchase rates (see the module docstring)."""
    from relance.ml import bgnbd, segments
    from relance.ml.features import customer_features, purchase_labels

    model, card = segments.train_propensity(wh, as_of)
    t1 = as_of - segments.HORIZON
    t0 = t1 - segments.HORIZON
    # the same rows as train_propensity: stacked training snapshots, BG/NBD fitted on the newest
    frames, labels = segments._snapshots(wh, t0)
    params = bgnbd.fit_frame(frames[0])
    train = pd.concat([bgnbd.features(f, params) for f in frames])
    train_y = np.concatenate(labels)
    test = bgnbd.features(customer_features(wh, t1, snapshot=True), params)
    test_y = test.index.isin(purchase_labels(wh, t1, as_of)).astype(int)

    # BG/NBD's own forecast of the held-out window against what happened
    held = pd.Series(0.0, index=test.index)
    with wh.begin() as conn:
        rows = conn.execute(wh.statement("ml/purchase_labels", {"start": t1, "end": as_of}),
                            wh.params({"start": t1, "end": as_of})).fetchall()
    held.loc[[r[0] for r in rows]] = [float(r[1]) for r in rows]
    alive = test["p_alive"].to_numpy()
    by_frequency = []
    for lo, hi, label in ((1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 7, "5-7"), (8, 10**9, "8+")):
        mask = (test["frequency"] >= lo) & (test["frequency"] <= hi)
        by_frequency.append({"orders_before_t1": label, "customers": int(mask.sum()),
                             "predicted_per_customer": round(float(test.loc[mask, "expected_90d"].mean()), 4),
                             "actual_per_customer": round(float(held[mask].mean()), 4),
                             "mean_p_alive": round(float(test.loc[mask, "p_alive"].mean()), 4)})
    forecast = {"predicted_purchases": round(float(test["expected_90d"].sum()), 1),
                "actual_purchases": int(held.sum()),
                "p_alive_mean": round(float(alive.mean()), 4),
                "p_alive_below_half": round(float((alive < 0.5).mean()), 4),
                "by_frequency": by_frequency}

    # segments as of T1, each segment's purchase rate in the held-out window; stability a week on
    named, _ = segments.name_segments(segments.rfm_scores(test))
    seg = pd.DataFrame({"segment": named, "bought": pd.Series(test_y, index=test.index).loc[named.index]})
    seg_table = [{"segment": name, "customers": int(len(g)), "purchase_rate_next_90d": round(float(g["bought"].mean()), 4)}
                 for name, g in seg.groupby("segment")]
    seg_table.sort(key=lambda r: -r["purchase_rate_next_90d"])
    later, _ = segments.name_segments(segments.rfm_scores(customer_features(wh, t1 + WEEK, snapshot=True)))
    common = named.index.intersection(later.index)
    stability = float((named.loc[common] == later.loc[common]).mean())

    return {"data": "CDNOW_master (Lifetimes 0.11.3), one order per customer and day",
            "as_of": as_of.isoformat(), "t0": t0.isoformat(), "t1": t1.isoformat(),
            "propensity_card": card, "baselines": baselines(train, train_y, test, test_y),
            "bgnbd_forecast": forecast, "segments_as_of_t1": seg_table,
            "segment_stability_one_week": round(stability, 4)}


def markdown(result: dict[str, Any]) -> str:
    card = result["propensity_card"]
    held = card["held_out_window"]
    lines = [f"CDNOW, as of {result['as_of'][:10]}: training features as of {result['t0'][:10]} "
             f"(+ one 45 d earlier), held-out features as of {result['t1'][:10]}, label = an order in "
             f"the next 90 days; held-out {held['customers']:,} customers, base rate "
             f"{held['positives'] / held['customers']:.3f}.", "",
             "| propensity on the held-out window | AUC | Brier |", "|---|---:|---:|"]
    for name, figures in card.get("candidates", {}).items():
        mark = " (chosen)" if name == card.get("chosen") else ""
        lines.append(f"| {name}{mark} | {figures['auc']:.4f} | {figures['brier']:.4f} |")
    plain = card.get("logistic_without_bgnbd")
    if plain:
        lines.append(f"| logistic without the BG/NBD features | {plain['auc']:.4f} | {plain['brier']:.4f} |")
    for name, figures in result["baselines"].items():
        lines.append(f"| baseline: {name} | {figures['auc']:.4f} | {figures['brier']:.4f} |")
    bg = card["bgnbd"]
    fc = result["bgnbd_forecast"]
    lines += ["", f"BG/NBD (training snapshot): r {bg['r']}, α {bg['alpha']}, a {bg['a']}, b {bg['b']}; "
              f"held-out: predicted {fc['predicted_purchases']:,} purchases, actual {fc['actual_purchases']:,}; "
              f"mean P(alive) {fc['p_alive_mean']}, {fc['p_alive_below_half']:.1%} of customers below 0.5.", "",
              "| orders before T1 | customers | predicted / customer | actual / customer | mean P(alive) |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['orders_before_t1']} | {r['customers']:,} | {r['predicted_per_customer']} | "
              f"{r['actual_per_customer']} | {r['mean_p_alive']} |" for r in fc["by_frequency"]]
    lines += ["", "Calibration of the chosen model (held-out deciles):", "",
              "| customers | predicted | observed |", "|---:|---:|---:|"]
    lines += [f"| {r['customers']:,} | {r['predicted']} | {r['observed']} |"
              for r in card.get("held_out", {}).get("reliability", [])]
    lines += ["", f"Segments as of T1 (stability one week later: {result['segment_stability_one_week']:.1%}):", "",
              "| segment | customers | ordered in the next 90 days |", "|---|---:|---:|"]
    lines += [f"| {r['segment']} | {r['customers']:,} | {r['purchase_rate_next_90d']:.3f} |"
              for r in result["segments_as_of_t1"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from relance import warehouse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an empty warehouse to load CDNOW into (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="relance-cdnow-"))
    try:
        wh = warehouse.connect(args.url or f"sqlite:///{workdir / 'cdnow.db'}")
        with cdnow_path().open() as handle:
            frame = read_cdnow(handle)
        loaded = load_cdnow(wh, frame)
        print(f"loaded {loaded['customers']:,} customers, {loaded['orders']:,} orders", flush=True)
        result = {"loaded": loaded, **evaluate(wh)}
        wh.engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str))
    table = markdown(result)
    OUT.with_suffix(".md").write_text(table)
    print(table)
    print(f"written {OUT} and {OUT.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

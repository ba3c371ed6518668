"""``make bench`` (recommender part): training time, peak memory and quality per shop size.

For each size: a synthetic shop (relance.shopsim) is generated and ingested into a fresh
warehouse; then each measured step runs in a child process of its own (its peak RSS is its
own): ``train_recommendations`` (read, fit, score every customer, write the tables),
``build_segments``, the leave-last-basket-out evaluation of our recommender next to its
ablations and baselines (:mod:`relance.ml.evaluation`), and the reference implicit-feedback
model — ``implicit``'s ALS, installed only for the benchmark (``requirements-bench.txt``),
alpha tuned on the validation half — on exactly the same split, feedback matrix and
exclusions; quality figures are on the test half. Not a test: compare the figures as ratios,
on the same machine.

    python -m benchmarks.recommender --sizes 10000,100000 [--backends sqlite,postgresql] [--days 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.run import measure_child, warehouse_url

ROOT = Path(__file__).resolve().parents[1]
START = "2026-11-16"
#: Ablations and baselines of the evaluation step, printed under it (same split, same exclusions).
COMPARED = {"knn_only": "ablation: kNN only", "repeat_only": "ablation: repeat only",
            "no_due": "ablation: no due-ness",
            "cosine_untuned": "cosine, old shrinkage", "cosine_bm25": "cosine, BM25 weighting",
            "rp3beta": "RP3beta (tuned)", "no_content_cold_start": "no content cold start",
            "due_per_product_only": "due: product interval only",
            "own_history": "own history", "popularity": "popularity (purchases)",
            "popularity_weighted": "popularity (weighted)"}

PRELUDE = """
import sys, json, time
from datetime import date, datetime, timedelta, UTC
from relance import warehouse
landing, size, url, start, days, models = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
t0 = datetime.fromisoformat(start).replace(tzinfo=UTC)
as_of = t0 + timedelta(days=days)
"""

STEPS = {
    "shopsim": """
from relance.shopsim import generate
s = generate(landing, customers=size, days=days, start=t0.date(), seed=1)
print(json.dumps({"lines": s["lines_written"], "orders": s["orders"]}))
""",
    "ingest": """
from relance.ingest import ingest_window
s = ingest_window(warehouse.connect(url), landing, t0, as_of)
print(json.dumps({"loaded": s.get("events_loaded", 0)}))
""",
    "train_recommendations": """
from relance.ml.recommender import train_recommendations
from relance.ml.store import ModelStore
s = train_recommendations(warehouse.connect(url), as_of, ModelStore(models), evaluate=False)
print(json.dumps({"customers": s["customers"], "rows": s["recommendations"]}))
""",
    "build_segments": """
from relance.ml.segments import build_segments
from relance.ml.store import ModelStore
s = build_segments(warehouse.connect(url), as_of, ModelStore(models))
print(json.dumps({"customers": s["customers"], "auc": s["auc"]}))
""",
    "evaluate_itemknn": """
from relance.ml.evaluation import leave_last_basket_out
r = leave_last_basket_out(warehouse.connect(url), as_of)
print(json.dumps({"itemknn": r["recommender"], **r["ablations"], **r["baselines"], **r["contenders"],
                  "customers": r["evaluated_customers"], "consumables": r["consumables"]}))
""",
    "evaluate_implicit_als": """
import numpy as np
from scipy import sparse
from relance.ml.evaluation import holdout_split, ranking_metrics
split = holdout_split(warehouse.connect(url), as_of)
m = split["model"]
from implicit.als import AlternatingLeastSquares

def top10(als, rows):
    out = []
    for lo in range(0, len(rows), 4096):
        part = rows[lo: lo + 4096]
        scores = als.user_factors[part] @ als.item_factors.T
        scores[:, ~split["allowed"]] = -np.inf
        already = m.bought[part].multiply(sparse.csr_matrix(~split["consumable"], dtype=np.float32)).tocoo()
        scores[already.row, already.col] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        out.append(np.where(np.isfinite(np.take_along_axis(scores, top, axis=1)), top, -1))
    return np.vstack(out) if out else np.zeros((0, 10), dtype=np.int64)

val = split["validation"]
rows, relevant = split["user_rows"], split["relevant"]
val_rel = [r for r, v in zip(relevant, val) if v]
test_rel = [r for r, v in zip(relevant, val) if not v]
tuning, best = {}, None
t = time.perf_counter()
for alpha in (1.0, 4.0, 15.0, 40.0):  # tuned on the validation half only
    als = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, alpha=alpha, random_state=0)
    als.fit(m.feedback, show_progress=False)
    tuning[alpha] = ranking_metrics(top10(als, rows[val]), val_rel, 10)["ndcg@10"]
    if best is None or tuning[alpha] > tuning[best[0]]:
        best = (alpha, als)
fit_s = time.perf_counter() - t
print(json.dumps({"als": ranking_metrics(top10(best[1], rows[~val]), test_rel, 10), "alpha": best[0],
                  "validation_ndcg_by_alpha": tuning, "fit_s_4_alphas": round(fit_s, 1)}))
""",
}


def run_step(step: str, args: list[str]) -> dict:
    """Run one step in a child process; wall time and the child's own peak RSS (wait4)."""
    code = f"import sys\nsys.path.insert(0, {str(ROOT / 'plugins')!r})\n" + PRELUDE + STEPS[step]
    return {"step": step, **measure_child(code, args, f"step {step}")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="customers, comma-separated (e.g. 10000,100000,1000000)")
    parser.add_argument("--backends", default="sqlite", help="sqlite and/or postgresql, comma-separated")
    parser.add_argument("--days", type=int, default=2, help="simulated live days (history: 400 days)")
    parser.add_argument("--out", default=str(ROOT / ".local" / "bench_recommender.json"))
    args = parser.parse_args()
    results = []
    print(f"{'customers':>10} {'backend':<10} {'step':<22} {'wall s':>8} {'peak MB':>8}  {'recall@10':>9} {'ndcg@10':>8}  detail",
          flush=True)
    for backend in args.backends.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            results += bench_size(size, backend, args.days)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwritten to {args.out}; {os.cpu_count()} cores; peak = the step's own max RSS")
    return 0


def bench_size(size: int, backend: str, days: int) -> list[dict]:
    results = []
    workdir = Path(tempfile.mkdtemp(prefix=f"relance-bench-rec-{size}-"))
    url, drop = warehouse_url(backend, workdir)
    argv = [str(workdir / "landing"), str(size), url, START, str(days), str(workdir / "models")]
    try:
        for step in STEPS:
            if step == "evaluate_implicit_als" and not _has_implicit():
                print(f"{size:>10} {step:<22} skipped: `implicit` is not installed (make bench installs it)")
                continue
            row = run_step(step, argv)
            results.append({"customers": size, "backend": backend, **row})
            res = row["result"] or {}
            metric = res.get("itemknn") or res.get("als")
            cells = f"{metric['recall@10']:>9.4f} {metric['ndcg@10']:>8.4f}" if metric else f"{'':>9} {'':>8}"
            detail = {k: v for k, v in res.items() if k not in ("itemknn", "als", *COMPARED)}
            print(f"{size:>10} {backend:<10} {step:<22} {row['wall_s']:>8} {row['peak_mb']:>8}  {cells}  {detail}",
                  flush=True)
            for name, label in COMPARED.items():
                if name in res:
                    print(f"{size:>10} {backend:<10} {'  ' + label:<22} {'':>8} {'':>8}  "
                          f"{res[name]['recall@10']:>9.4f} {res[name]['ndcg@10']:>8.4f}", flush=True)
    finally:
        drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _has_implicit() -> bool:
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

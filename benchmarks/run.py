"""``make bench``: wall time and peak memory per pipeline stage, per shop size, per backend.

Each stage runs in a child process of its own, so its peak RSS is its own. Not a test: the
figures depend on the machine; compare them as ratios, on the same machine.

    python -m benchmarks.run --sizes 10000,100000 --backends sqlite,postgresql
    python -m benchmarks.run --sizes 1000000 --backends postgresql   # adds to the same results
    python -m benchmarks.run --report                                # tables only
    python -m benchmarks.run --sizes 1000000 --on-warehouse postgresql://postgres@127.0.0.1:5432/relance_bench_1m
        # the planning stages only, on a copy of a warehouse already loaded (benchmarks.replicate)

Results are merged into ``.local/bench.json`` (a size measured again replaces its rows) and
written as markdown, one table per size (``.local/bench.md``): wall time and peak memory of
every stage, of the models (``benchmarks.recommender``'s ``.local/bench_recommender.json``)
and of the whole daily cycle — 24 live hours of ingest, 24 planning runs and the two model
DAGs, composed from the measured stages —, and the send ratio of ``benchmarks.send``
(``.local/bench_send.json``) when those benches have run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("TM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = "2026-11-16"

STAGE_CODE = {
    "shopsim": """
from datetime import date
from relance.shopsim import generate
s = generate(sys.argv[1], customers=int(sys.argv[2]), days=2, start=date.fromisoformat(sys.argv[4]), seed=1)
print(json.dumps({"lines": s["lines_written"], "bytes": s["bytes_written"]}))
""",
    # the onboarding import: hour 00 of the first day holds every customer and their history
    "ingest_import_hour": """
from datetime import datetime, timedelta, UTC
from relance import warehouse
from relance.ingest import ingest_window
start = datetime.fromisoformat(sys.argv[4]).replace(tzinfo=UTC)
s = ingest_window(warehouse.connect(sys.argv[3]), sys.argv[1], start, start + timedelta(hours=1))
print(json.dumps({"lines": s.get("events_lines", 0), "loaded": s.get("events_loaded", 0)}))
""",
    # the morning after the import, hours 01-11, in one window (so the live hour below is one hour:
    # the trailing window has nothing left to pick up)
    "ingest_morning": """
from datetime import datetime, timedelta, UTC
from relance import warehouse
from relance.ingest import ingest_window
start = datetime.fromisoformat(sys.argv[4]).replace(tzinfo=UTC)
s = ingest_window(warehouse.connect(sys.argv[3]), sys.argv[1], start + timedelta(hours=1), start + timedelta(hours=12))
print(json.dumps({"lines": s.get("events_lines", 0), "loaded": s.get("events_loaded", 0)}))
""",
    # an ordinary live hour (midday of the first day)
    "ingest_live_hour": """
from datetime import datetime, timedelta, UTC
from relance import warehouse
from relance.ingest import ingest_window
start = datetime.fromisoformat(sys.argv[4]).replace(tzinfo=UTC) + timedelta(hours=12)
s = ingest_window(warehouse.connect(sys.argv[3]), sys.argv[1], start, start + timedelta(hours=1))
print(json.dumps({"lines": s.get("events_lines", 0), "loaded": s.get("events_loaded", 0)}))
""",
    "plan_all_campaigns": """
from datetime import datetime, timedelta, UTC
from relance import warehouse
from relance.campaigns.config import load_campaigns
from relance.campaigns.planner import plan_campaign
wh = warehouse.connect(sys.argv[3])
as_of = datetime.fromisoformat(sys.argv[4]).replace(tzinfo=UTC) + timedelta(hours=13)
out = {c.id: plan_campaign(wh, c, as_of)["planned"] for c in load_campaigns().values()}
print(json.dumps(out))
""",
    # the next hour's planning: what every hourly run costs once the first one (which planned the
    # backlog: the quarter's loyalty reminders, the day's birthdays …) is done
    "plan_next_hour": """
from datetime import datetime, timedelta, UTC
from relance import warehouse
from relance.campaigns.config import load_campaigns
from relance.campaigns.planner import plan_campaign
wh = warehouse.connect(sys.argv[3])
as_of = datetime.fromisoformat(sys.argv[4]).replace(tzinfo=UTC) + timedelta(hours=14)
out = {c.id: plan_campaign(wh, c, as_of)["planned"] for c in load_campaigns().values()}
print(json.dumps(out))
""",
}


def measure_child(code: str, args: list[str], what: str) -> dict:
    """Run ``code`` in a child Python with ``args``: its wall time, its own CPU time and peak RSS
    (wait4), and the JSON its last output line holds. The benches measure every stage this way."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        if status != 0:
            raise RuntimeError(f"{what} failed (status {status}):\n{err.read()[-3000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_mb": round(usage.ru_maxrss / 1024), "result": json.loads(lines[-1]) if lines else None}


def run_stage(stage: str, landing: str, url: str) -> dict:
    code = f"import sys, json\nsys.path.insert(0, {str(ROOT / 'plugins')!r})\n" + STAGE_CODE[stage]
    return {"stage": stage, **measure_child(code, [landing, str(SIZE), url, START], f"stage {stage}")}


def warehouse_url(backend: str, workdir: Path, db_file: str = "bench.db") -> tuple[str, callable]:
    """A fresh warehouse for a bench: a SQLite file, or a PostgreSQL schema of its own; and the
    function that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / db_file}", lambda: None
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


def _load(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def _merge(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` into the results file, replacing the rows of the same size and backend."""
    measured = {(r["customers"], r.get("backend")) for r in rows}
    kept = [r for r in _load(path) if (r["customers"], r.get("backend")) not in measured]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept + rows, indent=1))


STAGE_LABELS = {
    "shopsim": "shopsim: synthetic shop",
    "ingest_import_hour": "ingest: onboarding import (identities + 400 days of orders)",
    "ingest_morning": "ingest: the next 11 hours in one run (catching up)",
    "ingest_live_hour": "ingest: one live hour (12:00-13:00 UTC)",
    "plan_all_campaigns": "planning: every campaign as of one hour (13:00, the first run)",
    "plan_next_hour": "planning: every campaign, the next hour (14:00)",
    "train_recommendations": "models: train_recommendations",
    "build_segments": "models: build_segments",
}
#: the stages of a day: 24 hourly ingests and planning runs, each model DAG once
DAILY = {"ingest_live_hour": 24, "plan_next_hour": 24, "train_recommendations": 1, "build_segments": 1}


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def _detail(row: dict) -> str:
    res = row.get("result") or {}
    if "lines" in res:
        detail = f"{res['lines']:,} lines"
    elif row["stage"].startswith("plan_") and isinstance(res, dict):
        detail = f"{sum(v for v in res.values() if isinstance(v, int)):,} messages planned"
    elif "customers" in res:
        detail = f"{res['customers']:,} customers"
    else:
        detail = ""
    if row.get("warehouse") == "replicated":
        detail += " (on a 100k warehouse replicated 10×: `benchmarks.replicate`)"
    return detail


def _cell(row: dict) -> str:
    """wall s (CPU s of the stage's own process) / peak MB"""
    cpu = f" ({row['cpu_s']:,})" if "cpu_s" in row else ""
    return f"{row['wall_s']:,}{cpu} / {row['peak_mb']:,}"


def report(out: Path) -> str:
    """Markdown tables, one per size, from the results files of the three benches."""
    pipeline = _load(out)
    models = [{**r, "stage": r["step"]} for r in _load(out.with_name("bench_recommender.json"))
              if r.get("step") in ("train_recommendations", "build_segments")]
    sends = _load(out.with_name("bench_send.json"))
    backends = sorted({r["backend"] for r in pipeline + models if r.get("backend")}, key=lambda b: b != "postgresql")
    md = []
    for size in sorted({r["customers"] for r in pipeline + models}):
        rows = [r for r in pipeline + models if r["customers"] == size]
        md += [f"### {_size(size)} customers", "",
               "| stage | " + " | ".join(f"{b}: wall s (CPU s) / peak MB" for b in backends) + " | detail |",
               "|---|" + "---:|" * len(backends) + "---|"]
        for stage, label in STAGE_LABELS.items():
            found = {r.get("backend") or "-": r for r in rows if r["stage"] == stage}
            if not found:
                continue
            if stage == "shopsim":
                cells = [_cell(found["-"])] + [""] * (len(backends) - 1)
                detail = _detail(found["-"])
            else:
                cells = [_cell(found[b]) if b in found else "" for b in backends]
                detail = next((_detail(r) for r in found.values() if _detail(r)), "")
            md.append(f"| {label} | " + " | ".join(cells) + f" | {detail} |")
        cycle = []
        for b in backends:
            got = {r["stage"]: r for r in rows if r.get("backend") == b}
            if all(stage in got for stage in DAILY):
                wall = sum(got[stage]["wall_s"] * times for stage, times in DAILY.items())
                cycle.append(f"**{wall:,.0f} / {max(got[stage]['peak_mb'] for stage in DAILY):,}**")
            else:
                missing = ", ".join(stage for stage in DAILY if stage not in got)
                cycle.append(f"(missing: {missing})")
        md.append("| **daily cycle**: 24 × (live hour + next hour's planning) + the two models | " + " | ".join(cycle)
                  + " | composed from the rows above; peak = the largest stage |")
        ratio = {r["backend"]: r for r in sends}
        md.append("| send phase: dispatcher ÷ bare boto3 loop (`benchmarks.send`, target ≥ 0.9) | "
                  + " | ".join(f"{ratio[b]['ratio']}" if b in ratio else "(not run)" for b in backends)
                  + " | same emulator; independent of the shop size |")
        md.append("")
    text = "\n".join(md)
    out.with_suffix(".md").write_text(text)
    return text


def main() -> int:
    global SIZE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="customers, comma-separated")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--out", default=str(ROOT / ".local" / "bench.json"))
    parser.add_argument("--report", action="store_true", help="only print the markdown tables of the results")
    parser.add_argument("--on-warehouse", metavar="URL",
                        help="PostgreSQL warehouse already loaded (e.g. by benchmarks.replicate) for the one size "
                             "given: only the planning stages, each run on a fresh copy of it")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report:
        print(report(out))
        print(f"written to {out.with_suffix('.md')}")
        return 0
    if args.on_warehouse:
        SIZE = int(args.sizes)
        results = plan_on_copy(args.on_warehouse, SIZE)
        stages = {r["stage"] for r in results}
        _merge(out, [r for r in _load(out) if r["customers"] == SIZE and r.get("backend") == "postgresql"
                     and r["stage"] not in stages] + results)
        print(report(out))
        return 0
    print(f"{'customers':>10} {'backend':<11} {'stage':<20} {'wall s':>8} {'peak MB':>8}  result")
    for size in [int(s) for s in args.sizes.split(",")]:
        SIZE = size
        results = []
        workdir = Path(tempfile.mkdtemp(prefix=f"relance-bench-{size}-"))
        landing = str(workdir / "landing")
        try:
            shop = run_stage("shopsim", landing, "")
            print(f"{size:>10} {'-':<11} {'shopsim':<20} {shop['wall_s']:>8} {shop['peak_mb']:>8}  {shop['result']}")
            results.append({"customers": size, **shop})
            for backend in args.backends.split(","):
                url, drop = warehouse_url(backend, workdir)
                try:
                    for stage in ("ingest_import_hour", "ingest_morning", "ingest_live_hour", "plan_all_campaigns",
                                  "plan_next_hour"):
                        row = run_stage(stage, landing, url)
                        results.append({"customers": size, "backend": backend, **row})
                        print(f"{size:>10} {backend:<11} {stage:<20} {row['wall_s']:>8} {row['peak_mb']:>8}  "
                              f"cpu {row['cpu_s']} s  {row['result']}", flush=True)
                        _merge(out, results)
                finally:
                    drop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        _merge(out, results)
    print(f"\nwritten to {out}; ru_maxrss of this machine's children, {os.cpu_count()} cores\n")
    print(report(out))
    return 0


def plan_on_copy(source: str, size: int) -> list[dict]:
    """The two planning stages on a copy of ``source`` (``CREATE DATABASE … TEMPLATE``: the
    source is left as it was, so the first run plans the backlog every time): for sizes whose
    import takes longer than a bench should (1M: a 100k warehouse replicated 10×). The rows
    are marked ``warehouse: replicated`` and replace the size's planning rows."""
    import sqlalchemy as sa

    url = sa.engine.make_url(source)
    copy = f"bench_plan_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), poolclass=sa.pool.NullPool,
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"'))
    results = []
    try:
        target = url.set(database=copy).render_as_string(hide_password=False)
        for stage in ("plan_all_campaigns", "plan_next_hour"):
            row = run_stage(stage, "", target)
            results.append({"customers": size, "backend": "postgresql", "warehouse": "replicated", **row})
            print(f"{size:>10} {'postgresql':<11} {stage:<20} {row['wall_s']:>8} {row['peak_mb']:>8}  "
                  f"cpu {row['cpu_s']} s  {row['result']}", flush=True)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{copy}"'))
    return results


SIZE = 0
if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())

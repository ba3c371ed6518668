"""``make bench``: wall time and peak memory per pipeline stage, per shop size, per backend.

Each stage runs in a child process of its own, so its peak RSS is its own. Not a test: the
figures depend on the machine; compare them as ratios, on the same machine.

    python -m benchmarks.run --sizes 10000,100000 --backends sqlite,postgresql
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
}


def run_stage(stage: str, landing: str, url: str) -> dict:
    code = f"import sys, json\nsys.path.insert(0, {str(ROOT / 'plugins')!r})\n" + STAGE_CODE[stage]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, landing, str(SIZE), url, START],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read().strip().splitlines()
    if status != 0:
        raise RuntimeError(f"stage {stage} failed (status {status})")
    return {"stage": stage, "wall_s": round(wall, 1), "peak_mb": round(usage.ru_maxrss / 1024),
            "result": json.loads(out[-1]) if out else None}


def warehouse_url(backend: str, workdir: Path) -> tuple[str, callable]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


def main() -> int:
    global SIZE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="customers, comma-separated")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--out", default=str(ROOT / ".local" / "bench.json"))
    args = parser.parse_args()
    results = []
    print(f"{'customers':>10} {'backend':<11} {'stage':<20} {'wall s':>8} {'peak MB':>8}  result")
    for size in [int(s) for s in args.sizes.split(",")]:
        SIZE = size
        workdir = Path(tempfile.mkdtemp(prefix=f"relance-bench-{size}-"))
        landing = str(workdir / "landing")
        try:
            shop = run_stage("shopsim", landing, "")
            print(f"{size:>10} {'-':<11} {'shopsim':<20} {shop['wall_s']:>8} {shop['peak_mb']:>8}  {shop['result']}")
            results.append({"customers": size, **shop})
            for backend in args.backends.split(","):
                url, drop = warehouse_url(backend, workdir)
                try:
                    for stage in ("ingest_import_hour", "ingest_live_hour", "plan_all_campaigns"):
                        row = run_stage(stage, landing, url)
                        results.append({"customers": size, "backend": backend, **row})
                        print(f"{size:>10} {backend:<11} {stage:<20} {row['wall_s']:>8} {row['peak_mb']:>8}  "
                              f"{row['result']}", flush=True)
                finally:
                    drop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwritten to {args.out}; ru_maxrss of this machine's children, {os.cpu_count()} cores")
    return 0


SIZE = 0
if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())

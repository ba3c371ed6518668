"""`make e2e-celery`: the production path, proven — Airflow with the CeleryExecutor.

Starts, from this .venv, against the machine's PostgreSQL (a fresh metadata database and a fresh
warehouse database, dropped at the end) and Redis (the Celery broker): ``airflow api-server``,
``scheduler``, ``dag-processor``, ``triggerer`` and ``celery worker`` as separate processes, plus
moto's server as the SES/S3/SQS emulator — with the settings of ``airflow.env``, the file
docker-compose.yml reads, so both run one configuration. Then:

1. A small synthetic shop lands in a landing zone whose last hours are the real last hours.
2. The pipeline DAGs are unpaused and the SCHEDULER runs them on Celery for the last
   ``HOURS`` hourly intervals, hour by hour in pipeline order (ingest_behaviour → every planner
   → dispatch_messages). The runs are created through the REST API with their logical dates;
   ``[scheduler] use_job_schedule`` is off for this replay only, because the scheduler's own clock
   would otherwise add runs for the real current hour and asset-triggered runs as of the real
   "now", racing the replayed hours (in production those are exactly the runs wanted). The
   staleness guard's wall clock is pinned (RELANCE_SIMULATED_NOW) to the moment the replay
   starts, in the worker and in the reference alike.
3. The embedded path — the functions the demo's DAG tasks and the tests call
   (tests/helpers.py ``plan_at`` / ``dispatch_at``), in this process — runs the same hours on the
   same landing zone into a second warehouse and a second emulator. Every decision (send key,
   status, reason) must be the same, and each emulator must hold exactly the warehouse's sent
   messages.
4. What marketing ops do: ``campaign__cart_abandonment`` (left paused until now) is backfilled
   over the past day with ``airflow backfill create`` — first ``--dry-run``, which must create no
   run — then a dispatcher dry run and a real one. Nothing stale may be mailed: every message
   due longer ago than the campaign's max_lateness is ``expired`` (a ``would be expired`` dry-run
   row first), the emulator gets exactly the fresh ones, and the embedded path agrees again.

Everything is torn down even on failure. Without PostgreSQL or Redis it says so; under CI=true
that is a failure. Prints each step with its time; exit status 0 only if every check passed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "airflow.env"
BIN = Path(sys.executable).parent
HOURS = 3
CUSTOMERS = 2000
SEED = 7
BACKFILLED = "campaign__cart_abandonment"
PG_URL = os.environ.get("TM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RELANCE_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")
STARTED = time.time()


def say(message: str) -> None:
    print(f"[e2e-celery {time.time() - STARTED:6.1f}s] {message}", flush=True)


class Failed(AssertionError):
    pass


PASSED_CHECKS: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)
    PASSED_CHECKS.append(message)
    say(f"  ok: {message}")


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """airflow.env: KEY=VALUE lines and # comments (docker compose's env_file reads the same)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def db_url(name: str, driver: str = "postgresql") -> str:
    parts = urlsplit(PG_URL)
    return f"{driver}://{parts.netloc}/{name}"


def airflow_environment(work: Path, meta_db: str, warehouse_db: str, api_port: int, moto_port: int,
                        simulated_now: datetime, live_since: datetime, queue: str = "relance-e2e") -> dict[str, str]:
    """The environment of every Airflow process: airflow.env (shared with docker-compose.yml),
    plus where this machine's services are (what compose sets per host), plus the replay's clock."""
    endpoint = f"http://127.0.0.1:{moto_port}"
    env = dict(read_env_file())
    env.update({
        # where things are (docker-compose.yml: the postgres, redis, ses-emulator containers)
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url(meta_db, "postgresql+psycopg2"),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url(meta_db),
        "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
        # a queue of this run's own on the shared Redis: nothing else takes its tasks, and the
        # teardown removes only its keys
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW_CONN_WAREHOUSE": db_url(warehouse_db),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                "extra": {"region_name": "eu-west-1", "endpoint_url": endpoint}}),
        "AIRFLOW_VAR_TM_LANDING": str(work / "landing"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONPATH": str(ROOT / "plugins"),
        # ports of this run's log servers and health check (several checkouts share the machine)
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # the replay (module docstring): runs are created by this script, hour by hour
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "RELANCE_SIMULATED_NOW": simulated_now.isoformat(),
        "AIRFLOW_VAR_TM_LIVE_SINCE": live_since.isoformat(),
    })
    return env


# --------------------------------------------------------------------------- services


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def admin_sql(*statements) -> None:
    import psycopg

    with psycopg.connect(db_url("postgres"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def create_database(name: str) -> None:
    from psycopg import sql

    admin_sql(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
              sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    from psycopg import sql

    admin_sql(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def clear_queue(queue: str) -> None:
    """Remove this run's Celery queue (and its bindings) from the broker; nothing else."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    keys = list(client.scan_iter(match=f"*{queue}*"))
    if keys:
        client.delete(*keys)


class Processes:
    """The long-running processes, each in its own session (killed as a group at the end)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.running[name] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True, cwd=ROOT)

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                raise Failed(f"{name} exited with {proc.returncode}; see {self.logs / (name + '.log')}")

    def stop(self) -> None:
        """SIGTERM to each process group, 15 s to exit, then SIGKILL to whatever of the group is left
        (task processes forked by the worker included)."""
        for proc in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for proc in self.running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.time()))
        for proc in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def tails(self, lines: int = 25) -> None:
        for name in self.running:
            text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            print(f"----- last {lines} lines of {name}.log -----")
            print("\n".join(text[-lines:]))


def task_errors(logs: Path, limit: int = 5) -> None:
    """The exceptions Airflow tasks logged (their JSON log lines), newest first."""
    found = []
    for path in logs.rglob("attempt=*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"level":"error"' in line:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                details = event.get("error_detail") or [{}]
                found.append((path.stat().st_mtime, f"{path.relative_to(logs)}: {event.get('event')} "
                              f"{details[0].get('exc_type', '')}: {details[0].get('exc_value', '')}"))
    for _mtime, text in sorted(found, reverse=True)[:limit]:
        print(f"----- task error: {text[:600]}")


def wait_for(what: str, predicate, timeout: float, processes: Processes | None = None, every: float = 1.0):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if processes:
            processes.check_alive()
        if time.time() > deadline:
            raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def start_emulator(processes: Processes, name: str, port: int) -> None:
    processes.start(name, [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], dict(os.environ))
    wait_for(f"{name} on port {port}", lambda: reachable(f"http://127.0.0.1:{port}", port), 30, processes, 0.2)


def prepare_emulator(endpoint: str) -> None:
    """As the deploy step (and the demo) does: verify the sender's domain, SES subscription management."""
    import boto3

    from relance import settings
    from relance.messaging.ses import setup_subscription_management

    ses = boto3.client("sesv2", endpoint_url=endpoint, region_name="eu-west-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ses.create_email_identity(EmailIdentity=settings.DEFAULT_SENDER.split("@")[1])
    setup_subscription_management(ses, settings.ses_contact_list(), settings.ses_unsubscribe_topic())


def emulator_messages(endpoint: str) -> list[dict]:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as response:  # noqa: S310
        return list(json.load(response).get("ses", {}).get("RawMessage", []))


# --------------------------------------------------------------------------- REST API


class Api:
    def __init__(self, base: str):
        self.base = base
        self.token = ""

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise Failed(f"{method} {path}: HTTP {error.code} {error.read()[:500]!r}") from None

    def login(self) -> None:
        # airflow.env: SIMPLE_AUTH_MANAGER_ALL_ADMINS → a token without credentials
        self.token = self.call("GET", "/auth/token")["access_token"]

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=5) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.call("GET", "/api/v2/dags?limit=200")["dags"]}

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, as_of: datetime | None, conf: dict | None = None,
                run_after: datetime | None = None) -> str:
        body: dict = {"dag_run_id": run_id, "conf": conf or {}}
        if as_of is not None:  # an hourly interval [as_of - 1 h, as_of): a scheduled run's shape
            body.update(logical_date=(as_of - timedelta(hours=1)).isoformat(),
                        data_interval_start=(as_of - timedelta(hours=1)).isoformat(),
                        data_interval_end=as_of.isoformat())
        else:  # no logical date: decides as of its run_after, like an asset-triggered run
            body.update(logical_date=None, run_after=run_after.isoformat())
        return self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=500")["dag_runs"]

    def wait_runs(self, runs: list[tuple[str, str]], processes: Processes, timeout: float = 300) -> None:
        pending = set(runs)

        def done() -> bool:
            for dag_id, run_id in sorted(pending):
                state = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]
                if state == "failed":
                    raise Failed(f"{dag_id} run {run_id} failed: {self.failure(dag_id, run_id)}")
                if state == "success":
                    pending.discard((dag_id, run_id))
            return not pending

        try:
            wait_for(f"{len(pending)} runs", done, timeout, processes)
        except Failed as failure:
            raise Failed(f"{failure}: " + "; ".join(f"{d} {r}: {self.failure(d, r)}" for d, r in sorted(pending))) \
                from None

    def failure(self, dag_id: str, run_id: str) -> str:
        tis = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
        failed = [t for t in tis["task_instances"] if t["state"] in ("failed", "upstream_failed", "up_for_retry")]
        return ", ".join(f"{t['task_id']} ({t['state']}, try {t['try_number']})" for t in failed) or \
            ", ".join(f"{t['task_id']} ({t['state']})" for t in tis["task_instances"])


# --------------------------------------------------------------------------- decisions


def decisions(wh) -> dict[str, tuple]:
    """send_key → (campaign, step, customer, status, reason): what each path decided."""
    import sqlalchemy as sa

    with wh.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT send_key, campaign_id, step_name, customer_id, status, reason FROM message_log"))]
    return {r["send_key"]: (r["campaign_id"], r["step_name"], r["customer_id"], r["status"], r["reason"] or "")
            for r in rows}


def sent_rows(wh) -> list[dict]:
    import sqlalchemy as sa

    with wh.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT send_key, campaign_id, customer_id, email, provider_message_id, due_at, send_after "
            "FROM message_log WHERE status = 'sent'"))]


def hour_counts(wh, run_id: str) -> tuple[int, int]:
    """Rows the hour's planner runs planned, and rows its dispatcher run sent (batch ids start
    with the run id)."""
    import sqlalchemy as sa

    with wh.engine.connect() as conn:
        planned = conn.execute(sa.text("SELECT COUNT(*) FROM message_log WHERE planned_by = :r"),
                               {"r": run_id}).scalar()
        sent = conn.execute(sa.text("SELECT COUNT(*) FROM message_log WHERE status = 'sent' AND batch_id LIKE :p"),
                            {"p": run_id + "%"}).scalar()
    return planned, sent


DAYTIME_ZONES = ("Pacific/Honolulu", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo",
                 "Europe/Paris", "Asia/Dubai", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Auckland")


def plant_hours(landing: Path, hours: list[datetime]) -> list[str]:
    """In each replayed hour, a new shopper (in a time zone where it is daytime then, so quiet
    hours do not defer the welcome) signs up and orders: every interval has its own work — a
    receipt its dispatcher run must send, a welcome — whatever the synthetic shop's hour holds."""
    import csv
    from zoneinfo import ZoneInfo

    from tests.helpers import customer, order, track, write_events

    snapshot = sorted((landing / "catalog").glob("dt=*/products.csv"))[-1]
    with snapshot.open(newline="") as rows:
        product = next(r for r in csv.DictReader(rows) if r["availability"] == "in_stock")
    price = float(product["price"].split()[0])
    users = []
    for n, as_of in enumerate(hours, start=1):
        zone = next(z for z in DAYTIME_ZONES if 10 <= as_of.astimezone(ZoneInfo(z)).hour < 19)
        user, signed_up, ordered = f"e2e-shopper-{n}", as_of - timedelta(minutes=40), as_of - timedelta(minutes=25)
        calls = [customer(user, f"{signed_up:%Y-%m-%d %H:%M}", opt_in=True, timezone=zone, locale="en"),
                 track(user, "Signed Up", f"{signed_up:%Y-%m-%d %H:%M}"),
                 order(user, f"e2e-order-{n}", f"{ordered:%Y-%m-%d %H:%M}", (product["id"], 1, price))]
        write_events(landing, f"{signed_up:%Y-%m-%d %H}", calls, name="events-e2e.jsonl")
        users.append(user)
    return users


def receipt(wh, user: str) -> dict | None:
    import sqlalchemy as sa

    with wh.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, batch_id FROM message_log WHERE customer_id = :u "
                                   "AND campaign_id = 'order_confirmation'"), {"u": user}).first()
    return dict(row._mapping) if row else None


def compare(celery: dict, embedded: dict, what: str) -> None:
    if celery == embedded:
        check(True, f"{what}: the same {len(celery)} decisions on both paths")
        return
    only_c = sorted(set(celery) - set(embedded))[:5]
    only_e = sorted(set(embedded) - set(celery))[:5]
    differ = [(k, celery[k], embedded[k]) for k in sorted(set(celery) & set(embedded)) if celery[k] != embedded[k]]
    raise Failed(f"{what}: decisions differ — only Celery: {[celery[k] for k in only_c]}; only embedded: "
                 f"{[embedded[k] for k in only_e]}; different: {differ[:5]} ({len(differ)} in all)")


def check_emulator(wh, endpoint: str, what: str) -> int:
    """The emulator holds exactly the warehouse's sent messages: same SES MessageIds, once each."""
    accepted = emulator_messages(endpoint)
    sent = sent_rows(wh)
    ids = sorted(m["id"] for m in accepted)
    check(ids == sorted(r["provider_message_id"] for r in sent) and len(set(ids)) == len(ids),
          f"{what}: the emulator accepted exactly the {len(sent)} messages recorded sent (by SES MessageId)")
    return len(sent)


def summary_by_status(decided: dict) -> str:
    counts: dict[str, int] = {}
    for _campaign, _step, _customer, status, _reason in decided.values():
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# --------------------------------------------------------------------------- the run


def main() -> int:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    missing = [name for name, url, port in (("PostgreSQL", PG_URL, 5432), ("Redis", REDIS_URL, 6379))
               if not reachable(url, port)]
    if missing:
        say(f"{' and '.join(missing)} not reachable ({PG_URL}, {REDIS_URL}): make e2e-celery needs both "
            "(README: The production path). " + ("FAILED (CI=true)." if ci else "Skipped."))
        return 1 if ci else 0

    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    import warnings

    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="relance-e2e-celery-"))
    (work / "logs").mkdir()
    tag = f"{os.getpid()}"
    meta_db, wh_db, ref_db = f"relance_e2e_meta_{tag}", f"relance_e2e_wh_{tag}", f"relance_e2e_ref_{tag}"
    queue = f"relance-e2e-{tag}"
    processes = Processes(work / "logs")
    ok = False

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)  # a CI time-out still tears down
    try:
        ok = run(work, meta_db, wh_db, ref_db, queue, processes)
    except Failed as failure:
        say(f"FAILED: {failure}")
    except KeyboardInterrupt:
        say("interrupted")
    except Exception:  # noqa: BLE001 - reported, then torn down
        traceback.print_exc()
        say("FAILED with an exception (above)")
    finally:
        if not ok:
            processes.tails()
            task_errors(work / "airflow/logs")
        say("tearing down: processes, databases, broker queue")
        processes.stop()
        say("  processes stopped")
        for name in (meta_db, wh_db, ref_db):
            try:
                drop_database(name)
            except Exception as error:  # noqa: BLE001 - keep tearing down
                say(f"  could not drop {name}: {error}")
        try:
            clear_queue(queue)
        except Exception as error:  # noqa: BLE001
            say(f"  could not clear the broker queue {queue}: {error}")
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"  logs kept in {work / 'logs'} and {work / 'airflow/logs'}")
    say(f"{'PASSED' if ok else 'FAILED'} in {time.time() - STARTED:.0f} s")
    print(f"e2e-celery: {len(PASSED_CHECKS)} passed, {0 if ok else 1} failed")  # CI's closing line
    return 0 if ok else 1


def run(work: Path, meta_db: str, wh_db: str, ref_db: str, queue: str, processes: Processes) -> bool:
    from tests.helpers import dispatch_at, plan_at

    from relance import settings, warehouse
    from relance.campaigns.config import load_campaigns
    from relance.ingest import ingest_window
    from relance.shopsim import generate

    now = datetime.now(UTC).replace(microsecond=0)
    top = now.replace(minute=0, second=0)
    hours = [top - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]  # as-of of each replayed hour
    first_day = (top - timedelta(hours=24)).date()
    shop_start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    live_since = max(shop_start + timedelta(hours=1), top - timedelta(hours=26))
    api_port, moto_port, ref_port = free_port(), free_port(), free_port()
    env = airflow_environment(work, meta_db, wh_db, api_port, moto_port, now, live_since, queue)
    endpoint, ref_endpoint = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{ref_port}"

    say(f"work dir {work}; simulated now {now:%Y-%m-%d %H:%M} UTC; replaying the hours ending "
        f"{', '.join(f'{h:%H:%M}' for h in hours)}; live since {live_since:%Y-%m-%d %H:%M}")
    say(f"PostgreSQL: metadata {meta_db}, warehouse {wh_db}, reference {ref_db}; "
        f"Redis broker {REDIS_URL}, queue {queue}")
    for name in (meta_db, wh_db, ref_db):
        create_database(name)
    stats = generate(work / "landing", customers=CUSTOMERS, days=2, start=first_day, seed=SEED, history_days=60)
    planted = plant_hours(work / "landing", hours)
    say(f"landing zone: {stats['events_total']} Segment calls from {first_day}, {stats['products']} products; "
        f"in each replayed hour a new shopper signs up and orders ({', '.join(planted)})")

    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "RELANCE_", "AIRFLOW_VAR_"))})
    start_emulator(processes, "moto", moto_port)
    start_emulator(processes, "moto-reference", ref_port)
    prepare_emulator(endpoint)
    prepare_emulator(ref_endpoint)

    say("airflow db migrate (fresh metadata database), pool, warehouse schema")
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, cwd=ROOT,
                   stdout=open(work / "logs/db-migrate.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    subprocess.run([str(BIN / "airflow"), "pools", "set", settings.SES_POOL, str(settings.SES_POOL_SLOTS),
                    "SES send slots"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    celery_wh = warehouse.connect(env["AIRFLOW_CONN_WAREHOUSE"])
    ref_wh = warehouse.connect(db_url(ref_db))

    say("starting api-server, scheduler, dag-processor, triggerer, celery worker")
    airflow = str(BIN / "airflow")
    processes.start("api-server", [airflow, "api-server", "--port", str(api_port), "--host", "127.0.0.1"], env)
    processes.start("scheduler", [airflow, "scheduler"], env)
    processes.start("dag-processor", [airflow, "dag-processor"], env)
    processes.start("triggerer", [airflow, "triggerer"], env)
    processes.start("celery-worker", [airflow, "celery", "worker"], env)
    api = Api(f"http://127.0.0.1:{api_port}")
    wait_for("the API server", api.healthy, 120, processes)
    api.login()
    campaigns = load_campaigns()
    planners = sorted(f"campaign__{c}" for c in campaigns)
    replayed = [p for p in planners if p != BACKFILLED]
    pipeline = ["ingest_behaviour", *planners, "dispatch_messages"]
    wait_for("every pipeline DAG parsed", lambda: set(pipeline) <= api.dag_ids(), 180, processes, 2)
    check(True, f"{len(api.dag_ids())} DAGs parsed by the dag-processor, visible through the REST API")
    for dag_id in pipeline:
        if dag_id != BACKFILLED:
            api.unpause(dag_id)
    say(f"unpaused ingest_behaviour, {len(replayed)} planners and dispatch_messages ({BACKFILLED} stays paused)")

    # ---- 2. the scheduler runs the pipeline on Celery, hour by hour
    replay_started = time.time()
    for as_of, shopper in zip(hours, planted, strict=True):
        hour_started = time.time()
        suffix = f"e2e__{as_of:%Y-%m-%dT%H:%M}"
        run = api.trigger("ingest_behaviour", suffix, as_of)
        api.wait_runs([("ingest_behaviour", run)], processes)
        runs = [(p, api.trigger(p, suffix, as_of)) for p in replayed]
        api.wait_runs(runs, processes)
        run = api.trigger("dispatch_messages", suffix, as_of)
        api.wait_runs([("dispatch_messages", run)], processes)
        planned, sent = hour_counts(celery_wh, suffix)
        say(f"  hour ending {as_of:%H:%M}: {2 + len(replayed)} runs succeeded on Celery in "
            f"{time.time() - hour_started:.0f} s; this hour {planned} messages planned, {sent} sent")
        got = receipt(celery_wh, shopper)
        check(got is not None and got["status"] == "sent" and got["batch_id"].startswith(suffix + "#"),
              f"{shopper}'s order of this hour got its receipt from this hour's dispatcher run ({got})")
    say(f"replay done in {time.time() - replay_started:.0f} s: {summary_by_status(decisions(celery_wh))}")
    not_green = [(d, r["dag_run_id"], r["state"]) for d in pipeline for r in api.runs(d) if r["state"] != "success"]
    check(not not_green, f"every run of the pipeline is green, no other run was created ({not_green[:3]})")

    # ---- 3. the embedded path on the same input
    say("embedded path: the same hours through plan_at / dispatch_at into the reference warehouse")
    landing = str(work / "landing")
    os.environ["AWS_ENDPOINT_URL"] = ref_endpoint
    for as_of in hours:
        ingest_window(ref_wh, landing, as_of - timedelta(hours=1), as_of)
        for campaign_id in sorted(campaigns):
            if f"campaign__{campaign_id}" != BACKFILLED:
                plan_at(ref_wh, campaigns[campaign_id], as_of, run_id=f"e2e__{as_of:%Y-%m-%dT%H:%M}")
        dispatch_at(ref_wh, campaigns, as_of, run_id=f"e2e__{as_of:%Y-%m-%dT%H:%M}", now=now)
    celery_decided = decisions(celery_wh)
    compare(celery_decided, decisions(ref_wh), "after the replay")
    check(any(v[3] == "sent" for v in celery_decided.values()), f"messages were sent ({summary_by_status(celery_decided)})")
    sent_before = check_emulator(celery_wh, endpoint, "Celery path")
    check_emulator(ref_wh, ref_endpoint, "embedded path")

    # ---- 4. marketing ops: backfill a planner over the past day, dry run first
    first, last = hours[-1] - timedelta(hours=24), hours[-1] - timedelta(hours=1)  # logical dates
    backfill = [airflow, "backfill", "create", "--dag-id", BACKFILLED, "--from-date", first.isoformat(),
                "--to-date", last.isoformat(), "--max-active-runs", "4"]
    api.unpause(BACKFILLED)
    dry = subprocess.run([*backfill, "--dry-run"], env=env, capture_output=True, text=True, cwd=ROOT)
    check(dry.returncode == 0, f"`airflow backfill create --dry-run` over {first:%m-%d %H:%M} → {last:%m-%d %H:%M}")
    table = dry.stdout.split("Runs to be attempted:", 1)[-1]
    expected = [first + timedelta(hours=n) for n in range(24)]
    listed = [d for d in expected if f"{d:%Y-%m-%d %H:%M:%S}" in table]
    check(len(listed) == 24 and table.count(":00:00") == 24 and not api.runs(BACKFILLED),
          "the dry run lists the 24 hourly runs to be attempted and creates none")
    backfill_started = time.time()
    created = subprocess.run(backfill, env=env, capture_output=True, text=True, cwd=ROOT)
    check(created.returncode == 0, "`airflow backfill create` accepted")

    def backfill_done() -> bool:
        runs = api.runs(BACKFILLED)
        failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
        if failed:
            raise Failed(f"backfill runs failed: {failed[:3]}")
        return len(runs) == 24 and all(r["state"] == "success" for r in runs)

    wait_for("the 24 backfill runs", backfill_done, 420, processes, 2)
    check(all(r["run_type"] == "backfill" for r in api.runs(BACKFILLED)),
          f"24 backfill runs of {BACKFILLED} succeeded on Celery in {time.time() - backfill_started:.0f} s")

    campaign = campaigns[BACKFILLED.removeprefix("campaign__")]
    from relance.timeutil import parse_duration

    lateness = parse_duration(campaign.max_lateness)
    dry_run = api.trigger("dispatch_messages", "e2e__dispatch_dry_run", None, {"dry_run": True}, run_after=now)
    api.wait_runs([("dispatch_messages", dry_run)], processes)
    check(len(emulator_messages(endpoint)) == sent_before, "the dispatcher's dry run sent nothing")
    real = api.trigger("dispatch_messages", "e2e__dispatch_after_backfill", None, {}, run_after=now)
    api.wait_runs([("dispatch_messages", real)], processes)

    import sqlalchemy as sa

    with celery_wh.engine.connect() as conn:
        planned = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT send_key, due_at, send_after, status, reason FROM message_log WHERE campaign_id = :c"),
            {"c": campaign.id})]
    from relance.timeutil import utc

    def due(row) -> datetime:
        value = row["send_after"] or row["due_at"]
        return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)

    stale = [r for r in planned if r["status"] != "dry_run" and due(r) < now - lateness]
    check(len(stale) > 0, f"the backfill planned {len(stale)} {campaign.id} messages due more than "
          f"{campaign.max_lateness} before now")
    outcome = {status: sum(r["status"] == status for r in stale) for status in {r["status"] for r in stale}}
    # the policy's first two rules: exited (the cart was bought since), else expired (too late)
    check(set(outcome) <= {"expired", "exited"} and outcome.get("expired", 0) > 0,
          f"none of them was sent: {outcome}")
    would = [r for r in planned if r["status"] == "dry_run" and "would be expired" in (r["reason"] or "")]
    check(len(would) == outcome.get("expired", 0),
          f"the dry run said so first: {len(would)} 'would be expired' rows")
    fresh_sent = [r for r in sent_rows(celery_wh) if r["campaign_id"] == campaign.id]
    check(all(due(r) >= now - lateness for r in fresh_sent),
          f"the {len(fresh_sent)} {campaign.id} messages sent were all due within {campaign.max_lateness}")
    check_emulator(celery_wh, endpoint, "Celery path after the backfill")

    # the embedded path: the same backfill (24 planner runs) and the two dispatcher runs
    for n in range(24):
        as_of = first + timedelta(hours=n + 1)
        plan_at(ref_wh, campaign, as_of, run_id=f"backfill__{as_of:%Y-%m-%dT%H:%M}")
    dispatch_at(ref_wh, campaigns, now, run_id="e2e__dispatch_dry_run", dry_run=True, now=now)
    dispatch_at(ref_wh, campaigns, now, run_id="e2e__dispatch_after_backfill", now=now)
    drop_dry = {k: v for k, v in decisions(celery_wh).items() if v[3] != "dry_run"}
    compare(drop_dry, {k: v for k, v in decisions(ref_wh).items() if v[3] != "dry_run"}, "after the backfill")
    check_emulator(ref_wh, ref_endpoint, "embedded path after the backfill")
    processes.check_alive()
    say(f"all five Airflow processes still up; final decisions: {summary_by_status(drop_dry)}")
    return True


if __name__ == "__main__":
    sys.exit(main())

"""``make demo``: a synthetic shop, the local SES emulator and real Airflow runs, hour by hour.

Everything lives under ``.local/``: the landing zone, the SQLite warehouse, the Airflow home
(SQLite metadata, the runs the UI of ``make airflow`` shows) and ``env.sh``, the environment
both commands share. Each simulated hour runs, with ``dag.test`` (a real Airflow run: task
instances, XComs, mapped tasks, in one process): ``ingest_behaviour``, every
``campaign__<id>`` planner, then ``dispatch_messages``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from relance import settings

MOTO_PORT = 5055
LOCAL = settings.LOCAL_DIR


def say(message: str) -> None:
    print(f"[demo {datetime.now():%H:%M:%S}] {message}", flush=True)


def demo_environment(moto_port: int = MOTO_PORT) -> dict[str, str]:
    """The environment of the demo and of ``make airflow`` (written to .local/env.sh)."""
    airflow_home = LOCAL / "airflow"
    endpoint = f"http://127.0.0.1:{moto_port}"
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW_CONN_WAREHOUSE": f"sqlite:///{LOCAL / 'warehouse.db'}",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {
            "region_name": "eu-west-1", "endpoint_url": endpoint}}),
        "AIRFLOW_VAR_TM_LANDING": str(LOCAL / "landing"),
        "AIRFLOW_VAR_TM_SENDER": settings.DEFAULT_SENDER,
        # the emulator has no sending quota: the demo replays days in minutes
        "AIRFLOW_VAR_TM_SES_MAX_SEND_RATE": "200",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONPATH": str(settings.REPO_ROOT / "plugins"),
    }


def write_env_file(env: dict[str, str]) -> Path:
    path = LOCAL / "env.sh"
    path.write_text("".join(f"export {k}='{v}'\n" for k, v in env.items()))
    return path


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_emulator(port: int = MOTO_PORT) -> subprocess.Popen | None:
    """Start moto's server (SES v2, S3, SQS over HTTP) unless one already listens there."""
    if port_open(port):
        return None
    log = open(LOCAL / "moto.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        if port_open(port):
            return proc
        time.sleep(0.1)
    raise RuntimeError(f"the SES emulator did not start on port {port}; see {LOCAL / 'moto.log'}")


def prepare_emulator() -> None:
    """Verify the sender's domain (SES refuses unverified senders, the emulator too)."""
    from relance import aws

    ses = aws.client("sesv2")
    domain = settings.DEFAULT_SENDER.split("@")[1]
    try:
        ses.create_email_identity(EmailIdentity=domain)
    except ses.exceptions.AlreadyExistsException:
        pass


def airflow_cli(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(customers: int = 2000, days: int = 2, seed: int = 7, start: str = "2026-11-16") -> int:
    started = time.time()
    warnings.filterwarnings("ignore")  # library deprecation chatter; the demo prints its own progress
    first_day = date.fromisoformat(start)
    say(f"resetting {LOCAL}")
    for name in ("landing", "airflow", "warehouse.db", "warehouse.db-wal", "warehouse.db-shm"):
        target = LOCAL / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    LOCAL.mkdir(parents=True, exist_ok=True)
    env = demo_environment()
    os.environ.update(env)
    write_env_file(env)

    from relance.shopsim import generate

    say(f"generating a synthetic shop: {customers} customers, {days} days from {first_day} (seed {seed})")
    stats = generate(LOCAL / "landing", customers=customers, days=days, start=first_day, seed=seed,
                     progress=lambda m: say(f"  shopsim: {m}"))
    say(f"  {stats['events_total']} Segment calls ({stats['orders']} orders, {stats['carts']} carts), "
        f"{stats['products']} products, {stats['malformed_lines']} malformed lines planted")

    say(f"starting the local SES/S3/SQS emulator (moto server) on port {MOTO_PORT}")
    emulator = start_emulator()
    prepare_emulator()

    say("initialising Airflow (SQLite metadata in .local/airflow) and the warehouse")
    airflow_cli("db", "migrate")
    airflow_cli("pools", "set", settings.SES_POOL, str(settings.SES_POOL_SLOTS), "SES send slots (see README)")
    from relance import warehouse

    warehouse.connect()

    try:
        replay(first_day, days)
    finally:
        if emulator is not None:
            emulator.terminate()
    from relance import reporting

    print()
    print(reporting.format_campaign_summary(reporting.campaign_summary(warehouse.connect())))
    print()
    say(f"done in {time.time() - started:.0f} s. Warehouse: {LOCAL / 'warehouse.db'}; "
        "`make airflow` shows these runs in the Airflow UI.")
    return 0


def replay(first_day: date, days: int) -> None:
    """Run every DAG with Airflow for each simulated hour, as the scheduler would."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    planners = sorted(d for d in bag.dag_ids if d.startswith("campaign__"))
    # daily model DAGs run once a day, just after the hour whose ingest completed the day
    daily = [d for d in ("build_segments", "train_recommendations") if d in bag.dag_ids]
    begin = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    hours = days * 24
    for n in range(1, hours + 1):
        moment = begin + timedelta(hours=n)
        os.environ["RELANCE_SIMULATED_NOW"] = moment.isoformat()
        order = ["ingest_behaviour", *(daily if moment.hour == 1 else []), *planners, "dispatch_messages"]
        for dag_id in order:
            run = bag.get_dag(dag_id).test(logical_date=moment)
            if run.state != "success":
                raise RuntimeError(f"{dag_id} run for {moment} ended {run.state}")
        if n % 6 == 0 or n == hours:
            from relance import warehouse

            sent = warehouse.connect(upgrade_schema=False).scalar(
                "SELECT COUNT(*) FROM message_log WHERE status = 'sent'")
            say(f"  simulated {moment:%Y-%m-%d %H:%M} UTC ({n}/{hours} h): {sent} emails sent so far")
    os.environ.pop("RELANCE_SIMULATED_NOW", None)

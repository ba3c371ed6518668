"""``make bench`` (send part): the dispatcher's send phase against a bare boto3 loop.

Both talk to the same SES emulator (moto server in a process of its own):

* **bare**: ``sesv2.send_email`` with one prebuilt Raw MIME message, N times, one thread — the
  reference SPEC §10 names;
* **dispatcher**: N order receipts planned by ``order_confirmation`` and claimed into batches
  by ``prepare``, then every batch through ``send_batch`` (claim, content queries, render,
  MIME, send, record) one after the other, as one send task runs them: ``tm_ses_send_concurrency``
  calls in flight (``--window``; default the setting's), the send rate set far above what the
  emulator takes.

The ratio dispatcher / bare is the figure the README quotes (target >= 0.9). Not a test: the
figures depend on the machine; compare ratios on the same machine.

    python -m benchmarks.send --messages 2000 --backends sqlite,postgresql [--rounds 3] [--profile out.prof]

Each backend is measured ``--rounds`` times (a fresh warehouse each round, the dispatcher then
the bare loop): on a shared 2-core host one round's ratio moves by ±0.15 with whatever else
runs, so the figure written is the median round's, with every round kept beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.run import warehouse_url

ROOT = Path(__file__).resolve().parents[1]
ORDER_HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)
CATALOG_HEADER = ["id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
                  "brand", "product_type", "quantity"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the SES emulator did not start")


def reset_emulator(endpoint: str) -> None:
    import requests

    from relance import aws

    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    aws.client("sesv2").create_email_identity(EmailIdentity="shop.example")


def write_landing(landing: Path, messages: int) -> None:
    """``messages`` customers, each with one order in ORDER_HOUR, and a small catalog."""
    import csv

    folder = landing / f"events/dt={ORDER_HOUR:%Y-%m-%d}/hour={ORDER_HOUR:%H}"
    folder.mkdir(parents=True)
    with (folder / "events-0000.jsonl").open("w") as out:
        for i in range(messages):
            user = f"c{i:06d}"
            when = (ORDER_HOUR + timedelta(seconds=i % 3000)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            out.write(json.dumps({"type": "identify", "userId": user, "timestamp": when, "messageId": f"id-{i}",
                                  "traits": {"email": f"{user}@example.com", "first_name": f"Client{i}",
                                             "locale": "fr" if i % 3 else "en", "timezone": "Europe/Paris",
                                             "email_opt_in": True}}) + "\n")
            products = [{"product_id": f"p{(i + k) % 40}", "quantity": 1 + k, "price": 9.9 + k} for k in range(2)]
            out.write(json.dumps({"type": "track", "userId": user, "event": "Order Completed", "timestamp": when,
                                  "messageId": f"o-{i}", "properties": {
                                      "order_id": f"o{i:06d}", "revenue": sum(p["price"] * p["quantity"]
                                                                              for p in products),
                                      "currency": "EUR", "products": products}}) + "\n")
    catalog = landing / f"catalog/dt={ORDER_HOUR:%Y-%m-%d}"
    catalog.mkdir(parents=True)
    with (catalog / "products.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=CATALOG_HEADER)
        writer.writeheader()
        for p in range(40):
            writer.writerow({"id": f"p{p}", "title": f"Produit {p}", "description": "",
                             "link": f"https://shop.example/p/p{p}", "image_link": f"https://shop.example/i/p{p}.jpg",
                             "price": f"{9.9 + p:.2f} EUR", "sale_price": "", "availability": "in_stock",
                             "brand": "Marque", "product_type": "Animalerie > Chien", "quantity": 20})


class CpuMeter:
    """CPU seconds of this process (``getrusage``, every thread) and of the emulator's
    (psutil) across a block: on a shared machine the wall-clock rates move with the load, the
    CPU a message takes much less."""

    def __init__(self, emulator_pid: int):
        import psutil

        self.emulator = psutil.Process(emulator_pid)
        self.client = self.server = 0.0

    def __enter__(self):
        self._client = _self_cpu()
        self._server = _proc_cpu(self.emulator)
        return self

    def __exit__(self, *exc):
        self.client = _self_cpu() - self._client
        self.server = _proc_cpu(self.emulator) - self._server


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def bare_loop(raw: bytes, messages: int) -> float:
    """Messages per second of a bare single-threaded ``send_email`` loop."""
    from relance import aws

    client = aws.client("sesv2", retries=0)
    started = time.perf_counter()
    for i in range(messages):
        client.send_email(FromEmailAddress="boutique@shop.example",
                          Destination={"ToAddresses": [f"c{i:06d}@example.com"]},
                          Content={"Raw": {"Data": raw}},
                          EmailTags=[{"Name": "send_key", "Value": f"k{i}"},
                                     {"Name": "campaign_id", "Value": "order_confirmation"}])
    return messages / (time.perf_counter() - started)


def prepared_batches(url: str, landing: Path) -> tuple[object, dict, list[str], datetime]:
    from relance import warehouse
    from relance.campaigns.config import load_campaigns
    from relance.campaigns.planner import mark_live_since, plan_campaign
    from relance.dispatch import prepare
    from relance.ingest import ingest_window

    wh = warehouse.connect(url)
    as_of = ORDER_HOUR + timedelta(hours=1)
    ingest_window(wh, str(landing), ORDER_HOUR, as_of)
    campaigns = load_campaigns()
    mark_live_since(wh, ORDER_HOUR - timedelta(days=1))
    plan_campaign(wh, campaigns["order_confirmation"], as_of, run_id="bench")
    batches = prepare(wh, campaigns, as_of, as_of, run_id="bench")
    return wh, campaigns, batches, as_of


def dispatcher_send_phase(wh, campaigns: dict, batches: list[str], as_of: datetime,
                          profile: str | None) -> tuple[float, dict]:
    from relance.dispatch import send_batch
    from relance.messaging.ratelimit import shared_pacer
    from relance.messaging.ses import SesSender, ses_client

    counts: dict[str, int] = {}
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for batch_id in batches:  # what each mapped send task does (dags/dispatch_messages.py)
        client = ses_client()
        with shared_pacer(wh, client) as pacer:
            for status, n in send_batch(wh, batch_id, campaigns, SesSender(client, pacer), as_of).items():
                counts[status] = counts.get(status, 0) + n
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    return time.perf_counter() - started, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--window", type=int, default=None,
                        help="SES calls in flight per send task (default: tm_ses_send_concurrency's default)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per backend; the median is reported")
    parser.add_argument("--profile", help="write a cProfile of the dispatcher's send phase here")
    parser.add_argument("--out", default=str(ROOT / ".local" / "bench_send.json"))
    args, _ = parser.parse_known_args()  # make bench passes the pipeline bench's BENCH_ARGS too
    proc, endpoint = start_emulator()
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
                       "AIRFLOW_VAR_TM_SES_MAX_SEND_RATE": "100000",
                       "RELANCE_SIMULATED_NOW": (ORDER_HOUR + timedelta(hours=1)).isoformat()})
    if args.window:
        os.environ["AIRFLOW_VAR_TM_SES_SEND_CONCURRENCY"] = str(args.window)
    from relance import settings

    window = settings.send_concurrency()
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-send-"))
    results = []
    try:
        write_landing(workdir / "landing", args.messages)
        print(f"{'backend':<11} {'messages':>8} {'window':>6} {'bare msg/s':>11} {'dispatcher msg/s':>17} "
              f"{'ratio':>6} {'client CPU ms/msg':>18} {'emulator ms/msg':>16}  statuses")
        for backend, round_no in ((b, n) for b in args.backends.split(",") for n in range(args.rounds)):
            url, drop = warehouse_url(backend, workdir, f"send{round_no}.db")
            os.environ["AIRFLOW_CONN_WAREHOUSE"] = url
            try:
                reset_emulator(endpoint)
                wh, campaigns, batches, as_of = prepared_batches(url, workdir / "landing")
                import requests

                # the bare loop sends a receipt as the dispatcher renders it (same size on the wire)
                with CpuMeter(proc.pid) as cpu:
                    wall, counts = dispatcher_send_phase(wh, campaigns, batches, as_of, args.profile)
                sample = requests.get(f"{endpoint}/moto-api/data.json", timeout=30).json()["ses"]["RawMessage"][0]
                reset_emulator(endpoint)
                with CpuMeter(proc.pid) as bare_cpu:
                    bare = bare_loop(sample["raw_data"].encode(), args.messages)
                sent = counts.get("sent", 0)
                rate = sent / wall
                cpu_ms = {"dispatcher_client": cpu.client / sent * 1000, "dispatcher_emulator": cpu.server / sent * 1000,
                          "bare_client": bare_cpu.client / args.messages * 1000,
                          "bare_emulator": bare_cpu.server / args.messages * 1000}
                row = {"backend": backend, "messages": args.messages, "window": window, "bare_msg_s": round(bare, 1),
                       "dispatcher_msg_s": round(rate, 1), "ratio": round(rate / bare, 2),
                       "cpu_ms_per_message": {k: round(v, 2) for k, v in cpu_ms.items()},
                       "load_average": [round(x, 2) for x in os.getloadavg()], "statuses": counts}
                results.append(row)
                print(f"{backend:<11} {args.messages:>8} {window:>6} {bare:>11.1f} {rate:>17.1f} {rate / bare:>6.2f} "
                      f"{cpu_ms['dispatcher_client']:>8.2f} (bare {cpu_ms['bare_client']:.2f}) "
                      f"{cpu_ms['dispatcher_emulator']:>6.2f} (bare {cpu_ms['bare_emulator']:.2f})  {counts}",
                      flush=True)
                wh.engine.dispose()
            finally:
                drop()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = []
    for backend in dict.fromkeys(r["backend"] for r in results):
        rounds = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["ratio"])
        summary.append({**rounds[len(rounds) // 2], "rounds": rounds,
                        "ratios": [r["ratio"] for r in rounds]})
        print(f"{backend:<11} median of {len(rounds)} rounds: {summary[-1]['ratio']} (all: {summary[-1]['ratios']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"send ratio (dispatcher / bare single-threaded boto3 loop; target >= 0.9) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One send rate for the whole deployment (SPEC §7.10, issue 9): send tasks share a timeline of
send slots (``relance.messaging.ratelimit``) in the warehouse or Redis.

The end-to-end tests run the real send function (``send_batch``, each in a thread of its own as
mapped tasks would) against the SES emulator: one task alone, or 4 and 16 tasks of two
overlapping dispatcher runs, never let more than ``tm_ses_max_send_rate`` requests leave in any
one-second window (the limiter's guarantee: slots 1 / (0.97 x rate) apart, a slot reached over
15 ms late dropped), every message sent once, and no task starved (the old per-task pacing at
rate / 4 slots gave 0.25 of the rate). They print what the emulator saw: the utilisation (the
issue's target, >= 0.95) and its busiest second. Those two are timings of the host as much as
of the limiter (a thread woken late on a busy 2-core machine, a request delayed on its way), so
they are measured in ``make bench`` (benchmarks/send.py), not asserted here.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest

from helpers import at, product, write_catalog, write_events
from relance import aws, warehouse
from relance.campaigns.planner import mark_live_since, plan_campaign
from relance.dispatch import decide, prepare, send_batch
from relance.ingest import ingest_window
from relance.messaging import ratelimit
from relance.messaging.ratelimit import SharedPacer, WarehouseSlots
from relance.messaging.ses import SesSender

RATE = 20  # messages per second: 120 messages take 6 s
MESSAGES = 120
REDIS_URL = os.environ.get("TM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def busiest_second(instants: list[float]) -> int:
    """The most messages accepted in any one-second window [t, t + 1)."""
    ordered, most, first = sorted(instants), 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - 1:
            first += 1
        most = max(most, last - first + 1)
    return most


# -- the pacer, on a fake clock -------------------------------------------------------------

class MemorySlots:
    """The timeline in memory (what the warehouse row / the Redis key hold), for the pacer's logic."""

    def __init__(self):
        self.next_slot_at, self.calls = 0.0, 0
        self.lock = threading.Lock()

    def reserve(self, slots, spacing, now):
        with self.lock:
            self.calls += 1
            self.next_slot_at = max(self.next_slot_at, now) + slots * spacing
            return self.next_slot_at

    def give_back(self, end, first_unused):
        with self.lock:
            if self.next_slot_at != end:
                return False
            self.next_slot_at = first_unused
            return True

    def close(self):
        pass


class FakeTime:
    def __init__(self, start=1000.0):
        self.now = start

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds


def test_tasks_sharing_a_timeline_send_one_slot_apart_at_the_rate_with_headroom():
    store, sends, lock = MemorySlots(), [], threading.Lock()

    def task():
        pacer = SharedPacer(store, 200)
        for left in range(50, 0, -1):
            pacer.expect(left)
            pacer.wait()
            with lock:
                sends.append(time.time())

    threads = [threading.Thread(target=task) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    achieved = (len(sends) - 1) / (max(sends) - min(sends))
    assert achieved <= 200  # how close to it: the end-to-end tests below
    assert busiest_second(sends) <= 200
    assert store.calls < 200 / 4  # slots come a few at a time


def test_a_task_alone_gets_every_slot_and_a_quiet_timeline_starts_now_without_a_burst():
    fake, store = FakeTime(), MemorySlots()
    pacer = SharedPacer(store, 10, clock=fake.clock, sleep=fake.sleep)
    start = fake.now
    for _ in range(11):
        pacer.wait()
    assert fake.now - start == pytest.approx(10 / (10 * ratelimit.HEADROOM))
    fake.now += 60  # quiet for a minute: no saved-up burst
    before = fake.now
    pacer.wait()
    pacer.wait()
    assert fake.now - before == pytest.approx(1 / (10 * ratelimit.HEADROOM))


def test_a_slot_reached_too_late_is_dropped_not_used_late():
    fake, store = FakeTime(), MemorySlots()
    pacer = SharedPacer(store, 100, clock=fake.clock, sleep=fake.sleep)
    pacer.wait()
    used = fake.now
    fake.now += 0.5  # the task was busy: its next reserved slots went by
    pacer.wait()
    assert pacer.dropped > 0
    assert fake.now >= used + 0.5  # a fresh slot, now or later, never one in the past


def test_a_task_slower_than_the_rate_reserves_only_what_it_can_use_in_time():
    fake, store = FakeTime(), MemorySlots()
    pacer = SharedPacer(store, 1000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(50):
        pacer.wait()
        fake.now += 0.005  # 200 messages/s of its own work
    # its 50th slot would be reached 50 × 5 ms late: it reserves what it reaches within the tolerance
    assert 2 <= pacer._batch() <= 1 + ratelimit.LATE_TOLERANCE / 0.004
    assert pacer.dropped <= 60  # the first reservation guessed, the next ones fit


def test_unused_slots_go_back_when_nobody_reserved_after_them():
    fake, store = FakeTime(), MemorySlots()
    spacing = 1 / (200 * ratelimit.HEADROOM)
    with SharedPacer(store, 200, clock=fake.clock, sleep=fake.sleep) as pacer:
        pacer.wait()
        assert store.next_slot_at > fake.now + 5 * spacing  # a few slots ahead reserved
    assert store.next_slot_at == pytest.approx(fake.now + spacing)
    other = SharedPacer(store, 200, clock=fake.clock, sleep=fake.sleep)
    mine = SharedPacer(store, 200, clock=fake.clock, sleep=fake.sleep)
    mine.wait()
    other.wait()  # reserved after mine: mine cannot give back any more
    end = store.next_slot_at
    mine.close()
    assert store.next_slot_at == end


# -- the account's own limit ----------------------------------------------------------------

def test_the_rate_never_exceeds_the_accounts_max_send_rate(monkeypatch):
    from botocore.stub import Stubber

    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_MAX_SEND_RATE", "50")
    monkeypatch.setattr(ratelimit, "ACCOUNT_TTL", 0)  # read it at each call
    client = aws.client("sesv2", retries=0)
    with Stubber(client) as stub:  # botocore's stubber: the response is checked against the API model
        stub.add_response("get_account", {"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0,
                                                        "SentLast24Hours": 0.0}})
        stub.add_response("get_account", {"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 200.0,
                                                        "SentLast24Hours": 0.0}})
        assert ratelimit.deployment_rate(client) == 14.0
        assert ratelimit.deployment_rate(client) == 50.0


def test_without_get_account_the_configured_rate_rules(ses, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_MAX_SEND_RATE", "33")
    monkeypatch.setattr(ratelimit, "_ACCOUNT_RATES", {})
    # the emulator has no GetAccount (404): the configured rate, and a warning
    assert ratelimit.deployment_rate(aws.client("sesv2", retries=0)) == 33.0
    assert "GetAccount" in caplog.text


# -- the shared timeline in the warehouse -----------------------------------------------------

def test_reservations_from_the_warehouse_never_overlap(wh):
    store = WarehouseSlots(wh)
    WarehouseSlots(wh)  # idempotent
    ends, errors = [], []

    def reserve():
        try:
            mine = WarehouseSlots(wh)
            for _ in range(10):
                ends.append(mine.reserve(5, 0.01, 1000.0))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reserve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(round(e, 6) for e in ends) == [round(1000.0 + 0.05 * k, 6) for k in range(1, 41)]
    assert store.give_back(max(ends), max(ends) - 0.02)
    assert not store.give_back(max(ends), 1000.0)  # the timeline moved: nothing given back
    assert wh.scalar("SELECT next_slot_at FROM send_rate_limits WHERE limiter_id = 'ses'") == pytest.approx(
        1000.0 + 0.05 * 40 - 0.02)


# -- end to end: real send tasks against the emulator ---------------------------------------

def receipts_due(landing, customers: int, hour: str, offset: int = 0) -> None:
    calls = []
    for i in range(offset, offset + customers):
        user = f"c{i:04d}"
        when = f"{hour}:{i % 60:02d}"
        calls.append({"type": "identify", "userId": user, "timestamp": at(when).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                      "messageId": f"id-{user}", "traits": {"email": f"{user}@example.com", "first_name": user,
                                                            "locale": "fr", "email_opt_in": True}})
        calls.append({"type": "track", "userId": user, "event": "Order Completed", "messageId": f"o-{user}",
                      "timestamp": at(when).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                      "properties": {"order_id": f"o{i}", "revenue": 19.9, "currency": "EUR",
                                     "products": [{"product_id": "p1", "quantity": 1, "price": 19.9}]}})
    write_events(landing, hour, calls, name=f"events-{offset:04d}.jsonl")


#: The SES emulator in a process of its own (its timing does not depend on the senders' GIL),
#: writing the instant it accepted each message to a file: the SES-accepted timestamps.
TIMED_EMULATOR = """
import sys, threading, time
from moto.server import ThreadedMotoServer
from moto.ses.models import SESBackend

real, log = SESBackend.send_raw_email, open(sys.argv[2], "a", buffering=1)

def send_raw_email(self, *args, **kwargs):
    received = time.time()  # the request reached SES; written once SES has accepted it
    message = real(self, *args, **kwargs)
    log.write(repr(received) + "\\n")
    return message

SESBackend.send_raw_email = send_raw_email
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
threading.Event().wait()
"""


@pytest.fixture(scope="module")
def timed_emulator(tmp_path_factory):
    import socket
    import subprocess
    import sys

    from conftest import Emulator, _free_port

    port, log = _free_port(), tmp_path_factory.mktemp("ses") / "accepted.txt"
    proc = subprocess.Popen([sys.executable, "-c", TIMED_EMULATOR, str(port), str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield Emulator(f"http://127.0.0.1:{port}"), log
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def accepted(timed_emulator, monkeypatch):
    """The instants (time.time) at which the emulator accepted each message of this test."""
    emulator, log = timed_emulator
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    emulator.reset()
    log.write_text("")

    class Accepted(list):
        def read(self):
            self[:] = [float(line) for line in log.read_text().split()]
            return self

    return Accepted()


def timing_measurable() -> None:
    """These tests measure instants: on a host running more than twice as many jobs as it has
    cores (other test runs sharing a 2-core machine), a task wakes tens of milliseconds late and
    the figures are the host's, not the limiter's — skipped there, with the load said; never
    under CI=true."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 2 * cores and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(f"host overloaded (load {load:.1f} on {cores} cores): send timing not measurable")


def run_send_tasks(wh, tmp_path, campaigns, monkeypatch, tasks: int, runs: int = 1) -> list[str]:
    """MESSAGES receipts due, claimed by ``runs`` overlapping dispatcher runs into ``tasks``
    batches in all; then every batch sent at once, each by a send task in a thread of its own."""
    timing_measurable()
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_MAX_SEND_RATE", str(RATE))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
    monkeypatch.setattr(decide, "MIN_BATCH_SIZE", -(-MESSAGES // tasks))
    landing = tmp_path / "landing"
    write_catalog(landing, "2026-11-20", [product("p1")])
    per_run = MESSAGES // runs
    mark_live_since(wh, at("2026-11-19 00:00"))
    batches, now = [], at(f"2026-11-20 {10 + runs:02d}:00")  # the wall clock of the overlapping runs
    for n in range(runs):
        hour = f"2026-11-20 {10 + n:02d}"
        receipts_due(landing, per_run, hour, offset=n * per_run)
        as_of = at(hour + ":00") + timedelta(hours=1)
        ingest_window(wh, str(landing), as_of - timedelta(hours=1), as_of)
        plan_campaign(wh, campaigns["order_confirmation"], as_of, run_id=f"plan-{n}")
        batches += [(b, as_of) for b in prepare(wh, campaigns, as_of, now, run_id=f"run-{n}")]
    assert len(batches) == tasks, [(b, wh.scalar("SELECT COUNT(*) FROM message_log WHERE batch_id = :b", {"b": b})) for b, _ in batches]
    errors = []
    barrier = threading.Barrier(tasks, timeout=60)
    departures.clear()

    def task(batch_id, as_of):
        try:  # a task: its own warehouse client (connections) and SES client, as a process of its own
            own, client = warehouse.connect(wh.uri, upgrade_schema=False), aws.client("sesv2", retries=0)
            with ratelimit.shared_pacer(own, client) as pacer:
                client.meta.events.register("before-send.sesv2.SendEmail",
                                            lambda **_: departures.append(time.time()))  # after the pacer's
                barrier.wait()
                send_batch(own, batch_id, campaigns, SesSender(client, pacer), as_of, clock=lambda: now)
            own.engine.dispose()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=task, args=b) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [b for b, _ in batches]


#: When each SendEmail request left the send tasks (right after the pacer let it go).
departures: list[float] = []


def assert_one_rate(instants: list[float], wh) -> None:
    accepted_rate = (len(instants) - 1) / (max(instants) - min(instants))
    print(f"[send rate] {RATE}/s, {MESSAGES} messages: accepted {accepted_rate:.2f}/s "
          f"(utilisation {accepted_rate / RATE:.2f}, target 0.95), busiest second {busiest_second(instants)} "
          f"accepted, {busiest_second(departures)} sent; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    assert len(instants) == MESSAGES == len(departures)
    assert wh.scalar("SELECT COUNT(*) FROM message_log WHERE status = 'sent'") == MESSAGES
    assert busiest_second(departures) <= RATE, f"{busiest_second(departures)} requests left in one second, rate {RATE}"
    assert accepted_rate >= 0.5 * RATE, f"{accepted_rate:.1f}/s: the tasks do not share the rate, they split it"


@pytest.mark.parametrize("tasks, runs", [(1, 1), (4, 2)], ids=["one_task", "four_tasks_two_runs"])
def test_send_tasks_together_reach_the_rate_and_never_exceed_it(wh, tmp_path, accepted, campaigns,
                                                                monkeypatch, tasks, runs):
    run_send_tasks(wh, tmp_path, campaigns, monkeypatch, tasks, runs)
    assert_one_rate(accepted.read(), wh)


@pytest.mark.slow
def test_sixteen_send_tasks_of_two_runs_share_the_rate(wh, tmp_path, accepted, campaigns, monkeypatch):
    run_send_tasks(wh, tmp_path, campaigns, monkeypatch, tasks=16, runs=2)
    assert_one_rate(accepted.read(), wh)


@pytest.mark.backend("sqlite")
def test_with_redis_configured_the_tasks_share_the_rate_there(wh, tmp_path, accepted, campaigns, monkeypatch):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable and CI=true: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
    monkeypatch.setenv("AIRFLOW_VAR_TM_SEND_RATE_LIMITER", REDIS_URL)
    run_send_tasks(wh, tmp_path, campaigns, monkeypatch, tasks=4, runs=2)
    assert_one_rate(accepted.read(), wh)
    assert wh.scalar("SELECT COUNT(*) FROM send_rate_limits") == 0  # the warehouse was not used

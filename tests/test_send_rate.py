"""One send rate for the whole deployment (SPEC §7.10, issue 9): send tasks share a timeline of
send slots (``relance.messaging.ratelimit``) in the warehouse or Redis.

The end-to-end tests run the real send function (``send_batch``, each in a thread of its own as
mapped tasks would) against the SES emulator and read the instant the emulator accepted each
message: one task alone, or 4 and 16 tasks of two overlapping dispatcher runs, reach >= 0.95 of
``tm_ses_max_send_rate`` and never put more than the rate into any one-second window.
"""

from __future__ import annotations

import threading
import time

import pytest

from relance import aws
from relance.messaging import ratelimit
from relance.messaging.ratelimit import SharedPacer, WarehouseSlots


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
    assert 0.95 * 200 <= achieved <= 200
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

"""Reliability under faults, with figures (issue 10): crash recovery, SES faults, overlap.

Real processes and real HTTP: the SES path runs boto3 → a fault-injecting proxy
(``tests/faultproxy.py``, a thread of this process) → the moto emulator; a send task that must
die is a process of its own (``tests/reliability_worker.py``) killed with SIGKILL. Each test
prints one line of figures — attempts (SendEmail requests on the wire), delivered, duplicates,
lost, late, cap violations, unknown — and asserts the bad ones are zero:

* **lost**: a message that should have gone, that SES does not have, and that the warehouse
  does not flag ``unknown`` (silently dropped);
* **late**: a stranded message delivered more than 5 minutes after the failure;
* **misrecorded**: ``sent`` in the warehouse but not at SES, or at SES but recorded as
  neither ``sent`` nor ``unknown``.

The proxy publishes SES ``Send`` events (tagged with the send_key) to an SQS queue for each
message the emulator accepted, as an SES configuration set's event destination does;
``drain`` (what ``ingest_ses_events`` runs every 15 minutes) reconciles ``unknown`` rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from email import message_from_string
from email.policy import default as default_policy
from pathlib import Path

import pytest

from faultproxy import FaultProxy
from helpers import at, customer, order, product, track, write_catalog, write_events
from relance import aws, settings
from relance.airflow_support import SEND_RETRY_ARGS
from relance.campaigns.planner import plan_campaign
from relance.dispatch import prepare, send_batch
from relance.dispatch.caps import WEEK
from relance.dispatch.policy import AMBIGUOUS_STREAK, MIN_BATCH_SIZE, batch_lease
from relance.dispatch.send import SesUnreliable
from relance.feedback import drain
from relance.ingest import ingest_window
from relance.messaging.ses import Pacer, SesSender, ses_client
from relance.timeutil import customer_zone, utc

WORKER = Path(__file__).parent / "reliability_worker.py"
AS_OF = at("2026-11-20 12:00")
#: A stranded message must go out within this of the failure (issue 10).
RECOVERY_BOUND = timedelta(minutes=5)
#: ingest_ses_events runs every 15 minutes
EVENTS_INTERVAL = timedelta(minutes=15)
#: the tests' client timeouts (the deployment's: relance.messaging.ses CONNECT_/READ_TIMEOUT)
CONNECT_TIMEOUT, READ_TIMEOUT = 0.3, 1.5


@pytest.fixture
def campaigns(campaigns):
    """Every customer treated (no holdout): the tests count messages."""
    return {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in campaigns.items()}


@pytest.fixture
def proxy(ses, monkeypatch):
    """The fault proxy in front of the emulator; only SES v2 goes through it (SQS does not)."""
    faults = FaultProxy(ses.endpoint)
    warm_up = aws.client("sesv2")  # the emulator's first SendEmail after a reset is slow: not under test
    warm_up.send_email(FromEmailAddress="warm-up@shop.example", Destination={"ToAddresses": ["w@example.com"]},
                       Content={"Raw": {"Data": b"From: warm-up@shop.example\r\nSubject: -\r\n\r\n-"}})
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"ses-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    faults.events_queue = (sqs, url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", faults.url)
    yield faults
    faults.close()
    sqs.delete_queue(QueueUrl=url)


def sender(rate: float = 1000) -> SesSender:
    """What the send task builds (relance.messaging.ses.ses_client), with short timeouts."""
    return SesSender(ses_client(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT), Pacer(rate),
                     base_delay=0.05)


def ingest_send_events(wh, proxy, as_of: datetime) -> dict:
    """The next ingest_ses_events run: the Send events SES published are loaded, unknown rows reconciled."""
    sqs, url = proxy.events_queue
    return drain(wh, sqs, url, as_of, wait_seconds=0)


def carts(wh, landing, campaigns, n: int, hour: str = "2026-11-20 10") -> list[str]:
    """n customers who each left a cart at ``hour``: n cart reminders due 2 h later."""
    write_catalog(landing, hour[:10], [product("p1")])
    calls = []
    for i in range(n):
        calls += [customer(f"c{i:03d}"), track(f"c{i:03d}", "Product Added", f"{hour}:00", product_id="p1")]
    write_events(landing, hour, calls)
    start = at(f"{hour}:00")
    ingest_window(wh, str(landing), start, start + timedelta(hours=1))
    plan_campaign(wh, campaigns["cart_abandonment"], start + timedelta(hours=2))
    return [r["send_key"] for r in wh.query("SELECT send_key FROM message_log ORDER BY send_key")]


def delivered(ses) -> Counter:
    """send_key → how many times the emulator accepted it (the fixture's warm-up has none)."""
    keys = (message_from_string(m["raw_data"], policy=default_policy)["X-Relance-Send-Key"]
            for m in ses.sent_messages())
    return Counter(k for k in keys if k)


def cap_violations(wh, keys_delivered, per_day: int, per_week: int) -> int:
    """Customers who received more marketing than the caps allow: more than ``per_day``
    journeys (campaign, trigger) on one local day of their reservations, or more than
    ``per_week`` messages within 7 days."""
    rows = wh.query("SELECT m.send_key, m.customer_id, m.campaign_id, m.trigger_id, m.cap_reserved_at, "
                    "c.timezone FROM message_log m LEFT JOIN customers c ON c.customer_id = m.customer_id "
                    "WHERE m.category = 'marketing'")
    by_customer: dict[str, list[dict]] = {}
    for row in rows:
        if row["send_key"] in keys_delivered:
            by_customer.setdefault(row["customer_id"], []).append(row)
    bad = 0
    for sent in by_customer.values():
        zone = customer_zone(sent[0]["timezone"])
        days = Counter()
        for day in {(utc(r["cap_reserved_at"]).astimezone(zone).date(), r["campaign_id"], r["trigger_id"])
                    for r in sent}:
            days[day[0]] += 1
        moments = sorted(utc(r["cap_reserved_at"]) for r in sent)
        week_over = any(sum(1 for m in moments if first <= m < first + WEEK) > per_week for first in moments)
        bad += bool(any(n > per_day for n in days.values()) or week_over)
    return bad


def figures(name: str, wh, ses, proxy, expected: list[str], failed_at: datetime | None = None) -> dict:
    """Counts of what happened, printed on one line (``pytest -s`` shows them; ``make test`` too)."""
    got = delivered(ses)
    rows = {r["send_key"]: r["status"] for r in wh.query("SELECT send_key, status FROM message_log")}
    first_at: dict[str, datetime] = {}
    for request in proxy.sends():
        if request.forwarded:
            first_at.setdefault(request.send_key, request.wall)
    unknown = [k for k, s in rows.items() if s == "unknown"]
    out = {
        "attempts": len(proxy.sends()),
        "delivered": sum(1 for k in expected if k in got),
        "expected": len(expected),
        "duplicates": sum(n - 1 for n in got.values()),
        "lost": sum(1 for k in expected if k not in got and rows.get(k) != "unknown"),
        "misrecorded": sum(1 for k, s in rows.items()
                           if (s == "sent" and k not in got) or (k in got and s not in ("sent", "unknown"))),
        "late": sum(1 for k in expected if failed_at and k in first_at and first_at[k] - failed_at > RECOVERY_BOUND),
        "cap_violations": cap_violations(wh, set(got), *settings.frequency_caps()),
        "unknown_at_ses": sum(1 for k in unknown if k in got),
        "unknown_not_at_ses": sum(1 for k in unknown if k not in got),
    }
    if failed_at:
        stranded = [first_at[k] - failed_at for k in expected if k in first_at and first_at[k] > failed_at]
        out["recovered_within_s"] = max(stranded).total_seconds() if stranded else 0
    print(f"\n[reliability] {name}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in out.items()))
    return out


def assert_none_bad(figs: dict) -> None:
    assert {k: figs[k] for k in ("duplicates", "lost", "misrecorded", "late", "cap_violations")} == {
        "duplicates": 0, "lost": 0, "misrecorded": 0, "late": 0, "cap_violations": 0}


def statuses(wh) -> Counter:
    return Counter(r["status"] for r in wh.query("SELECT status FROM message_log"))


# -- 1. crash recovery ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workers(emulator):
    """Send-task processes: forked by a zygote that imported everything once
    (``reliability_worker.py --zygote``)."""
    zygote = subprocess.Popen([sys.executable, str(WORKER), "--zygote"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert json.loads(zygote.stdout.readline()) == {"ready": True}
    yield zygote
    zygote.stdin.close()
    zygote.wait(timeout=30)


def run_worker(workers, wh, batch: str, proxy, kill_point: str, kill_at: int, now: datetime) -> int:
    """A send task in its own process, killed with SIGKILL at ``kill_point``; returns its exit code."""
    args = {"warehouse_url": wh.uri, "batch_id": batch, "as_of": AS_OF.isoformat(), "now": now.isoformat(),
            "kill_point": kill_point, "kill_at": kill_at}
    pid: int | None = None
    accepted = 0

    def kill_once_accepted(request):  # SES has the message; the task dies before hearing so
        nonlocal accepted
        accepted += 1
        if accepted == kill_at:
            os.kill(pid, signal.SIGKILL)

    if kill_point == "after_ses_call":
        proxy.after_forward = kill_once_accepted
    try:
        workers.stdin.write(json.dumps({"args": args, "env": {"AWS_ENDPOINT_URL_SESV2": proxy.url}}) + "\n")
        workers.stdin.flush()
        pid = json.loads(workers.stdout.readline())["pid"]
        return json.loads(workers.stdout.readline())["exit"]
    finally:
        proxy.after_forward = None


#: fault point → the row it hits
KILL_POINTS = {"after_claim": 1, "before_ses_call": 3, "after_ses_call": 3, "after_record": 3}


def assert_state_at_kill(kill_point: str, at: dict, window: int) -> None:
    """The batch of 8 right after the kill, ``window`` SES calls in flight per task at most
    (outcomes are recorded oldest first, so none after the kill point's row is recorded)."""
    sent, sending, queued = at.get("sent", 0), at.get("sending", 0), at.get("queued", 0)
    assert set(at) <= {"sent", "sending", "queued"} and sent + sending + queued == 8, at
    if kill_point == "after_claim":                    # batch taken, nothing sent
        assert at == {"queued": 8}
    elif kill_point == "before_ses_call":              # 3rd row claimed, SES not called for it
        assert sent + sending == 3 and 1 <= sending <= window, at
    elif kill_point == "after_ses_call":               # SES accepted the 3rd, the answer lost
        assert sent <= 2 and 1 <= sending and 3 <= sent + sending <= 3 + window - 1, at
    else:                                              # 3rd recorded sent
        assert sent == 3 and sending <= window - 1, at


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_send_task_killed_at_any_point_is_recovered_by_its_retry_within_minutes_none_twice(
        wh, tmp_path, ses, proxy, campaigns, workers, kill_point):
    """The send task as deployed (``tm_ses_send_concurrency`` calls in flight; with 1 the
    states are exact: e.g. before_ses_call = 2 sent, 1 sending, 5 queued)."""
    window = settings.send_concurrency()
    keys = carts(wh, tmp_path, campaigns, n=8)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "killed")
    proxy.clock = lambda: AS_OF
    kill_at = KILL_POINTS[kill_point]
    assert run_worker(workers, wh, batch, proxy, kill_point, kill_at, now=AS_OF) == -signal.SIGKILL
    assert_state_at_kill(kill_point, statuses(wh), window)
    # Airflow's retry of the same map index (send_batch: retries 3, retry_delay 30 s)
    retry_at = AS_OF + SEND_RETRY_ARGS["retry_delay"]
    proxy.clock = lambda: retry_at
    send_batch(wh, batch, campaigns, sender(), AS_OF, clock=lambda: retry_at)
    # the next ingest_ses_events run loads SES's Send events: an interrupted row SES took becomes sent
    ingest_send_events(wh, proxy, retry_at + EVENTS_INTERVAL)
    figs = figures(f"SIGKILL {kill_point} then retry ({wh.engine.dialect.name})", wh, ses, proxy, keys,
                   failed_at=AS_OF)
    assert_none_bad(figs)
    final = statuses(wh)
    unknown = final.get("unknown", 0)
    assert set(final) <= {"sent", "unknown"} and final.get("sent", 0) + unknown == 8, final
    # a row claimed 'sending' whose call never reached SES (killed before or during it): nobody can
    # tell it from one SES took, so it is unknown (never re-sent) — and SES indeed never saw it;
    # every row SES took is sent (its Send event)
    assert unknown == figs["unknown_not_at_ses"] and figs["unknown_at_ses"] == 0
    if kill_point == "before_ses_call":
        assert 1 <= unknown <= window  # the 3rd, and calls handed over beside it that had not left
    else:
        assert unknown <= window - 1 and figs["delivered"] == final["sent"]
    assert figs["recovered_within_s"] <= SEND_RETRY_ARGS["retry_delay"].total_seconds()


def test_a_batch_whose_task_died_for_good_is_taken_back_once_its_lease_is_over_not_before(
        wh, tmp_path, ses, proxy, campaigns):
    keys = carts(wh, tmp_path, campaigns, n=8)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "dead")
    lease = batch_lease(0, MIN_BATCH_SIZE, settings.max_send_rate(), settings.SES_POOL_SLOTS)
    (leased,) = {utc(r["lease_until"]) for r in wh.query("SELECT lease_until FROM message_log")}
    assert abs(leased - (AS_OF + lease)) < timedelta(seconds=1)
    assert lease < RECOVERY_BOUND
    # its send task never comes (it died before taking the batch, and its retries with it; a
    # real SIGKILL after it took the batch is in the test above)
    # a dispatcher run while the lease runs leaves the batch alone: its task may be alive
    early = AS_OF + timedelta(minutes=1)
    proxy.clock = lambda: early
    assert prepare(wh, campaigns, AS_OF + timedelta(minutes=1), early, "early") == []
    assert statuses(wh) == {"queued": 8}
    # the next run after the lease takes the rows back, re-decides them and sends them
    later = AS_OF + lease + timedelta(seconds=1)
    proxy.clock = lambda: later
    batches = prepare(wh, campaigns, later, later, "next")
    assert len(batches) == 1 and batches[0] != batch
    send_batch(wh, batches[0], campaigns, sender(), later, clock=lambda: later)
    # the dead batch's task, if it ever comes back (a zombie), finds nothing of its own to send
    assert send_batch(wh, batch, campaigns, sender(), AS_OF, clock=lambda: later) == {"unknown": 0}
    figs = figures(f"task dead for good, next run ({wh.engine.dialect.name})", wh, ses, proxy, keys,
                   failed_at=AS_OF)
    assert_none_bad(figs)
    assert statuses(wh) == {"sent": 8}


@pytest.mark.parametrize("window", [1, 4])
def test_a_live_but_slow_task_whose_lease_ran_out_loses_its_rows_to_the_next_run_without_a_duplicate(
        wh, tmp_path, ses, proxy, campaigns, monkeypatch, window):
    """The lease is a promise, not a lock: a task still alive after its lease (stalled, paused)
    may see another run take its queued rows back. Every claim checks the batch, so the slow
    task sends only what it still holds, the other run the rest: each message once."""
    keys = carts(wh, tmp_path, campaigns, n=8)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "slow")
    later = AS_OF + batch_lease(0, MIN_BATCH_SIZE, settings.max_send_rate(), settings.SES_POOL_SLOTS) \
        + timedelta(seconds=1)
    taken: list[dict] = []

    class StallsAfterTwo:
        """The slow task's SES client: after its 2nd message it stalls past its lease, and
        meanwhile the next dispatcher run takes the batch's queued rows back and sends them."""

        def __init__(self):
            self.real, self.calls = ses_client(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT), 0

        def send_email(self, **request):
            answer = self.real.send_email(**request)
            self.calls += 1
            if self.calls == 2:
                proxy.clock = lambda: later
                for other in prepare(wh, campaigns, later, later, "next"):
                    taken.append(send_batch(wh, other, campaigns, sender(), later, clock=lambda: later))
                proxy.clock = lambda: AS_OF
            return answer

    proxy.clock = lambda: AS_OF
    # window: SES calls in flight per task. With one, the slow task holds exactly the 2 it sent;
    # with more, the rows it claimed while its 2nd answer stalled (they race the next run's take-back)
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_SEND_CONCURRENCY", str(window))
    slow = send_batch(wh, batch, campaigns, SesSender(StallsAfterTwo(), Pacer(1000)), AS_OF, clock=lambda: AS_OF)
    assert slow["unknown"] == 0 and (slow["sent"] == 2 if window == 1 else slow["sent"] >= 2), slow
    assert taken == [{"unknown": 0, "sent": 8 - slow["sent"]}]
    assert_none_bad(figures("lease ran out under a live task", wh, ses, proxy, keys, failed_at=AS_OF))
    assert statuses(wh) == {"sent": 8}


def test_a_retried_prepare_takes_back_the_batches_of_its_killed_attempt(wh, tmp_path, ses, proxy, campaigns):
    """prepare committed its claims, then died before Airflow got the batch ids: its retry
    takes those rows back at once (no lease to wait for) and hands them to its send tasks."""
    keys = carts(wh, tmp_path, campaigns, n=8)
    assert len(prepare(wh, campaigns, AS_OF, AS_OF, "scheduled__x")) == 1  # attempt 1: batch ids lost
    batches = prepare(wh, campaigns, AS_OF, AS_OF + timedelta(seconds=40), "scheduled__x")  # attempt 2
    assert len(batches) == 1
    proxy.clock = lambda: AS_OF
    send_batch(wh, batches[0], campaigns, sender(), AS_OF, clock=lambda: AS_OF + timedelta(seconds=41))
    assert_none_bad(figures("prepare retried", wh, ses, proxy, keys))
    assert statuses(wh) == {"sent": 8}


def test_a_batch_that_runs_after_its_messages_went_stale_sends_none_of_them(wh, tmp_path, ses, proxy, campaigns):
    """A batch whose task ran very late (stuck behind others in the pool, retried late): its
    rows are past the campaign's max_lateness by the wall clock, so they are expired, not sent."""
    carts(wh, tmp_path, campaigns, n=3)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "stuck")
    much_later = AS_OF + campaigns["cart_abandonment"].max_lateness_td + timedelta(minutes=1)
    assert send_batch(wh, batch, campaigns, sender(), AS_OF, clock=lambda: much_later) == {"unknown": 0, "expired": 3}
    assert delivered(ses) == Counter() and proxy.sends() == []
    assert {r["reason"] for r in wh.query("SELECT reason FROM message_log")} == {
        "due more than the campaign max_lateness ago (its batch ran late)"}


@pytest.mark.slow
@pytest.mark.backend("sqlite")
def test_in_airflow_a_failed_send_task_is_retried_on_its_map_index_and_takes_its_batch_back(
        dagbag, wh, tmp_path, ses, proxy, campaigns, monkeypatch):
    """The wiring, in Airflow (``dag.test`` of dispatch_messages): the first try of the mapped
    send task fails (three ambiguous SES answers in a row), Airflow retries the same map index,
    and the retry sends the rest of that batch — no message twice. (The retry delay is set to 0
    here: the test is about what the retry does, not about waiting 30 s.)"""
    carts(wh, tmp_path, campaigns, n=8)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
    monkeypatch.setenv("RELANCE_SIMULATED_NOW", AS_OF.isoformat())
    dag = dagbag.get_dag("dispatch_messages")
    monkeypatch.setattr(dag.get_task("send_batch"), "retry_delay", timedelta(0))
    proxy.inject(*["reset_after"] * AMBIGUOUS_STREAK)
    proxy.clock = lambda: AS_OF
    assert dag.test(logical_date=AS_OF).state == "success"
    # the first try stopped after 3 ambiguous answers: only a retry can have sent the other 5
    assert statuses(wh) == {"unknown": AMBIGUOUS_STREAK, "sent": 8 - AMBIGUOUS_STREAK}
    ingest_send_events(wh, proxy, AS_OF + EVENTS_INTERVAL)
    expected = [r["send_key"] for r in wh.query("SELECT send_key FROM message_log WHERE status <> 'holdout'")]
    figs = figures("in Airflow: send task failed, retried on its map index", wh, ses, proxy, expected)
    assert_none_bad(figs)
    assert figs["delivered"] == len(expected) >= 6
    assert wh.scalar("SELECT MAX(attempts) FROM message_log") == 1


# -- 2. SES faults -------------------------------------------------------------------------------
#: A batch of 10 meets every fault once; ambiguous faults are kept apart by good sends (three
#: in a row stop the task, see the next test). Per message: the proxy's actions, its fate.
FAULT_PLAN = [
    (["429", "429", "429", "pass"], "sent"),    # throttled: retried with backoff
    (["500", "503", "pass"], "sent"),           # SES's own 5xx: retried
    (["reset_before"], "unknown"),              # reset once connected: ambiguous (SES never saw it)
    (["pass"], "sent"),
    (["reset_after"], "unknown→sent"),          # SES took it, the answer was lost: its Send event says so
    (["timeout_before"], "unknown"),            # read timeout: ambiguous (SES never saw it)
    (["pass"], "sent"),
    (["timeout_after"], "unknown→sent"),        # read timeout, SES took it
    (["504_after"], "unknown→sent"),            # a gateway gave up waiting: SES took it
    (["pass"], "sent"),
]


def test_ses_faults_are_retried_where_safe_unknown_where_ambiguous_nothing_lost_rate_kept(
        wh, tmp_path, ses, proxy, campaigns, monkeypatch):
    # the plan gives the proxy's faults to the requests in the order they arrive: one call in
    # flight at a time, so that each row meets its own (concurrent calls: the kill tests above)
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_SEND_CONCURRENCY", "1")
    keys = carts(wh, tmp_path, campaigns, n=len(FAULT_PLAN))
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "faults")
    order_of_sending = [r["send_key"] for r in wh.query(
        "SELECT send_key FROM message_log ORDER BY priority DESC, due_at, send_key")]
    for actions, _ in FAULT_PLAN:
        proxy.inject(*actions)
    proxy.clock = lambda: AS_OF
    rate = 40.0
    counts = send_batch(wh, batch, campaigns, sender(rate), AS_OF, clock=lambda: AS_OF)
    assert counts == {"unknown": 5, "sent": 5}
    ingest_send_events(wh, proxy, AS_OF + EVENTS_INTERVAL)
    rows = {r["send_key"]: r["status"] for r in wh.query("SELECT send_key, status FROM message_log")}
    for key, (actions, fate) in zip(order_of_sending, FAULT_PLAN, strict=True):
        assert rows[key] == fate.split("→")[-1], (actions, fate)
    figs = figures(f"SES faults ({wh.engine.dialect.name})", wh, ses, proxy, keys)
    assert_none_bad(figs)
    assert figs["attempts"] == sum(len(a) for a, _ in FAULT_PLAN)  # retried only where safe
    assert figs["unknown_not_at_ses"] == 2 and figs["unknown_at_ses"] == 0  # the three that SES had are sent
    # the rate: attempts (retries included) never closer than the pacer allows
    times = sorted(r.at for r in proxy.sends())
    per_second = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    print(f"[reliability] SES faults: {per_second} requests in the busiest second at a {rate:g}/s limit")
    assert per_second <= rate + 1


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize("fault", ["refused", "connect timeout"])
def test_connections_that_cannot_be_opened_are_retried_nothing_was_sent(wh, tmp_path, ses, proxy, campaigns, fault):
    keys = carts(wh, tmp_path, campaigns, n=3)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "down")
    proxy.clock = lambda: AS_OF
    if fault == "refused":
        proxy.refuse(0.2)      # nothing listens: connection refused
    else:
        proxy.blackhole(0.5)   # SYNs dropped: the client's connect times out (0.3 s)
    time.sleep(0.05)
    started = time.monotonic()
    counts = send_batch(wh, batch, campaigns, sender(), AS_OF, clock=lambda: AS_OF)
    assert counts == {"unknown": 0, "sent": 3}
    figs = figures(f"{fault} for a while ({time.monotonic() - started:.2f} s of retries)", wh, ses, proxy, keys)
    assert_none_bad(figs)
    assert figs["delivered"] == 3 and figs["attempts"] == 3  # what reached the proxy: each message once


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize("window", [1, 4])
def test_a_run_of_ambiguous_failures_stops_the_task_and_leaves_the_rest_queued(
        wh, tmp_path, ses, proxy, campaigns, monkeypatch, window):
    """``window``: SES calls in flight per task (tm_ses_send_concurrency). SES stops answering:
    every call the task makes until it stops is ambiguous — the streak (counted in row order),
    plus the calls already handed over beside it (at most window - 1, in whatever order they
    reach SES). Nothing more is claimed; the rest stays queued."""
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_SEND_CONCURRENCY", str(window))
    keys = carts(wh, tmp_path, campaigns, n=8)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "flaky")
    proxy.inject(*["reset_after"] * (AMBIGUOUS_STREAK + window - 1))
    proxy.clock = lambda: AS_OF
    with pytest.raises(SesUnreliable):
        send_batch(wh, batch, campaigns, sender(), AS_OF, clock=lambda: AS_OF)
    after_streak = statuses(wh)
    assert AMBIGUOUS_STREAK <= after_streak["unknown"] <= AMBIGUOUS_STREAK + window - 1, after_streak
    assert after_streak == {"unknown": after_streak["unknown"], "queued": 8 - after_streak["unknown"]}
    assert len(proxy.sends()) == after_streak["unknown"]  # nothing else went out
    proxy.plan.clear()  # SES is back
    retry_at = AS_OF + SEND_RETRY_ARGS["retry_delay"]
    proxy.clock = lambda: retry_at
    send_batch(wh, batch, campaigns, sender(), AS_OF, clock=lambda: retry_at)  # Airflow's retry
    ingest_send_events(wh, proxy, retry_at + EVENTS_INTERVAL)
    figs = figures(f"ambiguous streak, then retry ({window} in flight)", wh, ses, proxy, keys, failed_at=AS_OF)
    assert_none_bad(figs)
    assert statuses(wh) == {"sent": 8}


def test_a_late_answer_turns_unknown_into_sent(wh, tmp_path, ses, proxy, campaigns):
    """A task that looked dead (its claim older than the sending lease) and was marked unknown
    still records sent when SES's answer reaches it."""
    keys = carts(wh, tmp_path, campaigns, n=1)
    (batch,) = prepare(wh, campaigns, AS_OF, AS_OF, "slow")
    proxy.clock = lambda: AS_OF

    class MarkedUnknownMeanwhile:
        def __init__(self):
            self.real = ses_client(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)

        def send_email(self, **request):
            answer = self.real.send_email(**request)
            wh.execute("UPDATE message_log SET status = 'unknown' WHERE send_key = :k", {"k": keys[0]})
            return answer

    send_batch(wh, batch, campaigns, SesSender(MarkedUnknownMeanwhile(), Pacer(1000)), AS_OF, clock=lambda: AS_OF)
    assert statuses(wh) == {"sent": 1}
    assert_none_bad(figures("late answer", wh, ses, proxy, keys))


# -- 3. overlap ----------------------------------------------------------------------------------
NOW = at("2026-11-27 14:00")  # a Friday afternoon in Paris


def week_of_shoppers(landing, customers: int) -> None:
    """A week of shopping: each day a customer either leaves a cart (11:05 UTC, every third day)
    or browses two products (10:10 UTC); one in four orders at 09:00 UTC every day. A day's
    browse reminders (due 10:00 local the next day) and cart reminders compete for its cap slot."""
    write_catalog(landing, "2026-11-20", [product(f"p{i}") for i in range(1, 6)])
    hours: dict[str, list] = {"2026-11-19 15": [customer(f"c{i:03d}") for i in range(customers)]}
    for i in range(customers):
        user = f"c{i:03d}"
        for day in range(8):
            morning = (NOW - timedelta(days=day)).replace(hour=9)
            calls = []
            if i % 4 == 0:
                calls.append(order(user, f"o-{user}-{day}", f"{morning:%Y-%m-%d %H}:00", (f"p{1 + i % 5}", 1, 9.9)))
            if (i + day) % 3 == 0:  # 72 h apart: each a cart of its own (a 48 h pause starts a new one)
                cart = morning + timedelta(hours=2)
                calls.append(track(user, "Product Added", f"{cart:%Y-%m-%d %H}:05", product_id=f"p{1 + (i + day) % 5}"))
            else:
                browse = morning + timedelta(hours=1)
                for n in range(2):
                    calls.append(track(user, "Product Viewed", f"{browse:%Y-%m-%d %H}:1{n}",
                                       product_id=f"p{1 + (i + day + n) % 5}"))
            for call in calls:
                hours.setdefault(call["timestamp"][:13].replace("T", " "), []).append(call)
    for hour, calls in hours.items():
        write_events(landing, hour, calls)


@pytest.mark.slow
@pytest.mark.backend("postgresql")
def test_two_dispatch_runs_and_a_backfill_of_the_week_at_once_no_duplicate_caps_hold_nothing_stale(
        wh, tmp_path, ses, proxy, campaigns, monkeypatch):
    week_of_shoppers(tmp_path, customers=40)
    ingest_window(wh, str(tmp_path), NOW - timedelta(days=8), NOW)
    chosen = {cid: campaigns[cid] for cid in ("order_confirmation", "cart_abandonment", "browse_abandonment")}
    # the planners' runs: hourly for the last day, every 6 h before (what they plan earlier is stale anyway)
    for hours_ago in sorted({*range(0, 27), *range(0, 7 * 24 + 1, 6)}, reverse=True):
        for campaign in chosen.values():
            plan_campaign(wh, campaign, NOW - timedelta(hours=hours_ago))
    monkeypatch.setenv("RELANCE_SIMULATED_NOW", NOW.isoformat())
    proxy.clock = lambda: NOW
    proxy.inject(*["429"] * 5, "pass", "503")  # and SES throttles a little
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def dispatch(run_id: str, instants: list[datetime]) -> None:
        try:
            barrier.wait()
            for as_of in instants:
                for batch in prepare(wh, chosen, as_of, NOW, f"{run_id}{as_of:%Y%m%d%H}"):
                    send_batch(wh, batch, chosen, sender(rate=200), as_of, clock=lambda: NOW)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    # Airflow's backfill --run-backwards: the recent hours (the only ones with anything left to
    # send) first, while the two other runs are at work
    backfill = [NOW - timedelta(hours=h) for h in range(1, 7 * 24 + 1)]
    threads = [threading.Thread(target=dispatch, args=("scheduled__", [NOW])),
               threading.Thread(target=dispatch, args=("asset_triggered__", [NOW])),
               threading.Thread(target=dispatch, args=("backfill__", backfill))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    expected = [r["send_key"] for r in wh.query("SELECT send_key FROM message_log WHERE status = 'sent'")]
    figs = figures(f"2 runs + a week's backfill at once, {time.monotonic() - started:.1f} s", wh, ses, proxy,
                   expected)
    assert_none_bad(figs)
    assert figs["delivered"] > 20
    stale = wh.query("SELECT send_key, campaign_id, due_at, send_after FROM message_log WHERE status = 'sent'")
    late = [r for r in stale
            if utc(r["send_after"] or r["due_at"]) < NOW - chosen[r["campaign_id"]].max_lateness_td]
    assert late == []
    assert statuses(wh)["queued"] == statuses(wh)["sending"] == 0
    counts = statuses(wh)
    print(f"[reliability] overlap: statuses {dict(sorted(counts.items()))}")
    assert counts["expired"] > 0  # the week's old messages, decided by the backfill, not sent
    assert counts["capped"] > 0   # and the day's cap slot was contended

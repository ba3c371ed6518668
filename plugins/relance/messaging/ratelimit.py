"""One send rate for the whole deployment (SPEC §7.10): send slots from a shared timeline.

Every send task of every dispatcher run (mapped tasks, overlapping runs, Airflow retries,
Celery workers on other hosts) takes its send slots from one **timeline** kept in a shared
store — a row of the warehouse (``send_rate_limits``, the embedded default) or a Redis key
(``tm_send_rate_limiter`` = ``redis://…``). The timeline is the instant of the next free slot
(a GCRA, "generic cell rate algorithm", without burst): a task reserves ``n`` slots in one
atomic update — they start at ``max(now, next free)``, ``1 / rate`` apart, and the next free
slot moves ``n / rate`` later — then sends each message no earlier than its slot. Slots of
the whole deployment are thus ``1 / rate`` apart whatever the number of tasks; a task alone
gets every slot, sixteen tasks share them.

* **No burst, and a margin for the wire**: slots are spaced at ``1 / (rate × HEADROOM)``, and a
  slot the task reaches more than ``LATE_TOLERANCE`` late is dropped (the task reserves a new
  one). A send then leaves between its slot and 15 ms after it, and with slots 3 % further
  apart than ``1 / rate``, another 15 ms of jitter between leaving and SES accepting still
  never puts more than ``rate`` messages into any one-second window at SES (``rate + 1``
  consecutive slots span ``rate / (0.97 rate)`` = 1.031 s: more than 1 s + 30 ms).
* **Few round trips**: slots are reserved a few at a time — a tenth of a second's worth at the
  deployment's rate, fewer when the task itself cannot use them that fast or has fewer
  messages left (:meth:`SharedPacer.expect`) — and the slots a task did not use are given back
  when it ends if nobody reserved after it.
* **The account's own limit**: the rate is ``tm_ses_max_send_rate``, never above the
  ``MaxSendRate`` SES v2 ``GetAccount`` reports for the account (read once per task;
  an endpoint without ``GetAccount`` — the local emulator — leaves the configured rate).
* **Clock**: the wall clock of each host (``time.time``), which Airflow needs synchronised
  (NTP) anyway; slots are absolute instants, so tasks on several hosts share one timeline.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from typing import Any, Protocol

from relance import settings
from relance.warehouse.cursor import cursor_statements

log = logging.getLogger(__name__)

#: Slots are ``1 / (rate × HEADROOM)`` apart: the margin that absorbs jitter between a send
#: leaving and SES accepting it (see the module docstring).
HEADROOM = 0.97
#: A slot reached later than this is not used (a send leaves at most this late after its slot).
LATE_TOLERANCE = 0.015
#: Slots reserved per round trip at most, and the time they cover at most.
MAX_SLOTS_PER_RESERVATION = 50
RESERVATION_HORIZON = 0.1
#: The timeline of the whole deployment (one per SES account; the warehouse row / Redis key).
LIMITER_ID = "ses"
REDIS_KEY = "relance:send_rate:{}"


class SlotStore(Protocol):
    """Where the timeline lives. ``reserve`` returns the instant right after the ``slots``
    reserved (their end); ``give_back`` moves the timeline back to ``first_unused`` if it still
    ends at ``end`` (nobody reserved after)."""

    def reserve(self, slots: int, spacing: float, now: float) -> float: ...

    def give_back(self, end: float, first_unused: float) -> bool: ...

    def close(self) -> None: ...


class WarehouseSlots:
    """The timeline as a row of ``send_rate_limits``: one ``UPDATE … RETURNING`` per
    reservation — atomic on PostgreSQL (the row lock the update takes) and on SQLite (every
    transaction is ``BEGIN IMMEDIATE``: one writer at a time)."""

    def __init__(self, wh: Any, limiter_id: str = LIMITER_ID):
        self._stack = contextlib.ExitStack()
        # a connection of its own, held (the send loop has its own, in another thread), in
        # autocommit: a reservation is one statement, one round trip
        self.wh = self._stack.enter_context(wh.pinned(autocommit=True)) if hasattr(wh, "pinned") else wh
        if not self.wh.is_sqlite:
            # a reservation need not wait for the disk: lost in a database crash, it costs at
            # most a few slots given twice, right after the crash
            self.wh.execute("ratelimit/session_async_commit")
        self.limiter_id = limiter_id
        self.wh.execute("ratelimit/ensure_rate_limiter", {"limiter_id": limiter_id})
        # a reservation every few sends: straight through the DB-API cursor (the same statement)
        self._cursor = cursor_statements(self.wh)

    def close(self) -> None:
        try:
            if not self.wh.is_sqlite:
                self.wh.execute("ratelimit/session_reset_commit")
        finally:
            self._stack.close()

    def reserve(self, slots: int, spacing: float, now: float) -> float:
        params = {"limiter_id": self.limiter_id, "slots": slots, "spacing": float(spacing), "now": float(now)}
        if self._cursor is not None:
            rows = self._cursor.returning("ratelimit/reserve_send_slots", params)
        else:
            rows = self.wh.query("ratelimit/reserve_send_slots", params)
        return float(rows[0]["next_slot_at"])

    def give_back(self, end: float, first_unused: float) -> bool:
        return bool(self.wh.execute("ratelimit/give_back_send_slots", {
            "limiter_id": self.limiter_id, "reserved_until": float(end), "first_unused": float(first_unused)}))


_RESERVE_LUA = """
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if next_free < now then next_free = now end
local ends = string.format('%.6f', next_free + tonumber(ARGV[2]) * tonumber(ARGV[3]))
redis.call('SET', KEYS[1], ends, 'EX', 86400)
return ends
"""
_GIVE_BACK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', 86400)
  return 1
end
return 0
"""


class RedisSlots:
    """The timeline as a Redis key, updated by a Lua script (atomic on the server)."""

    def __init__(self, url: str, limiter_id: str = LIMITER_ID):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = REDIS_KEY.format(limiter_id)
        self._reserve = self.client.register_script(_RESERVE_LUA)
        self._give_back = self.client.register_script(_GIVE_BACK_LUA)
        self._ends: dict[float, str] = {}  # the exact text stored, for give_back's comparison

    def reserve(self, slots: int, spacing: float, now: float) -> float:
        text = self._reserve(keys=[self.key], args=[f"{now:.6f}", slots, repr(float(spacing))])
        text = text.decode() if isinstance(text, bytes) else str(text)
        end = float(text)
        self._ends = {end: text}
        return end

    def give_back(self, end: float, first_unused: float) -> bool:
        text = self._ends.get(end)
        return bool(text and self._give_back(keys=[self.key], args=[text, f"{first_unused:.6f}"]))

    def close(self) -> None:
        self.client.close()


class SharedPacer:
    """What a send task calls before each SES request: :meth:`wait` returns at the task's next
    slot of the deployment's timeline. Thread-safe; :meth:`close` gives unused slots back."""

    def __init__(self, store: SlotStore, rate: float, clock=time.time, sleep=time.sleep,
                 headroom: float = HEADROOM, late_tolerance: float = LATE_TOLERANCE):
        if rate <= 0:
            raise ValueError(f"send rate must be positive, got {rate}")
        self.store, self.rate = store, rate
        self.spacing = 1.0 / (rate * headroom)
        self.clock, self.sleep, self.late_tolerance = clock, sleep, late_tolerance
        self.slots: deque[float] = deque()
        self.reserved_until: float | None = None
        self.reservations = self.dropped = 0
        self._lock = threading.Lock()
        self._last_return: float | None = None
        self._gap = 0.0  # this task's own time between two sends (EWMA), sleeping excluded
        self._expected: int | None = None
        self._round_trip = 0.0  # of a reservation: slots are asked from when the answer arrives
        self._on_the_wire = False

    def pace_on_the_wire(self, client: Any) -> SharedPacer:
        """Wait for the slot right before each SendEmail request of ``client`` goes out — after
        botocore has built and signed it (its ``before-send`` event) — rather than before the
        request is built: the send leaves at its slot, not a few milliseconds of serialising
        later. :meth:`wait` (what ``SesSender`` calls per attempt) then returns at once."""
        client.meta.events.register("before-send.sesv2.SendEmail", self._before_send)
        self._on_the_wire = True
        return self

    def _before_send(self, **_) -> None:
        self._wait()  # None: botocore goes on and sends the request

    def __enter__(self) -> SharedPacer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def expect(self, sends: int) -> None:
        """The task has at most ``sends`` more messages to send: reserve no more slots than that."""
        self._expected = max(1, sends)

    def _batch(self) -> int:
        """Slots to reserve: a horizon's worth at the rate, but no more than this task can use
        before the last of them is LATE_TOLERANCE old (when the task is slower than the rate),
        nor than it expects to send."""
        n = min(MAX_SLOTS_PER_RESERVATION, max(1, math.floor(RESERVATION_HORIZON / self.spacing)))
        lag = self._gap - self.spacing  # how much later each next slot is reached
        if lag > 0:
            n = min(n, 1 + math.floor(self.late_tolerance / lag))
        if self._expected is not None:
            n = min(n, self._expected)
        return max(1, n)

    def wait(self) -> None:
        if not self._on_the_wire:
            self._wait()

    def _wait(self) -> None:
        with self._lock:
            now = self.clock()
            if self._last_return is not None:
                self._gap = 0.8 * self._gap + 0.2 * (now - self._last_return) if self._gap else now - self._last_return
            while True:
                while self.slots and self.slots[0] < now - self.late_tolerance:
                    self.slots.popleft()  # missed: never used late
                    self.dropped += 1
                if not self.slots:
                    n = self._batch()
                    # slots from when the answer should arrive, less what a slot may be late
                    ahead = max(0.0, self._round_trip - self.late_tolerance / 2)
                    end = self.store.reserve(n, self.spacing, now + ahead)
                    took = self.clock() - now
                    self._round_trip = max(took, 0.8 * self._round_trip + 0.2 * took)
                    self.reservations += 1
                    self.reserved_until = end
                    self.slots.extend(end - (n - i) * self.spacing for i in range(n))
                    now = self.clock()
                    continue
                if self.slots[0] > now:
                    self.sleep(self.slots[0] - now)
                    now = self.clock()
                    continue  # woken late (a busy host)? the slot is checked again
                self.slots.popleft()
                if self._expected is not None:
                    self._expected = max(1, self._expected - 1)
                self._last_return = now
                return

    def close(self) -> None:
        """Give the unused slots back to the timeline (only if no one reserved after them)."""
        with self._lock:
            try:
                if self.slots and self.reserved_until is not None:
                    self.store.give_back(self.reserved_until, self.slots[0])
            finally:
                self.slots.clear()
                self.reserved_until = None
                self.store.close()


#: The account's MaxSendRate per endpoint and region, with when it was read: a send task reads it
#: once; a process that runs many (tests, the demo) every ACCOUNT_TTL seconds.
_ACCOUNT_RATES: dict[tuple[str, str], tuple[float, float | None]] = {}
ACCOUNT_TTL = 300.0


def account_max_send_rate(client: Any) -> float | None:
    """The account's own ``MaxSendRate`` (SES v2 ``GetAccount``), or None when the endpoint
    cannot say (no such operation, no permission, unreachable): the configured rate then rules."""
    from botocore.exceptions import BotoCoreError, ClientError

    key = (str(client.meta.endpoint_url), str(client.meta.region_name))
    cached = _ACCOUNT_RATES.get(key)
    if cached and time.monotonic() - cached[0] < ACCOUNT_TTL:
        return cached[1]
    try:
        quota = client.get_account().get("SendQuota") or {}
        rate = float(quota["MaxSendRate"]) if quota.get("MaxSendRate") else None
    except (ClientError, BotoCoreError) as exc:
        log.warning("SES GetAccount failed (%s): pacing at tm_ses_max_send_rate only", exc.__class__.__name__)
        rate = None
    _ACCOUNT_RATES[key] = (time.monotonic(), rate)
    return rate


def deployment_rate(client: Any) -> float:
    """``tm_ses_max_send_rate``, never above the account's ``MaxSendRate``."""
    configured = settings.max_send_rate()
    account = account_max_send_rate(client)
    if account is not None and account < configured:
        log.warning("tm_ses_max_send_rate %s is above the SES account's MaxSendRate %s: sending at %s/s",
                    configured, account, account)
        return account
    return configured


def slot_store(wh: Any) -> SlotStore:
    """The shared timeline: Redis when ``tm_send_rate_limiter`` is a ``redis://`` URL, else the warehouse."""
    where = settings.send_rate_limiter()
    if where.startswith(("redis://", "rediss://", "unix://")):
        return RedisSlots(where)
    return WarehouseSlots(wh)


def shared_pacer(wh: Any, client: Any) -> SharedPacer:
    """The pacer of one send task: the deployment's rate, slots from the shared timeline."""
    return SharedPacer(slot_store(wh), deployment_rate(client)).pace_on_the_wire(client)

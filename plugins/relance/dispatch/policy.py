"""The sending policy (SPEC §7), top to bottom in the order the dispatcher applies it.

Read this file to know what happens to a ``planned`` row. :func:`relance.dispatch.prepare`
runs :data:`BEFORE_SENDING` in this order, in one transaction, each entry over the rows due
at the run's as-of that are still waiting (``planned``, or ``deferred_quiet_hours`` whose
``send_after`` has come); the first entry that catches a row gives it its status and a
reason, and the row leaves the waiting set. The survivors are claimed into batches
(``queued``); :func:`relance.dispatch.send_batch` then applies :data:`AT_SEND_TIME` row by
row. Every entry names what it runs: an SQL file of ``include/sql/`` or a Python function.

The thresholds are defined once: the dispatcher's below (``STALE_CLAIM``, the batch lease, batch sizes, the
deliverability guard's window and minimum volume), the guard's rates ``settings.max_bounce_rate()``
/ ``max_complaint_rate()``, quiet
hours ``settings.QUIET_HOURS_START`` / ``QUIET_HOURS_END`` (local hours), frequency caps
``settings.frequency_caps()`` (Airflow Variables ``tm_cap_per_day`` / ``tm_cap_per_week`` and
their defaults), each campaign's ``max_lateness`` / ``holdout_pct`` / ``quiet_hours`` /
``cap_exempt`` in its YAML (defaults in :mod:`relance.campaigns.config`). Whether a status is final, waiting or
counts against the caps is in the ``message_statuses`` table (migration 0008).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from relance.dispatch import rules
from relance.dispatch.rules import Decision

#: A row left ``sending`` longer than this belongs to a dead send task (one SES call, with its
#: safe retries and their backoff, takes well under a minute: the connect timeout of
#: ``relance.messaging.ses`` is 5 s, its read timeout 30 s and a read timeout is never retried):
#: it is reconciled from SES's Send event or marked ``unknown`` — never re-sent.
STALE_CLAIM = timedelta(minutes=3)
#: A batch's lease (``message_log.lease_until``, see :func:`batch_lease`) is the time it should
#: take to send at the deployment's rate, plus this margin: Airflow scheduling the mapped task,
#: SES backoffs. Past it, any dispatcher run may take the batch's ``queued`` rows back.
LEASE_MARGIN = timedelta(minutes=2)
#: A send task that gets this many ambiguous SES failures in a row stops (and fails: Airflow
#: retries it), leaving the rest of its batch queued, rather than mark a whole batch ``unknown``.
AMBIGUOUS_STREAK = 3
#: Batches per run at most (the send tasks are mapped over them), each of at least MIN_BATCH_SIZE rows.
MAX_BATCHES = 256
MIN_BATCH_SIZE = 50
#: Deliverability guard (SPEC §7.5): the rates are those of the messages sent in the last
#: DELIVERABILITY_WINDOW, and the guard may trip only once that window holds at least
#: DELIVERABILITY_MIN_SENDS sends (a handful of bounces among a dozen sends says nothing; SES
#: itself judges on a representative volume). The thresholds: ``settings.max_bounce_rate()`` /
#: ``max_complaint_rate()`` (Variables ``tm_max_bounce_rate`` 0.04, ``tm_max_complaint_rate`` 0.0008).
DELIVERABILITY_WINDOW = timedelta(days=7)
DELIVERABILITY_MIN_SENDS = 200
#: ... and a rate trips only on at least this many bounced (complained) messages: below 1,250
#: sends a single complaint is over 0.08 % by arithmetic alone, which is chance, not a rate
#: (a shop's realistic 0.03 % complaints give one in a few thousand sends, at random).
DELIVERABILITY_MIN_EVENTS = 2


def batch_lease(position: int, rows: int, rate: float, slots: int) -> timedelta:
    """How long the batch at ``position`` (0-based) in a run, of ``rows`` rows, is its send
    task's: the send tasks run ``slots`` at a time (the ``ses_send`` pool), each at
    ``rate / slots`` messages per second, so it ends after ``position // slots + 1`` waves of
    ``rows * slots / rate`` seconds — plus :data:`LEASE_MARGIN`."""
    rate = rate if rate > 0 else 1.0
    waves = position // max(slots, 1) + 1
    return timedelta(seconds=waves * rows * max(slots, 1) / rate) + LEASE_MARGIN


@dataclass(frozen=True)
class Rule:
    name: str
    #: the status a row it catches gets (None: it changes no status)
    status: str | None
    #: why, in one line
    why: str
    #: what it runs: an SQL file (include/sql/...) or a Python function
    runs: str
    #: the function the dispatcher calls (None for the send-time rules: send_batch applies them)
    apply: Callable[[Decision], None] | None = None


def _sql(name: str) -> str:
    return f"include/sql/{name}.sql"


def _sql_rule(name: str, status: str, why: str) -> Rule:
    return Rule(name.rsplit("/", 1)[-1].removeprefix("rule_"), status, why, _sql(name), rules.sql_rule(name))


BEFORE_SENDING: tuple[Rule, ...] = (
    # -- what a dead run left behind is put right first -------------------------------------
    Rule("requeue_stale_queued", "planned",
         "a row claimed into a batch (queued) whose lease is over (its send task and the task's retries died) "
         "or into a batch of an earlier attempt of this run waits again: SES never saw it",
         _sql("outbox/requeue_stale_queued"), rules.requeue_stale_queued),
    Rule("reconcile_interrupted", "sent / unknown",
         f"a row left sending for {STALE_CLAIM} is sent if SES reported it, else unknown — never sent twice",
         f"{_sql('outbox/reconcile_sending')} + {_sql('outbox/mark_sending_unknown')}",
         rules.reconcile_interrupted),
    # -- the journey is over -----------------------------------------------------------------
    Rule("exited", "exited",
         "the step's exit condition holds (the customer ordered, bought the product…)",
         "include/sql/exits/<step exit>.sql via relance.campaigns.planner.apply_exits", rules.exit_journeys),
    Rule("expired", "expired",
         "due more than the campaign's max_lateness before the wall clock: a backfill never mails old carts",
         _sql("outbox/expire_stale"), rules.expire_stale),
    # -- who may receive it ------------------------------------------------------------------
    Rule("refresh_recipients", None,
         "the waiting rows take the customer's current address and locale before being judged",
         _sql("outbox/refresh_recipients"), rules.sql_rule("outbox/refresh_recipients")),
    _sql_rule("outbox/rule_no_address", "suppressed", "the customer has no email address"),
    _sql_rule("outbox/rule_suppressed", "suppressed",
              "the address hard-bounced or complained: nothing, not even a receipt"),
    _sql_rule("outbox/rule_unsubscribed", "unsubscribed",
              "marketing to a customer whose last email consent change is an explicit opt-out"),
    _sql_rule("outbox/rule_no_consent", "no_consent", "marketing needs email_opt_in = true (unknown = no; the file says the exceptions)"),
    # -- may marketing go out at all ---------------------------------------------------------
    Rule("deliverability_guard", None,
         f"while the permanent-bounce or complaint rate of the messages sent in the last "
         f"{DELIVERABILITY_WINDOW.days} days (at least {DELIVERABILITY_MIN_SENDS} sends and "
         f"{DELIVERABILITY_MIN_EVENTS} bounces, or complaints) is over its threshold, "
         "marketing is held: the rows stay due with the reason 'held: …' and the run's report fails; "
         "transactional mail goes on; below the thresholds it resumes by itself",
         f"{_sql('outbox/deliverability_rates')} + {_sql('outbox/hold_marketing')} "
         "via relance.dispatch.rules.deliverability_guard", rules.deliverability_guard),
    # -- when and how often ------------------------------------------------------------------
    Rule("holdout", "holdout",
         "the customer is in the campaign's holdout group (holdout_pct, stable hash): measures lift",
         "relance.dispatch.rules.hold_out (+ include/sql/outbox/mark_holdout.sql)", rules.hold_out),
    Rule("quiet_hours", "deferred_quiet_hours",
         "marketing due in the customer's local quiet hours waits until they end (send_after), "
         "then goes through these rules again",
         "relance.dispatch.rules.defer_quiet_hours (+ include/sql/outbox/defer_quiet_hours.sql)",
         rules.defer_quiet_hours),
    Rule("capped", "capped / digested / queued",
         "over the frequency caps (per local day, per 7 days; one journey one conversation): in arbitration "
         "order (priority, expected value, age: outbox/due_candidates.sql) the later loses — digested instead "
         "when it lost the daily cap only and its campaign has digest: true (folded into the customer's next "
         "digest, digest_send_key); the rest are claimed into batches (queued)",
         "relance.dispatch.rules.cap_and_claim (+ relance.dispatch.caps, relance.dispatch.digests, "
         "include/sql/outbox/cap_usage.sql, mark_capped.sql, mark_digested.sql, claim_into_batch.sql)",
         rules.cap_and_claim),
)

#: Applied by :func:`relance.dispatch.send_batch` to each claimed row (``sending`` first), in this order.
AT_SEND_TIME: tuple[Rule, ...] = (
    Rule("take_batch", None,
         "the send task (or Airflow's retry of the same map index) renews its batch's lease on the rows still "
         "queued in it", _sql("outbox/renew_lease")),
    Rule("interrupted_attempt", "sent / unknown",
         "a row an earlier attempt at this batch left sending is reconciled or unknown, never re-sent",
         f"{_sql('outbox/reconcile_sending')} + {_sql('outbox/mark_sending_unknown')}"),
    Rule("expired_in_batch", "expired",
         "due more than the campaign's max_lateness before the wall clock by the time its batch runs "
         "(a batch that waited for a pool slot, a late retry): not sent",
         "relance.dispatch.send.send_batch + include/sql/outbox/record_outcome.sql"),
    Rule("undefined", "failed", "the campaign or its step is no longer defined",
         "relance.dispatch.send.render_one"),
    Rule("no_content", "no_content", "a content block the template needs is empty (nothing to recommend…)",
         "relance.dispatch.send.render_one via relance.dispatch.content.build_context"),
    Rule("template_error", "failed",
         "the template does not render or a header is invalid; a template error fails the campaign closed "
         "for the rest of the batch", "relance.dispatch.send.render_one"),
    Rule("retry", "planned",
         "SES refused for now after every retry (throttled, SES's own 5xx, unreachable: nothing sent): back to "
         "planned for the next run",
         "relance.dispatch.send.send_batch + include/sql/outbox/release_for_retry.sql"),
    Rule("unknown", "unknown",
         "the request may have reached SES but its answer was lost (read timeout, connection reset once "
         "connected, gateway timeout): SES may have it, not re-sent; its Send event makes it sent. After "
         "AMBIGUOUS_STREAK such rows in a row the task stops and Airflow retries it (the rest stay queued)",
         "relance.dispatch.send.deliver via relance.messaging.ses.classify"),
    Rule("refused", "failed", "SES refused the message for good", "relance.dispatch.send.deliver"),
    Rule("sent", "sent", "SES accepted it; its MessageId is recorded", "include/sql/outbox/record_outcome.sql"),
)

#: Every status the policy can write (the ``message_statuses`` table holds them all).
DECIDED_STATUSES = tuple(dict.fromkeys(
    part for rule in (*BEFORE_SENDING, *AT_SEND_TIME) if rule.status for part in rule.status.split(" / ")))

__all__ = ["AMBIGUOUS_STREAK", "AT_SEND_TIME", "BEFORE_SENDING", "DECIDED_STATUSES", "DELIVERABILITY_MIN_EVENTS", "DELIVERABILITY_MIN_SENDS",
           "DELIVERABILITY_WINDOW", "LEASE_MARGIN", "MAX_BATCHES", "MIN_BATCH_SIZE", "STALE_CLAIM",
           "Rule", "batch_lease"]

"""Property-based tests (hypothesis, issue 10 item 4): whatever the events and their order, the
pipeline keeps its promises.

* **ingest**: the same Segment calls, delivered in any order, split over any hour folders and
  files, some twice, fold into the same customers, consent, orders and events; loading the
  window again changes nothing.
* **the rules**, end to end (ingest → planners → dispatcher → the SES emulator, hour by hour,
  through the ``run_at`` fixture: the functions the Airflow tasks call): for random shoppers
  (time zones, identifies that opt in, opt out or say nothing, ``Email Unsubscribed`` /
  ``Email Subscribed``, carts, product views, sign-ups, orders) and random bounces and complaints
  put on ``suppressions`` between runs:
  - no marketing email to a customer whose consent, folded from the calls before the run by the
    README's rule (an explicit opt-out holds until an opt-in from a consent source), was not yes;
  - no email at all (receipts included) to an address on the suppression list;
  - caps (SPEC §7.4, Variables drawn per example): at most ``tm_cap_per_day`` journeys per
    calendar day in the customer's time zone, at most ``tm_cap_per_week`` marketing emails in
    any 7 days;
  - every ``sent`` row is one message at SES, and no send_key twice;
  - re-running the last interval (ingest, planners, dispatcher) changes no table and sends nothing.

The oracles above are written from the spec, independently of the code under test. SQLite, a
bounded number of examples, no deadline: the whole file runs in about a minute.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_string
from email.policy import default as default_policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import at, customer, dump_tables, identify, order, product, track, write_catalog, write_events
from relance import warehouse
from relance.campaigns.config import Campaign, load_campaigns
from relance.ingest import ingest_window

pytestmark = pytest.mark.backend("sqlite")

START = at("2026-11-20 08:00")                       # the first run: Relance goes live at 07:00
ZONES = ("Europe/Paris", "America/Montreal", "Asia/Tokyo")
#: runs (the as-of of each ingest + planners + dispatcher round), a few hours apart: a message
#: due between two runs goes at the next one, so runs compete for the same caps
INSTANTS = [START + timedelta(hours=h) for h in (0, 4, 8, 13, 20, 30, 46)]
ACTIVE_HOURS = 28                                   # shoppers act in [START, START + 28 h)
TABLES = ("events", "customers", "customer_traits", "consent_changes", "orders", "order_items",
          "identity_links", "quarantine", "message_log", "suppressions")
PROFILE = settings(max_examples=int(os.environ.get("RELANCE_PROPERTY_EXAMPLES", "20")), deadline=None,
                   suppress_health_check=[HealthCheck.too_slow],
                   derandomize=os.environ.get("CI", "").lower() in ("1", "true", "yes"))


_TEMPLATE: dict[str, Path] = {}


@contextmanager
def fresh_warehouse():
    """A new SQLite warehouse per example (the ``wh`` fixture is one per test, not per example):
    a copy of one migrated file, which is much faster than migrating each time."""
    if "db" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="relance-prop-template-"))
        warehouse.connect(f"sqlite:///{folder}/warehouse.db").engine.dispose()
        _TEMPLATE["db"] = folder / "warehouse.db"
    with tempfile.TemporaryDirectory(prefix="relance-prop-") as folder:
        shutil.copyfile(_TEMPLATE["db"], Path(folder) / "warehouse.db")
        wh = warehouse.connect(f"sqlite:///{folder}/warehouse.db")
        try:
            yield wh, Path(folder)
        finally:
            wh.engine.dispose()


# -- what shoppers do -------------------------------------------------------------------------

@dataclass
class Shopper:
    cid: str
    zone: str
    calls: list[dict] = field(default_factory=list)
    consent: list[tuple[datetime, str]] = field(default_factory=list)   # (when, what) for the oracle
    suppressed_at: datetime | None = None

    @property
    def email(self) -> str:
        return f"{self.cid}@example.com"


ACTIONS = ("opt_in", "opt_out", "identify_silent", "unsubscribe", "subscribe", "cart", "cart", "view", "order",
           "signup")


@st.composite
def shoppers(draw, max_customers: int = 4) -> list[Shopper]:
    out = []
    for n in range(draw(st.integers(1, max_customers))):
        shopper = Shopper(f"s{n}", draw(st.sampled_from(ZONES)))
        first = draw(st.sampled_from((True, False, None)))
        minutes = sorted(draw(st.lists(st.integers(1, ACTIVE_HOURS * 60 - 1), min_size=1, max_size=8, unique=True)))
        # the first identify (address, time zone, maybe consent) comes before everything else
        t0 = START + timedelta(minutes=minutes[0] - 1, seconds=30)
        shopper.calls.append(customer(shopper.cid, t0.strftime("%Y-%m-%d %H:%M:%S"), opt_in=first,
                                      timezone=shopper.zone))
        if first is not None:
            shopper.consent.append((t0, "opt_in" if first else "opt_out"))
        for i, minute in enumerate(minutes):
            when = START + timedelta(minutes=minute)
            text = when.strftime("%Y-%m-%d %H:%M:%S")
            action = draw(st.sampled_from(ACTIONS))
            if action in ("opt_in", "opt_out"):
                shopper.calls.append(identify(shopper.cid, text, email_opt_in=action == "opt_in"))
                shopper.consent.append((when, action))
            elif action == "identify_silent":
                shopper.calls.append(identify(shopper.cid, text, first_name="Nouveau"))
            elif action in ("unsubscribe", "subscribe"):
                event = "Email Unsubscribed" if action == "unsubscribe" else "Email Subscribed"
                shopper.calls.append(track(shopper.cid, event, text))
                shopper.consent.append((when, action))
            elif action == "cart":
                shopper.calls.append(track(shopper.cid, "Product Added", text,
                                           product_id=draw(st.sampled_from(("p1", "p2")))))
            elif action == "view":
                shopper.calls.append(track(shopper.cid, "Product Viewed", text, product_id="p2"))
                shopper.calls.append(track(shopper.cid, "Product Viewed", (when + timedelta(seconds=20))
                                           .strftime("%Y-%m-%d %H:%M:%S"), product_id="p1"))
            elif action == "order":
                shopper.calls.append(order(shopper.cid, f"o-{shopper.cid}-{i}", text, ("p1", 1, 19.9)))
            else:
                shopper.calls.append(track(shopper.cid, "Signed Up", text))
        if draw(st.booleans()) and draw(st.booleans()):   # a bounce or complaint, a quarter of them
            shopper.suppressed_at = START + timedelta(hours=draw(st.integers(1, 40)), minutes=draw(st.integers(0, 59)))
        out.append(shopper)
    return out


def consent_at(shopper: Shopper, moment: datetime) -> bool:
    """The README's consent rule, restated: the latest change before ``moment`` wins, except that
    an explicit opt-out (``Email Unsubscribed``) holds until an opt-in from a consent source
    (``Email Subscribed``); an ordinary identify's opt-in does not undo it. Unknown = no."""
    state, locked = None, False
    for when, what in sorted(shopper.consent):
        if when >= moment:
            break
        if what == "unsubscribe":
            state, locked = False, True
        elif what == "subscribe":
            state, locked = True, False
        elif what == "opt_out":
            state = False
        elif not locked:
            state = True
    return state is True


def land(landing, calls: list[dict], rng: random.Random, duplicates: bool = False) -> None:
    """Write calls into hour folders: each in its own hour's folder, or (``duplicates``) some also
    delivered again, late, in a later hour's folder, files shuffled."""
    by_file: dict[tuple[str, str], list[dict]] = {}
    for call in calls:
        hour = datetime.fromisoformat(call["timestamp"].replace("Z", "+00:00"))
        copies = [hour]
        if duplicates and rng.random() < 0.3:
            copies.append(hour + timedelta(hours=rng.randint(1, 6)))
        for moment in copies:
            name = f"part-{rng.randint(0, 2)}.jsonl"
            by_file.setdefault((moment.strftime("%Y-%m-%d %H"), name), []).append(call)
    for (hour, name), group in by_file.items():
        rng.shuffle(group)
        write_events(landing, hour, group, name=name)


def campaigns_under_test() -> dict[str, Campaign]:
    """The receipt, the cart series, browse abandonment, the welcome series, and a second
    marketing campaign on the cart trigger with a higher priority: competition for the caps.
    Holdouts off (every shopper is treated, so every rule is exercised)."""
    shipped = load_campaigns()
    chosen = {cid: shipped[cid].model_copy(update={"holdout_pct": 0})
              for cid in ("order_confirmation", "cart_abandonment", "browse_abandonment", "welcome_series")}
    data = shipped["cart_abandonment"].model_dump()
    data.update({"id": "cart_promo", "trigger": "cart_abandonment", "steps": data["steps"][:1], "priority": 90,
                 "holdout_pct": 0})
    chosen["cart_promo"] = Campaign.model_validate(data)
    return chosen


CAMPAIGNS = campaigns_under_test()


def utc(value) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- ingest: order, files and duplicates do not matter -----------------------------------------------

INGEST_STATE = {
    "customers": "SELECT customer_id, email, first_name, timezone, email_opt_in FROM customers ORDER BY customer_id",
    "consent": "SELECT customer_id, opt_in, changed_at, source FROM consent_changes ORDER BY customer_id, changed_at",
    "orders": "SELECT order_id, customer_id, ordered_at, revenue, status FROM orders ORDER BY order_id",
    "events": "SELECT message_id, customer_id, event, occurred_at FROM events ORDER BY message_id",
}


def ingest_state(wh) -> dict[str, list]:
    return {name: [{k: None if v is None else str(v) for k, v in row.items()} for row in wh.query(sql)]
            for name, sql in INGEST_STATE.items()}


def test_ingest_folds_the_same_state_whatever_the_order_files_and_duplicates():
    totals: Counter = Counter()

    @PROFILE
    @given(people=shoppers(), seed=st.integers(0, 2**16))
    def example(people, seed):
        one_ingest_example(people, seed)
        totals.update({"examples": 1, "customers": len(people), "calls": sum(len(s.calls) for s in people)})

    example()
    print(f"\n[property] ingest: {totals['examples']} examples, {totals['customers']} customers, {totals['calls']} "
          "calls delivered in shuffled files and late duplicates: same state as in order, reload changes nothing")


def one_ingest_example(people: list[Shopper], seed: int) -> None:
    calls = [c for s in people for c in s.calls]
    end = START + timedelta(hours=ACTIVE_HOURS + 8)
    with fresh_warehouse() as (plain, folder_a), fresh_warehouse() as (shuffled, folder_b):
        land(folder_a / "landing", calls, random.Random(0))
        ingest_window(plain, str(folder_a / "landing"), START, end)
        land(folder_b / "landing", calls, random.Random(seed), duplicates=True)
        # window by window, as the hourly DAG and its catch-up do (late copies arrive in later folders)
        moment = START
        while moment < end:
            ingest_window(shuffled, str(folder_b / "landing"), moment, moment + timedelta(hours=12))
            moment += timedelta(hours=12)
        expected = ingest_state(plain)
        assert ingest_state(shuffled) == expected
        assert len(expected["events"]) == len(calls)
        # the folded consent is the README's rule, for every shopper
        consent = {r["customer_id"]: r["email_opt_in"] for r in expected["customers"]}
        for shopper in people:
            assert (consent[shopper.cid] == "True" or consent[shopper.cid] == "1") == consent_at(shopper, end), shopper
        # loading the whole window again changes nothing
        before = dump_tables(shuffled, TABLES)
        ingest_window(shuffled, str(folder_b / "landing"), START, end)
        assert dump_tables(shuffled, TABLES) == before


# -- the rules, end to end ----------------------------------------------------------------------------

def violations(wh, people: list[Shopper], sent_at_ses: Counter, per_day: int, per_week: int) -> dict[str, list]:
    by_id = {s.cid: s for s in people}
    rows = wh.query("SELECT send_key, customer_id, campaign_id, trigger_id, category, email, sent_at "
                    "FROM message_log WHERE status = 'sent'")
    bad: dict[str, list] = {"consent": [], "suppressed": [], "day_cap": [], "week_cap": [], "duplicates": [],
                            "not_at_ses": []}
    marketing: dict[str, list[dict]] = {}
    for row in rows:
        shopper, sent_at = by_id[row["customer_id"]], utc(row["sent_at"])
        if row["category"] == "marketing":
            marketing.setdefault(row["customer_id"], []).append(row)
            if not consent_at(shopper, sent_at):
                bad["consent"].append(row["send_key"])
        if shopper.suppressed_at is not None and shopper.suppressed_at <= sent_at:
            bad["suppressed"].append(row["send_key"])
        if sent_at_ses[row["send_key"]] != 1:
            (bad["duplicates"] if sent_at_ses[row["send_key"]] > 1 else bad["not_at_ses"]).append(row["send_key"])
    for cid, sent in marketing.items():
        zone = ZoneInfo(by_id[cid].zone)
        journeys_per_day = Counter(day for day, *_ in {(utc(r["sent_at"]).astimezone(zone).date(), r["campaign_id"],
                                                       r["trigger_id"]) for r in sent})
        bad["day_cap"] += [(cid, str(day), n) for day, n in journeys_per_day.items() if n > per_day]
        moments = sorted(utc(r["sent_at"]) for r in sent)
        bad["week_cap"] += [(cid, str(first)) for first in moments
                            if sum(first <= m < first + timedelta(days=7) for m in moments) > per_week]
    bad["extra_at_ses"] = sorted(set(sent_at_ses) - {r["send_key"] for r in rows})
    return {k: v for k, v in bad.items() if v}


def sent_keys(ses) -> Counter:
    """send_key of every message the emulator accepted (our header in the raw MIME)."""
    keys = Counter()
    for message in ses.sent_messages():
        keys[message_from_string(message["raw_data"], policy=default_policy)["X-Relance-Send-Key"] or message["id"]] += 1
    return keys


def test_no_marketing_without_consent_nothing_to_the_suppressed_caps_hold_and_reruns_change_nothing(
        ses, run_at, monkeypatch):
    totals: Counter = Counter()

    @PROFILE
    @given(people=shoppers(), caps=st.sampled_from([(1, 3), (1, 3), (2, 3), (1, 2), (2, 5)]))
    def example(people, caps):
        totals.update(one_rules_example(people, caps, ses, run_at, monkeypatch))

    example()
    print("\n[property] rules: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items()))
          + "; violations (consent, suppression, caps, duplicates, re-run) 0")


def one_rules_example(people: list[Shopper], caps: tuple[int, int], ses, run_at, monkeypatch) -> Counter:
    ses.reset()
    per_day, per_week = caps
    monkeypatch.setenv("AIRFLOW_VAR_TM_CAP_PER_DAY", str(per_day))
    monkeypatch.setenv("AIRFLOW_VAR_TM_CAP_PER_WEEK", str(per_week))
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_MAX_SEND_RATE", "10000")
    with fresh_warehouse() as (wh, folder):
        landing = folder / "landing"
        write_catalog(landing, "2026-11-19",
                      [product("p1", title="Croquettes"), product("p2", title="Gamelle")])
        land(landing, [c for s in people for c in s.calls], random.Random(1))
        previous = START - timedelta(hours=1)
        for moment in INSTANTS:
            for shopper in people:   # a bounce or complaint ingested just before this run
                if shopper.suppressed_at is not None and previous < shopper.suppressed_at <= moment:
                    wh.execute("INSERT INTO suppressions (email, reason, source, created_at) "
                               "VALUES (:e, 'hard_bounce', 'property test', :t)",
                               {"e": shopper.email, "t": shopper.suppressed_at})
            run_at(wh, landing, CAMPAIGNS, [moment.strftime("%Y-%m-%d %H:%M")],
                   ingest_from=previous.strftime("%Y-%m-%d %H:%M"))
            previous = moment
        at_ses = sent_keys(ses)
        bad = violations(wh, people, at_ses, per_day, per_week)
        assert not bad, bad
        # the last interval again: ingest, planners, dispatcher — nothing changes, nothing is sent
        before, mailed = dump_tables(wh, TABLES), sum(at_ses.values())
        last = INSTANTS[-1]
        run_at(wh, landing, CAMPAIGNS, [last.strftime("%Y-%m-%d %H:%M")],
               ingest_from=(last - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"))
        assert dump_tables(wh, TABLES) == before
        assert sum(sent_keys(ses).values()) == mailed
        statuses = Counter(r["status"] for r in wh.query("SELECT status FROM message_log"))
        return Counter({"examples": 1, "customers": len(people), "calls": sum(len(s.calls) for s in people),
                        **{f"{k}": v for k, v in statuses.items()}})


def test_the_oracles_catch_what_they_look_for():
    """The checks above are not vacuous: the consent oracle follows the README's cases, and the cap
    check flags two journeys on one local day, which two UTC days would hide."""
    s = Shopper("x", "Asia/Tokyo", consent=[(at("2026-11-20 09:00"), "opt_in"), (at("2026-11-20 10:00"), "unsubscribe"),
                                              (at("2026-11-20 11:00"), "opt_in"), (at("2026-11-20 12:00"), "subscribe")])
    assert [consent_at(s, at(f"2026-11-20 {h:02d}:30")) for h in (8, 9, 10, 11, 12)] == [False, True, False, False, True]

    class Rows:
        def __init__(self, rows):
            self.rows = rows

        def query(self, *_):
            return self.rows

    # 14:30 and 16:30 UTC on 2026-11-20 are both 2026-11-21 in Tokyo: one local day, two journeys
    rows = [{"send_key": k, "customer_id": "x", "campaign_id": c, "trigger_id": "t", "category": "marketing",
             "email": "x@example.com", "sent_at": at(w)} for k, c, w in
            (("k1", "a", "2026-11-20 15:30"), ("k2", "b", "2026-11-20 16:30"))]
    s.consent = [(at("2026-11-19 00:00"), "opt_in")]
    bad = violations(Rows(rows), [s], Counter({"k1": 1, "k2": 1}), 1, 3)
    assert bad == {"day_cap": [("x", "2026-11-21", 2)]}

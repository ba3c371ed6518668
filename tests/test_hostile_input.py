"""Hostile input (issue 10 item 5), beyond the malformed lines of test_ingest / test_ingest_feeds
and the header injection of test_dispatch: numbers that overflow the warehouse's columns,
catalog prices that are no prices, duplicated messageIds with another payload, events days
late, and names and titles with CR/LF, HTML, Jinja syntax, very long and non-Latin text — from
the landing zone to the email SES receives. Plus the trigger form: every Param typed and
validated, none turned into SQL. Fixtures: ``tests/fixtures/hostile/``.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from helpers import at, customer, identify, order, product, track, write_catalog, write_events
from relance.campaigns.config import load_campaigns
from relance.ingest import ingest_window

FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
DAGS = Path(__file__).resolve().parents[1] / "dags"


def land_fixture(landing: Path, name: str, target: str) -> Path:
    path = landing / target
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / name, path)
    return path


def load_hour(wh, landing: Path, hour: str) -> dict:
    start = at(hour)
    return ingest_window(wh, str(landing), start, start + timedelta(hours=1))


# -- numbers ------------------------------------------------------------------------------------------

def test_numbers_that_overflow_or_are_no_amounts_quarantine_their_line_not_the_file(wh, tmp_path):
    """A quantity of 10^12 used to fail the whole file on PostgreSQL (order_items.quantity is an
    INTEGER: the file's transaction aborted, every run retried it, nothing of it ever loaded)."""
    land_fixture(tmp_path, "numbers.jsonl", "events/dt=2026-11-20/hour=10/numbers.jsonl")
    stats = load_hour(wh, tmp_path, "2026-11-20 10:00")
    bad = {r["line_no"]: r["field"] for r in wh.query("SELECT line_no, field FROM quarantine")}
    print(f"\n[hostile] numbers ({wh.dialect}): {stats['events_lines']} lines, {stats['events_loaded']} loaded, "
          f"{stats['events_quarantined']} quarantined, 0 files failed")
    assert stats["events_loaded"] == 3 and stats["events_quarantined"] == 9, stats
    assert bad == {3: "properties.products[0].quantity", 4: "properties.products[0].quantity",
                   5: "properties.products[0].quantity", 6: "properties.revenue", 7: "properties.revenue",
                   8: "properties.products[0].price", 10: "properties.products[0].quantity",
                   11: "properties.points_balance", 12: "properties.revenue"}
    assert wh.query("SELECT order_id, revenue FROM orders ORDER BY order_id") == [
        {"order_id": "o-ok", "revenue": 39.8}, {"order_id": "o-str-qty", "revenue": 10.0}]
    assert wh.scalar("SELECT SUM(quantity) FROM order_items") == 4


def test_catalog_rows_with_bad_prices_or_stock_are_quarantined_and_the_good_ones_load(wh, tmp_path):
    write_catalog(tmp_path, "2026-11-19", [product("p-inf", price="10.00 EUR"), product("p-stock", quantity=3)])
    land_fixture(tmp_path, "catalog_bad_prices.csv", "catalog/dt=2026-11-20/products.csv")
    stats = load_hour(wh, tmp_path, "2026-11-20 10:00")
    fields = {r["line_no"]: r["field"] for r in wh.query(
        "SELECT line_no, field FROM quarantine WHERE source_file LIKE '%2026-11-20%'")}
    assert fields == {3: "price", 4: "price", 5: "price", 6: "price", 7: "price", 8: "price", 9: "price",
                      10: "sale_price", 11: "quantity", 12: "quantity"}
    rows = {r["product_id"]: (r["price"], r["quantity"]) for r in wh.query(
        "SELECT product_id, price, quantity FROM product_snapshots WHERE snapshot_date = :d", {"d": at("2026-11-20 00:00").date()})}
    assert rows == {"p-ok": (19.9, 20), "p-thousands": (1299.0, 2)} and stats["catalog_quarantined"] == len(fields)
    print(f"\n[hostile] catalog prices and stock ({wh.dialect}): 12 rows, {len(rows)} loaded, {len(fields)} "
          "quarantined with their field, the snapshot loaded")
    # a product whose row is bad that day keeps its last good values
    assert wh.scalar("SELECT price FROM products WHERE product_id = 'p-inf'") == 10.0


# -- duplicates and late events --------------------------------------------------------------------------

def test_a_duplicated_message_id_with_another_payload_is_a_duplicate_not_an_update(wh, tmp_path):
    """At-least-once delivery repeats a call; a broken (or hostile) producer may reuse a messageId
    for another payload. The first one loaded wins, for the event and for the traits it carried."""
    write_events(tmp_path, "2026-11-20 10", [identify("dup", "2026-11-20 10:00", message_id="m-dup",
                                                      email="first@example.com", email_opt_in=False)])
    load_hour(wh, tmp_path, "2026-11-20 10:00")
    write_events(tmp_path, "2026-11-20 11", [
        identify("dup", "2026-11-20 11:00", message_id="m-dup", email="second@example.com", email_opt_in=True),
        track("dup", "Product Viewed", "2026-11-20 11:01", message_id="m-dup", product_id="p1"),
    ])
    stats = load_hour(wh, tmp_path, "2026-11-20 11:00")
    assert stats["events_duplicates"] == 1 and stats["events_loaded"] == 0   # one messageId, already loaded
    assert wh.query("SELECT email, email_opt_in FROM customers") in (
        [{"email": "first@example.com", "email_opt_in": False}], [{"email": "first@example.com", "email_opt_in": 0}])
    assert wh.scalar("SELECT COUNT(*) FROM events") == 1


def test_events_days_late_are_loaded_as_of_their_time_and_mail_nobody(wh, tmp_path, ses, run_at):
    """A cart and an order of three days ago arrive in today's folder: both are loaded with their
    own timestamps (the order counts for the shop's history), and neither a receipt nor a cart
    reminder goes out three days late."""
    write_catalog(tmp_path, "2026-11-17", [product("p1")])
    write_events(tmp_path, "2026-11-20 10", [
        customer("late", "2026-11-17 09:00"),
        track("late", "Product Added", "2026-11-17 09:05", product_id="p1"),
        track("late2", "Product Added", "2026-11-17 09:05", product_id="p1"),
        order("late", "o-late", "2026-11-17 09:10", ("p1", 1, 19.9)),
    ])
    write_events(tmp_path, "2026-11-20 10", [customer("late2", "2026-11-17 09:00")], name="events-0001.jsonl")
    campaigns = {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in load_campaigns().items()
                 if cid in ("order_confirmation", "cart_abandonment")}
    run_at(wh, tmp_path, campaigns, ["2026-11-20 09:00", "2026-11-20 11:00", "2026-11-20 14:00"],
           ingest_from="2026-11-20 08:00")
    assert str(wh.scalar("SELECT ordered_at FROM orders WHERE order_id = 'o-late'")).startswith("2026-11-17 09:10")
    statuses = [r["status"] for r in wh.query("SELECT status FROM message_log")]
    print(f"\n[hostile] events 3 days late ({wh.dialect}): {len(statuses)} messages planned, 0 sent")
    assert set(statuses) <= {"expired"}
    assert ses.sent_messages() == []


# -- strings from the landing zone to the inbox ------------------------------------------------------------

JINJA = "{{ 7*7 }} {% for x in range(3) %}X{% endfor %} {{ config }} {{ ''.__class__ }}"
LONG = "Très long " * 600                                        # 6,000 characters
NON_LATIN = "李雷 Ωμέγα Жук مرحبا עברית 🐶 ñ̃ नमस्ते"
NAMES = {
    "crlf": "Eve\r\nBcc: victim@example.com\r\nSubject: pwned",
    "html": "<b>Bob</b><script>alert(1)</script><img src=x onerror=alert(2)>",
    "jinja": JINJA,
    "long": LONG,
    "nonlatin": NON_LATIN,
}
TITLES = {
    "crlf": "Croquettes\r\nBcc: victim@example.com",
    "html": 'Bol "anti-glouton" <script>alert(1)</script> & co',
    "jinja": "Laisse " + JINJA,
    "long": "Gamelle " + LONG,
    "nonlatin": "狗粮 " + NON_LATIN,
}


def raw_lines_ok(raw: str) -> bool:
    """RFC 5322: no line longer than 998 characters, lines end in CRLF only."""
    return all(len(line) <= 998 for line in raw.split("\r\n")) and "\n" not in raw.replace("\r\n", "")


def test_hostile_names_and_titles_are_printed_never_evaluated_nor_injected(wh, tmp_path, ses, run_at, monkeypatch):
    """Five customers, each with a hostile first name and a cart holding a product with a hostile
    title, get their 2 h cart reminder: the subject is one header line holding the text as given
    (CR/LF folded to spaces), the HTML part escapes the markup, Jinja syntax comes out literally
    ('{{ 7*7 }}', never 49), 6,000-character and non-Latin text survive the round trip, no Bcc."""
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_MAX_SEND_RATE", "1000")
    write_catalog(tmp_path, "2026-11-19", [product(f"p-{k}", title=t) for k, t in TITLES.items()])
    calls = []
    for kind, name in NAMES.items():
        calls += [customer(kind, "2026-11-20 09:00", first_name=name),
                  track(kind, "Product Added", "2026-11-20 10:05", product_id=f"p-{kind}")]
    write_events(tmp_path, "2026-11-20 10", calls)
    cart = load_campaigns()["cart_abandonment"].model_copy(update={"holdout_pct": 0})
    run_at(wh, tmp_path, {"cart_abandonment": cart}, ["2026-11-20 09:00", "2026-11-20 11:00", "2026-11-20 13:00"],
           ingest_from="2026-11-20 08:00")
    rows = {r["customer_id"]: r for r in wh.query("SELECT customer_id, status, reason, variant FROM message_log")}
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(NAMES, "sent"), rows
    stored = {r["product_id"]: r["title"] for r in wh.query("SELECT product_id, title FROM products")}
    assert stored["p-nonlatin"] == TITLES["nonlatin"] and stored["p-jinja"] == TITLES["jinja"]
    messages = {m["destinations"][0].split("@")[0]: m for m in ses.sent_messages()}
    assert set(messages) == set(NAMES)
    for kind, sent in messages.items():
        raw = sent["raw_data"]
        assert raw_lines_ok(raw), kind
        # from bytes: parsing a str decodes 8-bit UTF-8 parts as raw-unicode-escape (a Python quirk)
        mail = message_from_bytes(raw.encode("utf-8"), policy=default_policy)
        assert mail["Bcc"] is None and mail["To"] == f"{kind}@example.com"
        subject = str(mail["Subject"])
        assert "\r" not in subject and "\n" not in subject, kind
        html = mail.get_body(("html",)).get_content()
        text = mail.get_body(("plain",)).get_content()
        title = " ".join(TITLES[kind].split())                   # CR/LF and runs of spaces → one space
        assert title in " ".join(text.split()), kind
        if kind == "jinja":
            assert "{{ 7*7 }}" in subject + text and "49" not in subject + text
            assert "{% for x in range(3) %}X{% endfor %}" in text and "XXX" not in text
            assert "{{ config }}" in text and "__class__" in text
        if kind == "html":
            assert "<script>" not in html and "&lt;script&gt;" in html and "<img src=x" not in html
            assert "&lt;b&gt;Bob&lt;/b&gt;" in html or "&lt;b&gt;" in html
        if kind == "nonlatin":
            assert NON_LATIN in subject and NON_LATIN in text and NON_LATIN in html
        if kind == "crlf":
            assert mail.get_all("Subject") == [mail["Subject"]] and "victim" not in str(mail["To"])
        if kind == "long":
            assert LONG.strip() in " ".join(text.split())
    print(f"\n[hostile] names and titles ({wh.dialect}): {len(messages)} emails with CR/LF, HTML, Jinja, "
          f"6,000-character and non-Latin text: 0 injected headers, 0 evaluated templates, 0 lines over 998")


# -- the trigger form ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags


def test_every_trigger_form_param_is_typed_and_refuses_what_is_not_its_type(dags):
    from airflow.sdk.exceptions import ParamValidationError

    hostile = ["true; DROP TABLE message_log; --", "1 OR 1=1", {"$ne": None}, None, 10**20, -1, ["x"] * 1000]
    checked = 0
    for dag_id, dag in dags.items():
        for name, param in dag.params.items():
            param = dag.params.get_param(name)
            kind = param.schema.get("type")
            assert kind in ("boolean", "integer", "array"), f"{dag_id}.{name}: untyped or free-text Param ({kind})"
            assert param.resolve(param.value) == param.value
            for value in hostile:
                ok = (kind == "boolean" and isinstance(value, bool)) or \
                     (kind == "integer" and isinstance(value, int) and param.schema.get("minimum", -1e99)
                      <= value <= param.schema.get("maximum", 1e99))
                if ok:
                    continue
                with pytest.raises(ParamValidationError):
                    param.resolve(value)
                checked += 1
    forget = dags["ingest_behaviour"].params.get_param("forget_customer_ids")
    assert forget.resolve(["c-0042", "zoé"]) == ["c-0042", "zoé"]
    for value in (["a\nb"], [""], ["x" * 201], ["c", "c"], [42], "c-0042"):
        with pytest.raises(ParamValidationError):
            forget.resolve(value)
    print(f"\n[hostile] trigger form: {len(dags)} DAGs, {checked} hostile values refused by their Param")


def test_params_reach_the_code_typed_never_as_sql():
    """Every read of a Param in dags/ converts it (bool, int) or hands the list to a function that
    binds it (relance.privacy): no Param is formatted into a string."""
    reads = []
    for path in sorted(DAGS.glob("*.py")):
        for line in path.read_text().splitlines():
            if re.search(r"params\[", line) or re.search(r"params\.get\(", line):
                reads.append((path.name, line.strip()))
    assert reads
    allowed = re.compile(r"(bool|int)\((context\[\"params\"\]|params)\[\"\w+\"\]\)|"
                         r"context\[\"params\"\]\[\"forget_customer_ids\"\] or \[\]|"
                         r"params = context\[\"params\"\]")
    for name, line in reads:
        assert allowed.search(line), f"{name}: a Param read without a type conversion: {line}"
        assert not re.search(r"f[\"'].*params", line), f"{name}: a Param formatted into a string: {line}"

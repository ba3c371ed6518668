"""Privacy (issue 10 item 6): an erasure request removes a customer's personal data from every
table and keeps a hashed suppression that still stops mail when the address comes back; task
logs and XCom never carry an address; no credentials in the code."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpers import at, customer, identify, order, product, track, write_catalog, write_events
from relance import cli, settings
from relance.campaigns.config import load_campaigns
from relance.campaigns.planner import plan_campaign
from relance.ingest import ingest_window
from relance.keys import address_hash
from relance.privacy import forget_customer
from test_dispatch import dispatch

ZOE = "zoe.erasure@example.com"
#: every personal value of the forgotten customer: none may be left anywhere in the warehouse
ZOE_PERSONAL = (ZOE, "ZOE.ERASURE", "Zoéline", "Quarantaine", "+33 6 12 34 56 78", "1990-04-12", "anon-zoe-7f3")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@pytest.fixture(scope="module")
def shipped():
    return {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in load_campaigns().items()}


def every_value(wh) -> dict[str, list[str]]:
    """Every non-null value of every table of the warehouse, as text, by table."""
    inspector = sa.inspect(wh.engine)
    out = {}
    for table in inspector.get_table_names():
        rows = wh.query(f"SELECT * FROM {table}")  # table names from the live schema, not input
        out[table] = [str(v) for row in rows for v in row.values() if v is not None]
    return out


def leftovers(wh, needles) -> dict[str, list[str]]:
    found = {}
    for table, values in every_value(wh).items():
        hits = [v[:120] for v in values if any(n.lower() in v.lower() for n in needles)]
        if hits:
            found[table] = hits
    return found


def zoe_shop(wh, landing, campaigns):
    """Zoé browses anonymously, identifies (name, phone, birthday), carts, orders, gets a
    receipt and a cart reminder, a bad line of hers is quarantined, SES reports on her
    messages; Bob is another customer, who must be left alone."""
    write_catalog(landing, "2026-11-20", [product("p1", title="Croquettes"), product("p2", title="Gamelle")])
    anon = {"type": "track", "event": "Product Viewed", "anonymousId": "anon-zoe-7f3", "messageId": "z-anon",
            "timestamp": "2026-11-20T09:50:00.000Z", "properties": {"product_id": "p1"}}
    write_events(landing, "2026-11-20 09", [anon])
    zoe_identify = customer("zoe", "2026-11-20 10:00", email=ZOE.upper(), first_name="Zoéline",
                            last_name="Quarantaine", phone="+33 6 12 34 56 78", birthday="1990-04-12")
    zoe_identify["anonymousId"] = "anon-zoe-7f3"
    write_events(landing, "2026-11-20 10", [
        zoe_identify, customer("bob", "2026-11-20 10:00"),
        track("zoe", "Product Added", "2026-11-20 10:05", product_id="p2"),
        track("bob", "Product Added", "2026-11-20 10:05", product_id="p2"),
        order("zoe", "o-zoe", "2026-11-20 10:10", ("p1", 1, 19.9)),
    ], raw_lines=[json.dumps({"type": "identify", "userId": "zoe", "traits": {"email": ZOE}})])  # no messageId
    for hour in range(10, 13):
        moment = at(f"2026-11-20 {hour + 1}:00")
        ingest_window(wh, str(landing), moment - timedelta(hours=1), moment)
        for cid in ("order_confirmation", "cart_abandonment"):
            plan_campaign(wh, campaigns[cid], moment)
        dispatch(wh, campaigns, moment, run_id=f"run-{hour}")
    sent = wh.query("SELECT send_key, provider_message_id, customer_id FROM message_log WHERE status = 'sent'")
    assert {r["customer_id"] for r in sent} == {"zoe", "bob"}
    for row in sent:  # what ingest_ses_events stores: a Delivery event per message, its payload
        wh.execute("INSERT INTO message_events (event_id, provider_message_id, send_key, event_type, occurred_at, "
                   "email, detail, received_at) VALUES (:e, :p, :k, 'Delivery', :t, :m, :d, :t)",
                   {"e": f"ev-{row['send_key']}", "p": row["provider_message_id"], "k": row["send_key"],
                    "t": at("2026-11-20 13:00"), "m": ZOE if row["customer_id"] == "zoe" else "bob@example.com",
                    "d": json.dumps({"mail": {"destination": [ZOE if row["customer_id"] == "zoe" else "bob@example.com"]}})})
    # an older complaint on her address, in clear, before the request
    wh.execute("INSERT INTO suppressions (email, reason, source, created_at) VALUES (:e, 'complaint', 'ses', :t)",
               {"e": ZOE, "t": at("2026-11-20 13:00")})


def test_forget_removes_every_personal_value_and_keeps_a_hashed_suppression(wh, tmp_path, ses, shipped):
    zoe_shop(wh, tmp_path, shipped)
    before = leftovers(wh, ZOE_PERSONAL)
    assert {"customers", "customer_traits", "events", "message_log", "message_events", "suppressions",
            "identity_links", "quarantine"} <= set(before), before
    bob_before = leftovers(wh, ("bob@example.com",))
    decisions = wh.query("SELECT send_key, status FROM message_log WHERE customer_id = 'zoe' ORDER BY send_key")

    done = forget_customer(wh, "zoe", at("2026-11-20 14:00"))

    after = leftovers(wh, ZOE_PERSONAL)
    print(f"\n[privacy] erasure ({wh.dialect}): {sum(map(len, before.values()))} personal values in "
          f"{len(before)} tables before, {sum(map(len, after.values()))} after; {done['rows_changed']} rows "
          f"deleted or scrubbed in {len(done['tables'])} tables; {done['addresses']} address kept hashed")
    assert after == {}, "personal data left after the erasure"
    assert not EMAIL.search(json.dumps(done)), "the result (XCom, CLI output) names no address"
    assert done["addresses"] == 1 and done["tables"]["customers"] == 1
    (suppression,) = wh.query("SELECT email, reason, source FROM suppressions")
    assert suppression == {"email": address_hash(ZOE), "reason": "complaint", "source": "erasure"}
    assert wh.scalar("SELECT COUNT(*) FROM erasures") == 1
    # what is not personal stays: her order, the decisions, the events' rows (without payload)
    assert wh.scalar("SELECT COUNT(*) FROM orders WHERE customer_id = 'zoe'") == 1
    assert wh.query("SELECT send_key, status FROM message_log WHERE customer_id = 'zoe' ORDER BY send_key") == decisions
    assert {r["status"] for r in decisions} == {"sent"}
    assert wh.scalar("SELECT COUNT(*) FROM events WHERE message_id = 'z-anon'") == 1
    # Bob is untouched
    assert leftovers(wh, ("bob@example.com",)) == bob_before
    # again: nothing more to remove
    again = forget_customer(wh, "zoe", at("2026-11-20 15:00"))
    assert again["rows_changed"] == 0 and again["addresses"] == 0


def test_an_erased_address_that_comes_back_is_never_mailed_again(wh, tmp_path, ses, shipped):
    zoe_shop(wh, tmp_path, shipped)
    forget_customer(wh, "zoe", at("2026-11-20 14:00"))
    def to_zoe():
        return [m for m in ses.sent_messages() if any(d.strip().lower() == ZOE for d in m["destinations"])]

    mailed = len(to_zoe())
    # she comes back: the same id and a new one, with the same address (another case), opted in
    write_events(tmp_path, "2026-11-21 10", [
        customer("zoe", "2026-11-21 10:00", email=ZOE), customer("zoe-new", "2026-11-21 10:00", email=f" {ZOE.title()} "),
        track("zoe", "Product Added", "2026-11-21 10:01", product_id="p1"),
        track("zoe-new", "Product Added", "2026-11-21 10:01", product_id="p1"),
        order("zoe-new", "o-zoe-new", "2026-11-21 10:02", ("p2", 1, 9.9)),
    ])
    for hour in range(10, 13):
        moment = at(f"2026-11-21 {hour + 1}:00")
        ingest_window(wh, str(tmp_path), moment - timedelta(hours=1), moment)
        for cid in ("order_confirmation", "cart_abandonment"):
            plan_campaign(wh, shipped[cid], moment)
        dispatch(wh, shipped, moment, run_id=f"again-{hour}")
    rows = wh.query("SELECT customer_id, campaign_id, status, reason FROM message_log "
                    "WHERE planned_at >= :t AND customer_id <> 'bob' ORDER BY customer_id, campaign_id",
                    {"t": at("2026-11-21 00:00")})
    assert [(r["customer_id"], r["campaign_id"]) for r in rows] == [
        ("zoe", "cart_abandonment"), ("zoe-new", "order_confirmation")]
    assert {r["status"] for r in rows} == {"suppressed"}, rows       # not even the receipt
    assert all(r["reason"] == "address on the suppression list: complaint" for r in rows)
    print(f"\n[privacy] erased address back in 2 identifies ({wh.dialect}): {len(rows)} messages planned, "
          f"{sum(r['status'] == 'suppressed' for r in rows)} suppressed, {len(to_zoe()) - mailed} sent")
    assert mailed == 1 and len(to_zoe()) == mailed
    # the address is stored again only because the shop sent it again (customers), never in suppressions
    assert wh.scalar("SELECT COUNT(*) FROM suppressions WHERE email LIKE '%@%'") == 0


def test_ses_events_about_an_erased_address_arriving_later_store_no_address(wh, tmp_path, ses, shipped):
    """A bounce and a complaint about her old message come after the erasure (SES publishes late,
    the queue redelivers): the events are stored for the rates, without her address or payload,
    and nothing puts the address back in clear on the suppression list."""
    from relance.feedback.parse import parse_body
    from relance.feedback.store import apply_events

    zoe_shop(wh, tmp_path, shipped)
    (receipt,) = wh.query("SELECT send_key, provider_message_id FROM message_log WHERE customer_id = 'zoe'")
    forget_customer(wh, "zoe", at("2026-11-20 14:00"))
    fixtures = Path(__file__).parent / "fixtures" / "ses"
    events = []
    for name in ("event_bounce_permanent_sns.json", "event_complaint_sns.json"):
        text = re.sub("jane.doe@example.com", ZOE.upper(), (fixtures / name).read_text(), flags=re.IGNORECASE)
        text = text.replace("0102019a5c8f3e21-4b6f0d2e-8c1a-4f57-9e0b-3d2c1a0b9f8e-000000", receipt["provider_message_id"])
        events += parse_body(text)
    assert events and all(e.email == ZOE for e in events)
    with wh.begin() as conn:
        stats = apply_events(wh, conn, events, [], at("2026-11-20 15:00"))
    assert stats["new_events"] == len(events) and stats["suppressed"] == 0
    assert leftovers(wh, ZOE_PERSONAL) == {}
    assert wh.scalar("SELECT COUNT(*) FROM message_events WHERE event_type IN ('Bounce', 'Complaint') "
                     "AND email IS NULL AND detail IS NULL") == len(events)
    assert [r["email"] for r in wh.query("SELECT email FROM suppressions")] == [address_hash(ZOE)]


def test_the_cli_forgets_and_prints_counts_only(wh, tmp_path, ses, shipped, capsys):
    zoe_shop(wh, tmp_path, shipped)
    assert cli.main(["forget", "zoe", "--url", wh.uri]) == 0
    out = capsys.readouterr().out
    assert "erasure done: 1 address(es)" in out and not EMAIL.search(out) and "zoe" not in out
    assert leftovers(wh, ZOE_PERSONAL) == {}


def test_no_credentials_in_the_code():
    """No AWS key, private key or password-bearing URI in what ships (the docker-compose file's
    local-only values are the emulator's and the dev database's, documented there)."""
    patterns = {
        "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
        "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        "URI with a password": re.compile(r"\b[a-z+]+://[^/\s:@'\"]+:[^/\s@'\"{}]+@"),
        "secret assignment": re.compile(r"(?i)\b(secret|password|token)\w*\s*=\s*['\"][^'\"{}\s]{8,}['\"]"),
    }
    root = settings.REPO_ROOT
    files = [p for folder in ("plugins", "dags", "include") for p in (root / folder).rglob("*")
             if p.is_file() and p.suffix in {".py", ".sql", ".yaml", ".yml", ".txt", ".html", ".cfg", ".json"}]
    files += [root / "Makefile", root / "README.md"]
    found = [f"{Path(p).relative_to(root)}: {name}" for p in files for name, rx in patterns.items()
             if rx.search(p.read_text(errors="replace"))]
    assert not found, found


# -- task logs and XCom, through Airflow ---------------------------------------------------------

def xcom_values(run_ids: list[str]) -> list[str]:
    """Every XCom value the runs pushed, as stored in Airflow's metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.run_id.in_(run_ids)).all()
        return [json.dumps(row.value, default=str) for row in rows]


@pytest.mark.backend("sqlite")
def test_task_logs_and_xcom_never_hold_an_address(dagbag, ses, warehouse_url, tmp_path, monkeypatch, caplog, capfd):
    """ingest_behaviour (with a quarantined line and dropped traits that quote addresses), the
    receipts' planner and dispatch_messages (two receipts sent), then the erasure request from
    the trigger form: at INFO, the production level, no task log line and no XCom value holds an
    address, nor the AWS secret key or the unsubscribe secret the runs used."""
    import logging

    caplog.set_level(logging.INFO)
    landing = tmp_path / "landing"
    # credentials that must not reach a log either: the AWS secret key, the unsubscribe secret
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-secret-9f2c41d7e0", "AIRFLOW_VAR_TM_UNSUBSCRIBE_SECRET": "unsub-secret-5b7e93a1"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("AIRFLOW_VAR_TM_LANDING", str(landing))
    write_catalog(landing, "2026-11-19", [product("p1", title="Croquettes")])
    write_events(landing, "2026-11-20 10", [
        customer("zoe", email=ZOE), order("zoe", "o-zoe", "2026-11-20 10:01", ("p1", 1, 19.9)),
        customer("eve", email="eve@example.com\r\nBcc: victim@example.com"),        # a dropped trait
        identify("ivy", "2026-11-20 10:02", email="ivy@example.com", birthday="not-a-date"),
        order("ivy", "o-ivy", "2026-11-20 10:03", ("p1", 1, 19.9)),
    ], raw_lines=[json.dumps({"type": "identify", "traits": {"email": "quarantined@example.com"}})])
    runs = []
    for hour in ("2026-11-20 11:00", "2026-11-20 12:00"):
        monkeypatch.setenv("RELANCE_SIMULATED_NOW", at(hour).isoformat())
        for dag_id in ("ingest_behaviour", "campaign__order_confirmation", "dispatch_messages"):
            run = dagbag.get_dag(dag_id).test(logical_date=at(hour))
            assert run.state == "success", (dag_id, hour)
            runs.append(run.run_id)
    run = dagbag.get_dag("ingest_behaviour").test(logical_date=at("2026-11-20 13:00"),
                                                  run_conf={"forget_customer_ids": ["zoe", "ivy"]})
    assert run.state == "success"
    runs.append(run.run_id)

    from relance import warehouse

    wh = warehouse.connect(warehouse_url)
    assert wh.scalar("SELECT COUNT(*) FROM message_log WHERE status = 'sent'") == 2   # the two receipts
    assert leftovers(wh, (ZOE, "ivy@example.com")) == {}
    captured = capfd.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err])
    assert "erasure requests carried out: 2 customers" in text, "the task logs were not captured"
    assert "loaded " in text
    xcoms = xcom_values(runs)
    assert any('"rows_changed"' in x for x in xcoms) and any('"events_loaded"' in x for x in xcoms)
    leaks = [line for line in text.splitlines() if EMAIL.search(line) and "werkzeug" not in line]
    print(f"\n[privacy] Airflow runs (7 DAG runs, INFO): {len(text.splitlines())} log lines and {len(xcoms)} "
          f"XCom values scanned, {len(leaks)} + {sum(bool(EMAIL.search(x)) for x in xcoms)} with an address")
    assert not leaks, leaks[:5]
    assert not [x for x in xcoms if EMAIL.search(x)]
    assert not [v for v in secrets.values() if v in text or any(v in x for x in xcoms)], "a credential was logged"


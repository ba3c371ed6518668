"""ingest_behaviour's logic: Segment calls and catalog snapshots into the warehouse."""

from __future__ import annotations

from datetime import timedelta

import pytest

from helpers import (
    at,
    customer,
    dump_tables,
    identify,
    order,
    product,
    track,
    write_catalog,
    write_events,
)
from relance.ingest import ingest_window
from relance.ingest.events import parse_events

TABLES = ["events", "customers", "customer_traits", "orders", "order_items", "consent_changes",
          "quarantine", "product_snapshots", "products", "ingest_files"]


def run_hour(wh, landing, hour: str):
    start = at(hour + ":00")
    return ingest_window(wh, str(landing), start, start + timedelta(hours=1))


def test_events_load_and_rerunning_an_interval_leaves_identical_tables(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [
        customer("ann"),
        track("ann", "Product Viewed", "2026-11-20 10:01", product_id="p1"),
        order("ann", "o1", "2026-11-20 10:05", ("p1", 2, 9.5)),
    ])
    write_catalog(tmp_path, "2026-11-20", [product("p1")])
    first = run_hour(wh, tmp_path, "2026-11-20 10")
    assert first["events_loaded"] == 3 and first["catalog_products"] == 1
    before = dump_tables(wh, TABLES)
    again = run_hour(wh, tmp_path, "2026-11-20 10")
    assert again["events_loaded"] == 0 and again["events_duplicates"] == 3
    assert dump_tables(wh, TABLES) == before
    assert wh.query("SELECT order_id, customer_id, revenue, status FROM orders") == [
        {"order_id": "o1", "customer_id": "ann", "revenue": 19.0, "status": "completed"}]
    assert wh.scalar("SELECT SUM(quantity) FROM order_items") == 2


def test_duplicate_delivery_across_folders_counts_once(wh, tmp_path):
    call = track("bob", "Product Viewed", "2026-11-20 10:10", message_id="dup-1", product_id="p1")
    write_events(tmp_path, "2026-11-20 10", [call])
    write_events(tmp_path, "2026-11-20 11", [call, call])
    run_hour(wh, tmp_path, "2026-11-20 10")
    stats = run_hour(wh, tmp_path, "2026-11-20 11")
    assert stats["events_loaded"] == 0
    assert wh.scalar("SELECT COUNT(*) FROM events WHERE message_id = 'dup-1'") == 1


def test_a_reused_message_id_merges_no_traits_whether_its_chunk_is_all_new_or_not(wh, tmp_path):
    """The merge skips its duplicate-delivery probe only for a chunk whose calls were all new:
    a messageId loaded from another file, re-sent with other traits and a later time, changes
    nothing — alone in its file or among new calls (then the other calls' traits merge)."""
    write_events(tmp_path, "2026-11-20 10", [identify("fay", "2026-11-20 10:00", message_id="m-fay",
                                                       email="fay@example.com")])
    write_events(tmp_path, "2026-11-20 11", [identify("fay", "2026-11-20 11:00", message_id="m-fay",
                                                       email="other@example.com")])
    write_events(tmp_path, "2026-11-20 12", [
        identify("gus", "2026-11-20 12:00", email="gus@example.com"),
        identify("fay", "2026-11-20 12:01", message_id="m-fay", email="third@example.com"),
        identify("hal", "2026-11-20 12:02", email="hal@example.com")])
    for hour in ("10", "11", "12"):
        run_hour(wh, tmp_path, f"2026-11-20 {hour}")
    emails = {r["customer_id"]: r["value"] for r in wh.query(
        "SELECT customer_id, value FROM customer_traits WHERE trait = 'email'")}
    assert emails == {"fay": "fay@example.com", "gus": "gus@example.com", "hal": "hal@example.com"}
    assert wh.scalar("SELECT email FROM customers WHERE customer_id = 'fay'") == "fay@example.com"


def test_late_event_in_a_later_folder_counts_as_of_its_own_timestamp(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 15", [track("cy", "Product Added", "2026-11-20 09:30", product_id="p2")])
    run_hour(wh, tmp_path, "2026-11-20 15")
    ts = wh.scalar("SELECT occurred_at FROM events")
    assert str(ts).startswith("2026-11-20 09:30")


def test_a_late_older_identify_never_rolls_a_trait_back(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [identify("dan", "2026-11-20 10:00", email="new@example.com",
                                                       first_name="Dan")])
    write_events(tmp_path, "2026-11-20 11", [identify("dan", "2026-11-19 08:00", email="old@example.com",
                                                       locale="en")])
    run_hour(wh, tmp_path, "2026-11-20 10")
    run_hour(wh, tmp_path, "2026-11-20 11")
    row = wh.query("SELECT email, first_name, locale FROM customers WHERE customer_id = 'dan'")[0]
    assert row == {"email": "new@example.com", "first_name": "Dan", "locale": "en"}


def test_unsubscribe_event_records_consent_and_clears_opt_in(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [
        customer("eve", "2026-11-20 10:00", opt_in=True),
        track("eve", "Email Unsubscribed", "2026-11-20 10:30"),
    ])
    run_hour(wh, tmp_path, "2026-11-20 10")
    assert not wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'eve'")
    sources = {r["source"]: bool(r["opt_in"]) for r in wh.query("SELECT source, opt_in FROM consent_changes")}
    assert sources == {"identify": True, "unsubscribe_event": False}


def test_consent_unknown_when_the_trait_is_absent(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [customer("fay", opt_in=None)])
    run_hour(wh, tmp_path, "2026-11-20 10")
    assert wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'fay'") is None


def test_a_refund_delivered_before_its_order_is_still_applied(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [track("gus", "Order Refunded", "2026-11-20 12:00", order_id="o9")])
    write_events(tmp_path, "2026-11-20 11", [order("gus", "o9", "2026-11-20 09:00", ("p1", 1, 5.0))])
    run_hour(wh, tmp_path, "2026-11-20 10")
    run_hour(wh, tmp_path, "2026-11-20 11")
    assert wh.scalar("SELECT status FROM orders WHERE order_id = 'o9'") == "refunded"


def test_bad_lines_are_quarantined_with_field_and_reason_and_the_rest_loads(wh, tmp_path):
    path = write_events(tmp_path, "2026-11-20 10", [
        customer("hal"),
        track("hal", "Product Viewed", "2026-11-20 10:01"),                    # no product_id
        track("hal", "Product Teleported", "2026-11-20 10:02", product_id="p"),  # unknown event
        {"type": "track", "userId": "hal", "event": "Product Viewed", "messageId": "x1",
         "timestamp": "yesterday", "properties": {"product_id": "p1"}},        # bad timestamp
        track("hal", "Order Completed", "2026-11-20 10:03", products=[{"product_id": "p1"}]),  # no order_id
        track("hal", "Product Viewed", "2026-11-20 10:04", product_id="p1"),
    ], raw_lines=["{broken json", "[1, 2]"])
    stats = run_hour(wh, tmp_path, "2026-11-20 10")
    assert stats["events_loaded"] == 2 and stats["events_quarantined"] == 6
    rows = {r["line_no"]: r for r in wh.query("SELECT * FROM quarantine")}
    assert rows[2]["field"] == "properties.product_id"
    assert rows[3]["field"] == "event" and "Product Teleported" in rows[3]["reason"]
    assert rows[4]["field"] == "timestamp"
    assert rows[5]["field"] == "properties.order_id"
    assert "malformed JSON" in rows[7]["reason"] and rows[7]["raw"] == "{broken json"
    assert rows[8]["reason"] == "line is not a JSON object"
    assert all(r["source_file"] == str(path) for r in rows.values())


@pytest.mark.parametrize("line, field", [
    ('{"type": "identify", "messageId": "a", "timestamp": "2026-11-20T10:00:00Z", "traits": {}}', "userId"),
    ('{"type": "pageview", "messageId": "a", "userId": "u", "timestamp": "2026-11-20T10:00:00Z"}', "type"),
    ('{"type": "track", "userId": "u", "event": "Signed Up", "timestamp": "2026-11-20T10:00:00Z"}', "messageId"),
    ('{"type": "track", "userId": "u", "messageId": "c", "event": "Loyalty Points Updated",'
     ' "timestamp": "2026-11-20T10:00:00Z", "properties": {"points_balance": "lots"}}', "properties.points_balance"),
])
def test_each_contract_violation_names_its_field(line, field):
    batch = parse_events(line.encode(), "f.jsonl", at("2026-11-20 11:00"))
    assert not batch.events
    assert batch.quarantine[0]["field"] == field


def test_gzip_files_load_like_plain_ones(wh, tmp_path):
    import gzip

    plain = write_events(tmp_path, "2026-11-20 10", [customer("ivy")])
    gz = plain.with_suffix(".jsonl.gz")
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    assert run_hour(wh, tmp_path, "2026-11-20 10")["events_loaded"] == 1


def test_catalog_bad_rows_are_quarantined_and_products_roll_forward_only(wh, tmp_path):
    write_catalog(tmp_path, "2026-11-19", [product("p1", price="20.00 EUR"), product("p2")])
    write_catalog(tmp_path, "2026-11-20", [
        product("p1", price="15.00 EUR"),
        product("p2", price="cheap"),
        product("p3", availability="sold out"),
        product("p4", quantity="-3"),
        product("p5", title='Bol "anti-glouton", <script>alert(1)</script>'),
    ])
    stats = run_hour(wh, tmp_path, "2026-11-20 10")
    assert stats["catalog_snapshots"] == 2
    bad = {r["line_no"]: r["field"] for r in wh.query("SELECT line_no, field FROM quarantine")}
    assert bad == {3: "price", 4: "availability", 5: "quantity"}
    assert wh.scalar("SELECT price FROM products WHERE product_id = 'p1'") == 15.0
    assert wh.scalar("SELECT title FROM products WHERE product_id = 'p5'") == 'Bol "anti-glouton", <script>alert(1)</script>'
    # a backfill of an earlier hour reloads the old snapshot without moving products back
    start = at("2026-11-19 10:00")
    ingest_window(wh, str(tmp_path), start, start + timedelta(hours=1))
    assert wh.scalar("SELECT price FROM products WHERE product_id = 'p1'") == 15.0
    assert wh.scalar("SELECT COUNT(*) FROM product_snapshots") == 4


def test_landing_on_s3_loads_like_a_local_folder(wh, tmp_path, emulator):
    from relance import aws

    write_events(tmp_path, "2026-11-20 10", [customer("jo"), track("jo", "Signed Up", "2026-11-20 10:02")])
    write_catalog(tmp_path, "2026-11-20", [product("p1")])
    s3 = aws.client("s3")
    bucket = f"landing-{abs(hash(str(tmp_path))) % 10**8}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in tmp_path.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, "shop/" + path.relative_to(tmp_path).as_posix())
    start = at("2026-11-20 10:00")
    stats = ingest_window(wh, f"s3://{bucket}/shop", start, start + timedelta(hours=1))
    assert stats["events_loaded"] == 2 and stats["catalog_products"] == 1
    assert wh.scalar("SELECT source_file FROM events LIMIT 1").startswith(f"s3://{bucket}/shop/events/")

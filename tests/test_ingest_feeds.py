"""The input side holds real feeds (issue 13, SPEC §5): late files, real Segment payloads,
identity, consent that sticks, Merchant feeds as shops export them, hostile lines, and the two
backends agreeing. Payloads and feeds are fixtures under tests/fixtures/ingest/."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from datetime import timedelta
from pathlib import Path

from helpers import at, customer, dump_tables, identify, product, track, write_catalog, write_events
from relance.ingest import ingest_window
from relance.ingest.catalog import parse_amount
from relance.ingest.events import load_events_file
from relance.ingest.identity import guest_customer_id

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def run(wh, landing, start: str, hours: int = 1):
    begin = at(start)
    return ingest_window(wh, str(landing), begin, begin + timedelta(hours=hours))


def land(landing: Path, hour: str, fixture: str, name: str | None = None, lines: slice | None = None) -> Path:
    """Copy a fixture (or some of its lines) into the folder of ``hour`` ('2026-11-20 10')."""
    day, hh = hour.split()
    folder = landing / f"events/dt={day}/hour={hh}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or fixture)
    if lines is None:
        shutil.copy(FIXTURES / fixture, target)
    else:
        target.write_text("".join((FIXTURES / fixture).read_text().splitlines(keepends=True)[lines]))
    return target


def land_catalog(landing: Path, day: str, fixture: str) -> Path:
    folder = landing / f"catalog/dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / fixture, folder / "products.csv")
    return folder / "products.csv"


def one(wh, sql: str, params: dict | None = None) -> dict:
    rows = wh.query(sql, params)
    assert len(rows) == 1, rows
    return rows[0]


# -- 1. late files ---------------------------------------------------------------------------
def test_a_file_landing_in_an_hour_already_ingested_is_loaded_by_the_next_run_exactly_once(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [customer("ann", "2026-11-20 10:00")], name="a.jsonl")
    run(wh, tmp_path, "2026-11-20 10:00")
    # a buffered upload lands in hour=10 after the 11:00 run took that hour
    write_events(tmp_path, "2026-11-20 10", [track("ann", "Product Added", "2026-11-20 10:40", product_id="p1")],
                 name="b-late.jsonl")
    stats = run(wh, tmp_path, "2026-11-20 11:00")
    assert stats["events_files"] == 1 and stats["events_loaded"] == 1
    assert wh.scalar("SELECT COUNT(*) FROM events WHERE event = 'Product Added'") == 1
    # already loaded files of the trailing window are not read again
    later = run(wh, tmp_path, "2026-11-20 12:00")
    assert later.get("events_files", 0) == 0
    assert wh.scalar("SELECT COUNT(*) FROM ingest_files WHERE kind = 'events'") == 2


def test_hours_missed_while_the_scheduler_was_down_are_caught_up_within_the_trailing_window(
        wh, tmp_path, monkeypatch):
    for hour in ("2026-11-17 09", "2026-11-19 03", "2026-11-19 04", "2026-11-20 05"):
        write_events(tmp_path, hour, [track("bo", "Product Viewed", hour + ":10", product_id="p1")])
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["events_files"] == 3                      # 48 h back: 11-17 is out of reach
    assert wh.scalar("SELECT COUNT(*) FROM events") == 3
    monkeypatch.setenv("AIRFLOW_VAR_TM_INGEST_TRAILING_HOURS", "96")
    stats = run(wh, tmp_path, "2026-11-20 11:00")
    assert stats["events_files"] == 1 and wh.scalar("SELECT COUNT(*) FROM events") == 4


# -- 2. real Segment payloads ------------------------------------------------------------------
def test_page_screen_group_and_alias_calls_are_loaded_never_quarantined(wh, tmp_path):
    land(tmp_path, "2026-11-20 10", "segment_page_screen_group.jsonl")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["events_loaded"] == 4 and stats["events_quarantined"] == 0
    types = {r["type"]: r for r in wh.query("SELECT type, customer_id, anonymous_id, event FROM events")}
    assert set(types) == {"page", "screen", "group", "alias"}
    assert types["screen"]["customer_id"] == "cust-1042" and types["page"]["event"] is None
    # the screen call (userId + anonymousId) does not link identities; the alias call does
    assert wh.query("SELECT anonymous_id, customer_id, source FROM identity_links") == [
        {"anonymous_id": "anon-legacy-99", "customer_id": "cust-1042", "source": "alias"}]
    # context.timezone / context.locale of a known user's calls fill the customer's missing traits
    assert one(wh, "SELECT timezone, locale FROM customers WHERE customer_id = 'cust-1042'") == {
        "timezone": "Europe/Paris", "locale": "fr-FR"}


def test_a_camel_case_identify_with_context_timezone_keeps_every_trait(wh, tmp_path):
    land(tmp_path, "2026-11-20 10", "segment_identify_camel.jsonl")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["events_loaded"] == 3 and stats["events_quarantined"] == 0
    chloe = one(wh, "SELECT * FROM customers WHERE customer_id = 'cust-2001'")
    assert (chloe["email"], chloe["first_name"], chloe["last_name"], chloe["phone"]) == (
        "Chloe.Martin@example.com", "Chloé", "Martin", "+15145550199")  # the phone in E.164 (the SMS channel)
    assert str(chloe["birthday"]) == "1990-05-07" and chloe["birthday_mmdd"] == "05-07"
    assert str(chloe["created_at"]).startswith("2024-03-02 18:22:11")
    assert chloe["timezone"] == "America/Montreal" and chloe["locale"] == "fr-CA"
    assert bool(chloe["email_opt_in"]) is True
    sam = one(wh, "SELECT * FROM customers WHERE customer_id = 'cust-2002'")
    assert (sam["first_name"], sam["last_name"]) == ("Sam", "Lee")
    assert str(sam["birthday"]) == "1985-05-07"                       # '1985-5-7' padded
    assert sam["timezone"] == "Europe/London"                         # the trait beats the context
    noa = one(wh, "SELECT * FROM customers WHERE customer_id = 'cust-2003'")
    assert noa["email"] == "noa@example.com" and bool(noa["email_opt_in"]) is True
    assert noa["birthday"] is None                                    # 31/02: dropped, not the call
    dropped = {(r["message_id"], r["field"]) for r in wh.query("SELECT message_id, field FROM dropped_fields")}
    assert dropped == {("ajs-next-1732100100000-9f01", "context.timezone"),
                       ("ajs-next-1732100100000-9f02", "traits.birthday")}


# -- 3. identity -------------------------------------------------------------------------------
def test_an_anonymous_cart_joins_the_customer_who_logs_in_whatever_the_arrival_order(wh, tmp_path):
    land(tmp_path, "2026-11-20 10", "anonymous_cart_then_identify.jsonl", lines=slice(0, 2))
    run(wh, tmp_path, "2026-11-20 10:00")
    assert wh.scalar("SELECT COUNT(*) FROM events WHERE customer_id IS NULL") == 2
    land(tmp_path, "2026-11-20 11", "anonymous_cart_then_identify.jsonl", lines=slice(2, 3))
    run(wh, tmp_path, "2026-11-20 11:00")
    owners = {r["message_id"]: r["customer_id"] for r in wh.query("SELECT message_id, customer_id FROM events")}
    assert owners == {"ajs-a-001": "cust-3003", "ajs-a-002": "cust-3003", "ajs-a-003": "cust-3003"}
    # later anonymous activity of a linked device joins at load; an unlinked one waits
    land(tmp_path, "2026-11-20 12", "anonymous_after_identify.jsonl")
    run(wh, tmp_path, "2026-11-20 12:00")
    assert one(wh, "SELECT customer_id FROM events WHERE message_id = 'ajs-a-004'")["customer_id"] == "cust-3003"
    assert one(wh, "SELECT customer_id FROM events WHERE message_id = 'ajs-a-005'")["customer_id"] is None


def test_anonymous_events_and_their_identify_in_one_file_join_the_customer(wh, tmp_path):
    land(tmp_path, "2026-11-20 10", "anonymous_cart_then_identify.jsonl")
    run(wh, tmp_path, "2026-11-20 10:00")
    assert wh.scalar("SELECT COUNT(*) FROM events WHERE customer_id = 'cust-3003'") == 3
    assert one(wh, "SELECT customer_id, source FROM identity_links WHERE anonymous_id = 'anon-c0ffee'") == {
        "customer_id": "cust-3003", "source": "identify"}


def test_guest_checkouts_load_under_a_stable_guest_id_with_unknown_consent(wh, tmp_path):
    land(tmp_path, "2026-11-20 10", "guest_checkout.jsonl")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["events_loaded"] == 2 and stats["events_quarantined"] == 1
    guest = "guest-" + hashlib.sha256(b"guest.buyer@example.com").hexdigest()[:16]
    assert guest_customer_id(" Guest.Buyer@Example.com ") == guest
    assert one(wh, "SELECT customer_id, revenue FROM orders WHERE order_id = '5501'") == {
        "customer_id": guest, "revenue": 54.8}
    row = one(wh, "SELECT email, email_opt_in FROM customers WHERE customer_id = :c", {"c": guest})
    assert row == {"email": "Guest.Buyer@Example.com", "email_opt_in": None}
    assert one(wh, "SELECT customer_id FROM orders WHERE order_id = '5502'")["customer_id"] == \
        guest_customer_id("other.guest@example.com")
    assert one(wh, "SELECT field FROM quarantine")["field"] == "userId"      # no userId, no email


def test_a_guests_notify_me_request_loads_under_the_guest_id_and_an_anonymous_one_waits_for_a_link(wh, tmp_path):
    land(tmp_path, "2026-11-20 10", "guest_back_in_stock.jsonl")
    run(wh, tmp_path, "2026-11-20 10:00")
    guest = guest_customer_id("notify.me@example.com")
    assert one(wh, "SELECT customer_id, product_id FROM events WHERE message_id = 'notify-me-77'") == {
        "customer_id": guest, "product_id": "SKU-COLLAR-RED"}
    assert one(wh, "SELECT email, email_opt_in FROM customers WHERE customer_id = :c", {"c": guest}) == {
        "email": "Notify.Me@Example.com", "email_opt_in": None}
    assert one(wh, "SELECT customer_id, anonymous_id FROM events WHERE message_id = 'notify-me-78'") == {
        "customer_id": None, "anonymous_id": "anon-notify-2"}


# -- 4. consent sticks -------------------------------------------------------------------------
def test_an_unsubscribe_holds_against_a_stale_opt_in_until_a_consent_update(wh, tmp_path):
    land(tmp_path, "2026-11-20 09", "consent_sticks.jsonl")
    run(wh, tmp_path, "2026-11-20 09:00")
    assert bool(wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'cust-4004'")) is False
    sources = [r["source"] for r in wh.query(
        "SELECT source FROM consent_changes ORDER BY changed_at, changed_us, message_id")]
    assert sources == ["identify", "consent_update", "unsubscribe_event", "identify"]
    land(tmp_path, "2026-11-21 08", "consent_reoptin.jsonl")
    run(wh, tmp_path, "2026-11-21 08:00")
    assert bool(wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'cust-4004'")) is True
    assert wh.scalar("SELECT COUNT(*) FROM consent_changes") == 5


def test_an_email_subscribed_event_is_a_consent_source(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [
        customer("zoe", "2026-11-20 10:00", opt_in=True),
        track("zoe", "Email Unsubscribed", "2026-11-20 10:10"),
        identify("zoe", "2026-11-20 10:20", email_opt_in=True),
    ])
    run(wh, tmp_path, "2026-11-20 10:00")
    assert bool(wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'zoe'")) is False
    write_events(tmp_path, "2026-11-20 11", [track("zoe", "Email Subscribed", "2026-11-20 11:05")])
    run(wh, tmp_path, "2026-11-20 11:00")
    assert bool(wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'zoe'")) is True


# -- 5. Merchant feeds as shops export them ------------------------------------------------------
def test_tab_separated_feed_with_bom_and_merchant_header_names_loads(wh, tmp_path):
    land_catalog(tmp_path, "2026-11-20", "merchant_bom_tab.tsv")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["catalog_products"] == 2 and stats["catalog_quarantined"] == 0
    rows = {r["product_id"]: r for r in wh.query("SELECT * FROM products")}
    assert rows["SKU-COLLAR-RED"]["image_link"] == "https://shop.example/img/collar-red.jpg"
    assert (rows["SKU-LEASH-RED"]["price"], rows["SKU-LEASH-RED"]["availability"]) == (19.9, "out_of_stock")
    assert rows["SKU-LEASH-RED"]["product_type"] is None and rows["SKU-LEASH-RED"]["sale_price"] is None


def test_semicolon_feed_with_european_prices_and_sale_dates(wh, tmp_path):
    land_catalog(tmp_path, "2026-11-20", "merchant_semicolon_eur.csv")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["catalog_products"] == 2 and stats["catalog_quarantined"] == 1
    rows = {r["product_id"]: r for r in wh.query("SELECT * FROM products")}
    kennel = rows["SKU-KENNEL-XL"]
    assert (kennel["price"], kennel["sale_price"], kennel["currency"]) == (1299.0, 1099.0, "EUR")
    assert kennel["description"] == "Niche en bois; toit ouvrant" and kennel["category"] == "Animalerie"
    assert rows["SKU-BOWL"]["sale_price"] is None                   # the sale starts on 1 December
    assert one(wh, "SELECT field, reason FROM dropped_fields")["field"] == "sale_price"
    bad = one(wh, "SELECT field, reason FROM quarantine")
    assert bad["field"] == "price" and "above zero" in bad["reason"]       # '0 EUR' is no price


def test_comma_feed_with_us_prices_and_optional_columns_absent(wh, tmp_path):
    land_catalog(tmp_path, "2026-11-20", "merchant_comma_usd.csv")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["catalog_products"] == 2
    rows = {r["product_id"]: r for r in wh.query("SELECT * FROM products")}
    assert (rows["SKU-AQUARIUM-200"]["price"], rows["SKU-AQUARIUM-200"]["currency"]) == (1299.0, "USD")
    assert rows["SKU-AQUARIUM-200"]["quantity"] == 3 and rows["SKU-AQUARIUM-200"]["description"] is None
    assert (rows["SKU-FILTER"]["price"], rows["SKU-FILTER"]["availability"]) == (89.5, "preorder")


def test_price_amounts_in_either_convention():
    assert parse_amount("1,299.00") == parse_amount("1.299,00") == parse_amount("1 299,00") == 1299.0
    assert parse_amount("19,90") == parse_amount("19.90") == 19.9
    assert parse_amount("1,299") == parse_amount("1.299.000") / 1000 == 1299.0
    assert parse_amount("0,299") == 0.299
    assert parse_amount("1,29,9") is None and parse_amount("12.34.56,7") is None


def test_an_empty_or_broken_feed_never_replaces_the_days_good_snapshot(wh, tmp_path):
    path = write_catalog(tmp_path, "2026-11-20", [product("p1"), product("p2")])
    run(wh, tmp_path, "2026-11-20 10:00")
    before = dump_tables(wh, ["product_snapshots", "products"])
    for broken in (b"", "\ufeffid;titre;lien\n".encode(), b"id,title,link,price,availability\np1,,x,oops,in_stock\n"):
        path.write_bytes(broken)
        stats = run(wh, tmp_path, "2026-11-20 11:00")
        assert stats["catalog_refused"] == 1 and stats["catalog_products"] == 0
        assert dump_tables(wh, ["product_snapshots", "products"]) == before
    assert "snapshot refused" in one(wh, "SELECT reason FROM quarantine WHERE line_no = 0")["reason"]


def test_products_gone_from_the_feed_stop_being_in_stock_and_come_back_with_it(wh, tmp_path):
    write_catalog(tmp_path, "2026-11-19", [product("p1"), product("p2"), product("p3")])
    write_catalog(tmp_path, "2026-11-20", [product("p1"), product("p3", price="cheap")])
    run(wh, tmp_path, "2026-11-20 10:00")
    rows = {r["product_id"]: r for r in wh.query("SELECT product_id, availability, delisted_on FROM products")}
    assert rows["p2"]["availability"] == "out_of_stock" and str(rows["p2"]["delisted_on"]) == "2026-11-20"
    assert rows["p3"]["availability"] == "in_stock" and rows["p3"]["delisted_on"] is None  # bad row ≠ gone
    write_catalog(tmp_path, "2026-11-21", [product("p1"), product("p2"), product("p3")])
    run(wh, tmp_path, "2026-11-21 10:00")
    assert one(wh, "SELECT availability, delisted_on FROM products WHERE product_id = 'p2'") == {
        "availability": "in_stock", "delisted_on": None}
    # a backfill of the first day does not bring a delisted product back
    write_catalog(tmp_path, "2026-11-22", [product("p1")])
    run(wh, tmp_path, "2026-11-22 10:00")
    run(wh, tmp_path, "2026-11-19 10:00")
    assert one(wh, "SELECT availability FROM products WHERE product_id = 'p2'")["availability"] == "out_of_stock"


# -- 6. one bad line never stops a file ------------------------------------------------------------
def test_hostile_lines_are_quarantined_and_the_rest_of_the_file_loads(wh, tmp_path):
    path = land(tmp_path, "2026-11-20 10", "hostile_lines.jsonl")
    with path.open("a") as out:
        out.write('{"type":"track","messageId":"deep","a":' + "[" * 100_000 + "]" * 100_000 + "}\n")
        out.write(json.dumps({"type": "track", "event": "Signed Up", "userId": "cust-5005",
                              "messageId": "huge", "timestamp": "2026-11-20T10:06:00Z",
                              "properties": {"blob": "x" * (2 << 20)}}) + "\n")
        out.write(json.dumps(track("cust-5005", "Signed Up", "2026-11-20 10:07", message_id="after")) + "\n")
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["events_loaded"] == 4 and stats["events_quarantined"] == 5
    bad = {r["line_no"]: r for r in wh.query("SELECT line_no, field, reason, raw FROM quarantine")}
    assert (bad[1]["field"], bad[3]["field"], bad[4]["field"]) == ("messageId", "userId", "properties.product_id")
    assert "RecursionError" in bad[7]["reason"] and "longer than" in bad[8]["reason"]
    assert len(bad[8]["raw"]) < 20_000
    marie = one(wh, "SELECT first_name, last_name, email FROM customers WHERE customer_id = 'cust-5005'")
    assert marie["first_name"] == "Marie" and marie["last_name"].startswith("Dupont")
    assert one(wh, "SELECT field FROM dropped_fields")["field"] == "traits.phone"
    assert wh.scalar("SELECT COUNT(*) FROM events WHERE message_id = 'after'") == 1


def test_a_large_gzip_file_streams_in_chunks_and_loads_like_one_piece(wh, tmp_path):
    calls = []
    for i in range(60):
        calls.append(identify("cy", f"2026-11-20 10:{i:02d}", message_id=f"m-{i:03d}", email=f"cy{i}@example.com"))
        calls.append(track("cy", "Product Viewed", f"2026-11-20 10:{i:02d}", message_id=f"v-{i:03d}", product_id="p1"))
    calls.append(calls[0])                                      # a duplicate delivery in another chunk
    data = "".join(json.dumps(c) + "\n" for c in calls).encode()
    stats = load_events_file(wh, iter(data.splitlines(keepends=True)), "chunks.jsonl", len(data),
                             at("2026-11-20 11:00"), chunk_lines=7)
    assert stats["loaded"] == 120 and stats["duplicates"] == 1
    assert one(wh, "SELECT email FROM customers")["email"] == "cy59@example.com"
    plain = write_events(tmp_path, "2026-11-20 10", calls)
    gz = plain.with_suffix(".jsonl.gz")
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    again = run(wh, tmp_path, "2026-11-20 10:00")          # the gz file: one chunk, same outcome
    assert again["events_loaded"] == 0 and again["events_duplicates"] == 120


def test_a_huge_csv_field_quarantines_its_row_only(wh, tmp_path):
    path = write_catalog(tmp_path, "2026-11-20", [product("p1"), product("p2"), product("p3")])
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("Produit p2", "Produit p2 " + "x" * (2 << 20))
    path.write_text("".join(lines))
    stats = run(wh, tmp_path, "2026-11-20 10:00")
    assert stats["catalog_products"] == 2 and stats["catalog_quarantined"] == 1
    assert "field larger than field limit" in one(wh, "SELECT reason FROM quarantine")["reason"]


# -- 7. the two backends agree ------------------------------------------------------------------------
def test_loyalty_balances_are_stored_exactly_on_both_backends(wh, tmp_path):
    write_events(tmp_path, "2026-11-20 10", [
        track("lu", "Loyalty Points Updated", "2026-11-20 10:01", points_balance="1249.75"),
        track("lu", "Loyalty Points Updated", "2026-11-20 10:02", points_balance=987654321.5),
        track("lu", "Loyalty Points Updated", "2026-11-20 10:03", points_balance=" 12 "),
    ])
    run(wh, tmp_path, "2026-11-20 10:00")
    balances = [r["points_balance"] for r in wh.query(
        "SELECT points_balance FROM events ORDER BY occurred_at")]
    assert balances == [1249.75, 987654321.5, 12.0]


def test_sub_second_order_decides_latest_wins_within_and_across_files(wh, tmp_path):
    # same second; the later call has the *smaller* messageId, so only the milliseconds can tell
    early = {"type": "identify", "userId": "mo", "messageId": "zz-early", "timestamp": "2026-11-20T10:00:05.100Z",
             "traits": {"email": "early@example.com", "email_opt_in": True}}
    late = {"type": "identify", "userId": "mo", "messageId": "aa-late", "timestamp": "2026-11-20T10:00:05.900Z",
            "traits": {"email": "late@example.com", "email_opt_in": False}}
    write_events(tmp_path, "2026-11-20 10", [late, early])
    write_events(tmp_path, "2026-11-20 10", [dict(late, userId="ny", messageId="aa-late-ny")], name="a.jsonl")
    write_events(tmp_path, "2026-11-20 10", [dict(early, userId="ny", messageId="zz-early-ny")], name="b.jsonl")
    run(wh, tmp_path, "2026-11-20 10:00")
    for user in ("mo", "ny"):
        row = one(wh, "SELECT email, email_opt_in FROM customers WHERE customer_id = :u", {"u": user})
        assert row["email"] == "late@example.com" and bool(row["email_opt_in"]) is False
    assert one(wh, "SELECT occurred_us FROM events WHERE message_id = 'aa-late'")["occurred_us"] == 900_000


def test_consent_fold_explicit_opt_outs_hold_until_a_consent_source():
    from relance.ingest.events import fold_consent

    def history(*changes):
        return [{"opt_in": opt_in, "source": source} for opt_in, source in changes]

    assert fold_consent([]) is None
    assert fold_consent(history((True, "identify"), (False, "identify"), (True, "identify"))) is True
    for opt_out in ("unsubscribe_event", "ses_complaint", "ses_subscription", "consent_update"):
        assert fold_consent(history((True, "identify"), (False, opt_out), (True, "identify"))) is False
    assert fold_consent(history((False, "ses_complaint"), (True, "identify"), (True, "subscribe_event"))) is True
    assert fold_consent(history((False, "unsubscribe_event"), (True, "ses_subscription"))) is True


def test_gzip_files_on_s3_stream_and_late_ones_are_picked_up(wh, tmp_path, emulator):
    from relance import aws

    land(tmp_path, "2026-11-20 10", "anonymous_cart_then_identify.jsonl")
    s3 = aws.client("s3")
    bucket = f"late-{abs(hash(str(tmp_path))) % 10**8}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    def upload(path: Path) -> None:
        key = "shop/" + path.relative_to(tmp_path).as_posix() + ".gz"
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(path.read_bytes()))

    upload(tmp_path / "events/dt=2026-11-20/hour=10/anonymous_cart_then_identify.jsonl")
    begin = at("2026-11-20 10:00")
    uri = f"s3://{bucket}/shop"
    assert ingest_window(wh, uri, begin, begin + timedelta(hours=1))["events_loaded"] == 3
    upload(land(tmp_path, "2026-11-20 10", "anonymous_after_identify.jsonl"))        # lands late
    stats = ingest_window(wh, uri, begin + timedelta(hours=1), begin + timedelta(hours=2))
    assert stats["events_files"] == 1 and stats["events_loaded"] == 2
    assert one(wh, "SELECT customer_id FROM events WHERE message_id = 'ajs-a-004'")["customer_id"] == "cust-3003"

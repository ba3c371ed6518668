"""Issue 9 at the warehouse level: the COPY path, snapshot diffs stored at load, the catalog
loaded only when it changed (both backends)."""

from __future__ import annotations

from datetime import date, timedelta

from helpers import at, product, write_catalog
from relance.ingest import ingest_catalog
from relance.ingest.landing import Landing

LAG_REFERENCE = """
SELECT product_id, snapshot_date,
       CASE WHEN COALESCE(LAG(currency) OVER w, '') = COALESCE(currency, '')
            THEN LAG(COALESCE(sale_price, price)) OVER w END AS previous_price,
       LAG(availability) OVER w AS previous_availability,
       LAG(quantity) OVER w AS previous_quantity
FROM product_snapshots
WINDOW w AS (PARTITION BY product_id ORDER BY snapshot_date)
"""
STORED = """
SELECT product_id, snapshot_date, previous_price, previous_availability, previous_quantity
FROM product_snapshots
"""


def _rows(wh, sql):
    return sorted((str(r["product_id"]), str(r["snapshot_date"])[:10],
                   None if r["previous_price"] is None else round(float(r["previous_price"]), 2),
                   r["previous_availability"], r["previous_quantity"]) for r in wh.query(sql))


def _load(wh, landing, day: str):
    return ingest_catalog(wh, Landing(str(landing)), at(day + " 00:00") + timedelta(days=1))


def test_snapshot_diffs_are_stored_at_load_and_stay_right_when_days_load_out_of_order(wh, tmp_path):
    write_catalog(tmp_path, "2026-11-03", [product("p1", price="10.00 EUR", quantity=3),
                                           product("p2", price="5.00 EUR", availability="out_of_stock"),
                                           product("p3", price="7.00 USD")])
    _load(wh, tmp_path, "2026-11-03")
    # two older days arrive late (a gap filled), the middle one last
    write_catalog(tmp_path, "2026-11-01", [product("p1", price="12.00 EUR", quantity=9),
                                           product("p3", price="7.50 EUR")])
    write_catalog(tmp_path, "2026-11-02", [product("p1", price="11.00 EUR", sale_price="9.00 EUR", quantity=5),
                                           product("p2", price="6.00 EUR")])
    landing = Landing(str(tmp_path))
    for day in ("2026-11-01", "2026-11-02"):
        from relance.ingest.catalog import load_snapshot

        file = landing.catalog_file(date.fromisoformat(day))
        with landing.open(file) as stream:
            load_snapshot(wh, stream, file.uri, date.fromisoformat(day), file.size, now=at("2026-11-04 00:00"))
    stored = _rows(wh, STORED)
    assert stored == _rows(wh, "SELECT * FROM product_snapshot_changes")  # the view analysts read
    assert stored == _rows(wh, LAG_REFERENCE)
    by_key = {(r[0], r[1]): r for r in stored}
    assert by_key[("p1", "2026-11-03")][2:] == (9.0, "in_stock", 5)   # the sale price was in effect
    assert by_key[("p3", "2026-11-03")][2] is None            # EUR then USD: no price to compare
    assert by_key[("p1", "2026-11-01")][2:] == (None, None, None)  # a first snapshot


def test_the_newest_snapshot_is_loaded_again_only_when_its_content_changed(wh, tmp_path):
    write_catalog(tmp_path, "2026-11-01", [product("p1", price="10.00 EUR")])
    first = _load(wh, tmp_path, "2026-11-01")
    again = _load(wh, tmp_path, "2026-11-01")
    assert first["snapshots"] == 1 and again.get("snapshots", 0) == 0 and again["unchanged"] == 1
    write_catalog(tmp_path, "2026-11-01", [product("p1", price="8.00 EUR"), product("p2")])
    changed = _load(wh, tmp_path, "2026-11-01")
    assert changed["snapshots"] == 1 and changed["products"] == 2
    assert {r["product_id"]: float(r["price"]) for r in wh.query("SELECT product_id, price FROM products")} == \
        {"p1": 8.0, "p2": 19.9}


def test_insert_rows_counts_new_rows_and_carries_any_text(wh):
    hostile = "tab\there\nnewline \\N backslash \\ quote ' \" é 🎉 \r end"
    rows = [{"source_file": "f", "line_no": i, "raw": hostile if i == 1 else f"line {i}", "field": None,
             "reason": "r", "quarantined_at": at("2026-11-01 10:00")} for i in range(1, 4)]
    with wh.begin() as conn:
        assert wh.insert_rows("quarantine", rows, conn, on_conflict_do_nothing=["source_file", "line_no"]) == 3
    with wh.begin() as conn:  # idempotent: a re-run inserts nothing, a new row is counted
        more = rows + [{**rows[0], "line_no": 9}]
        assert wh.insert_rows("quarantine", more, conn, on_conflict_do_nothing=["source_file", "line_no"]) == 1
    stored = {r["line_no"]: r for r in wh.query("SELECT line_no, raw, field, quarantined_at FROM quarantine")}
    assert stored[1]["raw"] == hostile and stored[1]["field"] is None and len(stored) == 4
    assert str(stored[2]["quarantined_at"])[:19] == "2026-11-01 10:00:00"


WINBACK_FULL_SCAN = """
WITH last_order AS (
    SELECT customer_id, MAX(ordered_at) AS last_ordered_at
    FROM orders
    WHERE ordered_at > :since
      AND ordered_at <= :as_of
    GROUP BY customer_id
)
SELECT lo.customer_id,
       (SELECT MIN(o.order_id) FROM orders o
        WHERE o.customer_id = lo.customer_id AND o.ordered_at = lo.last_ordered_at) AS trigger_id,
       lo.last_ordered_at AS trigger_at,
       (SELECT MIN(o.order_id) FROM orders o
        WHERE o.customer_id = lo.customer_id AND o.ordered_at = lo.last_ordered_at) AS last_order_id,
       lo.last_ordered_at,
       (SELECT MIN(o.order_id) FROM orders o
        WHERE o.customer_id = lo.customer_id AND o.ordered_at = lo.last_ordered_at) AS order_id
FROM last_order lo
"""


def _full_scan_sql(name: str) -> str:
    """The trigger as it was before due windows, the reference to compare with: winback's former
    text; the others' without their due-window lines."""
    if name == "winback":
        return WINBACK_FULL_SCAN
    from relance.warehouse.sqlfiles import load_sql

    text = load_sql(f"triggers/{name}")
    assert ":due1_from" in text
    return "\n".join(line for line in text.splitlines() if ":due" not in line)


def test_due_windows_plan_exactly_what_the_full_scans_planned(wh, campaigns):
    """winback / purchase_anniversary / cross-sell with each step's due window pushed into the SQL:
    the same rows due, hour after hour, as the scans over the whole lookback, for orders placed
    around every step's boundary (minutes either side of 7, 90, 180, 344 and 365 days)."""
    from relance.campaigns.planner import calendar_params, due_windows, plan_rows

    start = at("2026-11-20 00:00")
    orders, items = [], []
    for n, days in enumerate((7, 90, 180, 344, 365)):
        for k, minutes in enumerate((-150, -61, -59, -1, 0, 1, 59, 61, 1500)):
            customer_id = f"c{n}{k}"
            when = start - timedelta(days=days, minutes=-minutes)
            orders.append({"order_id": f"o{n}{k}", "customer_id": customer_id, "ordered_at": when, "revenue": 10.0,
                           "currency": "EUR", "status": "completed", "status_at": when, "message_id": f"m{n}{k}"})
            items.append({"order_id": f"o{n}{k}", "line_no": 1, "product_id": "gift", "quantity": 1, "price": 10.0})
            if k % 3 == 0:  # a later order: no longer the latest one
                later = when + timedelta(days=1)
                orders.append({**orders[-1], "order_id": f"o{n}{k}b", "ordered_at": later, "status_at": later,
                               "message_id": f"m{n}{k}b"})
    with wh.begin() as conn:
        wh.insert_rows("orders", orders, conn)
        wh.insert_rows("order_items", items, conn)
        wh.insert_rows("products", [{"product_id": "gift", "title": "Bouquet", "category": "Fleurs & cadeaux",
                                     "product_type": "Fleurs & cadeaux > Bouquets", "availability": "in_stock",
                                     "snapshot_date": start.date()}], conn)
    compared = 0
    for name in ("winback", "purchase_anniversary", "post_purchase_cross_sell"):
        campaign = campaigns[name]
        old_sql = _full_scan_sql(name)
        for hour in range(-3, 4):
            as_of = start + timedelta(hours=hour)
            params = {"as_of": as_of, "since": as_of - campaign.lookback_td, "campaign_id": name,
                      **calendar_params(as_of), **due_windows(campaign, as_of)}
            new = plan_rows(campaign, wh.query(campaign.trigger_sql, params), as_of, "r")
            old = plan_rows(campaign, wh.query(old_sql, params), as_of, "r")
            assert sorted(r["send_key"] for r in new) == sorted(r["send_key"] for r in old), (name, as_of)
            compared += len(old)
    assert compared > 20


def test_replenishment_due_window_plans_exactly_what_the_full_scan_planned(wh, campaigns):
    """Replenishment keeps in SQL only the purchases whose reminder (purchase + 75 % of the
    quantity-scaled interval, a per-row offset added with date_part('epoch', …)) is due this run:
    the same rows as without that filter, hour after hour, for purchases minutes either side of
    the boundary, of one and of two units (twice the interval), on both backends."""
    from relance.campaigns.planner import calendar_params, offset_due_window, plan_rows

    start = at("2026-11-20 00:00")
    orders, items = [], []
    # interval 40 days for both products, each with 40 usual one-unit purchases; "food" is only
    # ever bought by the unit (reminder at 30 days), "food2" by two units in the tested orders:
    # their usual quantity is the mean of the other 48 lines, (40 + 8 × 2) / 48
    two_units_days = 0.75 * 40 * 2 / ((40 + 8 * 2) / 48)
    for product_id, quantity, days in (("food", 1, 30), ("food2", 2, two_units_days)):
        for k, minutes in enumerate((-1500, -61, -59, -1, 0, 1, 59, 61, 150)):
            key = f"{product_id}k{k}"
            when = start - timedelta(days=days, minutes=-minutes)
            orders.append({"order_id": f"o{key}", "customer_id": f"c{key}", "ordered_at": when, "revenue": 10.0,
                           "currency": "EUR", "status": "completed", "status_at": when, "message_id": f"m{key}"})
            items.append({"order_id": f"o{key}", "line_no": 1, "product_id": product_id, "quantity": quantity,
                          "price": 10.0})
        for n in range(40):  # the product's usual purchase: one unit
            key, when = f"{product_id}u{n}", start - timedelta(days=200, hours=n)
            orders.append({"order_id": f"o{key}", "customer_id": f"c{key}", "ordered_at": when, "revenue": 10.0,
                           "currency": "EUR", "status": "completed", "status_at": when, "message_id": f"m{key}"})
            items.append({"order_id": f"o{key}", "line_no": 1, "product_id": product_id, "quantity": 1,
                          "price": 10.0})
    with wh.begin() as conn:
        wh.insert_rows("orders", orders, conn)
        wh.insert_rows("order_items", items, conn)
        wh.insert_rows("product_repurchase_intervals", [
            {"product_id": product_id, "interval_days": 40.0, "gaps": 50, "repeat_buyers": 20, "buyers": 60,
             "as_of": start.date()} for product_id in ("food", "food2")], conn)
    campaign = campaigns["replenishment"]
    compared = 0
    for hour in range(-3, 4):
        as_of = start + timedelta(hours=hour)
        params = {"as_of": as_of, "since": as_of - campaign.lookback_td, "campaign_id": campaign.id,
                  **calendar_params(as_of)}
        windowed = wh.query(campaign.trigger_sql, {**params, **offset_due_window(campaign, as_of)})
        full = wh.query(campaign.trigger_sql, {**params, "offset_due_from_epoch": -1e12,
                                               "offset_due_to_epoch": 1e12})
        assert len(windowed) < len(full)
        new, old = plan_rows(campaign, windowed, as_of, "r"), plan_rows(campaign, full, as_of, "r")
        assert sorted(r["send_key"] for r in new) == sorted(r["send_key"] for r in old), as_of
        compared += len(old)
    assert compared >= 20


def test_due_windows_cover_every_step_and_merge_beyond_four():
    from relance.campaigns.planner import DUE_WINDOWS, due_windows

    class Fake:
        max_lateness_td = timedelta(hours=24)

        def __init__(self, *days):
            self.steps = [type("S", (), {"delay_td": timedelta(days=d)})() for d in days]

    as_of = at("2026-11-20 10:00")
    for days in ((90, 180, 365), (0,), (1, 2, 3, 4, 5, 6, 7), (30, 30.5, 200, 201, 202, 400)):
        windows = due_windows(Fake(*days), as_of)
        pairs = [(windows[f"due{i}_from"], windows[f"due{i}_to"]) for i in range(1, DUE_WINDOWS + 1)]
        for d in days:  # every step's own window lies inside one of them
            lo, hi = as_of - timedelta(hours=24) - timedelta(days=d), as_of - timedelta(days=d)
            assert any(a <= lo and hi <= b for a, b in pairs), (days, d)


def test_parallel_parsing_yields_the_very_batches_of_the_serial_parser():
    """Same chunk boundaries, line numbers, in-chunk duplicate checks and quarantine, in order."""
    import json

    from helpers import identify, order, track
    from relance.ingest.events import MAX_LINE_BYTES, iter_batches
    from relance.ingest.parallel import _chunks, parallel_batches

    lines = []
    for i in range(60):
        call = [identify(f"u{i}", "2026-11-01 10:00", email=f"u{i}@example.com"),
                track(f"u{i}", "Product Viewed", "2026-11-01 10:05", product_id="p1"),
                order(f"u{i}", f"o{i}", "2026-11-01 10:06", ("p1", 1, 9.9))][i % 3]
        lines.append(json.dumps(call).encode() + b"\n")
        if i % 7 == 0:
            lines.append(b"\n")                                   # blank: not counted
        if i % 11 == 0:
            lines.append(lines[-2] if lines[-1] == b"\n" else lines[-1])  # a duplicate delivery
        if i % 13 == 0:
            lines.append(b"{not json\n")
    lines.insert(20, b"x" * (MAX_LINE_BYTES + 1))                 # over-long: counted, quarantined
    lines += [b"\n", b"\n"]
    now = at("2026-11-01 11:00")
    for chunk_lines in (1, 7, 25, 1000):
        serial = list(iter_batches(lines, "f", now, chunk_lines))
        assert len(list(_chunks(lines, chunk_lines))) == len(serial)
        assert list(parallel_batches(lines, "f", now, workers=2, chunk_lines=chunk_lines)) == serial


def test_a_bulk_file_refreshes_the_statistics_as_the_tables_grow_and_loads_the_same(wh, monkeypatch):
    """The ANALYZE-as-the-tables-grow path of a large file (thresholds lowered) changes no row."""
    import json

    import relance.ingest.events as events_module
    from helpers import customer, dump_tables, order
    from relance.ingest.events import load_events_file

    calls = [customer(f"u{i}") for i in range(30)] + \
        [order(f"u{i}", f"o{i}", "2026-11-01 10:10", ("p1", 1, 9.9)) for i in range(30)]
    lines = [json.dumps(c).encode() + b"\n" for c in calls]
    tables = ["events", "customers", "customer_traits", "orders", "order_items", "consent_changes", "ingest_files"]
    now = at("2026-11-01 11:00")
    load_events_file(wh, lines, "f", 10, now, chunk_lines=7)
    plain = dump_tables(wh, tables)
    for table in tables:
        wh.execute(f"DELETE FROM {table}")
    analyzed = []
    monkeypatch.setattr(events_module, "ANALYZE_MIN_BYTES", 0)
    monkeypatch.setattr(events_module, "ANALYZE_MIN_ROWS", 1)
    original = type(wh).analyze
    monkeypatch.setattr(type(wh), "analyze", lambda self, t, conn: analyzed.append(t) or original(self, t, conn))
    load_events_file(wh, lines, "f", 10, now, chunk_lines=7)
    assert dump_tables(wh, tables) == plain
    if not wh.is_sqlite:
        assert len(analyzed) >= 3  # 7-line chunks: the tables doubled a few times

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
FROM product_snapshot_changes
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

"""The synthetic shop writes the landing zone of SPEC §5, deterministically, with the planted
structure (abandonment, complements, repurchase intervals) and delivery defects it claims."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from relance.shopsim import generate, main
from relance.shopsim import generator as shopsim_generator

START = date(2026, 11, 16)
DAYS = 4
CUSTOMERS = 3000
HOUR = timedelta(hours=1)
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CATALOG_HEADER = ["id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
                  "brand", "product_type", "quantity"]
ITEM_KEYS = {"product_id", "sku", "name", "category", "quantity", "price"}
REQUIRED = {
    "Products Searched": {"query"},
    "Product List Viewed": {"list_id", "category"},
    "Product Viewed": {"product_id", "sku", "name", "category", "price", "currency"},
    "Product Added": {"cart_id", "product_id", "sku", "name", "price", "quantity", "currency"},
    "Product Removed": {"cart_id", "product_id", "quantity"},
    "Cart Viewed": {"cart_id", "products"},
    "Checkout Started": {"cart_id", "value", "revenue", "currency", "products"},
    "Order Completed": {"order_id", "total", "revenue", "shipping", "tax", "discount", "currency", "products"},
    "Order Refunded": {"order_id"},
    "Order Cancelled": {"order_id"},
    "Product Added to Wishlist": {"wishlist_id", "product_id"},
    "Product Removed from Wishlist": {"wishlist_id", "product_id"},
    "Signed Up": {"method"},
    "Back In Stock Requested": {"product_id"},
    "Email Unsubscribed": set(),
    "Loyalty Points Updated": {"points_balance"},
    "Order Updated": {"order_id", "status"},
}
FULL_TRAITS = {"email", "first_name", "last_name", "phone", "birthday", "locale", "timezone", "created_at",
               "email_opt_in", "sms_opt_in"}


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def contract_error(line: str) -> str | None:
    """Why a line breaks the input contract, or None when it is a valid call."""
    try:
        call = json.loads(line)
    except json.JSONDecodeError:
        return "json"
    if not isinstance(call, dict) or call.get("type") not in ("identify", "track"):
        return "type"
    if not isinstance(call.get("messageId"), str) or not call["messageId"]:
        return "messageId"
    if not isinstance(call.get("userId"), str) or not re.fullmatch(r"c\d{6,}", call["userId"]):
        return "userId"
    ts = call.get("timestamp")
    if not isinstance(ts, str) or not TS_RE.match(ts):
        return "timestamp"
    try:
        parse_ts(ts)
    except ValueError:
        return "timestamp"
    if call["type"] == "identify":
        traits = call.get("traits")
        if not isinstance(traits, dict) or not traits or not set(traits) <= FULL_TRAITS:
            return "traits"
        return None
    if call.get("event") not in REQUIRED:
        return "event"
    props = call.get("properties")
    if not isinstance(props, dict) or not REQUIRED[call["event"]] <= set(props):
        return "properties"
    if call["event"] in ("Order Completed", "Checkout Started"):
        if not props["products"] or any(set(i) != ITEM_KEYS for i in props["products"]):
            return "products"
    return None


class Landing:
    """Every line of a generated landing zone, in folder / file / line order."""

    def __init__(self, root: Path, stats: dict):
        self.root, self.stats = root, stats
        self.records: list[tuple[datetime, str]] = []  # (folder hour start, raw line)
        for path in sorted((root / "events").glob("dt=*/hour=*/events-*")):
            folder = datetime.strptime(f"{path.parts[-3][3:]} {path.parts[-2][5:]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as fh:
                self.records += [(folder, line.rstrip("\n")) for line in fh]
        self.valid: list[tuple[datetime, dict]] = []
        self.errors: list[str] = []
        for folder, line in self.records:
            err = contract_error(line)
            if err:
                self.errors.append(err)
            else:
                self.valid.append((folder, json.loads(line)))
        first: dict[str, tuple[datetime, dict]] = {}
        for folder, call in self.valid:
            first.setdefault(call["messageId"], (folder, call))
        self.unique = list(first.values())  # first delivery of each call

    def calls(self, event: str) -> list[dict]:
        return [c for _, c in self.unique if c.get("event", c["type"]) == event]

    def orders(self) -> list[dict]:
        return self.calls("Order Completed")


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Landing:
    root = tmp_path_factory.mktemp("landing")
    stats = generate(root, CUSTOMERS, DAYS, START, seed=7)
    return Landing(root, stats)


@pytest.fixture(scope="module")
def truth(shop) -> dict[str, dict]:
    with open(shop.root / "_truth" / "products.csv", encoding="utf-8") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


# ---------------------------------------------------------------- determinism and re-generation

def test_same_seed_gives_byte_identical_files(tmp_path):
    a = generate(tmp_path / "a", 300, 2, START, seed=3, history_days=60)
    b = generate(tmp_path / "b", 300, 2, START, seed=3, history_days=60)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_gzip_output_is_deterministic_and_holds_the_same_lines(tmp_path):
    generate(tmp_path / "plain", 200, 1, START, seed=5, history_days=30)
    generate(tmp_path / "gz1", 200, 1, START, seed=5, history_days=30, gzip=True)
    generate(tmp_path / "gz2", 200, 1, START, seed=5, history_days=30, gzip=True)
    assert tree_digest(tmp_path / "gz1") == tree_digest(tmp_path / "gz2")
    for plain in (tmp_path / "plain" / "events").rglob("*.jsonl"):
        gz = tmp_path / "gz1" / plain.relative_to(tmp_path / "plain").with_suffix(".jsonl.gz")
        assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()


def test_different_seed_gives_different_shop(tmp_path):
    generate(tmp_path / "a", 300, 1, START, seed=1, history_days=30)
    generate(tmp_path / "b", 300, 1, START, seed=2, history_days=30)
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a if f"dt={START}/hour=00" in k or k.endswith("products.csv"))


def test_regeneration_overwrites_instead_of_appending(tmp_path):
    generate(tmp_path / "x", 300, 3, START, seed=9, history_days=30, gzip=True)
    (tmp_path / "x" / "keep.txt").write_text("not ours")
    generate(tmp_path / "x", 300, 2, START, seed=9, history_days=30)
    generate(tmp_path / "fresh", 300, 2, START, seed=9, history_days=30)
    produced = tree_digest(tmp_path / "x")
    assert produced.pop("keep.txt")
    assert produced == tree_digest(tmp_path / "fresh")


# ---------------------------------------------------------------- the event contract

def test_every_line_but_the_planted_malformed_ones_matches_the_contract(shop):
    assert len(shop.errors) == shop.stats["malformed_lines"]
    assert shop.stats["lines_written"] == len(shop.records)
    names = Counter(c.get("event", c["type"]) for _, c in shop.unique)
    assert dict(names) == {k: v for k, v in shop.stats["events"].items() if v}
    assert set(REQUIRED) - set(names) <= {"Email Unsubscribed", "Product Removed from Wishlist"}


def test_hour_folders_are_utc_hours_holding_their_events(shop):
    folders = {p.parent.relative_to(shop.root / "events").as_posix()
               for p in (shop.root / "events").rglob("events-*")}
    expected = {f"dt={START + timedelta(days=d)}/hour={h:02d}" for d in range(DAYS) for h in range(24)}
    assert folders == expected
    onboarding = datetime(START.year, START.month, START.day, tzinfo=UTC)
    on_time = [(f, c) for f, c in shop.unique if f != onboarding]
    in_hour = sum(f <= parse_ts(c["timestamp"]) < f + HOUR for f, c in on_time)
    assert in_hour / len(on_time) > 0.95
    assert all(parse_ts(c["timestamp"]) < f + HOUR for f, c in on_time)


def test_files_split_past_the_line_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(shopsim_generator, "MAX_LINES_PER_FILE", 250)
    generate(tmp_path, 400, 1, START, seed=1, history_days=200)
    first_hour = sorted((tmp_path / "events" / f"dt={START}" / "hour=00").iterdir())
    assert [p.name for p in first_hour] == [f"events-{i:04d}.jsonl" for i in range(len(first_hour))]
    assert len(first_hour) > 2
    assert all(len(p.read_text(encoding="utf-8").splitlines()) <= 250 for p in first_hour)


def test_identify_traits_have_the_promised_mix(shop):
    full = [c["traits"] for c in shop.calls("identify") if set(c["traits"]) == FULL_TRAITS]
    assert len(full) == shop.stats["customers"]
    assert 0.65 < np.mean([t["locale"] == "fr" for t in full]) < 0.75
    assert 0.55 < np.mean([t["email_opt_in"] is True for t in full]) < 0.65
    assert all(isinstance(t["sms_opt_in"], bool) for t in full)
    assert len({t["timezone"] for t in full}) >= 6
    window = {(START + timedelta(days=d)).strftime("%m-%d") for d in range(DAYS)}
    assert sum(t["birthday"][5:] in window for t in full) > 0.01 * len(full)
    for t in full:
        date.fromisoformat(t["birthday"])
        parse_ts(t["created_at"])
    created = sorted(parse_ts(t["created_at"]) for t in full)
    assert created[0] < datetime(2025, 11, 1, tzinfo=UTC) and created[-1] > datetime(2026, 11, 1, tzinfo=UTC)


def test_later_identifies_update_only_one_or_two_traits(shop):
    partial = [c["traits"] for c in shop.calls("identify") if set(c["traits"]) != FULL_TRAITS]
    assert len(partial) == shop.stats["identify_updates"] > 0
    assert all(1 <= len(t) <= 2 for t in partial)


def test_onboarding_import_sits_in_the_first_hour_folder(shop):
    onboarding = datetime(START.year, START.month, START.day, tzinfo=UTC)
    calls = [c for f, c in shop.unique if f == onboarding and parse_ts(c["timestamp"]) < onboarding]
    identifies = {c["userId"] for c in calls if c["type"] == "identify"}
    assert len(identifies) == shop.stats["customers_preexisting"]
    old = [parse_ts(c["timestamp"]) for c in calls if c.get("event") == "Order Completed"]
    assert len(old) == shop.stats["orders_history"]
    assert min(old) < onboarding - timedelta(days=300) and max(old) < onboarding


def test_signups_are_followed_by_a_full_identify(shop):
    signed = shop.calls("Signed Up")
    assert len(signed) == shop.stats["customers_signed_up"] > 0
    identified = {c["userId"]: parse_ts(c["timestamp"]) for c in shop.calls("identify")
                  if set(c["traits"]) == FULL_TRAITS}
    for c in signed:
        assert timedelta(0) < identified[c["userId"]] - parse_ts(c["timestamp"]) < timedelta(minutes=5)


def test_order_totals_add_up(shop):
    for o in shop.orders()[:2000]:
        p = o["properties"]
        items = round(sum(i["price"] * i["quantity"] for i in p["products"]), 2)
        assert round(items - p["discount"], 2) == pytest.approx(p["revenue"])
        assert round(p["revenue"] + p["shipping"], 2) == pytest.approx(p["total"])
        assert p["currency"] == "EUR" and p["tax"] < p["revenue"]


def test_loyalty_balances_follow_orders(shop):
    updates = shop.calls("Loyalty Points Updated")
    assert updates
    by_customer = defaultdict(list)
    for c in updates:
        by_customer[c["userId"]].append((parse_ts(c["timestamp"]), c["properties"]["points_balance"]))
    assert all([b for _, b in sorted(v)] == sorted(b for _, b in v) for v in by_customer.values())


def test_orders_ship_a_day_later_with_a_tracking_link_then_are_delivered(shop):
    placed = {o["properties"]["order_id"]: parse_ts(o["timestamp"]) for o in shop.orders()}
    cancelled = {c["properties"]["order_id"] for c in shop.calls("Order Cancelled")}
    updates = defaultdict(dict)
    for c in shop.calls("Order Updated"):
        updates[c["properties"]["order_id"]][c["properties"]["status"]] = (parse_ts(c["timestamp"]), c["properties"])
    shipped = {o: u["shipped"] for o, u in updates.items() if "shipped" in u}
    window_orders = [o for o, at in placed.items() if at.date() >= START]
    assert len(shipped) > 0.5 * len(window_orders) and not cancelled & updates.keys()
    hostile = 0
    for order_id, (at, props) in shipped.items():
        assert timedelta(hours=18) <= at - placed[order_id] <= timedelta(hours=30)
        assert props["tracking_number"] in props["tracking_url"] and props["carrier"]
        hostile += props["tracking_url"].startswith("javascript:")
        if "delivered" in updates[order_id]:
            assert timedelta(hours=20) <= updates[order_id]["delivered"][0] - at <= timedelta(hours=60)
    assert all("shipped" in u for u in updates.values())          # nothing delivered unshipped
    assert sum("delivered" in u for u in updates.values()) > 0.3 * len(shipped)
    assert hostile < 0.05 * len(shipped)


# ---------------------------------------------------------------- planted defects

def test_malformed_lines_are_planted_and_counted_by_kind(shop):
    kinds = shop.stats["malformed_by_kind"]
    assert set(kinds) == set(shopsim_generator.MALFORMED_KINDS)
    assert all(n >= 2 for n in kinds.values())
    assert Counter(shop.errors) == {"json": kinds["broken_json"], "event": kinds["unknown_event"],
                                    "properties": kinds["order_without_order_id"] + kinds["viewed_without_product_id"],
                                    "timestamp": kinds["bad_timestamp"], "userId": kinds["missing_user_id"]}


def test_duplicates_repeat_the_same_message_id_and_are_counted(shop):
    seen: dict[str, str] = {}
    copies = later_folder = 0
    folder_of: dict[str, datetime] = {}
    for folder, line in shop.records:
        if contract_error(line):
            continue
        mid = json.loads(line)["messageId"]
        if mid in seen:
            copies += 1
            assert line == seen[mid]
            later_folder += folder > folder_of[mid]
        else:
            seen[mid], folder_of[mid] = line, folder
    assert copies == shop.stats["duplicates_planted"]
    assert 0.006 < copies / len(shop.records) < 0.014
    assert later_folder > 0


def test_late_events_are_at_least_an_hour_older_than_their_folder(shop):
    onboarding = datetime(START.year, START.month, START.day, tzinfo=UTC)
    late = [(f, c) for f, c in shop.unique if f != onboarding and parse_ts(c["timestamp"]) < f]
    assert len(late) == shop.stats["late_events_planted"]
    assert all(parse_ts(c["timestamp"]) <= f - HOUR for f, c in late)
    live = shop.stats["events_total"] - shop.stats["onboarding_calls"]
    assert 0.012 < len(late) / live < 0.03
    assert any(f - parse_ts(c["timestamp"]) > timedelta(hours=20) for f, c in late)


# ---------------------------------------------------------------- catalogue

def read_snapshots(root: Path) -> dict[str, list[dict]]:
    out = {}
    for path in sorted((root / "catalog").glob("dt=*/products.csv")):
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            assert next(reader) == CATALOG_HEADER
            out[path.parent.name[3:]] = [dict(zip(CATALOG_HEADER, row, strict=True)) for row in reader]
    return out


def test_catalog_snapshots_follow_merchant_center_format(shop):
    snaps = read_snapshots(shop.root)
    assert list(snaps) == [(START + timedelta(days=d)).isoformat() for d in range(-1, DAYS)]
    rows = snaps[START.isoformat()]
    assert len(rows) >= 200
    for r in rows:
        assert re.fullmatch(r"\d+\.\d\d EUR", r["price"])
        assert r["sale_price"] == "" or re.fullmatch(r"\d+\.\d\d EUR", r["sale_price"])
        assert r["availability"] in {"in_stock", "out_of_stock", "preorder", "backorder"}
        assert " > " in r["product_type"]
        assert r["link"].startswith("https://shop.example/") and r["image_link"].startswith("https://shop.example/")
        assert int(r["quantity"]) >= 0
    titles = {r["title"] for r in rows}
    assert 'Bol "anti-glouton", inox' in titles
    assert any("<script>" in t for t in titles) and any("\n" in t for t in titles)


def test_catalog_changes_between_snapshots(shop):
    snaps = list(read_snapshots(shop.root).values())

    def eff(r):
        return float((r["sale_price"] or r["price"]).split()[0])

    drops = rises = back = went_out = new = 0
    for before, after in zip(snaps, snaps[1:], strict=False):
        old = {r["id"]: r for r in before}
        for r in after:
            o = old.get(r["id"])
            if o is None:
                new += 1
                continue
            drops += eff(r) <= 0.9 * eff(o)
            rises += eff(r) > eff(o)
            back += o["availability"] == "out_of_stock" and r["availability"] == "in_stock"
            went_out += o["availability"] == "in_stock" and r["availability"] == "out_of_stock"
    assert drops >= DAYS and rises > 0 and back > 0 and went_out > 0 and new >= DAYS
    last = snaps[-1]
    assert any(r["availability"] == "in_stock" and int(r["quantity"]) <= 5 for r in last)
    first_qty = {r["id"]: int(r["quantity"]) for r in snaps[0]}
    assert sum(int(r["quantity"]) < first_qty.get(r["id"], 0) for r in last) > 0.3 * len(first_qty)


# ---------------------------------------------------------------- planted behaviour

def test_cart_abandonment_rate_is_plausible(shop):
    carts = {c["properties"]["cart_id"] for c in shop.calls("Product Added")}
    ordered = {o["properties"].get("cart_id") for o in shop.orders()} & carts
    rate = 1 - len(ordered) / len(carts)
    assert len(carts) == shop.stats["carts"]
    assert rate == pytest.approx(shop.stats["cart_abandonment_rate"], abs=1e-3)
    assert 0.55 < rate < 0.8


def test_some_abandoned_carts_are_bought_later(shop):
    added = {}
    for c in shop.calls("Product Added"):
        added.setdefault(c["properties"]["cart_id"], parse_ts(c["timestamp"]))
    delays = [parse_ts(o["timestamp"]) - added[o["properties"]["cart_id"]]
              for o in shop.orders() if o["properties"].get("cart_id") in added]
    assert sum(d > HOUR for d in delays) >= 3


def test_complements_are_bought_together_far_above_chance(shop, truth):
    baskets = [{i["product_id"] for i in o["properties"]["products"]} for o in shop.orders()]
    counts = Counter(p for b in baskets for p in b)
    together = expected = 0.0
    for b in baskets:
        for p in b:
            comps = truth[p]["complements"].split()
            together += any(c in b for c in comps)
            expected += sum(counts[c] for c in comps) / len(baskets)
    assert together / expected > 5


def test_favourite_categories_dominate_each_customers_views(shop):
    per_customer = defaultdict(Counter)
    for c in shop.calls("Product Viewed"):
        per_customer[c["userId"]][c["properties"]["category"].split(" > ")[1]] += 1
    busy = [cnt for cnt in per_customer.values() if sum(cnt.values()) >= 8]
    assert busy
    top2 = np.mean([sum(v for _, v in cnt.most_common(2)) / sum(cnt.values()) for cnt in busy])
    assert top2 > 0.6


def test_consumables_are_rebought_near_their_interval(shop, truth):
    bought = defaultdict(list)
    for o in shop.orders():
        for i in o["properties"]["products"]:
            if truth[i["product_id"]]["consumable"] == "1":
                bought[(o["userId"], i["product_id"])].append(parse_ts(o["timestamp"]))
    ratios = []
    for (_, pid), times in bought.items():
        times.sort()
        interval = int(truth[pid]["repurchase_days"])
        ratios += [(b - a).total_seconds() / 86400 / interval for a, b in zip(times, times[1:], strict=False)]
    assert len(ratios) > 200
    assert 0.85 < np.median(ratios) < 1.15
    assert np.mean([0.75 < r < 1.3 for r in ratios]) > 0.6


def test_gift_orders_exist_about_a_year_before_the_window(shop, truth):
    year_ago = datetime(START.year - 1, START.month, START.day, tzinfo=UTC)
    gifts = [o for o in shop.orders()
             if any(truth[i["product_id"]]["gift"] == "1" for i in o["properties"]["products"])
             and abs(parse_ts(o["timestamp"]) - year_ago) < timedelta(days=30)]
    assert gifts


def test_back_in_stock_requests_target_unavailable_products(shop):
    snaps = read_snapshots(shop.root)
    requests = shop.calls("Back In Stock Requested")
    assert requests
    state = {day: {r["id"]: r["availability"] for r in rows} for day, rows in snaps.items()}
    for c in requests:
        # a session seen on the day after the snapshot (or spilling past midnight into the next one)
        when = parse_ts(c["timestamp"]).date()
        days = [(when - timedelta(days=k)).isoformat() for k in (1, 2)]
        assert any(state.get(d, {}).get(c["properties"]["product_id"]) == "out_of_stock" for d in days)


# ---------------------------------------------------------------- command line

def test_cli_writes_the_landing_zone_and_prints_stats(tmp_path, capsys):
    code = main(["--out", str(tmp_path), "--customers", "200", "--days", "1", "--start", "2026-11-20",
                 "--seed", "4", "--history-days", "30", "--gzip", "--quiet"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["customers_preexisting"] == 200 and stats["start"] == "2026-11-20"
    assert (tmp_path / "events" / "dt=2026-11-20" / "hour=00" / "events-0000.jsonl.gz").exists()
    assert (tmp_path / "catalog" / "dt=2026-11-19" / "products.csv").exists()

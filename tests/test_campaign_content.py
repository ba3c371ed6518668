"""Content queries and trigger transforms of the behaviour and catalog campaigns.

The content queries (include/sql/content) run on both backends against a tiny pet shop:
up-sells and similar products come from the learned tables or the same product type, never
from the top-level category; no block offers what the customer already bought, unless it is a
consumable. The trigger transforms (relance.campaigns.shopper_steps) are plain functions.
"""

from __future__ import annotations

import json

from helpers import at, customer, order, product, write_catalog, write_events
from relance.campaigns.shopper_steps import browse_local_days, price_seen_drops
from relance.ingest import ingest_window

DOG_FOOD = "Animalerie > Chien > Croquettes"


def _pet_shop(wh, landing):
    write_catalog(landing, "2026-11-19", [
        product("dogfood", title="Croquettes 4 kg", price="30.00 EUR", product_type=DOG_FOOD),
        product("dogfood-premium", title="Croquettes premium 4 kg", price="45.00 EUR", product_type=DOG_FOOD),
        product("dogfood-xl", title="Croquettes 12 kg", price="80.00 EUR", product_type=DOG_FOOD),
        product("cattree", title="Arbre à chat", price="60.00 EUR", product_type="Animalerie > Chat > Arbres"),
        product("bowl", title="Gamelle inox", price="12.00 EUR", product_type="Animalerie > Chien > Gamelles"),
        product("treats", title="Friandises", price="5.00 EUR", product_type="Animalerie > Chien > Friandises"),
    ])
    write_events(landing, "2026-11-20 08", [
        customer("rex"),
        order("rex", "o-old", "2026-10-01 10:00", ("bowl", 1, 12.0), ("treats", 1, 5.0)),
        order("rex", "o-1", "2026-11-20 08:00", ("dogfood", 1, 30.0)),
    ])
    ingest_window(wh, str(landing), at("2026-11-20 08:00"), at("2026-11-20 09:00"))
    # treats are a consumable (a learned repurchase interval): offering them again is fine
    wh.execute("INSERT INTO product_repurchase_intervals (product_id, interval_days, gaps, repeat_buyers, buyers, "
               "as_of) VALUES ('treats', 30, 40, 30, 100, :d)", {"d": at("2026-11-19 00:00").date()})
    for complement, score in (("bowl", 3.0), ("treats", 2.0)):
        wh.execute("INSERT INTO product_complements (product_id, complement_id, score) VALUES ('dogfood', :c, :s)",
                   {"c": complement, "s": score})


def _ids(rows):
    return [(r["product_id"], r.get("kind")) for r in rows]


def test_up_sells_are_the_same_product_type_never_a_cat_tree_for_dog_food(wh, tmp_path):
    _pet_shop(wh, tmp_path)
    params = {"order_id": "o-1", "customer_id": "rex"}
    # before train_recommendations: same product type, 15 % to 200 % dearer; the bowl (bought) is
    # left out, the treats (consumable) are not; the cat tree shares only the top-level category
    assert _ids(wh.query("content/cross_sell_products", params)) == [
        ("treats", "complement"), ("dogfood-premium", "upgrade"), ("dogfood-xl", "upgrade")]
    # once the recommender has learned up-sells, those are the upgrades
    wh.execute("INSERT INTO product_upsells (product_id, upsell_id, score, price_ratio) "
               "VALUES ('dogfood', 'dogfood-xl', 1.0, 2.67)")
    assert _ids(wh.query("content/cross_sell_products", params)) == [
        ("treats", "complement"), ("dogfood-xl", "upgrade")]


def test_similar_products_are_learned_neighbours_then_the_same_product_type(wh, tmp_path):
    _pet_shop(wh, tmp_path)
    wh.execute("INSERT INTO product_similarities (product_id, similar_id, score) VALUES ('dogfood', 'bowl', 0.9)")
    wh.execute("INSERT INTO product_similarities (product_id, similar_id, score) VALUES ('dogfood', 'treats', 0.5)")
    rows = wh.query("content/item_neighbours", {"product_id": "dogfood", "customer_id": "rex"})
    # the bowl was bought (not a consumable): skipped; the cat tree never qualifies
    assert _ids(rows) == [("treats", "neighbour"), ("dogfood-premium", "same_type"), ("dogfood-xl", "same_type")]


def test_recommendations_never_offer_what_was_bought_unless_consumable(wh, tmp_path):
    _pet_shop(wh, tmp_path)
    for rank, pid in enumerate(("bowl", "dogfood", "treats", "cattree"), start=1):
        wh.execute("INSERT INTO recommendations (customer_id, product_id, rank, score, as_of) "
                   "VALUES ('*', :p, :r, 1.0, :d)", {"p": pid, "r": rank, "d": at("2026-11-19 00:00").date()})
    rows = wh.query("content/recommendations", {"customer_id": "rex", "as_of": at("2026-11-20 09:00")})
    assert [r["product_id"] for r in rows] == ["treats", "cattree"]
    complements = wh.query("content/order_complements", {"order_id": "o-1", "customer_id": "rex"})
    assert [r["product_id"] for r in complements] == ["treats"]


# -- trigger transforms ------------------------------------------------------------------

def _browse(customer_id, when, timezone, event="Product Viewed", **properties):
    return {"customer_id": customer_id, "occurred_at": at(when), "event": event, "timezone": timezone,
            "properties": json.dumps(properties), "last_cart_at": None, "last_ordered_at": None}


def test_browse_days_are_cut_at_local_midnight_in_each_time_zone():
    rows = [
        # 23:30 and 00:30 in Paris: two local days with one event each — no browse day
        _browse("par", "2026-11-20 22:30", "Europe/Paris"), _browse("par", "2026-11-20 23:30", "Europe/Paris"),
        # the same UTC instants in New York (17:30, 18:30 on the 20th): one local day, two events
        _browse("nyc", "2026-11-20 22:30", "America/New_York"), _browse("nyc", "2026-11-20 23:30", "America/New_York"),
        # unknown time zone: the shop's default (Europe/Paris) — 00:10 and 00:40 on the 21st
        _browse("unk", "2026-11-20 23:10", None, "Products Searched", query="Théière 100%"),
        _browse("unk", "2026-11-20 23:40", None),
    ]
    out = {r["customer_id"]: r for r in browse_local_days(rows, at("2026-11-21 06:00"))}
    assert sorted(out) == ["nyc", "unk"]
    assert (out["nyc"]["trigger_id"], out["nyc"]["trigger_at"]) == ("browse|2026-11-20", at("2026-11-20 05:00"))
    assert (out["unk"]["trigger_id"], out["unk"]["trigger_at"]) == ("browse|2026-11-21", at("2026-11-20 23:00"))
    assert out["unk"]["search_query"] == "théière 100"        # lower-case, LIKE wildcards removed
    # an order after that local midnight (up to now) means no browse day: the exit's window
    late = [{**r, "last_ordered_at": at("2026-11-20 06:00")} for r in rows if r["customer_id"] == "nyc"]
    assert browse_local_days(late, at("2026-11-21 06:00")) == []


def _interest(customer_id, interest_at, day, new_price, snapshot_price=None, lowest_price=None, **properties):
    return {"customer_id": customer_id, "product_id": "p1", "interest_at": at(interest_at),
            "properties": json.dumps(properties), "snapshot_price": snapshot_price, "lowest_price": lowest_price,
            "snapshot_date": day, "new_price": new_price, "currency": "EUR", "timezone": "Europe/Paris"}


def test_a_further_price_alert_needs_another_10_percent_below_the_last_one():
    rows = [_interest("ann", "2026-11-10 10:00", day, price, snapshot_price=100.0)
            for day, price in (("2026-11-12", 89.0), ("2026-11-13", 85.0), ("2026-11-14", 80.0))]
    out = price_seen_drops(rows, at("2026-11-14 12:00"))
    assert [(r["trigger_id"], r["old_price"], r["new_price"]) for r in out] == [
        ("p1|2026-11-12", 100.0, 89.0), ("p1|2026-11-14", 89.0, 80.0)]
    assert out[0]["trigger_at"] == at("2026-11-11 23:00")    # local midnight in Paris: 10:00 local with the delay


def test_the_price_seen_comes_from_the_event_then_the_snapshot_then_the_lookback():
    out = price_seen_drops([
        _interest("evt", "2026-11-10 10:00", "2026-11-12", 89.0, snapshot_price=100.0, price="95,00"),
        _interest("snp", "2026-11-10 10:00", "2026-11-12", 89.0, snapshot_price=100.0, price="n/a"),
        _interest("low", "2026-11-10 10:00", "2026-11-12", 89.0, lowest_price=99.0),
        _interest("non", "2026-11-10 10:00", "2026-11-12", 89.0),
    ], at("2026-11-12 12:00"))
    assert [(r["customer_id"], r["old_price"]) for r in out] == [("low", 99.0), ("snp", 100.0)]

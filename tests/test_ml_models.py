"""Segments, propensity and recommendations on a synthetic shop, on SQLite and PostgreSQL.

The shop (relance.shopsim) plants the structure the models must find: complements bought
together, favourite product groups, consumables bought again at their own interval; its
``_truth/products.csv`` says which.
"""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from conftest import backend_params
from helpers import at, customer, dump_tables, order, product, track, write_catalog, write_events
from relance import warehouse
from relance.ingest import ingest_window
from relance.ml.recommender import train_recommendations
from relance.ml.segments import SEGMENTS, build_segments
from relance.ml.store import ModelStore
from relance.shopsim import generate

START = datetime(2026, 11, 16, tzinfo=UTC)
DAY1 = START + timedelta(days=1)
DAY2 = START + timedelta(days=2)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    landing = tmp_path_factory.mktemp("ml-shop") / "landing"
    generate(landing, customers=2000, days=1, start=START.date(), seed=5)
    return landing


@pytest.fixture(scope="module")
def truth(shop):
    with (shop / "_truth" / "products.csv").open() as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module", params=backend_params())
def shop_wh(request, shop, tmp_path_factory):
    """The shop ingested once per selected backend; the models are trained by the tests that need them."""
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ml-wh') / 'warehouse.db'}"
    else:
        request.getfixturevalue("postgres_available")
        import sqlalchemy as sa

        from conftest import PG_URL, _pg_schema_url

        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = _pg_schema_url(schema)

        def drop():
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    wh = warehouse.connect(url)
    ingest_window(wh, str(shop), START, DAY1)
    yield wh
    wh.engine.dispose()
    if drop:
        drop()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ModelStore(str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def segmented(shop_wh, store):
    """Segments as of two consecutive days."""
    return [build_segments(shop_wh, DAY1, store), build_segments(shop_wh, DAY2, store)]


@pytest.fixture(scope="module")
def recommended(shop_wh, store):
    return train_recommendations(shop_wh, DAY1, store)


# -- segments and propensity ------------------------------------------------------------------
def test_segment_names_are_readable_and_stable_from_one_day_to_the_next(shop_wh, segmented):
    rows = shop_wh.query("SELECT a.segment AS before, b.segment AS after FROM customer_segments a "
                         "JOIN customer_segments b ON b.customer_id = a.customer_id "
                         "WHERE a.as_of = :d1 AND b.as_of = :d2", {"d1": DAY1.date(), "d2": DAY2.date()})
    assert len(rows) >= 2000
    assert {r["before"] for r in rows} == {r["after"] for r in rows} == set(SEGMENTS)
    unchanged = sum(r["before"] == r["after"] for r in rows) / len(rows)
    assert unchanged > 0.95
    first, second = (s["sizes"] for s in segmented)
    for name in SEGMENTS:
        assert abs(first[name] - second[name]) <= max(10, 0.1 * first[name]), name


def test_segments_follow_rfm(shop_wh, segmented):
    stats = {r["segment"]: r for r in shop_wh.query(
        "SELECT segment, AVG(recency_days) AS recency, AVG(frequency) AS frequency, AVG(monetary) AS monetary "
        "FROM customer_segments WHERE as_of = :d GROUP BY segment", {"d": DAY1.date()})}
    assert stats["prospects"]["frequency"] == 0
    assert stats["champions"]["frequency"] > stats["hibernating"]["frequency"]
    assert stats["champions"]["recency"] < stats["at_risk"]["recency"]
    assert stats["at_risk"]["frequency"] > stats["new"]["frequency"]


def test_propensity_ranks_buyers_on_the_held_out_period_and_the_card_says_so(shop_wh, segmented, store):
    card = store.card("segments", DAY1.date())
    held_out = card["propensity"]["held_out"]
    assert held_out["auc"] > 0.65
    assert 0 < held_out["brier"] < 0.25
    assert len(held_out["reliability"]) == 10
    assert card["propensity"]["training_window"]["features_as_of"].startswith("2026-05-21")
    assert card["propensity"]["held_out_window"]["label_window"][1].startswith("2026-11-17")
    assert "recency_days" in card["propensity"]["features"]
    assert sum(card["segments"]["sizes"].values()) == card["customers"] == segmented[0]["customers"]
    p = shop_wh.query("SELECT segment, AVG(purchase_propensity) AS p, MIN(purchase_propensity) AS lo, "
                      "MAX(purchase_propensity) AS hi FROM customer_segments WHERE as_of = :d GROUP BY segment",
                      {"d": DAY1.date()})
    by_segment = {r["segment"]: r for r in p}
    assert all(0 <= r["lo"] <= r["hi"] <= 1 for r in p)
    assert by_segment["champions"]["p"] > by_segment["hibernating"]["p"]


def test_rebuilding_segments_for_the_same_day_leaves_identical_rows(shop_wh, segmented, store):
    before = dump_tables(shop_wh, ["customer_segments"])
    build_segments(shop_wh, DAY1, store)
    assert dump_tables(shop_wh, ["customer_segments"]) == before


# -- recommendations ----------------------------------------------------------------------------
def test_recommender_beats_popularity_on_the_last_basket(recommended, store):
    evaluation = store.card("recommender", DAY1.date())["evaluation"]
    assert evaluation["evaluated_customers"] >= 300
    ours, popular = evaluation["recommender"], evaluation["popularity"]
    assert ours["recall@10"] > 1.3 * popular["recall@10"]
    assert ours["ndcg@10"] > 1.3 * popular["ndcg@10"]
    assert recommended["recommender_recall@10"] == ours["recall@10"]


def test_recommendations_skip_bought_durables_and_out_of_stock_products(shop_wh, recommended):
    day = {"d": DAY1.date()}
    assert shop_wh.scalar("SELECT COUNT(*) FROM recommendations r LEFT JOIN products p "
                          "ON p.product_id = r.product_id WHERE r.as_of = :d "
                          "AND (p.product_id IS NULL OR p.availability <> 'in_stock')", day) == 0
    bought_again = shop_wh.scalar(
        "SELECT COUNT(*) FROM recommendations r JOIN orders o ON o.customer_id = r.customer_id "
        "JOIN order_items oi ON oi.order_id = o.order_id AND oi.product_id = r.product_id "
        "WHERE r.as_of = :d AND o.status <> 'cancelled' AND r.product_id NOT IN "
        "(SELECT product_id FROM product_repurchase_intervals)", day)
    assert bought_again == 0
    ranks = shop_wh.query("SELECT customer_id, COUNT(*) AS n, MIN(rank) AS lo, MAX(rank) AS hi "
                          "FROM recommendations WHERE as_of = :d GROUP BY customer_id", day)
    assert all(r["lo"] == 1 and r["hi"] == r["n"] <= 20 for r in ranks)
    fallback = shop_wh.query("SELECT product_id FROM recommendations WHERE customer_id = '*' AND as_of = :d "
                             "ORDER BY rank", day)
    assert len(fallback) == 20
    assert len(ranks) > 1000


def test_learned_repurchase_intervals_are_close_to_the_planted_ones(shop_wh, recommended, truth):
    learned = shop_wh.query("SELECT product_id, interval_days FROM product_repurchase_intervals")
    assert len(learned) >= 30
    consumable = [r for r in learned if truth[r["product_id"]]["consumable"] == "1"]
    assert len(consumable) >= 0.9 * len(learned)
    errors = sorted(abs(r["interval_days"] / float(truth[r["product_id"]]["repurchase_days"]) - 1)
                    for r in consumable)
    assert errors[len(errors) // 2] < 0.08  # median relative error
    assert sum(e < 0.2 for e in errors) >= 0.85 * len(errors)


def test_complements_are_the_planted_ones(shop_wh, recommended, truth):
    planted = {(p, c) for p, row in truth.items() for c in row["complements"].split()}
    planted |= {(c, p) for p, c in planted}
    best = shop_wh.query("SELECT product_id, complement_id, score FROM product_complements pc "
                         "WHERE score = (SELECT MAX(score) FROM product_complements x "
                         "WHERE x.product_id = pc.product_id)")
    assert len(best) >= 100
    assert sum((r["product_id"], r["complement_id"]) in planted for r in best) >= 0.85 * len(best)
    assert shop_wh.scalar("SELECT COUNT(*) FROM product_upsells") > 50
    assert shop_wh.scalar("SELECT COUNT(*) FROM product_similarities") > 500


def test_retraining_the_same_day_leaves_identical_tables(shop_wh, recommended, store):
    tables = ["recommendations", "product_complements", "product_similarities", "product_upsells",
              "product_repurchase_intervals"]
    before = dump_tables(shop_wh, tables)
    train_recommendations(shop_wh, DAY1, store)
    assert dump_tables(shop_wh, tables) == before


def test_recommender_model_card(recommended, store, tmp_path_factory):
    card = store.card("recommender", DAY1.date())
    assert card["training_window"][1].startswith("2026-11-17")
    assert card["hyperparameters"]["kind_weights"] == {"view": 1.0, "wishlist": 2.0, "cart": 3.0, "order": 5.0}
    assert card["data"]["item_guard"]["applied"] is False
    assert set(card["artifacts"]) == {"item_similarity.npz", "items.txt"}
    assert card["outputs"]["recommendations"] == recommended["recommendations"]
    assert recommended["card"].endswith("recommender/2026-11-17/card.json")
    assert json.loads(open(recommended["card"]).read())["version"] == "recommender@2026-11-17"


# -- small hand-made shop -------------------------------------------------------------------------
def test_exclusions_on_a_hand_made_shop(wh, tmp_path):
    """Durables already bought, out-of-stock and unknown products are never recommended; a
    consumable bought at a regular interval is learned and may be recommended again."""
    catalog = [product("kibble", product_type="Animalerie > Chien > Croquettes"),
               product("bowl", product_type="Animalerie > Chien > Gamelles"),
               product("leash", product_type="Animalerie > Chien > Laisses"),
               product("toy", product_type="Animalerie > Chien > Jouets", availability="out_of_stock"),
               product("bed", product_type="Animalerie > Chien > Couchages")]
    write_catalog(tmp_path, "2026-11-19", catalog)
    calls = [customer(f"u{i}", "2025-01-01 09:00") for i in range(12)]
    for i in range(12):
        # everybody: kibble every 30 days (4 times) with a bowl the first time, a leash and a toy once
        for k in range(4):
            items = [("kibble", 1, 20.0)] + ([("bowl", 1, 9.0)] if k == 0 else [])
            calls.append(order(f"u{i}", f"o{i}-{k}", (at("2026-06-01 10:00") + timedelta(days=30 * k, hours=i))
                               .strftime("%Y-%m-%d %H:%M"), *items))
        calls.append(order(f"u{i}", f"x{i}", "2026-10-20 10:00", ("leash", 1, 15.0), ("toy", 1, 5.0),
                           ("ghost", 1, 3.0)))
        calls.append(track(f"u{i}", "Product Viewed", "2026-11-19 08:00", product_id="bed"))
    calls.append(customer("newbie", "2026-11-19 09:00"))
    calls.append(track("newbie", "Product Viewed", "2026-11-19 09:05", product_id="leash"))
    write_events(tmp_path, "2026-11-19 10", calls)
    ingest_window(wh, str(tmp_path), at("2026-11-19 10:00"), at("2026-11-19 11:00"))
    as_of = datetime(2026, 11, 20, tzinfo=UTC)
    train_recommendations(wh, as_of, ModelStore(str(tmp_path / "models")), evaluate=False)
    interval = wh.query("SELECT product_id, interval_days FROM product_repurchase_intervals")
    assert [r["product_id"] for r in interval] == ["kibble"]
    assert 29 <= interval[0]["interval_days"] <= 31
    recs = wh.query("SELECT customer_id, product_id FROM recommendations WHERE as_of = :d", {"d": date(2026, 11, 20)})
    u0 = {r["product_id"] for r in recs if r["customer_id"] == "u0"}
    assert u0 == {"kibble", "bed"}  # not the bowl nor the leash (bought), nor the toy (out of stock), nor ghost
    newbie = {r["product_id"] for r in recs if r["customer_id"] == "newbie"}
    assert "leash" in newbie and not newbie & {"toy", "ghost"}
    assert not {r["product_id"] for r in recs} & {"toy", "ghost"}

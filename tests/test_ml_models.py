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

import pandas as pd
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
    generate(landing, customers=2200, days=2, start=START.date(), seed=5)
    return landing


@pytest.fixture(scope="module")
def truth(shop):
    with (shop / "_truth" / "products.csv").open() as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module", params=backend_params())
def shop_wh(request, shop, tmp_path_factory):
    """The shop's first day ingested once per selected backend (the second day is ingested by the
    last test, the stability one); the models are trained by the tests that need them."""
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
    """Segments as of the end of the first day."""
    return [build_segments(shop_wh, DAY1, store)]


@pytest.fixture(scope="module")
def recommended(shop_wh, store):
    return train_recommendations(shop_wh, DAY1, store)


# -- segments and propensity ------------------------------------------------------------------
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
    assert {"recency_days", "decayed_orders", "trend", "recency_vs_gap"} <= set(card["propensity"]["features"])
    # a gradient-boosted model is fitted beside the logistic one, kept only if it wins with calibration intact
    candidates, chosen = card["propensity"]["candidates"], card["propensity"]["chosen"]
    assert set(candidates) == {"logistic", "gradient_boosting"}
    boosted, logistic = candidates["gradient_boosting"], candidates["logistic"]
    wins = boosted["auc"] >= logistic["auc"] + 0.005 and boosted["brier"] <= logistic["brier"]
    assert chosen == ("gradient_boosting" if wins else "logistic")
    assert held_out["auc"] == candidates[chosen]["auc"]
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
    # the stronger baselines and the ablations sit next to it, on the same (test) customers
    assert set(evaluation["baselines"]) == {"popularity", "popularity_weighted", "own_history"}
    assert set(evaluation["ablations"]) == {"knn_only", "repeat_only", "no_due"}
    assert evaluation["validation_customers"] > 0
    assert all(f["customers"] == ours["customers"] for f in [*evaluation["baselines"].values(),
                                                             *evaluation["ablations"].values()])
    # due-ness orders the repeat purchases better than the customer's own history alone
    assert ours["ndcg@10"] > evaluation["baselines"]["own_history"]["ndcg@10"]
    assert ours["ndcg@10"] > evaluation["ablations"]["no_due"]["ndcg@10"]


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


def test_scoring_in_chunks_streamed_to_the_table_writes_the_same_rows(shop_wh, recommended, store, monkeypatch):
    """Customers are scored a chunk at a time, each chunk written while the next is scored: any
    chunk size gives the rows of one chunk for everyone (and the same counts)."""
    from relance.ml import recommender

    tables = ["recommendations", "product_complements", "product_similarities", "product_upsells",
              "product_repurchase_intervals"]
    before = dump_tables(shop_wh, tables)
    monkeypatch.setattr(recommender, "SCORE_CHUNK", 7)
    again = train_recommendations(shop_wh, DAY1, store, evaluate=False)
    assert dump_tables(shop_wh, tables) == before
    assert (again["customers"], again["recommendations"]) == (recommended["customers"], recommended["recommendations"])


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


# -- honest evaluation (issue 14) ----------------------------------------------------------------
def _repeat_shop(wh, landing):
    """k0..k5 buy kibble (and a bowl) once, then kibble again as their last order — the only
    repeat of kibble anywhere; l0..l5 buy litter every 30 days, four times."""
    write_catalog(landing, "2026-11-19", [product(p) for p in ("kibble", "bowl", "litter", "toy")])
    calls = []
    for i in range(6):
        calls.append(order(f"k{i}", f"k{i}-a", f"2026-08-01 1{i}:00", ("kibble", 1, 20.0), ("bowl", 1, 9.0)))
        calls.append(order(f"k{i}", f"k{i}-b", f"2026-09-01 1{i}:00", ("kibble", 1, 20.0)))
        for k in range(4):
            calls.append(order(f"l{i}", f"l{i}-{k}", (at(f"2026-06-01 1{i}:00") + timedelta(days=30 * k))
                               .strftime("%Y-%m-%d %H:%M"), ("litter", 1, 12.0)))
        calls.append(track(f"l{i}", "Product Viewed", "2026-05-20 10:00", product_id="toy"))
    write_events(landing, "2026-11-19 10", calls)
    ingest_window(wh, str(landing), at("2026-11-19 10:00"), at("2026-11-19 11:00"))


def test_evaluation_never_learns_a_consumable_from_the_held_out_baskets(wh, tmp_path):
    """Kibble is bought again only in held-out baskets: the evaluation must not learn it as a
    consumable (which would let the own-feedback term recommend it back to exactly those
    customers); litter, re-bought before the cutoffs, stays one. Training for real (all
    orders) does learn kibble."""
    from relance.ml.evaluation import holdout_split, rankings

    _repeat_shop(wh, tmp_path)
    as_of = datetime(2026, 11, 20, tzinfo=UTC)
    split = holdout_split(wh, as_of)
    assert split["consumables"] == {"litter"}
    assert split["held_out"] == 12
    top = rankings(split, split["user_rows"], 3)["recommender"]
    items = list(split["model"].items)
    for customer_id, row in zip(split["model"].users[split["user_rows"]], top, strict=True):
        picks = [items[i] for i in row if i >= 0]
        if customer_id.startswith("k"):
            assert "kibble" not in picks, customer_id
        else:
            assert picks[0] == "litter", customer_id
    summary = train_recommendations(wh, as_of, ModelStore(str(tmp_path / "models")))
    assert summary["repurchase_intervals"] == 2  # kibble and litter, learned from all orders
    assert wh.scalar("SELECT COUNT(*) FROM ml_holdout_baskets") == 0  # the evaluation cleans up


def test_two_evaluations_at_once_keep_their_own_held_out_baskets(wh, tmp_path, monkeypatch):
    """A second evaluation (another run) writes and clears its sample between the first one's
    write and read: the first one's split is the same as when it runs alone."""
    from relance.ml import evaluation

    _repeat_shop(wh, tmp_path)
    as_of = datetime(2026, 11, 20, tzinfo=UTC)
    alone = evaluation.holdout_split(wh, as_of)
    real = evaluation.interactions
    calls: list = []

    def interleaved(*args, **kwargs):
        if not calls:
            calls.append(None)  # the nested run reads through the real function
            calls[0] = evaluation.holdout_split(wh, as_of, max_customers=3)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "interactions", interleaved)
    together = evaluation.holdout_split(wh, as_of)
    assert calls and calls[0]["held_out"] == 3
    assert list(together["model"].users[together["user_rows"]]) == list(alone["model"].users[alone["user_rows"]])
    assert together["relevant"] == alone["relevant"]
    assert together["consumables"] == alone["consumables"]
    assert wh.scalar("SELECT COUNT(*) FROM ml_holdout_baskets") == 0


def test_propensity_features_as_of_t0_ignore_what_happens_after(wh, tmp_path):
    """A refund and a cancellation recorded inside the label window, and a later identify,
    leave the features as of T0 unchanged; a customer first seen after T0 is not in them."""
    from relance.ml.features import customer_features

    t0 = datetime(2026, 9, 1, tzinfo=UTC)
    calls = [customer("a", "2026-01-05 09:00", created_at="2026-01-05T09:00:00Z"),
             order("a", "a1", "2026-03-01 10:00", ("kibble", 1, 40.0)),
             order("a", "a2", "2026-05-01 10:00", ("kibble", 1, 40.0)),
             order("a", "a3", "2026-07-01 10:00", ("bowl", 1, 9.0)),
             track("a", "Order Refunded", "2026-06-01 10:00", order_id="a1"),  # before T0: counts
             customer("b", "2026-07-01 09:00"),  # no created_at trait: known by what they did
             order("b", "b1", "2026-08-01 10:00", ("bowl", 1, 9.0)),
             track("b", "Product Viewed", "2026-08-20 10:00", product_id="kibble")]
    write_events(tmp_path, "2026-11-19 10", calls)
    ingest_window(wh, str(tmp_path), at("2026-11-19 10:00"), at("2026-11-19 11:00"))
    before = customer_features(wh, t0, snapshot=True)
    assert list(before.index) == ["a", "b"]
    assert before.loc["a", "frequency"] == 3 and before.loc["a", "refunds"] == 1
    assert before.loc["a", "monetary"] == 49.0
    later = [track("a", "Order Refunded", "2026-09-15 10:00", order_id="a2"),
             track("b", "Order Cancelled", "2026-10-01 10:00", order_id="b1"),
             customer("b", "2026-10-02 09:00", first_name="Bea"),
             customer("c", "2026-10-03 09:00"),  # first seen after T0, no created_at trait
             order("c", "c1", "2026-10-03 10:00", ("bowl", 1, 9.0))]
    write_events(tmp_path, "2026-11-19 11", later)
    ingest_window(wh, str(tmp_path), at("2026-11-19 11:00"), at("2026-11-19 12:00"))
    assert wh.scalar("SELECT status FROM orders WHERE order_id = 'a2'") == "refunded"
    after = customer_features(wh, t0, snapshot=True)
    pd.testing.assert_frame_equal(after, before)
    today = customer_features(wh, datetime(2026, 11, 20, tzinfo=UTC))
    assert set(today.index) == {"a", "b", "c"}
    assert today.loc["a", "refunds"] == 2 and today.loc["b", "frequency"] == 0


# -- last of the shop's tests: it ingests the shop's second day --------------------------------
def test_segment_names_are_readable_and_stable_on_a_day_with_new_behaviour(shop, shop_wh, segmented, store):
    """Day 2 brings new orders, carts and views (ingested here, after every other test of the
    shop): segments as of the end of day 2 keep > 95 % of customers where they were."""
    orders_before = shop_wh.scalar("SELECT COUNT(*) FROM orders")
    ingest_window(shop_wh, str(shop), DAY1, DAY2)
    new_orders = shop_wh.scalar("SELECT COUNT(*) FROM orders") - orders_before
    assert new_orders >= 5
    second = build_segments(shop_wh, DAY2, store)
    rows = shop_wh.query("SELECT a.segment AS before, b.segment AS after FROM customer_segments a "
                         "JOIN customer_segments b ON b.customer_id = a.customer_id "
                         "WHERE a.as_of = :d1 AND b.as_of = :d2", {"d1": DAY1.date(), "d2": DAY2.date()})
    assert len(rows) >= 2000
    assert {r["before"] for r in rows} == {r["after"] for r in rows} == set(SEGMENTS)
    unchanged = sum(r["before"] == r["after"] for r in rows) / len(rows)
    print(f"segment stability over a day with {new_orders} new orders: {unchanged:.4f}")
    assert unchanged > 0.95
    first = segmented[0]["sizes"]
    for name in SEGMENTS:
        assert abs(first[name] - second["sizes"][name]) <= max(10, 0.1 * first[name]), name


def test_sparse_ranking_matches_the_dense_one():
    """The recommender ranks from the scores' nonzeros and the popular items (no users × items
    matrix); on random feedback, exclusions and ties it returns exactly the dense ranking."""
    import numpy as np
    import pandas as pd
    from scipy import sparse

    from relance.ml.itemknn import ItemKNN, _top_k_dense

    rng = np.random.default_rng(3)
    users, items = 500, 300
    feedback = sparse.random(users, items, density=0.02, random_state=1, dtype=np.float32, format="csr")
    feedback.data = np.round(feedback.data * 4) / 4  # ties
    bought = sparse.random(users, items, density=0.01, random_state=2, dtype=np.float32, format="lil")
    bought[0, :40] = 1  # a customer who bought most of the popular items
    bought = bought.tocsr()
    bought.data[:] = 1
    similarity = sparse.random(items, items, density=0.05, random_state=3, dtype=np.float32, format="csr")
    popularity = np.round(rng.random(items) * 5)  # ties
    model = ItemKNN(pd.Index(range(users)), pd.Index(range(items)), feedback, bought, similarity, popularity)
    allowed, consumable = rng.random(items) > 0.1, rng.random(items) > 0.7
    top, scores = model.recommend(np.arange(users), allowed, consumable, n=10, knn_weight=1.0, repeat_weight=1.0)
    base = np.where(allowed, 1e-3 * popularity / popularity.max(), -np.inf).astype(np.float32)
    dense = (feedback @ similarity + feedback).toarray() + base
    out = bought.multiply(sparse.csr_matrix(~consumable, dtype=np.float32)).tocoo()
    dense[out.row, out.col] = -np.inf
    want = np.array([sorted(range(items), key=lambda j, r=r: (-dense[r, j], j))[:10] for r in range(users)])
    want_scores = np.take_along_axis(dense, want, axis=1)
    assert np.array_equal(top, np.where(np.isfinite(want_scores), want, -1))
    assert np.allclose(scores, np.where(np.isfinite(want_scores), want_scores, 0.0))
    assert np.array_equal(_top_k_dense(dense, 10)[0], want)


def test_a_consumable_due_again_ranks_above_one_just_bought():
    """Two consumables bought alike, one a full interval ago and one two days ago: the due one
    comes first; without intervals (or with due_weight 0) the tie goes to the product position."""
    import numpy as np
    from scipy import sparse

    from relance.ml.itemknn import ItemKNN, due_score

    now = 20_000.0
    feedback = sparse.csr_matrix(np.array([[1.0, 1.0, 0.0]], dtype=np.float32))
    bought = sparse.csr_matrix(np.array([[1.0, 1.0, 0.0]], dtype=np.float32))
    last = sparse.csr_matrix(np.array([[now - 2, now - 30, 0.0]]))
    model = ItemKNN(pd.Index(["u"]), pd.Index(["fresh", "due", "other"]), feedback, bought,
                    sparse.csr_matrix((3, 3), dtype=np.float32), np.array([1.0, 1.0, 1.0]), {}, last)
    everything, consumable = np.ones(3, bool), np.ones(3, bool)
    intervals = np.array([30.0, 30.0, np.nan])
    top, _ = model.recommend(np.array([0]), everything, consumable, n=3, intervals=intervals, now_days=now)
    assert list(top[0]) == [1, 0, 2]
    top, _ = model.recommend(np.array([0]), everything, consumable, n=3, intervals=intervals, now_days=now,
                             due_weight=0.0)
    assert list(top[0]) == [0, 1, 2]
    assert due_score(np.array([30.0]), np.array([30.0]))[0] == 1.0
    assert 0.45 < due_score(np.array([45.0]), np.array([30.0]))[0] < 0.55


def test_segments_carry_an_expected_order_value(shop_wh, segmented):
    rows = shop_wh.query("SELECT segment, frequency, monetary, expected_order_value AS v FROM customer_segments "
                         "WHERE as_of = :d", {"d": DAY1.date()})
    assert all(r["v"] is not None and r["v"] >= 0 for r in rows)
    prospects = {round(r["v"], 2) for r in rows if r["segment"] == "prospects"}
    assert len(prospects) == 1  # the shop's average order value
    shop_average = prospects.pop()
    big = [r for r in rows if r["frequency"] >= 3 and r["monetary"] / r["frequency"] > 2 * shop_average]
    assert big and all(shop_average < r["v"] < r["monetary"] / r["frequency"] for r in big)  # shrunk, not ignored


def test_cap_arbitration_ranks_by_propensity_times_order_value(wh):
    """Expected value means value: a 30 % buyer of 100 € baskets comes before a 50 % buyer of 20 €
    ones; a customer without an order value (rows from before migration 0017) keeps the
    propensity alone."""
    now = datetime(2026, 11, 20, 10, tzinfo=UTC)
    day = now.date()
    for customer_id, propensity, value in (("low_value", 0.5, 20.0), ("high_value", 0.3, 100.0), ("old_row", 0.4, None)):
        wh.execute("INSERT INTO customer_segments (customer_id, as_of, segment, purchase_propensity, "
                   "expected_order_value) VALUES (:c, :d, 'loyal', :p, :v)",
                   {"c": customer_id, "d": day, "p": propensity, "v": value})
    with wh.begin() as conn:
        wh.insert_rows("message_log", [
            {"send_key": f"k-{c}", "campaign_id": "c", "campaign_version": "v", "step": 1, "step_name": "s",
             "variant": "a", "customer_id": c, "category": "marketing", "priority": 1, "trigger_id": f"t-{c}",
             "trigger_at": now, "due_at": now, "context": "{}", "planned_at": now, "planned_by": "test",
             "status": "planned"} for c in ("low_value", "old_row", "high_value")], conn)
    rows = wh.query("outbox/due_candidates", {"as_of": now, "as_of_date": day, "campaign_ids": ["c"]})
    assert [r["customer_id"] for r in rows] == ["high_value", "low_value", "old_row"]
    assert [round(r["expected_value"], 2) for r in rows] == [30.0, 10.0, 0.4]


# -- issue 14 items 5-7: repeat timing, item-kNN variants, cold products, BG/NBD -------------------
def _repeat_orders(rows):
    """(customer, product, day, units) -> the frame repeat_purchases.sql returns."""
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    return pd.DataFrame([{"customer_id": c, "product_id": p, "ordered_at": t0 + timedelta(days=d), "quantity": q}
                         for c, p, d, q in rows])


def test_a_three_unit_purchase_waits_three_intervals_when_the_product_says_so():
    """Product "food": gaps follow the units bought (30 days a unit); product "tea": 20 days
    whatever the units. Only the first is read per unit, and a customer's next purchase of it is
    expected at units × 30 days; an irregular product is no consumable."""
    import numpy as np

    from relance.ml.itemknn import ItemKNN
    from relance.ml.repeats import expected_intervals, intervals_from_orders

    rows, rng = [], np.random.default_rng(0)
    for n in range(8):
        units = 3 if n % 2 else 1
        rows += [(f"f{n}", "food", 0, units), (f"f{n}", "food", 30 * units + n % 3, 1), (f"f{n}", "food", 30 * units + 31, 1)]
        rows += [(f"t{n}", "tea", 0, units), (f"t{n}", "tea", 20 + n % 2, units), (f"t{n}", "tea", 41, 1)]
        rows += [(f"v{n}", "vase", 0, 1), *[(f"v{n}", "vase", float(d), 1) for d in np.cumsum(rng.exponential(40, 2))]]
    orders = _repeat_orders(rows)
    buyers = pd.DataFrame({"product_id": ["food", "tea", "vase"], "buyers": [8, 8, 8], "repeat_buyers": [8, 8, 8]})
    learned = intervals_from_orders(orders, buyers)
    intervals = learned.intervals.set_index("product_id")
    assert set(intervals.index) == {"food", "tea"}  # the vase's chance repeats are too irregular
    assert intervals.loc["food", "per_unit"] and not intervals.loc["tea", "per_unit"]
    assert abs(intervals.loc["food", "interval_days"] - 30) <= 1.5
    assert abs(intervals.loc["tea", "interval_days"] - 20.5) <= 1

    touches = pd.DataFrame({"customer_id": ["new", "new"], "product_id": ["food", "tea"], "weight": [1.0, 1.0],
                            "bought": [True, True], "last_bought_days": [20_000.0, 20_000.0], "quantity": [3, 3]})
    model = ItemKNN.fit(touches)
    expected = expected_intervals(model, touches, learned).toarray()[0]
    by_item = dict(zip(model.items, expected, strict=True))
    assert abs(by_item["food"] - 3 * intervals.loc["food", "interval_days"]) < 1e-6  # bought 3 units once
    assert abs(by_item["tea"] - intervals.loc["tea", "interval_days"]) < 1e-6


def test_a_customer_with_a_habit_of_their_own_is_due_at_their_own_interval():
    from relance.ml.itemknn import ItemKNN
    from relance.ml.repeats import expected_intervals, intervals_from_orders

    rows = [(f"c{n}", "coffee", d, 1) for n in range(6) for d in (0, 30, 60)]
    rows += [("slow", "coffee", d, 1) for d in (0, 45, 90, 135, 180)]  # four gaps of 45 days
    learned = intervals_from_orders(_repeat_orders(rows), pd.DataFrame(
        {"product_id": ["coffee"], "buyers": [7], "repeat_buyers": [7]}))
    touches = pd.DataFrame({"customer_id": ["slow", "c0"], "product_id": ["coffee", "coffee"], "weight": [1.0, 1.0],
                            "bought": [True, True], "last_bought_days": [1.0, 1.0], "quantity": [5, 3]})
    model = ItemKNN.fit(touches)
    expected = expected_intervals(model, touches, learned, prior_gaps=3.0)
    slow, regular = expected[model.users.get_loc("slow"), 0], expected[model.users.get_loc("c0"), 0]
    assert abs(regular - 30) < 1  # own gaps = the product's
    assert 36 < slow < 45  # pulled from 30 towards their own 45 by 4 gaps against 3
    assert abs(expected_intervals(model, touches, learned, prior_gaps=float("inf"))[0, 0] - 30) < 1e-6


def test_similarity_variants_and_a_new_product_reached_by_content():
    """BM25 / IUF weighting and RP3beta give item × item similarities without the diagonal; a
    product nobody touched yet is recommended to the customer who touched one of the same
    type and brand, not to the one who only touched another type."""
    import numpy as np

    from relance.ml.itemknn import ItemKNN, item_similarity

    touches = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "product_id": ["kib1", "bowl", "kib1", "bowl", "mug"],
                            "weight": [3.0, 1.0, 1.0, 2.0, 1.0], "bought": [True, False, True, False, True],
                            "last_bought_days": [1.0, 0.0, 1.0, 0.0, 1.0], "quantity": [1, 0, 1, 0, 1]})
    model = ItemKNN.fit(touches)
    for settings in ({"weighting": "bm25"}, {"weighting": "iuf"}, {"kind": "rp3beta", "alpha": 0.5, "beta": 0.3}):
        sim = item_similarity(model.feedback, 10, **settings)
        assert sim.shape == (3, 3) and sim.diagonal().sum() == 0 and sim.nnz > 0
        assert sim.max() <= 1.0 + 1e-6
    products = pd.DataFrame({"price": [20.0, 8.0, 9.0, 21.0], "availability": ["in_stock"] * 4,
                             "product_type": ["Chien > Croquettes", "Chien > Bols", "Cuisine > Tasses",
                                              "Chien > Croquettes"],
                             "brand": ["Royal", "Inox", "Mugs", "Royal"]},
                            index=pd.Index(["kib1", "bowl", "mug", "kib_new"], name="product_id"))
    cold = model.with_cold_items(products)
    assert list(cold.items[-1:]) == ["kib_new"] and cold.stats["cold_products"] == 1
    allowed, consumable = np.ones(len(cold.items), bool), np.zeros(len(cold.items), bool)
    top, scores = cold.recommend(np.arange(len(cold.users)), allowed, consumable, n=4)
    new = cold.items.get_loc("kib_new")
    rank = {u: list(top[i]) for i, u in enumerate(cold.users)}
    mug = cold.items.get_loc("mug")
    assert rank["b"].index(new) < rank["b"].index(mug)  # b bought the kibble: the new one before the mug
    assert scores[list(cold.users).index("c")][rank["c"].index(new)] < 1e-2  # c only knows mugs: tie-break at most
    assert model.with_cold_items(products, weight=0.0) is model


def test_bgnbd_recovers_a_planted_population_and_ranks_the_alive_first():
    """Customers drawn from a BG/NBD population (r, α, a, b known): the fit lands near the
    planted parameters, and a customer whose purchases stopped long ago is less likely alive
    than one with the same purchases lately."""
    import numpy as np

    from relance.ml import bgnbd

    rng = np.random.default_rng(1)
    r, alpha, a, b, n = 0.8, 6.0, 1.5, 4.0, 3000
    rate, drop = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    T = rng.uniform(30, 80, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > T[i]:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < drop[i]:
                break
    fitted = bgnbd.fit(x, t_x, T)
    assert fitted["converged"]
    assert 0.5 < fitted["r"] / r < 2 and 0.5 < fitted["alpha"] / alpha < 2
    assert 0.4 < (fitted["a"] / (fitted["a"] + fitted["b"])) / (a / (a + b)) < 2.5  # mean dropout
    p = bgnbd.p_alive(fitted, np.array([4.0, 4.0, 0.0]), np.array([50.0, 10.0, 0.0]), np.array([52.0, 52.0, 52.0]))
    assert p[0] > p[1] and p[2] == 1.0
    e = bgnbd.expected_purchases(fitted, np.array([4.0, 4.0]), np.array([50.0, 10.0]), np.array([52.0, 52.0]))
    assert e[0] > e[1] > 0


def test_write_frame_round_trips_nulls_dates_numbers_and_text(wh):
    """The models' bulk writer (COPY binary on PostgreSQL, laid out by numpy) stores what the
    frame holds: NaN and None as NULL, dates, integers, floats to the last bit, any text."""
    import numpy as np

    from relance.ml.frames import write_frame

    day = date(2026, 11, 17)
    rows = pd.DataFrame({"customer_id": ["c1", "ç-é ünïcode 🛒", "c3", "c" * 300],
                         "as_of": day, "segment": ["loyal", "at_risk", "", "new"],
                         "purchase_propensity": [0.1234567890123, np.nan, 1.0, 1e-300],
                         "recency_days": [np.nan, 2.5, 0.0, -3.25],
                         "frequency": np.array([0, 7, 2**31 - 1, 3]),
                         "monetary": [12.34, 0.0, 99999999.99, 0.01],
                         "expected_order_value": [1.0, 2.0, 3.0, 4.0],
                         "model_version": ["segments@2026-11-17", None, "v", "v"]})
    with wh.begin() as conn:
        assert write_frame(wh, "customer_segments", rows, conn) == 4
        assert write_frame(wh, "customer_segments", rows.iloc[:0], conn) == 0
    back = pd.DataFrame(wh.query("SELECT customer_id, as_of, segment, purchase_propensity, recency_days, frequency, "
                                 "monetary, expected_order_value, model_version FROM customer_segments"))
    back = back.set_index("customer_id").loc[rows["customer_id"]]
    assert [str(v)[:10] for v in back["as_of"]] == ["2026-11-17"] * 4
    assert list(back["segment"]) == ["loyal", "at_risk", "", "new"]
    for col in ("purchase_propensity", "recency_days", "monetary", "expected_order_value"):
        got = back[col].astype(float).to_numpy()
        assert np.array_equal(got, rows[col].to_numpy(float), equal_nan=True), col
    assert list(back["frequency"].astype(int)) == [0, 7, 2**31 - 1, 3]
    assert [None if pd.isna(v) else v for v in back["model_version"]] == ["segments@2026-11-17", None, "v", "v"]

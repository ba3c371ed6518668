"""Content queries fetched for many rows at once (relance.dispatch.content.query_many /
fetch_content, what the send loop does: the per-row statement through the DB-API cursor, every
set in one pipelined round trip on PostgreSQL, in one read transaction on SQLite) give exactly what the per-row query gives, row
by row and in its order — for every content query of include/sql/content, on both backends, against a
small shop with every table the queries read (learned neighbours, up-sells, complements,
personal and fallback recommendations, consumables, segments, views, carts, searches, folded
digest items), with more parameter sets than one fetch takes and repeated sets."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from helpers import at, customer, order, product, track, write_catalog, write_events
from relance import settings
from relance.dispatch.content import CONTENT_CHUNK, build_context, fetch_content, query_many, query_params
from relance.ingest import ingest_window

DOG = "Animalerie > Chien > Croquettes"
CAT = "Animalerie > Chat > Arbres"
CUSTOMERS = ["ann", "bob", "cid", "dee", "nobody"]
PRODUCTS = [f"p{i}" for i in range(12)] + ["missing"]
ORDERS = ["o-ann-1", "o-ann-2", "o-bob-1", "o-cid-1", "o-dee-1", "o-none"]


def _shop(wh, landing):
    types = [DOG, DOG, DOG, CAT, CAT, "Animalerie > Chien > Gamelles", "Jardin > Fleurs", "Jardin > Fleurs",
             "Maison > Vases", "Cadeaux > Coffrets", DOG, CAT]
    write_catalog(landing, "2026-11-19", [
        product(pid, title=f"Croquettes {pid}" if types[i] == DOG else f"Article {pid}",
                price=f"{10 + 7 * i:.2f} EUR", product_type=types[i],
                sale_price=f"{8 + 7 * i:.2f} EUR" if i % 4 == 1 else "",
                availability="out_of_stock" if i in (2, 9) else "in_stock", quantity=[3, 20, 0, 5, 1, 40][i % 6])
        for i, pid in enumerate(PRODUCTS[:12])])
    calls = [customer(c) for c in CUSTOMERS[:4]]
    calls += [order("ann", "o-ann-1", "2026-11-10 10:00", ("p0", 1, 10.0), ("p5", 2, 45.0), ("p6", 1, 52.0)),
              order("ann", "o-ann-2", "2026-11-20 08:10", ("p1", 1, 17.0)),
              order("bob", "o-bob-1", "2026-11-20 08:20", ("p3", 1, 31.0), ("p0", 3, 10.0)),
              order("cid", "o-cid-1", "2026-11-20 08:30", ("p7", 1, 59.0), ("p11", 1, 87.0)),
              order("dee", "o-dee-1", "2026-11-20 08:40", ("p10", 2, 80.0))]
    rng = random.Random(11)
    for n in range(60):  # views, carts, removals, searches from 08:00 to 08:59
        who, pid, when = rng.choice(CUSTOMERS[:4]), rng.choice(PRODUCTS[:12]), f"2026-11-20 08:{n:02d}"
        kind = rng.choice(["Product Viewed", "Product Viewed", "Product Added", "Product Removed", "Products Searched"])
        if kind == "Products Searched":
            calls.append(track(who, kind, when, query=rng.choice(["croquettes", "arbre", "fleur"])))
        else:
            calls.append(track(who, kind, when, product_id=pid))
    write_events(landing, "2026-11-20 08", calls)
    ingest_window(wh, str(landing), at("2026-11-20 08:00"), at("2026-11-20 09:00"))
    wh.execute("UPDATE products SET category = 'Fleurs' WHERE product_type LIKE 'Jardin%'")
    wh.execute("UPDATE products SET category = 'Cadeaux' WHERE product_type LIKE 'Cadeaux%' "
               "OR product_type LIKE 'Maison%'")
    day = at("2026-11-19 00:00").date()
    for pid in ("p0", "p7"):  # consumables
        wh.execute("INSERT INTO product_repurchase_intervals (product_id, interval_days, gaps, repeat_buyers, buyers, "
                   "as_of) VALUES (:p, 30, 40, 30, 100, :d)", {"p": pid, "d": day})
    for i in range(40):
        a, b = rng.sample(PRODUCTS[:12], 2)
        table, column = rng.choice([("product_similarities", "similar_id"), ("product_complements", "complement_id"),
                                    ("product_upsells", "upsell_id")])
        extra = ", price_ratio" if table == "product_upsells" else ""
        wh.execute(f"INSERT INTO {table} (product_id, {column}, score{extra}) VALUES (:a, :b, :s{', 1.5' if extra else ''}) "
                   "ON CONFLICT DO NOTHING", {"a": a, "b": b, "s": float(i % 7)})  # ties in score
    for who in ("*", "ann", "bob"):
        for as_of in (day - timedelta(days=1), day):
            for rank, pid in enumerate(rng.sample(PRODUCTS[:12], 6), start=1):
                wh.execute("INSERT INTO recommendations (customer_id, product_id, rank, score, as_of) "
                           "VALUES (:c, :p, :r, 1.0, :d)", {"c": who, "p": pid, "r": rank, "d": as_of})
    for who, segment in (("ann", "champions"), ("bob", "at_risk")):
        wh.execute("INSERT INTO customer_segments (customer_id, as_of, segment, purchase_propensity) "
                   "VALUES (:c, :d, :s, 0.4)", {"c": who, "d": day, "s": segment})
    for n, (campaign, trigger) in enumerate([("cart_abandonment", "c1"), ("browse_abandonment", "b1"),
                                             ("back_in_stock", "p3|x"), ("price_drop", "p1|y")]):
        wh.execute(
            "INSERT INTO message_log (send_key, campaign_id, campaign_version, step, step_name, variant, customer_id, "
            "category, priority, trigger_id, trigger_at, due_at, context, status, planned_at, digest_send_key) "
            "VALUES (:k, :c, 'v1', 1, 'first', 'A', 'ann', 'marketing', 10, :t, :at, :due, '{}', 'digested', :at, :d)",
            {"k": f"folded-{n}", "c": campaign, "t": trigger, "at": at("2026-11-20 07:00"),
             "due": at(f"2026-11-20 07:{10 * (3 - n):02d}"), "d": "digest-ann" if n < 3 else "digest-bob"})


#: minutes with an event (one a minute from 08:00): a bound on one of them decides whether it counts
_ON_EVENTS = [at(f"2026-11-20 08:{m:02d}") for m in range(0, 60, 5)]
#: candidate values of each parameter a content query may name
POOL = {
    "customer_id": CUSTOMERS, "order_id": ORDERS, "product_id": PRODUCTS,
    "as_of": [at("2026-11-20 09:00"), at("2026-11-19 12:00"), *_ON_EVENTS],
    "trigger_at": [at("2026-11-20 07:00"), *_ON_EVENTS],
    "browse_started_at": _ON_EVENTS, "cart_started_at": _ON_EVENTS,
    "search_query": ["", "croq", "arbre"], "search_category": ["", "chien", "fleurs"],
    "send_key": ["digest-ann", "digest-bob", "none"],
}


def test_every_content_query_fetched_for_many_rows_is_the_per_row_query(wh, tmp_path):
    _shop(wh, tmp_path)
    queries = sorted(p.stem for p in (settings.SQL_DIR / "content").glob("*.sql"))
    rng = random.Random(5)
    nonempty = 0
    for query in queries:
        names = sorted(query_params(query))
        assert set(names) <= set(POOL), f"content/{query}: give the test values for {set(names) - set(POOL)}"
        sets = [{name: rng.choice(POOL[name]) for name in names} for _ in range(2 * CONTENT_CHUNK + 17)]
        sets += sets[:9]  # repeated sets (fetched once)
        per_row = [wh.query(f"content/{query}", params) for params in sets]
        with wh.pinned(autocommit=True) as reader:  # as the send loop reads (through the cursor)
            assert query_many(reader, query, sets) == per_row, query
        nonempty += sum(1 for rows in per_row if len(rows) > 1)
    assert nonempty > 100  # the shop gives the queries something to order


def test_fetched_content_builds_the_same_context_as_per_row_queries(wh, tmp_path, campaigns):
    _shop(wh, tmp_path)
    as_of = at("2026-11-20 09:00")
    contexts = {
        "order_confirmation": {"order_id": "o-bob-1"}, "winback": {"order_id": "o-ann-1"},
        "cart_abandonment": {"cart_started_at": "2026-11-20T08:00:00+00:00"},
        "browse_abandonment": {"browse_started_at": "2026-11-20T08:00:00+00:00", "search_query": "croq",
                               "search_category": ""},
        "back_in_stock": {"product_id": "p3"}, "low_stock": {"product_id": "p0"}, "digest": {},
    }
    rows = []
    for n, (campaign_id, context) in enumerate(contexts.items()):
        for who in CUSTOMERS[:3]:
            rows.append({"send_key": f"k-{n}-{who}", "campaign_id": campaign_id, "step": 1, "variant": "A",
                         "customer_id": who, "trigger_id": f"t-{n}", "trigger_at": at("2026-11-20 07:00"),
                         "context": json.dumps(context), "first_name": who, "email": f"{who}@example.com",
                         "locale": "fr"})
    rows.append({**rows[0], "send_key": "unknown-campaign", "campaign_id": "gone"})
    with wh.pinned(autocommit=True) as reader:
        fetched = fetch_content(reader, campaigns, rows, as_of)
    assert fetched["unknown-campaign"] == {}
    for row in rows[:-1]:
        campaign = campaigns[row["campaign_id"]]
        step = campaign.steps[0]
        assert set(fetched[row["send_key"]]) == set(step.content)
        assert build_context(wh, campaign, step, row, as_of, campaigns, fetched[row["send_key"]]) == \
            build_context(wh, campaign, step, row, as_of, campaigns), row["send_key"]

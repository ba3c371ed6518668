"""Synthetic shop generator: a landing zone in the product's input contract (SPEC §5).

``generate(out_dir, customers, days, start, seed=42, history_days=400, gzip=False)`` writes

* ``events/dt=YYYY-MM-DD/hour=HH/events-NNNN.jsonl[.gz]`` — one Segment call per line, hour folders
  in UTC, split every 200,000 lines; every hour of the window has a folder (possibly an empty file);
* ``catalog/dt=YYYY-MM-DD/products.csv`` — one snapshot per simulated day plus the day before
  ``start`` (the state at the *end* of that day; a day's events see the previous snapshot);
* ``_truth/products.csv`` — the ground truth the shop was drawn from (group, consumable,
  repurchase interval, gift, popularity, planted complements). Not part of the input contract:
  for tests and for scoring the recommender / repurchase-interval learning.

It is deterministic (same arguments → byte-identical files, gzip included) and replaces those
three folders on every run. ``main()`` is the ``relance shopsim`` command line.

What is planted
---------------
*Catalogue.* max(200, min(5000, customers // 20)) products in 7 affinity groups (dog, cat, beauty,
coffee & tea, flowers & gifts, home, apparel) and ~40 Google-style ``product_type`` paths
(``Animalerie > Chien > Croquettes``). Popularity is Zipf-like (exponent 0.95). Consumables carry a
repurchase interval that scales with pack size (dog food 4 kg ≈ 60 days, coffee 500 g ≈ 30 days,
shampoo ≈ 45 days, cat litter ≈ 30 days…); flowers, plants, chocolates and gift boxes are the
gift category. Each product has 1–3 complements drawn *uniformly* in related sub-categories (dog
food ↔ bowls/treats, coffee ↔ grinder/mugs, tea ↔ teapot, bouquet ↔ vase…), so co-purchase carries
signal that popularity does not. A few hostile but valid titles: ``Bol "anti-glouton", inox``, one
with ``<script>``, one with Jinja ``{{ }}``, one with CR/LF + ``Bcc:`` (CSV-quoted), and one
description spanning two lines. Between snapshots: ~2 % of prices change each day (at least one drop
≥ 10 % a day — as a ``sale_price`` or a cut of ``price``; effective price = sale_price or price —,
rises/sale ends, and small cuts < 10 % that must *not* trigger price-drop), stock falls with the
day's orders plus a trickle of other sales, best-sellers and ~0.6 %/day of products go
``out_of_stock`` and come back 1–6 days later, ~10 % start with a low stock (≤ 15, soon ≤ 5),
pre-orders become available, and 1–3 new products launch every day.

*Customers.* ids ``c000123`` (width grows with the count); traits with fr/en locale (~70/30),
nine IANA time zones (Paris, Brussels, Zurich, Montreal, London, New York, Los Angeles, Tokyo,
Sydney), E.164 phones, birthdays 1950–2007 with ~2 % falling inside the window (Feb 29 possible),
``created_at`` spread over the history (denser recently), ~60 % email opt-in, ~25 % SMS opt-in,
~55 % loyalty members, and a handful of hostile first names (HTML, CR/LF header injection, SQL,
Jinja, stray spaces). Each customer has one or two favourite groups (60 % / 25 % of their draws)
and a heavy-tailed daily activity (mean 3 % of customers have a session on a given day).

*Onboarding import* (in ``dt=start/hour=00``, before that hour's live events): one full identify
per pre-existing customer timestamped at its ``created_at``, then their past orders over
``history_days`` (each with its own old timestamp, cart-less), old cancellations/refunds, and one
``Loyalty Points Updated`` per member with its balance. Refunds of old orders that fall inside the
window arrive live.

*Live days.* Sessions (local time of day follows an evening/lunch curve) with searches, list views
and 1–10 product views mostly in the favourite groups; ~36 % of sessions open a cart (the last
viewed product, + one of its complements with p = 0.55, + another viewed product with p = 0.3);
15 % of multi-item carts remove an item; Cart Viewed, Checkout Started (every order + 30 % of
the others, ``order_id`` allocated at checkout). 18 % of browsing carts are ordered in-session and
10 % of the rest are bought 1 h–4 days later (Cart Viewed → Checkout Started → Order Completed with
the same cart); with the repurchase carts below, ~65–70 % of all carts end without an order. Out-of-stock views lead to Back In Stock
Requested (35 %) or wishlisting (15 %); some wishlisted items are removed later. Consumables
bought for the first time start a repurchase habit (p = 0.35) that recurs at the product's
interval × lognormal noise (σ = 0.12, ± 6 h) and goes on with p = 0.75 — in the history and live
(a repeat session: view → cart → order, 70 % converted, missed ones retried 2–8 days later). Orders: ~8 % with a 10 %
coupon (50 % ``BIENVENUE10`` for sign-up sessions), free shipping from 49 EUR else 4.90, 20 % VAT
included in prices; ``revenue`` = items − discount, ``total`` = revenue + shipping. ~1 % are
cancelled within hours, ~1 % refunded days later; 90 % of the others ship 18–30 h after the
order (``Order Updated`` ``shipped`` with ``carrier``, ``tracking_number`` and ``tracking_url``:
Colissimo, Chronopost, Mondial Relay, DHL; 0.5 % a hostile carrier with markup and CR/LF and a
``javascript:`` link) and 95 % of those are ``delivered`` 20–60 h later — never after a refund; members get ``Loyalty Points Updated``
(1 point per euro, running balance) seconds after each order. New customers sign up every day
(``Signed Up`` then a full identify); ~0.3 % of active opted-in customers unsubscribe
(``Email Unsubscribed`` + identify ``email_opt_in: false``), ~0.4 % send a one- or two-trait
identify (opt-in flips, locale change, new phone) — at least one of each a day.

*Delivery defects* (all counted in the stats): ~1 % of lines delivered twice with the same
``messageId`` (60 % within minutes, 40 % 1–3 hours later, possibly in a later hour folder; the
onboarding import's copies land in hours 00–02); ~2 % of live events are *late*: delivered 2–6 h
(75 %) or 24–30 h after their own hour, so their timestamp is at least an hour before the folder's
hour; ``2 + customers // 250,000`` lines of each malformed kind: truncated JSON, unknown event
name, Order Completed without ``order_id``, Product Viewed without ``product_id``, bad timestamp
(``2026-13-45T25:61:00.000Z``, ``yesterday``, ``20/11/2026 10:15``, empty), track without
``userId``.
"""

from .generator import generate, main

__all__ = ["generate", "main"]

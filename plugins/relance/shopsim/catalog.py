"""The product catalogue: static attributes, daily stock/price dynamics and CSV snapshots.

Day indices: ``-1`` is the day before the simulated window (the initial snapshot), ``0..days-1``
the simulated days. The snapshot of day ``d`` is the state at the *end* of day ``d``; events of
day ``d`` see the state of snapshot ``d - 1`` (prices, availability).
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import taxonomy as tx

IN_STOCK, OUT_OF_STOCK, PREORDER, BACKORDER = 0, 1, 2, 3
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "backorder")
CSV_HEADER = ("id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
              "brand", "product_type", "quantity")
ZIPF_EXPONENT = 0.95


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def catalog_size(customers: int) -> int:
    return max(200, min(5000, customers // 20))


@dataclass
class DayChanges:
    price_drops: int = 0  # effective price down >= 10 %
    price_rises: int = 0
    small_price_cuts: int = 0  # down < 10 %: must not trigger price_drop
    went_out_of_stock: int = 0
    back_in_stock: int = 0
    low_stock: int = 0  # in stock with quantity <= 5
    new_products: int = 0

    def add(self, other: DayChanges) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Catalog:
    n: int
    n_initial: int
    subcat: np.ndarray  # int16 index into taxonomy.SUBCATEGORIES
    group: np.ndarray  # int8 index into taxonomy.GROUPS
    launch_day: np.ndarray  # -1 for the initial catalogue
    repurchase_days: np.ndarray  # 0 = not consumable
    gift: np.ndarray  # bool
    pop: np.ndarray  # Zipf-like popularity weight
    complements: np.ndarray  # (n, 3) product indices, -1 = none
    ids: list[str]
    skus: list[str]
    titles: list[str]
    descriptions: list[str]
    brands: list[str]
    # state (mutated by end_of_day)
    price: np.ndarray  # regular price, cents
    sale: np.ndarray  # sale price, cents, 0 = none
    avail: np.ndarray  # int8 AVAILABILITY code
    qty: np.ndarray  # units in stock
    restock_day: np.ndarray  # day an out_of_stock / preorder product comes (back) in stock
    # JSON fragments used by the event formatter
    head_json: list[str] = field(default_factory=list)  # "product_id":…,"sku":…,"name":…,"category":…
    id_json: list[str] = field(default_factory=list)  # "p00001" (with quotes)

    @property
    def effective(self) -> np.ndarray:
        return np.where(self.sale > 0, self.sale, self.price)

    def launched(self, day: int) -> np.ndarray:
        """Products present in the snapshot of ``day``."""
        return self.launch_day <= day

    def sellable(self, day: int) -> np.ndarray:
        """Products a shopper can add to a cart during ``day`` (state of snapshot ``day - 1``)."""
        return self.launched(day - 1) & (self.avail != OUT_OF_STOCK)

    # ------------------------------------------------------------------ dynamics
    def end_of_day(self, day: int, sold: np.ndarray, rng: np.random.Generator) -> DayChanges:
        """Apply the day's sales and the merchant's changes; the result is snapshot ``day``."""
        ch = DayChanges()
        live = self.launched(day)
        was_live = self.launched(day - 1)
        before_avail = self.avail.copy()
        before_eff = self.effective.copy()

        # sales (web + a trickle of other channels), never below zero
        offline = rng.poisson(0.4, self.n) * (self.avail == IN_STOCK) * was_live
        self.qty = np.maximum(self.qty - sold.astype(np.int64) - offline, 0)
        newly_empty = was_live & (self.avail == IN_STOCK) & (self.qty == 0)
        self.avail[newly_empty] = OUT_OF_STOCK
        self.restock_day[newly_empty] = day + rng.integers(2, 7, int(newly_empty.sum()))

        # supplier stock-outs
        cand = np.flatnonzero(was_live & (self.avail == IN_STOCK))
        k = min(len(cand), max(1, int(round(0.006 * len(cand)))))
        if k:
            w = np.sqrt(self.pop[cand])
            out = rng.choice(cand, size=k, replace=False, p=w / w.sum())
            self.avail[out] = OUT_OF_STOCK
            self.qty[out] = 0
            self.restock_day[out] = day + rng.integers(1, 6, k)

        # restocks (and pre-orders becoming available)
        back = was_live & np.isin(self.avail, (OUT_OF_STOCK, PREORDER)) & (self.restock_day <= day)
        back &= before_avail == self.avail  # not the ones that just went out today
        self.avail[back] = IN_STOCK
        self.qty[back] = rng.integers(15, 250, int(back.sum()))

        # prices
        cand = np.flatnonzero(was_live)
        n_change = max(3, int(round(0.02 * len(cand))))
        w = self.pop[cand] ** 0.5
        picked = rng.choice(cand, size=min(n_change, len(cand)), replace=False, p=w / w.sum())
        kind = rng.random(len(picked))
        kind[0] = 0.0  # at least one real drop a day
        for p, u in zip(picked.tolist(), kind.tolist(), strict=True):
            eff = int(self.effective[p])
            if u < 0.45:  # drop >= 10 %: a sale price, or a cut of the regular price
                new = _price_point(eff * rng.uniform(0.6, 0.86))
                if new > eff * 0.9:
                    new = _price_point(eff * 0.8)
                if self.sale[p] == 0 and rng.random() < 0.6:
                    self.sale[p] = new
                else:
                    self.price[p], self.sale[p] = new, 0
            elif u < 0.8:  # rise: a sale ends, or the regular price goes up
                if self.sale[p] > 0:
                    self.sale[p] = 0
                else:
                    self.price[p] = _price_point(self.price[p] * rng.uniform(1.04, 1.15))
            else:  # small cut (< 10 %)
                target = _price_point(eff * rng.uniform(0.93, 0.97))
                if target < eff:
                    if self.sale[p] > 0:
                        self.sale[p] = target
                    else:
                        self.price[p] = target

        after_eff = self.effective
        ch.price_drops = int((was_live & (after_eff <= 0.9 * before_eff)).sum())
        ch.small_price_cuts = int((was_live & (after_eff < before_eff) & (after_eff > 0.9 * before_eff)).sum())
        ch.price_rises = int((was_live & (after_eff > before_eff)).sum())
        ch.went_out_of_stock = int((was_live & (before_avail != OUT_OF_STOCK) & (self.avail == OUT_OF_STOCK)).sum())
        ch.back_in_stock = int((was_live & (before_avail == OUT_OF_STOCK) & (self.avail == IN_STOCK)).sum())
        ch.low_stock = int((live & (self.avail == IN_STOCK) & (self.qty <= 5)).sum())
        ch.new_products = int((self.launch_day == day).sum())
        return ch

    # ------------------------------------------------------------------ output
    def write_snapshot(self, path: Path, day: int) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        idx = np.flatnonzero(self.launched(day))
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(CSV_HEADER)
            for p in idx.tolist():
                w.writerow((
                    self.ids[p], self.titles[p], self.descriptions[p],
                    f"https://shop.example/p/{self.ids[p]}/{slugify(self.titles[p])}",
                    f"https://shop.example/images/{self.ids[p]}.jpg",
                    f"{money(int(self.price[p]))} EUR",
                    f"{money(int(self.sale[p]))} EUR" if self.sale[p] > 0 else "",
                    AVAILABILITY[self.avail[p]], self.brands[p],
                    tx.SUBCATEGORIES[self.subcat[p]].product_type, int(self.qty[p]),
                ))
        return len(idx)

    def write_truth(self, path: Path) -> None:
        """Ground truth the shop was generated from (not part of the input contract)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(("id", "group", "subcategory", "consumable", "repurchase_days", "gift", "popularity",
                        "complements", "launch_day"))
            for p in range(self.n):
                comps = " ".join(self.ids[c] for c in self.complements[p].tolist() if c >= 0)
                w.writerow((self.ids[p], tx.GROUPS[self.group[p]], tx.SUBCATEGORIES[self.subcat[p]].key,
                            int(self.repurchase_days[p] > 0), int(self.repurchase_days[p]),
                            int(self.gift[p]), f"{self.pop[p]:.6g}", comps, int(self.launch_day[p])))


def _price_point(euros_times_100: float) -> int:
    """Round a price in cents to a shop-like price point (x.90; x.49 / x.99 under 10 EUR)."""
    c = float(euros_times_100)
    if c < 1000:
        return max(150, int(round(c / 50.0)) * 50 - 1) if c >= 200 else 190
    return int(round(c / 100.0)) * 100 - 10


def build_catalog(rng: np.random.Generator, customers: int, days: int) -> Catalog:
    subs = tx.SUBCATEGORIES
    n_sub = len(subs)
    n_initial = catalog_size(customers)
    new_per_day = 1 + (rng.random(days) < 0.5).astype(int) + int(n_initial >= 2000)
    launch_new = np.repeat(np.arange(days), new_per_day)
    n = n_initial + len(launch_new)

    weights = np.array([s.weight for s in subs], dtype=float)
    subcat = np.concatenate([
        np.tile(np.arange(n_sub), 2),
        rng.choice(n_sub, size=n - 2 * n_sub, p=weights / weights.sum()),
    ])
    subcat[: n_initial] = rng.permutation(subcat[: n_initial])
    subcat = subcat.astype(np.int16)
    group_index = {g: i for i, g in enumerate(tx.GROUPS)}
    group = np.array([group_index[subs[s].group] for s in subcat], dtype=np.int8)
    launch_day = np.concatenate([np.full(n_initial, -1), launch_new]).astype(np.int16)

    ranks = rng.permutation(n_initial)
    pop = np.empty(n)
    pop[:n_initial] = 1.0 / (ranks + 1.0) ** ZIPF_EXPONENT
    pop[n_initial:] = 1.0 / (rng.uniform(0.02, 0.3, n - n_initial) * n_initial) ** ZIPF_EXPONENT

    ids, skus, titles, descriptions, brands = [], [], [], [], []
    repurchase = np.zeros(n, dtype=np.int32)
    gift = np.zeros(n, dtype=bool)
    price = np.zeros(n, dtype=np.int64)
    noun_i = rng.integers(0, 1 << 30, n)
    var_i = rng.integers(0, 1 << 30, n)
    size_i = rng.integers(0, 1 << 30, n)
    brand_i = rng.integers(0, 1 << 30, n)
    tail_i = rng.integers(0, len(tx.DESCRIPTION_TAILS), n)
    jitter = rng.uniform(0.9, 1.1, n)
    price_noise = rng.lognormal(0.0, 0.25, n)
    for p in range(n):
        s = subs[subcat[p]]
        noun = s.nouns[noun_i[p] % len(s.nouns)]
        variant = s.variants[var_i[p] % len(s.variants)]
        size_label, mult = s.sizes[size_i[p] % len(s.sizes)]
        brand_list = tx.SUBCATEGORY_BRANDS.get(s.key, tx.BRANDS[s.group])
        brand = brand_list[brand_i[p] % len(brand_list)]
        title = " ".join(part for part in (noun, variant, size_label) if part)
        ids.append(f"p{p + 1:05d}")
        skus.append(f"SKU-{s.key[:3].upper()}-{p + 1:05d}")
        titles.append(title)
        brands.append(brand)
        descriptions.append(f"{title}, par {brand}. {tx.DESCRIPTION_TAILS[tail_i[p]]}")
        if s.repurchase_days:
            repurchase[p] = max(7, int(round(s.repurchase_days * mult * jitter[p])))
        gift[p] = s.gift
        price[p] = _price_point(100.0 * s.price * mult ** 0.8 * price_noise[p])

    # hostile titles on a few initial products of the right kind
    key_of = [subs[s].key for s in subcat]
    for key, title in tx.HOSTILE_TITLES:
        for p in range(n_initial):
            if key_of[p] == key:
                titles[p] = title
                descriptions[p] = f"{title} — {tx.DESCRIPTION_TAILS[0]}"
                break
    descriptions[int(np.argmax(pop[:n_initial]))] = tx.HOSTILE_DESCRIPTION

    # complements: 1-3 products drawn uniformly (not by popularity) in the complement subcategories,
    # so co-purchase carries information a popularity ranking does not have
    members = [np.flatnonzero(subcat[:n_initial] == i) for i in range(n_sub)]
    key_index = {s.key: i for i, s in enumerate(subs)}
    complements = np.full((n, 3), -1, dtype=np.int32)
    n_comp = rng.choice(np.array([1, 2, 3]), size=n, p=[0.3, 0.4, 0.3])
    for p in range(n):
        options = subs[subcat[p]].complements
        chosen: list[int] = []
        for j in range(int(n_comp[p])):
            pool = members[key_index[options[j % len(options)]]]
            for _ in range(4):
                q = int(pool[int(rng.integers(0, len(pool)))])
                if q != p and q not in chosen:
                    chosen.append(q)
                    break
        complements[p, : len(chosen)] = chosen

    # initial state
    avail = np.full(n, IN_STOCK, dtype=np.int8)
    u = rng.random(n)
    avail[u < 0.04] = OUT_OF_STOCK
    avail[(u >= 0.04) & (u < 0.05)] = BACKORDER
    avail[(u >= 0.05) & (u < 0.055)] = PREORDER
    restock_day = np.where(avail == OUT_OF_STOCK, rng.integers(0, 6, n), 10**6).astype(np.int32)
    restock_day[avail == PREORDER] = rng.integers(1, 10, int((avail == PREORDER).sum()))
    new = launch_day >= 0
    avail[new] = np.where(rng.random(int(new.sum())) < 0.5, PREORDER, IN_STOCK)
    restock_day[new] = launch_day[new] + 2
    # stock sized to expected sales so that best-sellers run out now and then
    expected_daily_units = pop / pop[:n_initial].sum() * customers * 0.006
    qty = rng.integers(20, 300, n) + np.round(expected_daily_units * rng.uniform(3, 20, n)).astype(np.int64)
    low = rng.random(n) < 0.1
    qty[low] = rng.integers(3, 16, int(low.sum()))
    qty[avail != IN_STOCK] = 0
    qty[new & (avail == IN_STOCK)] = rng.integers(20, 100, int((new & (avail == IN_STOCK)).sum()))

    head_json, id_json = [], []
    for p in range(n):
        pid = json.dumps(ids[p])
        id_json.append(pid)
        head_json.append(
            f'"product_id":{pid},"sku":{json.dumps(skus[p])},"name":{json.dumps(titles[p], ensure_ascii=False)},'
            f'"category":{json.dumps(subs[subcat[p]].product_type, ensure_ascii=False)}'
        )

    return Catalog(
        n=n, n_initial=n_initial, subcat=subcat, group=group, launch_day=launch_day,
        repurchase_days=repurchase, gift=gift, pop=pop, complements=complements, ids=ids, skus=skus,
        titles=titles, descriptions=descriptions, brands=brands, price=price, sale=np.zeros(n, dtype=np.int64),
        avail=avail, qty=qty.astype(np.int64), restock_day=restock_day, head_json=head_json, id_json=id_json,
    )


class Sampler:
    """Popularity-weighted product draws, per affinity group (group -1 = whole catalogue)."""

    def __init__(self, catalog: Catalog, eligible: np.ndarray):
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        for g in range(len(tx.GROUPS)):
            idx = np.flatnonzero(eligible & (catalog.group == g))
            self.tables.append((idx, np.cumsum(catalog.pop[idx])))
        idx = np.flatnonzero(eligible)
        self.all = (idx, np.cumsum(catalog.pop[idx]))

    def sample(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        out = np.empty(len(groups), dtype=np.int32)
        u = rng.random(len(groups))
        for g, (idx, cum) in [(-1, self.all), *enumerate(self.tables)]:
            m = groups == g
            if not m.any():
                continue
            if len(idx) == 0:
                idx, cum = self.all
            pos = np.searchsorted(cum, u[m] * cum[-1], side="right")
            out[m] = idx[np.minimum(pos, len(idx) - 1)]
        return out

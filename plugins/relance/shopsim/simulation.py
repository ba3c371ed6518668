"""The shop's behaviour: imported order history, then day-by-day sessions, carts and orders.

Everything is drawn column-wise with numpy; a "session" is a row of a few arrays and its events
are rows of an event table (see ``events.py``). Random streams are derived from the seed and a
fixed tag per phase/day, so the output is byte-identical for the same arguments.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from . import events as ev
from .catalog import Catalog, DayChanges, Sampler, build_catalog
from .customers import DAY_MS, HOUR_MS, Customers, build_customers, epoch_ms, local_times, tz_offsets_ms
from .events import Baskets, TableBuilder

MIN_MS = 60_000

# behaviour knobs (documented in the package docstring)
P_FAV1, P_FAV2 = 0.60, 0.25  # share of draws in the favourite / second favourite group (rest: anywhere)
P_CART = {"organic": 0.36, "signup": 0.30, "repeat": 0.92}
P_ORDER = {"organic": 0.18, "signup": 0.20, "repeat": 0.70}  # of carts, in the same session
P_RECOVER = 0.10  # abandoned cart bought later (1 h .. 4 days later)
P_COMPLEMENT = 0.55  # a product's complement is added to the same cart
P_CHAIN_START, P_CHAIN_GO_ON = 0.35, 0.75  # consumables: start / continue a repurchase habit
P_CANCEL, P_REFUND = 0.01, 0.01
P_SHIP, P_DELIVERED = 0.9, 0.95  # orders not cancelled that ship with a tracked carrier; of those, delivered


class Shop:
    def __init__(self, customers: int, days: int, start: date, seed: int, history_days: int):
        self.seed = int(seed) % (1 << 63)
        self.start, self.days, self.history_days = start, days, history_days
        self.start_ms = epoch_ms(start)
        self.end_ms = self.start_ms + days * DAY_MS
        self.cat: Catalog = build_catalog(self.rng(1), customers, days)
        signups = np.maximum(1, self.rng(2).poisson(max(0.5, customers * 0.0015), days))
        self.cus: Customers = build_customers(self.rng(3), customers, signups, start, days, history_days)
        self.first_day = start - timedelta(days=history_days + 2)
        self.offsets = tz_offsets_ms(self.first_day, history_days + days + 4)
        self.first_epoch_day = epoch_ms(self.first_day) // DAY_MS
        self._retime_created()
        self.fmt = ev.Formatter(self.cat, self.cus)
        self.next_cart, self.next_checkout, self.next_order = 1, 1, 100_001
        # repurchase habits waiting for their day: customer, product, due time, quantity
        self.q_cust = np.zeros(0, np.int32)
        self.q_prod = np.zeros(0, np.int32)
        self.q_due = np.zeros(0, np.int64)
        self.q_qty = np.zeros(0, np.int16)
        self.lp_cust = np.zeros(0, np.int32)  # loyalty points awarded, waiting for their day
        self.lp_ts = np.zeros(0, np.int64)
        self.lp_pts = np.zeros(0, np.int64)
        self.wl_cust = np.zeros(0, np.int32)
        self.wl_prod = np.zeros(0, np.int32)
        self.sales = np.zeros((days, self.cat.n), dtype=np.int64)
        self.changes = DayChanges()
        self.carts = 0
        self.carts_ordered = 0
        self.orders_history = 0
        self.orders_window = 0

    def rng(self, *tags: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, *tags]))

    # ------------------------------------------------------------------ helpers
    def offset(self, ts_ms: np.ndarray, tz: np.ndarray) -> np.ndarray:
        day = np.clip(ts_ms // DAY_MS - self.first_epoch_day, 0, len(self.offsets) - 1)
        return self.offsets[day, tz]

    def _retime_created(self) -> None:
        """Give pre-existing customers' created_at a local time of day that follows the diurnal curve."""
        cus = self.cus
        n = cus.n_pre
        rng = self.rng(4)
        day0 = cus.created_ms[:n] // DAY_MS * DAY_MS
        t = local_times(rng, day0, self.offset(day0, cus.tz[:n]))
        t = np.where(t >= self.start_ms - HOUR_MS, t - DAY_MS, t)
        cus.created_ms[:n] = t

    def _groups(self, rng: np.random.Generator, cust: np.ndarray) -> np.ndarray:
        u = rng.random(len(cust))
        return np.where(u < P_FAV1, self.cus.fav1[cust],
                        np.where(u < P_FAV1 + P_FAV2, self.cus.fav2[cust], -1)).astype(np.int8)

    def _fill(self, rng: np.random.Generator, item0: np.ndarray, extra: np.ndarray | None, sellable: np.ndarray,
              price: np.ndarray, p_comp: float, p_extra: float, qty0: np.ndarray | None = None):
        """Cart contents: the product, maybe one of its complements, maybe another product."""
        n = len(item0)
        prod = np.full((n, 3), -1, dtype=np.int32)
        prod[:, 0] = item0
        comps = self.cat.complements[item0]
        n_comp = (comps >= 0).sum(axis=1)
        j = np.minimum(rng.choice(3, size=n, p=[0.6, 0.3, 0.1]), np.maximum(n_comp - 1, 0))
        comp = comps[np.arange(n), j]
        use = (rng.random(n) < p_comp) & (comp >= 0)
        use &= sellable[np.maximum(comp, 0)]
        prod[use, 1] = comp[use]
        if extra is not None:
            use = (rng.random(n) < p_extra) & sellable[extra] & (extra != item0) & (extra != prod[:, 1])
            prod[use, 2] = extra[use]
        qty = rng.choice(np.array([1, 2, 3], dtype=np.int16), size=(n, 3), p=[0.85, 0.12, 0.03])
        if qty0 is not None:
            qty[:, 0] = qty0
        qty[prod < 0] = 0
        unit = np.where(prod >= 0, price[np.maximum(prod, 0)], 0)
        return prod, qty, unit

    def _enqueue(self, cust, prod, due, qty) -> None:
        self.q_cust = np.concatenate([self.q_cust, cust.astype(np.int32)])
        self.q_prod = np.concatenate([self.q_prod, prod.astype(np.int32)])
        self.q_due = np.concatenate([self.q_due, due.astype(np.int64)])
        self.q_qty = np.concatenate([self.q_qty, qty.astype(np.int16)])

    def _next_due(self, rng: np.random.Generator, last_ts: np.ndarray, prod: np.ndarray) -> np.ndarray:
        interval = self.cat.repurchase_days[prod] * rng.lognormal(0.0, 0.12, len(prod))
        return last_ts + (interval * DAY_MS).astype(np.int64) + rng.integers(-6 * HOUR_MS, 6 * HOUR_MS, len(prod))

    # ------------------------------------------------------------------ imported history
    def history(self) -> tuple[ev.Table, Baskets, ev.Table, Baskets]:
        """Onboarding import: an identify per pre-existing customer, their past orders (with
        refunds/cancellations) and loyalty balances. Returns (import table, its baskets,
        refunds/cancellations falling inside the window, their (empty) baskets)."""
        rng = self.rng(10)
        cus, cat = self.cus, self.cat
        n = cus.n_pre
        start = self.start_ms
        created = cus.created_ms[:n]
        eligible = cat.launch_day < 0
        sampler = Sampler(cat, eligible)
        price0 = cat.effective.copy()

        # organic orders: often one soon after sign-up, then at the customer's own rate
        first = np.flatnonzero(rng.random(n) < 0.55)
        t_first = created[first] + MIN_MS + (rng.exponential(0.7, len(first)) * DAY_MS).astype(np.int64)
        tenure_days = (start - created) / DAY_MS
        k = rng.poisson(0.11 * cus.activity[:n] * tenure_days)
        more = np.repeat(np.arange(n), k)
        t_more = created[more] + (rng.random(len(more)) * (start - created[more])).astype(np.int64)
        day = t_more // DAY_MS * DAY_MS
        t_more = local_times(rng, day, self.offset(day, cus.tz[more]))
        o_cust = np.concatenate([first, more]).astype(np.int32)
        o_ts = np.concatenate([t_first, t_more])
        keep = (o_ts < start - MIN_MS) & (o_ts > created[o_cust])
        o_cust, o_ts = o_cust[keep], o_ts[keep]
        groups = self._groups(rng, o_cust)
        prod, qty, unit = self._fill(rng, sampler.sample(rng, groups), sampler.sample(rng, groups), eligible,
                                     price0, P_COMPLEMENT, 0.25)

        # repurchase habits: from the first purchase of each consumable, every ~interval days
        rows, slots = np.nonzero(prod >= 0)
        ic, ip, its, iq = o_cust[rows], prod[rows, slots], o_ts[rows], qty[rows, slots]
        cons = cat.repurchase_days[ip] > 0
        ic, ip, its, iq = ic[cons], ip[cons], its[cons], iq[cons]
        order = np.argsort(its, kind="stable")
        key = ic[order].astype(np.int64) * cat.n + ip[order]
        _, first_idx = np.unique(key, return_index=True)
        sel = order[np.sort(first_idx)]
        sel = sel[rng.random(len(sel)) < P_CHAIN_START]
        ch_c, ch_p, ch_t, ch_q = ic[sel], ip[sel], its[sel], iq[sel]
        rep_c, rep_p, rep_t, rep_q = [], [], [], []
        while len(ch_c):
            nxt = self._next_due(rng, ch_t, ch_p)
            past = nxt < start - MIN_MS
            self._enqueue(ch_c[~past], ch_p[~past], nxt[~past], ch_q[~past])
            rep_c.append(ch_c[past])
            rep_p.append(ch_p[past])
            rep_t.append(nxt[past])
            rep_q.append(ch_q[past])
            go_on = past & (rng.random(len(ch_c)) < P_CHAIN_GO_ON)
            ch_c, ch_p, ch_t, ch_q = ch_c[go_on], ch_p[go_on], nxt[go_on], ch_q[go_on]
        rep_c_a = np.concatenate(rep_c or [np.zeros(0, np.int32)]).astype(np.int32)
        rep_p_a = np.concatenate(rep_p or [np.zeros(0, np.int32)]).astype(np.int32)
        rep_t_a = np.concatenate(rep_t or [np.zeros(0, np.int64)])
        rep_q_a = np.concatenate(rep_q or [np.zeros(0, np.int16)]).astype(np.int16)
        r_prod, r_qty, r_unit = self._fill(rng, rep_p_a, None, eligible, price0, 0.2, 0.0, qty0=rep_q_a)

        cust = np.concatenate([o_cust, rep_c_a])
        ts = np.concatenate([o_ts, rep_t_a])
        order = np.argsort(ts, kind="stable")
        cust, ts = cust[order], ts[order]
        m = len(cust)
        baskets = Baskets(
            prod=np.concatenate([prod, r_prod])[order], qty=np.concatenate([qty, r_qty])[order],
            price=np.concatenate([unit, r_unit])[order], cart_no=np.full(m, -1, np.int64),
            checkout_no=np.full(m, -1, np.int64), order_no=self.next_order + np.arange(m, dtype=np.int64),
            coupon=np.where(rng.random(m) < 0.08, 0, -1).astype(np.int8),
        )
        self.next_order += m
        self.orders_history = m

        tb = TableBuilder()
        pre = np.arange(n)
        tb.add(ev.IDENTIFY, pre, ts=created, aux=cus.email_opt_in[:n] + 2 * cus.sms_opt_in[:n],
               aux2=cus.locale[:n])
        tb.add(ev.ORDER_COMPLETED, cust, ts=ts, basket=np.arange(m))
        carry = TableBuilder()
        u = rng.random(m)
        for kind, lo, hi, mask in ((ev.ORDER_CANCELLED, 5 * MIN_MS, 3 * HOUR_MS, u < P_CANCEL),
                                   (ev.ORDER_REFUNDED, 2 * DAY_MS, 20 * DAY_MS,
                                    (u >= P_CANCEL) & (u < P_CANCEL + P_REFUND))):
            i = np.flatnonzero(mask)
            t = ts[i] + rng.integers(lo, hi, len(i))
            past = t < start
            tb.add(kind, cust[i[past]], ts=t[past], ref=baskets.order_no[i[past]])
            fut = ~past & (t < self.end_ms)
            carry.add(kind, cust[i[fut]], ts=t[fut], ref=baskets.order_no[i[fut]])
        # loyalty balances as of the import
        revenue = baskets.totals(np.arange(m))["revenue"]
        member = cus.loyalty_member[cust]
        balance = np.bincount(cust[member], weights=revenue[member] // 100, minlength=n).astype(np.int64)
        last = np.zeros(n, dtype=np.int64)
        np.maximum.at(last, cust, ts)
        has = np.flatnonzero(balance > 0)
        tb.add(ev.LOYALTY_POINTS_UPDATED, has, ts=np.minimum(last[has] + 3000, start - 1), aux=balance[has])
        cus.points[:n] = balance
        table = tb.build()
        table = ev.take(table, np.argsort(table["ts"], kind="stable"))
        return table, baskets, carry.build(), Baskets.empty()

    # ------------------------------------------------------------------ one simulated day
    def day(self, d: int) -> tuple[ev.Table, Baskets]:
        rng = self.rng(100, d)
        cus, cat = self.cus, self.cat
        day_ms = self.start_ms + d * DAY_MS
        sellable = cat.sellable(d)
        viewable = cat.launched(d - 1)
        sampler = Sampler(cat, viewable)
        price = cat.effective.copy()

        # who shops today
        active = np.flatnonzero((cus.signup_day < d) & (rng.random(cus.n) < cus.activity))
        second = active[rng.random(len(active)) < 0.15]
        org = np.concatenate([active, second]).astype(np.int32)
        sig = np.flatnonzero(cus.signup_day == d).astype(np.int32)
        due = (self.q_due >= day_ms) & (self.q_due < day_ms + DAY_MS)
        rep, rep_prod, rep_qty, rep_due = self.q_cust[due], self.q_prod[due], self.q_qty[due], self.q_due[due]
        keep = ~due
        self.q_cust, self.q_prod, self.q_due, self.q_qty = (self.q_cust[keep], self.q_prod[keep],
                                                            self.q_due[keep], self.q_qty[keep])
        s_cust = np.concatenate([org, sig, rep])
        s_kind = np.concatenate([np.zeros(len(org), np.int8), np.ones(len(sig), np.int8),
                                 np.full(len(rep), 2, np.int8)])
        day_col = np.full(len(org) + len(sig), day_ms, dtype=np.int64)
        s_start = np.concatenate([local_times(rng, day_col, self.offset(day_col, cus.tz[s_cust[: len(day_col)]])),
                                  rep_due])
        S = len(s_cust)
        is_sig, is_rep = s_kind == 1, s_kind == 2
        forced = np.full(S, -1, np.int32)
        forced[is_rep] = rep_prod
        fqty = np.ones(S, np.int16)
        fqty[is_rep] = rep_qty

        tb = TableBuilder()
        sess = np.arange(S, dtype=np.int32)
        # sign-up: Signed Up, then the identify with every trait
        i = np.flatnonzero(is_sig)
        tb.add(ev.SIGNED_UP, s_cust[i], sess=i, seq=0, aux=rng.choice(4, size=len(i), p=[0.55, 0.25, 0.1, 0.1]))
        c = s_cust[i]
        tb.add(ev.IDENTIFY, c, sess=i, seq=1, aux=cus.email_opt_in[c] + 2 * cus.sms_opt_in[c], aux2=cus.locale[c])

        # browsing
        nv = np.where(is_rep, 1 + (rng.random(S) < 0.3), 1 + np.minimum(rng.poisson(2.2, S), 9)).astype(np.int64)
        v_sess = np.repeat(sess, nv)
        v_first = np.cumsum(nv) - nv
        v_j = np.arange(len(v_sess)) - v_first[v_sess]
        v_prod = sampler.sample(rng, self._groups(rng, s_cust[v_sess]))
        v_last = v_first + nv - 1
        v_prod[v_last[is_rep]] = forced[is_rep]
        first_prod, last_prod = v_prod[v_first], v_prod[v_last]
        has_search = rng.random(S) < np.where(is_rep, 0.1, 0.35)
        i = np.flatnonzero(has_search)
        tb.add(ev.PRODUCTS_SEARCHED, s_cust[i], sess=i, seq=2, prod=first_prod[i], aux=rng.integers(0, 3, len(i)))
        i = np.flatnonzero(rng.random(S) < np.where(is_rep, 0.1, 0.45))
        tb.add(ev.PRODUCT_LIST_VIEWED, s_cust[i], sess=i, seq=3, prod=first_prod[i])
        tb.add(ev.PRODUCT_VIEWED, s_cust[v_sess], sess=v_sess, seq=10 + 2 * v_j, prod=v_prod, price=price[v_prod])
        oos = ~sellable[v_prod]
        forced_oos_view = np.zeros(len(v_sess), bool)
        forced_oos_view[v_last[is_rep]] = oos[v_last[is_rep]]
        bis = oos & (rng.random(len(v_sess)) < np.where(forced_oos_view, 0.8, 0.35))
        i = np.flatnonzero(bis)
        tb.add(ev.BACK_IN_STOCK_REQUESTED, s_cust[v_sess[i]], sess=v_sess[i], seq=11 + 2 * v_j[i], prod=v_prod[i])
        wish = rng.random(len(v_sess)) < np.where(oos, 0.15, 0.02)
        i = np.flatnonzero(wish)
        tb.add(ev.WISHLIST_ADDED, s_cust[v_sess[i]], sess=v_sess[i], seq=11.5 + 2 * v_j[i], prod=v_prod[i])

        # wishlist clean-ups and consent / profile changes, in a customer's first session of the day
        first_sess = np.full(cus.n, -1, np.int32)
        first_sess[active] = np.arange(len(active), dtype=np.int32)
        wl_s = first_sess[self.wl_cust]
        drop = (wl_s >= 0) & (rng.random(len(wl_s)) < 0.15)
        tb.add(ev.WISHLIST_REMOVED, self.wl_cust[drop], sess=wl_s[drop], seq=5, prod=self.wl_prod[drop])
        self.wl_cust, self.wl_prod = self.wl_cust[~drop], self.wl_prod[~drop]
        self._profile_changes(rng, tb, active)

        # carts
        p_cart = np.select([is_rep, is_sig], [P_CART["repeat"], P_CART["signup"]], P_CART["organic"])
        has_cart = sellable[last_prod] & (rng.random(S) < p_cart)
        cs = np.flatnonzero(has_cart)
        nb = len(cs)
        qty0 = np.where(is_rep[cs], fqty[cs], rng.choice(np.array([1, 2, 3], np.int16), size=nb, p=[0.85, 0.12, 0.03]))
        b_prod, b_qty, b_unit = self._fill(rng, last_prod[cs], first_prod[cs], sellable, price,
                                           np.where(is_rep[cs], 0.2, P_COMPLEMENT), np.where(is_rep[cs], 0.0, 0.3),
                                           qty0=qty0)
        cart_no = self.next_cart + np.arange(nb, dtype=np.int64)
        self.next_cart += nb
        for slot in range(3):
            i = np.flatnonzero(b_prod[:, slot] >= 0)
            tb.add(ev.PRODUCT_ADDED, s_cust[cs[i]], sess=cs[i], seq=100 + slot, prod=b_prod[i, slot],
                   qty=b_qty[i, slot], price=b_unit[i, slot], ref=cart_no[i])
        n_items = (b_prod >= 0).sum(axis=1)
        removal = (n_items >= 2) & (rng.random(nb) < 0.15)
        last_slot = np.where(b_prod[:, 2] >= 0, 2, 1)
        i = np.flatnonzero(removal)
        tb.add(ev.PRODUCT_REMOVED, s_cust[cs[i]], sess=cs[i], seq=110, prod=b_prod[i, last_slot[i]],
               qty=b_qty[i, last_slot[i]], ref=cart_no[i])
        b_prod[i, last_slot[i]] = -1
        b_qty[i, last_slot[i]] = 0
        b_unit[i, last_slot[i]] = 0
        p_order = np.select([is_rep[cs], is_sig[cs]], [P_ORDER["repeat"], P_ORDER["signup"]], P_ORDER["organic"])
        ordered = rng.random(nb) < p_order
        checkout = ordered | (rng.random(nb) < 0.3)
        checkout_no = np.full(nb, -1, np.int64)
        checkout_no[checkout] = self.next_checkout + np.arange(int(checkout.sum()))
        self.next_checkout += int(checkout.sum())
        order_no = np.full(nb, -1, np.int64)
        order_no[checkout] = self.next_order + np.arange(int(checkout.sum()))
        self.next_order += int(checkout.sum())
        coupon = np.where(rng.random(nb) < np.where(is_sig[cs], 0.5, 0.08), np.where(is_sig[cs], 1, 0), -1)
        baskets = Baskets(b_prod, b_qty, b_unit, cart_no, checkout_no, order_no, coupon.astype(np.int8))
        i = np.flatnonzero(rng.random(nb) < 0.55)
        tb.add(ev.CART_VIEWED, s_cust[cs[i]], sess=cs[i], seq=120, basket=i)
        i = np.flatnonzero(checkout)
        tb.add(ev.CHECKOUT_STARTED, s_cust[cs[i]], sess=cs[i], seq=130, basket=i)
        i = np.flatnonzero(ordered)
        tb.add(ev.ORDER_COMPLETED, s_cust[cs[i]], sess=cs[i], seq=140, basket=i)

        # time the sessions' events: ordered by seq, exponential gaps per kind
        t = tb.build()
        order = np.lexsort((t["seq"], t["sess"]))
        t = ev.take(t, order)
        gap_mean = np.full(ev.N_KINDS, 30_000.0)
        gap_mean[[ev.IDENTIFY, ev.IDENTIFY_UPDATE]] = 1_500
        gap_mean[ev.PRODUCT_VIEWED] = 45_000
        gap_mean[[ev.CHECKOUT_STARTED, ev.ORDER_COMPLETED]] = 90_000
        gap_mean[[ev.BACK_IN_STOCK_REQUESTED, ev.WISHLIST_ADDED]] = 8_000
        gaps = (rng.exponential(1.0, len(order)) * gap_mean[t["kind"]]).astype(np.int64) + 300
        new_sess = np.ones(len(order), bool)
        new_sess[1:] = t["sess"][1:] != t["sess"][:-1]
        gaps[new_sess] = 0
        cum = np.cumsum(gaps)
        sess_first = np.maximum.accumulate(np.where(new_sess, np.arange(len(order)), 0))
        t["ts"] = s_start[t["sess"]] + cum - cum[sess_first]
        signed = t["kind"] == ev.SIGNED_UP
        cus.created_ms[t["cust"][signed]] = t["ts"][signed]
        sess_end = np.full(S, -1, np.int64)
        np.maximum.at(sess_end, t["sess"], t["ts"])
        t = ev.take(t, np.flatnonzero(t["ts"] < self.end_ms))

        # wishlist pool grows with what was really emitted
        wl = t["kind"] == ev.WISHLIST_ADDED
        self.wl_cust = np.concatenate([self.wl_cust, t["cust"][wl]])
        self.wl_prod = np.concatenate([self.wl_prod, t["prod"][wl]])

        # carts: which were really opened, ordered, or come back later (recovered)
        added = t["kind"] == ev.PRODUCT_ADDED
        opened = np.zeros(nb, bool)
        b_of_cart = np.searchsorted(cart_no, t["ref"][added])
        opened[b_of_cart] = True
        ord_rows = t["kind"] == ev.ORDER_COMPLETED
        done = np.zeros(nb, bool)
        done[t["basket"][ord_rows]] = True
        rec = np.flatnonzero(opened & ~done & (rng.random(nb) < P_RECOVER))
        delay = np.clip(rng.lognormal(np.log(18 * HOUR_MS), 0.9, len(rec)), HOUR_MS, 96 * HOUR_MS).astype(np.int64)
        t_r = sess_end[cs[rec]] + delay
        need_chk = baskets.checkout_no[rec] < 0
        baskets.checkout_no[rec[need_chk]] = self.next_checkout + np.arange(int(need_chk.sum()))
        self.next_checkout += int(need_chk.sum())
        need_ord = baskets.order_no[rec] < 0
        baskets.order_no[rec[need_ord]] = self.next_order + np.arange(int(need_ord.sum()))
        self.next_order += int(need_ord.sum())
        rb = TableBuilder()
        view = rng.random(len(rec)) < 0.5
        rb.add(ev.CART_VIEWED, s_cust[cs[rec[view]]], ts=t_r[view], basket=rec[view])
        t_chk = t_r + rng.integers(20_000, 120_000, len(rec))
        rb.add(ev.CHECKOUT_STARTED, s_cust[cs[rec]], ts=t_chk, basket=rec)
        rb.add(ev.ORDER_COMPLETED, s_cust[cs[rec]], ts=t_chk + rng.integers(40_000, 240_000, len(rec)), basket=rec)
        r = rb.build()
        t = ev.concat([t, ev.take(r, np.flatnonzero(r["ts"] < self.end_ms))])
        ord_rows = np.flatnonzero(t["kind"] == ev.ORDER_COMPLETED)
        done[:] = False
        done[t["basket"][ord_rows]] = True
        self.carts += int(opened.sum())
        self.carts_ordered += int((opened & done).sum())
        self.orders_window += len(ord_rows)

        post = self._after_orders(rng, t, ord_rows, baskets, cs, s_kind, forced)
        # repeat sessions that did not end in an order: the habit resumes a few days later
        rep_s = np.flatnonzero(is_rep)
        bought = np.zeros(S, bool)
        bought[cs[done]] = True
        missed = rep_s[~bought[rep_s]]
        again = missed[rng.random(len(missed)) < np.where(sellable[forced[missed]], 0.5, 0.8)]
        self._enqueue(s_cust[again], forced[again], s_start[again] + rng.integers(2 * DAY_MS, 8 * DAY_MS, len(again)),
                      fqty[again])
        t = ev.concat([t, post, self._loyalty_until(day_ms + DAY_MS), self._shipments(d, t, ord_rows, baskets, post)])
        return t, baskets

    def _profile_changes(self, rng: np.random.Generator, tb: TableBuilder, active: np.ndarray) -> None:
        cus = self.cus
        sess = np.arange(len(active), dtype=np.int32)
        # unsubscribes (a track call, then the identify that records the lost consent)
        # (at least one of each a day, so that small shops exercise them too)
        uns = _at_least_one(rng, cus.email_opt_in[active], 0.003)
        i = np.flatnonzero(uns)
        tb.add(ev.EMAIL_UNSUBSCRIBED, active[i], sess=sess[i], seq=-2)
        tb.add(ev.IDENTIFY_UPDATE, active[i], sess=sess[i], seq=-1.5, aux=ev.UPD_EMAIL_OFF)
        cus.email_opt_in[active[i]] = False
        # one- or two-trait identifies: consent flips, locale change, new phone number
        upd = _at_least_one(rng, ~uns, 0.004)
        i = np.flatnonzero(upd)
        c = active[i]
        u = rng.random(len(i))
        code = np.where(u < 0.45, np.where(cus.email_opt_in[c], ev.UPD_EMAIL_OFF, ev.UPD_EMAIL_ON),
                        np.where(u < 0.55, np.where(cus.sms_opt_in[c], ev.UPD_SMS_OFF, ev.UPD_SMS_ON),
                                 np.where(u < 0.65, ev.UPD_BOTH_ON,
                                          np.where(u < 0.8, np.where(cus.locale[c] == 0, ev.UPD_LOCALE_EN,
                                                                     ev.UPD_LOCALE_FR), ev.UPD_PHONE))))
        phone = np.array([int(p[1:]) for p in cus.new_phone(rng, c)], dtype=np.int64) if len(c) else np.zeros(0)
        tb.add(ev.IDENTIFY_UPDATE, c, sess=sess[i], seq=-1, aux=code, aux2=np.where(code == ev.UPD_PHONE, phone, 0))
        cus.email_opt_in[c[code == ev.UPD_EMAIL_OFF]] = False
        cus.email_opt_in[c[(code == ev.UPD_EMAIL_ON) | (code == ev.UPD_BOTH_ON)]] = True
        cus.sms_opt_in[c[code == ev.UPD_SMS_OFF]] = False
        cus.sms_opt_in[c[(code == ev.UPD_SMS_ON) | (code == ev.UPD_BOTH_ON)]] = True
        cus.locale[c[code == ev.UPD_LOCALE_FR]] = 0
        cus.locale[c[code == ev.UPD_LOCALE_EN]] = 1

    def _after_orders(self, rng: np.random.Generator, t: ev.Table, ord_rows: np.ndarray, baskets: Baskets,
                      cs: np.ndarray, s_kind: np.ndarray, forced: np.ndarray) -> ev.Table:
        """Loyalty points, cancellations/refunds, stock sold and repurchase habits of the day's orders."""
        cus, cat = self.cus, self.cat
        o_cust = t["cust"][ord_rows]
        o_ts = t["ts"][ord_rows]
        o_b = t["basket"][ord_rows]
        tb = TableBuilder()
        revenue = baskets.totals(o_b)["revenue"]
        # loyalty: points wait for the day their update happens (orders of recovered carts can be days
        # ahead), so that each member's balance grows in time order
        member = np.flatnonzero(cus.loyalty_member[o_cust])
        ts_l = o_ts[member] + rng.integers(1500, 6000, len(member))
        ok = ts_l < self.end_ms
        self.lp_cust = np.concatenate([self.lp_cust, o_cust[member[ok]]])
        self.lp_ts = np.concatenate([self.lp_ts, ts_l[ok]])
        self.lp_pts = np.concatenate([self.lp_pts, revenue[member[ok]] // 100])
        # cancellations and refunds
        u = rng.random(len(ord_rows))
        for kind, lo, hi, mask in ((ev.ORDER_CANCELLED, 5 * MIN_MS, 3 * HOUR_MS, u < P_CANCEL),
                                   (ev.ORDER_REFUNDED, 2 * DAY_MS, 14 * DAY_MS,
                                    (u >= P_CANCEL) & (u < P_CANCEL + P_REFUND))):
            i = np.flatnonzero(mask)
            ts = o_ts[i] + rng.integers(lo, hi, len(i))
            ok = ts < self.end_ms
            tb.add(kind, o_cust[i[ok]], ts=ts[ok], ref=baskets.order_no[o_b[i[ok]]])
        # stock sold, on the day each order happened
        prod = baskets.prod[o_b]
        rows, slots = np.nonzero(prod >= 0)
        ip = prod[rows, slots]
        iq = baskets.qty[o_b][rows, slots]
        it = o_ts[rows]
        ic = o_cust[rows]
        day = (it - self.start_ms) // DAY_MS
        np.add.at(self.sales, (day, ip), iq)
        # repurchase habits: a repeat order carries its habit on; a first consumable purchase may start one
        session_of_basket = cs[o_b[rows]]
        habit = (s_kind[session_of_basket] == 2) & (forced[session_of_basket] == ip)
        cons = cat.repurchase_days[ip] > 0
        go_on = habit & (rng.random(len(ip)) < P_CHAIN_GO_ON)
        self._enqueue(ic[go_on], ip[go_on], self._next_due(rng, it[go_on], ip[go_on]), iq[go_on])
        cand = np.flatnonzero(cons & ~habit)
        if len(cand):
            known = np.unique(self.q_cust.astype(np.int64) * cat.n + self.q_prod)
            key = ic[cand].astype(np.int64) * cat.n + ip[cand]
            fresh = ~np.isin(key, known)
            _, first = np.unique(key, return_index=True)
            once = np.zeros(len(cand), bool)
            once[first] = True
            start = cand[fresh & once & (rng.random(len(cand)) < P_CHAIN_START)]
            self._enqueue(ic[start], ip[start], self._next_due(rng, it[start], ip[start]), iq[start])
        return tb.build()

    def _shipments(self, d: int, t: ev.Table, ord_rows: np.ndarray, baskets: Baskets, post: ev.Table) -> ev.Table:
        """Order Updated of the day's orders: shipped 18–30 h after the order with a carrier and
        a tracking link, delivered 20–60 h later — never for a cancelled order, and a refunded
        one is neither shipped nor delivered after its refund. Own random stream (the day's
        other draws are unchanged)."""
        rng = self.rng(700, d)
        order_no = baskets.order_no[t["basket"][ord_rows]]
        o_cust, o_ts = t["cust"][ord_rows], t["ts"][ord_rows]
        n = len(ord_rows)
        never = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        cancelled = np.isin(order_no, post["ref"][post["kind"] == ev.ORDER_CANCELLED])
        refunds = post["kind"] == ev.ORDER_REFUNDED
        refund_at = never.copy()
        refunded_no, refunded_at = post["ref"][refunds], post["ts"][refunds]
        hit = np.isin(order_no, refunded_no)
        by_no = np.argsort(refunded_no)
        refund_at[hit] = refunded_at[by_no[np.searchsorted(refunded_no, order_no[hit], sorter=by_no)]]
        ship_at = o_ts + rng.integers(18 * HOUR_MS, 30 * HOUR_MS, n)
        deliver_at = ship_at + rng.integers(20 * HOUR_MS, 60 * HOUR_MS, n)
        carrier = rng.choice(len(ev.CARRIERS), size=n, p=ev.CARRIER_WEIGHTS)
        ships = ~cancelled & (rng.random(n) < P_SHIP) & (ship_at < refund_at) & (ship_at < self.end_ms)
        delivers = ships & (rng.random(n) < P_DELIVERED) & (deliver_at < refund_at) & (deliver_at < self.end_ms)
        tb = TableBuilder()
        tb.add(ev.ORDER_UPDATED, o_cust[ships], ts=ship_at[ships], ref=order_no[ships], aux=ev.SHIPPED,
               aux2=carrier[ships])
        tb.add(ev.ORDER_UPDATED, o_cust[delivers], ts=deliver_at[delivers], ref=order_no[delivers], aux=ev.DELIVERED)
        return tb.build()

    def _loyalty_until(self, until_ms: int) -> ev.Table:
        """Loyalty Points Updated for the pending point awards before ``until_ms``, running balances."""
        due = self.lp_ts < until_ms
        mc, ts, pts = self.lp_cust[due], self.lp_ts[due], self.lp_pts[due]
        self.lp_cust, self.lp_ts, self.lp_pts = self.lp_cust[~due], self.lp_ts[~due], self.lp_pts[~due]
        order = np.lexsort((ts, mc))
        mc, ts, pts = mc[order], ts[order], pts[order]
        cum = np.cumsum(pts)
        grp_start = np.ones(len(mc), bool)
        grp_start[1:] = mc[1:] != mc[:-1]
        base = np.maximum.accumulate(np.where(grp_start, np.arange(len(mc)), 0))
        balance = self.cus.points[mc] + cum - (cum[base] - pts[base])
        last = np.ones(len(mc), bool)
        last[:-1] = mc[1:] != mc[:-1]
        self.cus.points[mc[last]] = balance[last]
        tb = TableBuilder()
        tb.add(ev.LOYALTY_POINTS_UPDATED, mc, ts=ts, aux=balance)
        return tb.build()

    def end_of_day(self, d: int) -> None:
        ch = self.cat.end_of_day(d, self.sales[d], self.rng(200, d))
        self.changes.add(ch)


def _at_least_one(rng: np.random.Generator, eligible: np.ndarray, p: float) -> np.ndarray:
    """A Bernoulli(p) draw over the eligible rows, topped up to one row when there is any."""
    picked = eligible & (rng.random(len(eligible)) < p)
    if not picked.any() and eligible.any():
        cand = np.flatnonzero(eligible)
        picked[cand[int(rng.integers(0, len(cand)))]] = True
    return picked

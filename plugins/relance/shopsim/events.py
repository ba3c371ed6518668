"""Column-wise event tables and their formatting into Segment JSON lines.

Events are built as numpy columns (one row per call) and formatted kind by kind with string
templates: no dict per event, no ``json.dumps`` per event. Every string that can hold user
text (names, titles, queries) is JSON-encoded once, up front, in a lookup table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from . import taxonomy as tx
from .catalog import Catalog
from .customers import Customers

(IDENTIFY, IDENTIFY_UPDATE, SIGNED_UP, PRODUCTS_SEARCHED, PRODUCT_LIST_VIEWED, PRODUCT_VIEWED, PRODUCT_ADDED,
 PRODUCT_REMOVED, CART_VIEWED, CHECKOUT_STARTED, ORDER_COMPLETED, ORDER_REFUNDED, ORDER_CANCELLED,
 WISHLIST_ADDED, WISHLIST_REMOVED, BACK_IN_STOCK_REQUESTED, EMAIL_UNSUBSCRIBED, LOYALTY_POINTS_UPDATED,
 ORDER_UPDATED) = range(19)

EVENT_NAMES = (
    "identify", "identify", "Signed Up", "Products Searched", "Product List Viewed", "Product Viewed",
    "Product Added", "Product Removed", "Cart Viewed", "Checkout Started", "Order Completed", "Order Refunded",
    "Order Cancelled", "Product Added to Wishlist", "Product Removed from Wishlist", "Back In Stock Requested",
    "Email Unsubscribed", "Loyalty Points Updated", "Order Updated",
)
N_KINDS = len(EVENT_NAMES)

# partial identify payloads (aux code of IDENTIFY_UPDATE rows)
UPD_EMAIL_OFF, UPD_EMAIL_ON, UPD_SMS_OFF, UPD_SMS_ON, UPD_BOTH_ON, UPD_LOCALE_FR, UPD_LOCALE_EN, UPD_PHONE = range(8)
COUPONS = ("MERCI10", "BIENVENUE10")
# Order Updated (aux: 0 shipped, 1 delivered; aux2: carrier): name, tracking number prefix, URL before
# the number. The last one is hostile (markup and CR/LF in the name, a javascript: link): ingest drops
# the link with a reason, the notice escapes the name.
SHIPPED, DELIVERED = 0, 1
CARRIERS = (
    ("Colissimo", "6A", "https://www.laposte.fr/outils/suivre-vos-envois?code="),
    ("Chronopost", "XY", "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT="),
    ("Mondial Relay", "MR", "https://www.mondialrelay.fr/suivi-de-colis/?NumeroExpedition="),
    ("DHL Express", "JD", "https://www.dhl.com/fr-fr/home/suivi.html?tracking-id="),
    ('<b>Relais "Express"</b>\r\nBcc: all@evil.example', "ZZ", "javascript:alert(document.cookie)//"),
)
CARRIER_WEIGHTS = (0.5, 0.2, 0.2, 0.095, 0.005)
VAT_RATE = 0.20
FREE_SHIPPING_CENTS = 4900
SHIPPING_CENTS = 490

COLUMNS: dict[str, tuple[type, int | float]] = {
    "kind": (np.int8, 0),
    "cust": (np.int32, 0),
    "ts": (np.int64, 0),
    "prod": (np.int32, -1),
    "qty": (np.int16, 0),
    "price": (np.int64, 0),  # cents
    "ref": (np.int64, -1),  # cart number (cart events) / order number (refund, cancel)
    "basket": (np.int32, -1),  # row of the batch's basket table
    "aux": (np.int64, 0),
    "aux2": (np.int64, 0),
    "sess": (np.int32, -1),
    "seq": (np.float64, 0.0),
}

Table = dict[str, np.ndarray]


class TableBuilder:
    def __init__(self) -> None:
        self.parts: list[Table] = []

    def add(self, kind: int, cust: np.ndarray, **cols: np.ndarray | int | float) -> None:
        n = len(cust)
        if n == 0:
            return
        part: Table = {}
        for name, (dtype, default) in COLUMNS.items():
            value = cols.get(name, default)
            part[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy() if np.ndim(value) == 0 \
                else np.asarray(value, dtype=dtype)
        part["kind"][:] = kind
        part["cust"] = np.asarray(cust, dtype=np.int32)
        self.parts.append(part)

    def build(self) -> Table:
        if not self.parts:
            return empty_table()
        return {name: np.concatenate([p[name] for p in self.parts]) for name in COLUMNS}


def empty_table() -> Table:
    return {name: np.zeros(0, dtype=dtype) for name, (dtype, _) in COLUMNS.items()}


def take(table: Table, idx: np.ndarray) -> Table:
    return {k: v[idx] for k, v in table.items()}


def concat(tables: list[Table]) -> Table:
    tables = [t for t in tables if len(t["kind"])]
    if not tables:
        return empty_table()
    return {k: np.concatenate([t[k] for t in tables]) for k in COLUMNS}


@dataclass
class Baskets:
    """Cart / order contents of one batch: up to three product slots per basket."""

    prod: np.ndarray  # (m, 3) int32, -1 = empty slot
    qty: np.ndarray  # (m, 3) int16
    price: np.ndarray  # (m, 3) int64 cents, unit price when added
    cart_no: np.ndarray  # int64, -1 = no cart (imported history)
    checkout_no: np.ndarray  # int64, -1 = none
    order_no: np.ndarray  # int64, -1 = none yet
    coupon: np.ndarray  # int8 index into COUPONS, -1 = none

    @staticmethod
    def empty() -> Baskets:
        return Baskets(np.full((0, 3), -1, np.int32), np.zeros((0, 3), np.int16), np.zeros((0, 3), np.int64),
                       *(np.zeros(0, np.int64) for _ in range(3)), np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.cart_no)

    def totals(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Money columns (cents) of the given baskets. Prices include VAT; ``revenue`` is the
        merchandise after discount, ``tax`` the VAT it contains, ``total`` = revenue + shipping."""
        prod, qty, price = self.prod[idx], self.qty[idx], self.price[idx]
        subtotal = (price * qty * (prod >= 0)).sum(axis=1)
        discount = np.where(self.coupon[idx] >= 0, np.round(subtotal * 0.10), 0).astype(np.int64)
        revenue = subtotal - discount
        shipping = np.where(revenue >= FREE_SHIPPING_CENTS, 0, SHIPPING_CENTS)
        tax = np.round(revenue * VAT_RATE / (1 + VAT_RATE)).astype(np.int64)
        return {"subtotal": subtotal, "discount": discount, "revenue": revenue, "shipping": shipping,
                "tax": tax, "total": revenue + shipping}


def concat_baskets(parts: list[Baskets]) -> Baskets:
    return Baskets(*(np.concatenate([getattr(p, f) for p in parts]) for f in Baskets.__dataclass_fields__))


def money_list(cents: np.ndarray) -> list[str]:
    return [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]


def iso_ms(ts: np.ndarray) -> list[str]:
    return np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()


def uuid_like(rng: np.random.Generator, n: int) -> list[str]:
    """Random version-4-shaped UUID strings (deterministic from ``rng``), vectorised."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexchars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    h = np.empty((n, 32), dtype=np.uint8)
    h[:, 0::2] = hexchars[raw >> 4]
    h[:, 1::2] = hexchars[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18], out[:, 19:23], out[:, 24:36] = (
        h[:, 0:8], h[:, 8:12], h[:, 12:16], h[:, 16:20], h[:, 20:32])
    return out.view("S36").ravel().astype("U36").tolist()


def cart_id(n: int) -> str:
    return f"crt{n:08d}"


def checkout_id(n: int) -> str:
    return f"chk{n:08d}"


def order_id(n: int) -> str:
    return f"O{n:07d}"


class Formatter:
    """Turns event tables into JSON lines; lookup tables are built once per shop."""

    def __init__(self, catalog: Catalog, customers: Customers):
        self.cat, self.cus = catalog, customers
        self.head = np.array(catalog.head_json, dtype=object)
        self.pid = np.array(catalog.id_json, dtype=object)
        subs = tx.SUBCATEGORIES
        queries = []
        for p in range(catalog.n):
            s = subs[catalog.subcat[p]]
            kw = s.keywords[p % len(s.keywords)]
            typo = kw[:-2] + kw[-1] + kw[-2] if len(kw) > 4 else kw  # swapped letters
            queries += [kw, f"{catalog.brands[p]} {kw}".lower(), typo]
        self.query = np.array([json.dumps(q, ensure_ascii=False) for q in queries], dtype=object)
        self.list_props = np.array([
            f'"list_id":"{s.key}","category":{json.dumps(s.product_type, ensure_ascii=False)}' for s in subs
        ], dtype=object)

    # ------------------------------------------------------------------ items
    def _items(self, baskets: Baskets, bidx: np.ndarray, full: bool) -> list[str]:
        prod = baskets.prod[bidx]
        valid = prod >= 0
        rows, slots = np.nonzero(valid)
        p = prod[rows, slots]
        q = baskets.qty[bidx][rows, slots].tolist()
        pr = money_list(baskets.price[bidx][rows, slots])
        if full:
            items = [f"{{{h},\"quantity\":{a},\"price\":{b}}}" for h, a, b in zip(self.head[p], q, pr, strict=True)]
        else:
            items = [f'{{"product_id":{i},"quantity":{a},"price":{b}}}' for i, a, b in zip(self.pid[p], q, pr,
                                                                                               strict=True)]
        ends = np.cumsum(valid.sum(axis=1)).tolist()
        starts = [0, *ends[:-1]]
        return ["[" + ",".join(items[s:e]) + "]" for s, e in zip(starts, ends, strict=True)]

    # ------------------------------------------------------------------ properties by kind
    def _props(self, kind: int, t: Table, baskets: Baskets) -> list[str]:
        n = len(t["kind"])
        cus, cat = self.cus, self.cat
        if kind == IDENTIFY:
            c = t["cust"]
            bits = t["aux"]
            created = iso_ms(t["ts"])
            tzname = np.array([z[0] for z in tx.TIMEZONES], dtype=object)[cus.tz[c]]
            loc = np.array(["fr", "en"], dtype=object)[t["aux2"]]
            e_in = np.where(bits & 1, "true", "false").tolist()
            s_in = np.where(bits & 2, "true", "false").tolist()
            return [
                f'"email":"{em}","first_name":{fn},"last_name":{ln},"phone":"{ph}","birthday":"{bd}",'
                f'"locale":"{lo}","timezone":"{tz}","created_at":"{cr}","email_opt_in":{ei},"sms_opt_in":{si}'
                for em, fn, ln, ph, bd, lo, tz, cr, ei, si in zip(
                    cus.email[c], cus.first_json[c], cus.last_json[c], cus.phone[c], cus.birthday[c], loc, tzname,
                    created, e_in, s_in, strict=True)
            ]
        if kind == IDENTIFY_UPDATE:
            fixed = {UPD_EMAIL_OFF: '"email_opt_in":false', UPD_EMAIL_ON: '"email_opt_in":true',
                     UPD_SMS_OFF: '"sms_opt_in":false', UPD_SMS_ON: '"sms_opt_in":true',
                     UPD_BOTH_ON: '"email_opt_in":true,"sms_opt_in":true', UPD_LOCALE_FR: '"locale":"fr"',
                     UPD_LOCALE_EN: '"locale":"en"'}
            return [fixed[a] if a != UPD_PHONE else f'"phone":"+{b}"'
                    for a, b in zip(t["aux"].tolist(), t["aux2"].tolist(), strict=True)]
        if kind == SIGNED_UP:
            return [f'"method":"{tx.SIGNUP_METHODS[a]}"' for a in t["aux"].tolist()]
        if kind == PRODUCTS_SEARCHED:
            return [f'"query":{q}' for q in self.query[t["prod"] * 3 + t["aux"]]]
        if kind == PRODUCT_LIST_VIEWED:
            return self.list_props[cat.subcat[t["prod"]]].tolist()
        if kind == PRODUCT_VIEWED:
            return [f'{h},"price":{m},"currency":"EUR"'
                    for h, m in zip(self.head[t["prod"]], money_list(t["price"]), strict=True)]
        if kind == PRODUCT_ADDED:
            return [f'"cart_id":"crt{c:08d}",{h},"price":{m},"quantity":{q},"currency":"EUR"'
                    for c, h, m, q in zip(t["ref"].tolist(), self.head[t["prod"]], money_list(t["price"]),
                                          t["qty"].tolist(), strict=True)]
        if kind == PRODUCT_REMOVED:
            return [f'"cart_id":"crt{c:08d}","product_id":{p},"quantity":{q}'
                    for c, p, q in zip(t["ref"].tolist(), self.pid[t["prod"]], t["qty"].tolist(), strict=True)]
        if kind in (CART_VIEWED, CHECKOUT_STARTED, ORDER_COMPLETED):
            b = t["basket"]
            items = self._items(baskets, b, full=kind != CART_VIEWED)
            carts = baskets.cart_no[b].tolist()
            if kind == CART_VIEWED:
                return [f'"cart_id":"crt{c:08d}","products":{i}' for c, i in zip(carts, items, strict=True)]
            tot = baskets.totals(b)
            orders = baskets.order_no[b].tolist()
            checkouts = baskets.checkout_no[b].tolist()
            if kind == CHECKOUT_STARTED:
                return [
                    f'"checkout_id":"chk{k:08d}","order_id":"O{o:07d}","cart_id":"crt{c:08d}","value":{v},'
                    f'"revenue":{r},"currency":"EUR","products":{i}'
                    for k, o, c, v, r, i in zip(checkouts, orders, carts, money_list(tot["subtotal"]),
                                                money_list(tot["revenue"]), items, strict=True)
                ]
            coupon = baskets.coupon[b].tolist()
            out = []
            for o, k, c, cp, tt, r, sh, tax, d, i in zip(
                    orders, checkouts, carts, coupon, money_list(tot["total"]), money_list(tot["revenue"]),
                    money_list(tot["shipping"]), money_list(tot["tax"]), money_list(tot["discount"]), items,
                    strict=True):
                via = f',"checkout_id":"chk{k:08d}","cart_id":"crt{c:08d}"' if k >= 0 else ""
                cps = f',"coupon":"{COUPONS[cp]}"' if cp >= 0 else ""
                out.append(f'"order_id":"O{o:07d}"{via},"total":{tt},"revenue":{r},"shipping":{sh},"tax":{tax},'
                           f'"discount":{d}{cps},"currency":"EUR","products":{i}')
            return out
        if kind in (ORDER_REFUNDED, ORDER_CANCELLED):
            return [f'"order_id":"O{o:07d}"' for o in t["ref"].tolist()]
        if kind == ORDER_UPDATED:
            out = []
            for o, status, c in zip(t["ref"].tolist(), t["aux"].tolist(), t["aux2"].tolist(), strict=True):
                if status == DELIVERED:
                    out.append(f'"order_id":"O{o:07d}","status":"delivered"')
                    continue
                name, prefix, url = CARRIERS[c]
                number = f"{prefix}{o * 7919 % 10**11:011d}"
                out.append(f'"order_id":"O{o:07d}","status":"shipped","carrier":{json.dumps(name)},'
                           f'"tracking_number":"{number}","tracking_url":"{url}{number}"')
            return out
        if kind in (WISHLIST_ADDED, WISHLIST_REMOVED):
            return [f'"wishlist_id":"wl-{u}","product_id":{p}'
                    for u, p in zip(cus.uid[t["cust"]], self.pid[t["prod"]], strict=True)]
        if kind == BACK_IN_STOCK_REQUESTED:
            return [f'"product_id":{p}' for p in self.pid[t["prod"]]]
        if kind == EMAIL_UNSUBSCRIBED:
            return [""] * n
        if kind == LOYALTY_POINTS_UPDATED:
            return [f'"points_balance":{a}' for a in t["aux"].tolist()]
        raise ValueError(f"unknown kind {kind}")

    def lines(self, t: Table, baskets: Baskets, message_ids: list[str]) -> list[str]:
        n = len(t["kind"])
        out = np.empty(n, dtype=object)
        kinds = t["kind"]
        for kind in np.unique(kinds).tolist():
            idx = np.flatnonzero(kinds == kind)
            sub = take(t, idx)
            props = self._props(kind, sub, baskets)
            mids = [message_ids[i] for i in idx.tolist()]
            uids = self.cus.uid[sub["cust"]]
            ts = iso_ms(sub["ts"])
            ctx = self.cus.ctx_json[sub["cust"]]
            if kind in (IDENTIFY, IDENTIFY_UPDATE):
                out[idx] = [f'{{"type":"identify","messageId":"{m}","userId":"{u}","timestamp":"{s}",'
                            f'"traits":{{{p}}}{c}}}' for m, u, s, p, c in zip(mids, uids, ts, props, ctx, strict=True)]
            else:
                head = f'{{"type":"track","event":"{EVENT_NAMES[kind]}","messageId":"'
                out[idx] = [f'{head}{m}","userId":"{u}","timestamp":"{s}","properties":{{{p}}}{c}}}'
                            for m, u, s, p, c in zip(mids, uids, ts, props, ctx, strict=True)]
        return out.tolist()

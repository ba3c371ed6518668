"""Customers: identity traits, consent, time zones, affinities and activity, as column arrays."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from . import taxonomy as tx
from .catalog import slugify

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MEAN_DAILY_ACTIVITY = 0.03  # share of customers with a session on a given day


def epoch_ms(d: date) -> int:
    return (d - date(1970, 1, 1)).days * DAY_MS


@dataclass
class Customers:
    n: int  # total, pre-existing first then the ones who sign up during the window
    n_pre: int
    uid: np.ndarray  # object: "c000123"
    signup_day: np.ndarray  # -1 = pre-existing
    created_ms: np.ndarray  # int64; for sign-ups set when the Signed Up event is timed
    locale: np.ndarray  # 0 fr, 1 en
    tz: np.ndarray  # index into taxonomy.TIMEZONES
    first_json: np.ndarray  # object, JSON-encoded strings
    last_json: np.ndarray
    email: np.ndarray  # object
    phone: np.ndarray  # object
    birthday: np.ndarray  # object "YYYY-MM-DD"
    email_opt_in: np.ndarray  # bool, current state
    sms_opt_in: np.ndarray
    activity: np.ndarray  # probability of a session on a given day
    fav1: np.ndarray  # favourite affinity group
    fav2: np.ndarray
    loyalty_member: np.ndarray
    points: np.ndarray  # int64 loyalty balance
    ctx_json: np.ndarray  # object: ,"context":{"locale":"fr-FR"}
    hostile: np.ndarray  # bool: planted hostile first name

    def new_phone(self, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
        return _phones(rng, self.tz[idx])


def _phones(rng: np.random.Generator, tz: np.ndarray) -> np.ndarray:
    # E.164, fictional / drama ranges where they exist
    fmt = {"33": ("+336", 8), "32": ("+324", 8), "41": ("+417", 8), "44": ("+447700900", 3),
           "1": ("+1514555", 4), "81": ("+8190", 8), "61": ("+614", 8)}
    digits = rng.integers(0, 10**8, len(tz))
    out = np.empty(len(tz), dtype=object)
    for t, (_, _, _, cc, _) in enumerate(tx.TIMEZONES):
        m = np.flatnonzero(tz == t)
        prefix, nd = fmt[cc]
        if cc == "1" and tx.TIMEZONES[t][0] == "America/New_York":
            prefix = "+1212555"
        elif cc == "1" and tx.TIMEZONES[t][0] == "America/Los_Angeles":
            prefix = "+1310555"
        mod = 10**nd
        out[m] = [f"{prefix}{d % mod:0{nd}d}" for d in digits[m].tolist()]
    return out


def tz_offsets_ms(first_day: date, n_days: int) -> np.ndarray:
    """UTC offset (ms) of each time zone at noon UTC of each day: shape (n_days, n_tz)."""
    out = np.zeros((n_days, len(tx.TIMEZONES)), dtype=np.int64)
    for t, (name, *_rest) in enumerate(tx.TIMEZONES):
        zone = ZoneInfo(name)
        for i in range(n_days):
            d = first_day + timedelta(days=i)
            moment = datetime(d.year, d.month, d.day, 12, tzinfo=ZoneInfo("UTC")).astimezone(zone)
            out[i, t] = int(moment.utcoffset().total_seconds() * 1000)
    return out


def build_customers(rng: np.random.Generator, n_pre: int, signups_per_day: np.ndarray, start: date,
                    days: int, history_days: int) -> Customers:
    n = n_pre + int(signups_per_day.sum())
    signup_day = np.concatenate([np.full(n_pre, -1), np.repeat(np.arange(days), signups_per_day)])
    width = max(6, len(str(n)))
    uid = np.array([f"c{i:0{width}d}" for i in range(n)], dtype=object)

    locale = (rng.random(n) >= 0.7).astype(np.int8)
    tz = np.empty(n, dtype=np.int8)
    for loc, code in ((0, "fr"), (1, "en")):
        choices = [i for i, t in enumerate(tx.TIMEZONES) if t[1] == code]
        w = np.array([tx.TIMEZONES[i][4] for i in choices])
        m = locale == loc
        tz[m] = rng.choice(np.array(choices), size=int(m.sum()), p=w / w.sum())

    firsts = [*tx.FIRST_NAMES_FR, *tx.FIRST_NAMES_EN, *tx.HOSTILE_FIRST_NAMES]
    lasts = [*tx.LAST_NAMES_FR, *tx.LAST_NAMES_EN]
    n_ff, n_fe, n_lf, n_le = (len(tx.FIRST_NAMES_FR), len(tx.FIRST_NAMES_EN), len(tx.LAST_NAMES_FR),
                              len(tx.LAST_NAMES_EN))
    fi = np.where(locale == 0, rng.integers(0, n_ff, n), n_ff + rng.integers(0, n_fe, n))
    li = np.where(locale == 0, rng.integers(0, n_lf, n), n_lf + rng.integers(0, n_le, n))
    # a handful of hostile first names (HTML, header injection, SQL, Jinja, stray spaces)
    n_hostile = min(n, len(tx.HOSTILE_FIRST_NAMES) + n // 50_000)
    hostile_idx = rng.choice(n, size=n_hostile, replace=False)
    fi[hostile_idx] = n_ff + n_fe + np.arange(n_hostile) % len(tx.HOSTILE_FIRST_NAMES)
    hostile = np.zeros(n, dtype=bool)
    hostile[hostile_idx] = True

    first_json_t = np.array([json.dumps(s, ensure_ascii=False) for s in firsts], dtype=object)
    last_json_t = np.array([json.dumps(s, ensure_ascii=False) for s in lasts], dtype=object)
    first_slug = [slugify(s) for s in firsts]
    last_slug = [slugify(s) for s in lasts]
    dom = rng.integers(0, len(tx.EMAIL_DOMAINS), n)
    mixed_case = rng.random(n) < 0.01
    email = np.array([
        f"{first_slug[a]}.{last_slug[b]}{i}@{tx.EMAIL_DOMAINS[d]}"
        for i, (a, b, d) in enumerate(zip(fi.tolist(), li.tolist(), dom.tolist(), strict=True))
    ], dtype=object)
    email[mixed_case] = [e[:1].upper() + e[1:].replace("@example", "@Example") for e in email[mixed_case]]

    # birthdays: 1950-2007, with ~2 % forced inside the simulated window
    years = rng.integers(1950, 2008, n)
    jan1 = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    leap = ((years % 4 == 0) & (years % 100 != 0)) | (years % 400 == 0)
    doy = (rng.random(n) * np.where(leap, 366, 365)).astype(np.int64)
    birthday = np.datetime_as_string(jan1 + doy, unit="D").astype(object)
    forced = np.flatnonzero(rng.random(n) < 0.02)
    if len(forced):
        wd = rng.integers(0, days, len(forced))
        for j, (c, d) in enumerate(zip(forced.tolist(), wd.tolist(), strict=True)):
            when = start + timedelta(days=d)
            y = int(years[c])
            if (when.month, when.day) == (2, 29):
                y = 1992 + 4 * (j % 4)
            birthday[c] = f"{y:04d}-{when.month:02d}-{when.day:02d}"

    # created_at of pre-existing customers: over the history, denser recently (a growing shop)
    start_ms = epoch_ms(start)
    frac = rng.random(n_pre) ** 0.75
    created = np.full(n, -1, dtype=np.int64)
    created[:n_pre] = start_ms - ((1.0 - frac) * history_days * DAY_MS).astype(np.int64) - rng.integers(
        HOUR_MS, 6 * HOUR_MS, n_pre)

    email_opt_in = rng.random(n) < 0.6
    sms_opt_in = rng.random(n) < np.where(email_opt_in, 0.35, 0.1)
    activity = np.minimum(0.6, MEAN_DAILY_ACTIVITY * rng.gamma(0.6, 1 / 0.6, n))
    activity[signup_day >= 0] *= 1.5
    gw = np.array(tx.GROUP_WEIGHTS)
    fav1 = rng.choice(len(tx.GROUPS), size=n, p=gw / gw.sum()).astype(np.int8)
    fav2 = rng.choice(len(tx.GROUPS), size=n, p=gw / gw.sum()).astype(np.int8)
    same = fav2 == fav1
    fav2[same] = (fav1[same] + 1 + rng.integers(0, len(tx.GROUPS) - 1, int(same.sum()))) % len(tx.GROUPS)

    ctx_t = np.array([f',"context":{{"locale":"{t[2]}"}}' for t in tx.TIMEZONES], dtype=object)
    return Customers(
        n=n, n_pre=n_pre, uid=uid, signup_day=signup_day, created_ms=created, locale=locale, tz=tz,
        first_json=first_json_t[fi], last_json=last_json_t[li], email=email, phone=_phones(rng, tz),
        birthday=birthday, email_opt_in=email_opt_in, sms_opt_in=sms_opt_in, activity=activity, fav1=fav1,
        fav2=fav2, loyalty_member=rng.random(n) < 0.55, points=np.zeros(n, dtype=np.int64), ctx_json=ctx_t[tz],
        hostile=hostile,
    )


def local_times(rng: np.random.Generator, day_start_ms: np.ndarray, tz_offset_ms: np.ndarray) -> np.ndarray:
    """UTC instants inside the given UTC days whose *local* hour follows the diurnal curve."""
    n = len(day_start_ms)
    w = np.array(tx.DIURNAL)
    hour = rng.choice(24, size=n, p=w / w.sum())
    local_ms = hour * HOUR_MS + rng.integers(0, HOUR_MS, n)
    return day_start_ms + (local_ms - tz_offset_ms) % DAY_MS

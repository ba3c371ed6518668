"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): buy-till-you-die
features for the purchase propensity, fitted with ``scipy.optimize`` (no extra package).

Each buyer is summarised as of a snapshot by ``x`` (repeat purchases: orders − 1), ``t_x``
(weeks from their first to their last order) and ``T`` (weeks from their first order to the
snapshot). While alive a customer buys at a Poisson rate drawn from Gamma(r, α); after each
purchase they drop out with a probability drawn from Beta(a, b). The four parameters are fitted
by maximum likelihood on the *training* snapshot only (:func:`fit`); :func:`features` then gives
each customer P(alive) and the expected number of purchases in the next 90 days. Customers
who never ordered get 0 for both (``never_bought`` says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special

WEEK = 7.0
HORIZON_WEEKS = 90 / WEEK
#: Fit on at most this many buyers (a fixed random sample): four parameters need no more.
MAX_FIT_ROWS = 100_000


def summary(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(buyer mask, x, t_x, T) from customer features (``frequency``, ``recency_days`` and the
    days since the first order, ``first_order_days``), in weeks."""
    buyer = frame["frequency"].to_numpy(float) > 0
    x = np.where(buyer, frame["frequency"].to_numpy(float) - 1, 0.0)
    age = frame["first_order_days"].to_numpy(float)
    recency = frame["recency_days"].to_numpy(float)
    T = np.where(buyer, np.nan_to_num(age) / WEEK, 0.0)
    t_x = np.where(buyer, np.clip(np.nan_to_num(age - recency), 0, None) / WEEK, 0.0)
    return buyer, x, np.minimum(t_x, T), T


def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per customer: the BG/NBD log-likelihood of (x, t_x, T) under (r, α, a, b)."""
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> dict[str, float]:
    """Maximum-likelihood (r, α, a, b), optimised in log space (L-BFGS-B)."""
    if len(x) > MAX_FIT_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(x), MAX_FIT_ROWS, replace=False))
        x, t_x, T = x[rows], t_x[rows], T[rows]

    def loss(log_params: np.ndarray) -> float:
        value = -log_likelihood(np.exp(log_params), x, t_x, T).mean()
        return float(value) if np.isfinite(value) else 1e10

    result = optimize.minimize(loss, np.log([1.0, 10.0, 1.0, 3.0]), method="L-BFGS-B",
                               bounds=[(-8.0, 8.0)] * 4)
    r, alpha, a, b = np.exp(result.x)
    return {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b),
            "buyers": int(len(x)), "converged": bool(result.success)}


def p_alive(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700))), 1.0)


def expected_purchases(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                       weeks: float = HORIZON_WEEKS) -> np.ndarray:
    """E[purchases in the next ``weeks`` | x, t_x, T] (the paper's equation 10)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    alive = p_alive(params, x, t_x, T)
    if a <= 1.01:  # the closed form needs a > 1: the alive customer's Gamma-Poisson mean instead
        out = alive * (r + x) / (alpha + T) * weeks
    else:
        z = weeks / (alpha + T + weeks)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        out = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + weeks)) ** (r + x) * hyp) * alive
    return np.nan_to_num(np.clip(out, 0, None), nan=0.0, posinf=0.0)


def features(frame: pd.DataFrame, params: dict[str, float]) -> pd.DataFrame:
    """``frame`` plus ``p_alive`` and ``expected_90d`` (0 for customers who never ordered)."""
    buyer, x, t_x, T = summary(frame)
    out = frame.copy()
    out["p_alive"] = np.where(buyer, p_alive(params, x, t_x, T), 0.0)
    out["expected_90d"] = np.where(buyer, expected_purchases(params, x, t_x, T), 0.0)
    return out


def fit_frame(frame: pd.DataFrame) -> dict[str, float]:
    """:func:`fit` on the buyers of a snapshot's customer features."""
    buyer, x, t_x, T = summary(frame)
    return fit(x[buyer], t_x[buyer], T[buyer])

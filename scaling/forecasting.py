"""Forecasting the hourly arrival rate, for the hybrid policy's profile and pre-warm.

Two models on an hourly rate series with a daily season (24 points):

- **seasonal-naive**: tomorrow's hour h = today's hour h.
- **Holt-Winters** (additive level, trend and season; smoothing constants picked from a small grid
  by one-step-ahead squared error), implemented here in numpy: it is a few lines, so it does not
  earn a statsmodels dependency.

:func:`choose_forecaster` backtests both on the last ``backtest_days`` days (each day forecast
from the days before it only) and picks the lower mean absolute error; :func:`forecast_profile`
then forecasts the next 24 hours with the chosen model. Traces shorter than three days have no
season to learn: their profile is the mean rate per hour of day (``Trace.hourly_profile``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ScalingError
from scaling.traces import SECONDS_PER_HOUR, Trace

SEASON = 24
_GRID = (0.1, 0.3, 0.6)


def hourly_series(trace: Trace) -> np.ndarray:
    """Mean arrival rate (req/s) of every whole hour of the trace, in order."""
    per_s = trace.arrivals_per_second()
    hours = len(per_s) // SECONDS_PER_HOUR
    return per_s[: hours * SECONDS_PER_HOUR].reshape(hours, SECONDS_PER_HOUR).mean(axis=1)


def seasonal_naive(history: np.ndarray, horizon: int = SEASON) -> np.ndarray:
    """Repeat the last season."""
    if len(history) < SEASON:
        raise ScalingError(f"seasonal-naive needs at least {SEASON} hourly points, got {len(history)}")
    last = history[-SEASON:]
    return np.array([last[h % SEASON] for h in range(horizon)])


def _holt_winters_run(
    y: np.ndarray, alpha: float, beta: float, gamma: float
) -> tuple[float, float, np.ndarray, float]:
    """One pass of additive Holt-Winters; returns (level, trend, season, one-step SSE)."""
    level = float(y[:SEASON].mean())
    trend = (
        float((y[SEASON : 2 * SEASON].mean() - y[:SEASON].mean()) / SEASON) if len(y) >= 2 * SEASON else 0.0
    )
    season = (y[:SEASON] - level).astype(float)
    sse = 0.0
    for t in range(SEASON, len(y)):
        s = season[t % SEASON]
        sse += (y[t] - (level + trend + s)) ** 2
        new_level = alpha * (y[t] - s) + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        season[t % SEASON] = gamma * (y[t] - new_level) + (1 - gamma) * s
        level = new_level
    return level, trend, season, sse


def holt_winters(history: np.ndarray, horizon: int = SEASON) -> np.ndarray:
    """Additive Holt-Winters forecast (clipped at 0), constants chosen by one-step SSE on ``history``."""
    if len(history) < 2 * SEASON:
        raise ScalingError(f"Holt-Winters needs at least {2 * SEASON} hourly points, got {len(history)}")
    best = min(
        (
            (*_holt_winters_run(history, a, b, g), (a, b, g))
            for a, b, g in itertools.product(_GRID, (0.0, 0.1), _GRID)
        ),
        key=lambda run: run[3],
    )
    level, trend, season, _, _ = best
    n = len(history)
    return np.maximum(
        0.0, np.array([level + (h + 1) * trend + season[(n + h) % SEASON] for h in range(horizon)])
    )


FORECASTERS = {"seasonal-naive": seasonal_naive, "holt-winters": holt_winters}


@dataclass(frozen=True)
class Backtest:
    """Mean absolute error (req/s) of each model's day-ahead forecasts, and the winner."""

    errors: dict[str, float]
    chosen: str


def choose_forecaster(series: Sequence[float], backtest_days: int = 3) -> Backtest:
    """Backtest every model on the last ``backtest_days`` days of an hourly series."""
    y = np.asarray(series, dtype=float)
    days = len(y) // SEASON
    first = max(2, days - backtest_days)
    if days < 3:
        raise ScalingError(f"a backtest needs at least 3 days of hourly rates, got {len(y)} hours")
    errors: dict[str, float] = {}
    for name, model in FORECASTERS.items():
        errs = [
            np.abs(model(y[: d * SEASON]) - y[d * SEASON : (d + 1) * SEASON]).mean()
            for d in range(first, days)
        ]
        errors[name] = float(np.mean(errs))
    return Backtest(errors=errors, chosen=min(errors, key=errors.__getitem__))


@dataclass(frozen=True)
class Profile:
    """24 hourly rates (req/s) for hour of day 0..23 and how they were obtained."""

    rates_by_hour: tuple[float, ...]
    method: str
    backtest: Backtest | None = None


def forecast_profile(trace: Trace) -> Profile:
    """The hourly profile for ``trace``: a forecast of the next day by the backtest's winner when
    the trace spans at least three whole days, else the mean rate per hour of day."""
    series = hourly_series(trace)
    if len(series) < 3 * SEASON:
        return Profile(tuple(trace.hourly_profile()), "hourly-mean")
    backtest = choose_forecaster(series)
    ahead = FORECASTERS[backtest.chosen](series)
    first_hour = int((trace.start_of_day_s // SECONDS_PER_HOUR + len(series)) % SEASON)
    by_hour = [0.0] * SEASON
    for h in range(SEASON):
        by_hour[(first_hour + h) % SEASON] = float(ahead[h])
    return Profile(tuple(by_hour), backtest.chosen, backtest)


BURST_WINDOW_S = 300
"""The window LMI's growth bound is stated over: traffic that doubles within 5 minutes."""


def burst_rates_by_hour(trace: Trace, window_s: int = BURST_WINDOW_S) -> list[float]:
    """Each hour of day's highest mean arrival rate over a ``window_s`` window starting in it, req/s:
    the median over the trace's days of each day's highest (a typical day's burst, as the hourly
    rates are a typical day's); an hour the trace never covers gets 0."""
    horizon = trace.duration_s
    per_s = np.bincount(trace.second, weights=trace.count.astype(float), minlength=horizon)[:horizon]
    sums = np.concatenate(([0.0], np.cumsum(per_s)))
    starts = np.arange(horizon)
    ends = np.minimum(starts + window_s, horizon)
    rates = (sums[ends] - sums[starts]) / window_s
    hour_index = ((trace.start_of_day_s + starts) // 3600).astype(np.int64)  # hours since the first midnight
    peaks = np.full(int(hour_index[-1]) + 1 if horizon else 0, -1.0)
    np.maximum.at(peaks, hour_index, rates)
    out = []
    for hour in range(24):
        seen = peaks[hour::24]
        seen = seen[seen >= 0]
        out.append(float(np.median(seen)) if len(seen) else 0.0)
    return out

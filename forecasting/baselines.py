"""Baseline forecasters, behind the env's :class:`~energy_env.forecast.ForecastProvider` protocol.

Persistence and seasonal persistence live in :mod:`energy_env.forecast` (the env uses them
directly); this module adds the seasonal mean of recent days, the baseline that won the CityLearn
2023 forecasting competition, and names the three so the LSTM is always measured against them.
Every baseline here follows the env's convention: a forecast made at interval ``t`` may use data up
to and including ``t`` and covers ``t+1 .. t+horizon``.
"""

from __future__ import annotations

import numpy as np

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset
from energy_env.forecast import ForecastProvider, PersistenceForecast, SeasonalPersistenceForecast

__all__ = [
    "PersistenceForecast",
    "SeasonalMeanForecast",
    "SeasonalPersistenceForecast",
    "baseline_providers",
    "seasonal_mean",
]


def seasonal_mean(x: np.ndarray, origins_horizon: int, days: int) -> np.ndarray:
    """``out[t, :, k]``: mean of ``x`` at the target interval ``t+1+k`` on the last ``days`` days.

    Only days whose same interval is at or before ``t`` are averaged (for ``k < 48`` that is
    ``t+1+k-48 d`` for ``d = 1..days``), so nothing after ``t`` is used. Early in the data, where
    fewer days exist, the mean is over the days available; with none at all (the first day) the
    first interval's value stands in, as the env's seasonal persistence does.

    Args:
        x: ``(T, N)`` series (kWh per interval).
        origins_horizon: ``H``, the number of intervals forecast from each origin.
        days: how many past days to average (>= 1).

    Returns:
        ``(T, N, H)`` float32.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    t_len, n = x.shape
    x64 = x.astype(np.float64)
    # The target u = t+1+k may lie past the end (edge of the data); the past days it averages
    # (u - 48 d <= t < T) always exist, so compute the mean for u in [0, T + H).
    u_len = t_len + origins_horizon
    out = np.empty((t_len, n, origins_horizon), dtype=np.float32)
    # Days that may be used depend on k only through d_min = k // 48 + 1 (u - 48 d <= t).
    for d_min in sorted({k // INTERVALS_PER_DAY + 1 for k in range(origins_horizon)}):
        total = np.zeros((u_len, n))
        count = np.zeros((u_len, 1))
        for d in range(d_min, d_min + days):
            lag = d * INTERVALS_PER_DAY
            if lag >= u_len:
                break
            src_hi = min(u_len - lag, t_len)  # x index u - lag must be < T
            total[lag : lag + src_hi] += x64[:src_hi]
            count[lag : lag + src_hi] += 1.0
        mean = np.where(count > 0, total / np.maximum(count, 1.0), x64[:1])
        for k in range(origins_horizon):
            if k // INTERVALS_PER_DAY + 1 == d_min:
                out[:, :, k] = mean[1 + k : 1 + k + t_len]
    return out


class SeasonalMeanForecast:
    """Each future interval equals the mean of the same interval over the last ``days`` days."""

    def __init__(self, days: int = 7) -> None:
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        self.days = days
        self.name = "seasonal_mean" if days == 7 else f"seasonal_mean_{days}d"

    def forecast(self, dataset: Dataset, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """``(load_fc_kwh, pv_fc_kwh)``, each ``(T, N, horizon)``; see :func:`seasonal_mean`."""
        return seasonal_mean(dataset.load_kwh, horizon, self.days), seasonal_mean(dataset.pv_kwh, horizon, self.days)


def baseline_providers() -> dict[str, ForecastProvider]:
    """The three baselines the LSTM must beat, by name."""
    return {
        "persistence": PersistenceForecast(),
        "seasonal_persistence": SeasonalPersistenceForecast(),
        "seasonal_mean": SeasonalMeanForecast(7),
    }


def make_seasonal_mean_provider(checkpoint: str | None = None) -> SeasonalMeanForecast:
    """``forecast.provider: seasonal_mean`` (registered with the env as an entry point; no checkpoint)."""
    return SeasonalMeanForecast()

"""Forecast providers: what each household expects its load and PV to be over the next intervals.

A provider turns a whole data set into two arrays ``(T, N, H)`` once: ``fc[t, i, k]`` is the
forecast made at interval ``t`` (knowing ``t`` itself, which the battery controller measures in
real time) for interval ``t + 1 + k``. The env only indexes them, so no model runs inside
``step()``. The baselines here are zero-copy views (stride tricks), so they cost no memory even
for 10,000 homes. Beyond the end of the data the last interval's value is repeated.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Optional, Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset


@runtime_checkable
class ForecastProvider(Protocol):
    """Anything that forecasts load and PV for a whole data set at once."""

    name: str

    def forecast(self, dataset: Dataset, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(load_fc_kwh, pv_fc_kwh)``, each ``(T, N, horizon)``."""
        ...


def _future_windows(x: np.ndarray, horizon: int, shift: int) -> np.ndarray:
    """``out[t, :, k] = x[t + shift + k]`` (edge-padded), as a read-only view where possible."""
    t = x.shape[0]
    lo = min(shift, 0)
    hi = max(shift + horizon - 1, 0)
    padded = np.concatenate(
        [np.repeat(x[:1], -lo, axis=0), x, np.repeat(x[-1:], hi, axis=0)], axis=0
    ).astype(np.float32)
    start = shift - lo
    win = sliding_window_view(padded, horizon, axis=0)  # (T + pads - H + 1, N, H)
    return win[start : start + t]


class PerfectForecast:
    """The actual future values: an upper bound on what any forecaster can offer."""

    name = "perfect"

    def forecast(self, dataset: Dataset, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact values of intervals ``t+1 .. t+horizon``."""
        return _future_windows(dataset.load_kwh, horizon, 1), _future_windows(dataset.pv_kwh, horizon, 1)


class PersistenceForecast:
    """Every future interval equals the current one."""

    name = "persistence"

    def forecast(self, dataset: Dataset, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """The value at ``t`` repeated ``horizon`` times."""
        shape = (*dataset.load_kwh.shape, horizon)
        load = np.broadcast_to(dataset.load_kwh.astype(np.float32)[..., None], shape)
        pv = np.broadcast_to(dataset.pv_kwh.astype(np.float32)[..., None], shape)
        return load, pv


class SeasonalPersistenceForecast:
    """Each future interval equals the same interval one day earlier."""

    name = "seasonal_persistence"

    def forecast(self, dataset: Dataset, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Values of intervals ``t+1-48 .. t+horizon-48`` (the first day repeats its first value)."""
        shift = 1 - INTERVALS_PER_DAY
        return _future_windows(dataset.load_kwh, horizon, shift), _future_windows(dataset.pv_kwh, horizon, shift)


ProviderFactory = Callable[[Optional[str]], ForecastProvider]  # checkpoint (or None) -> provider

PROVIDERS: dict[str, ProviderFactory] = {
    "perfect": lambda checkpoint: PerfectForecast(),
    "persistence": lambda checkpoint: PersistenceForecast(),
    "seasonal_persistence": lambda checkpoint: SeasonalPersistenceForecast(),
}
ENTRY_POINT_GROUP = "wattshare.forecast_providers"  # where packages above register theirs


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``forecast.provider: name`` build ``factory(checkpoint)``; replaces a provider of that name.

    Packages above the env register theirs through the ``wattshare.forecast_providers`` entry
    points (``forecasting`` adds ``lstm`` and ``seasonal_mean``; see pyproject.toml), so the env
    never imports them; code of your own can call this directly.
    """
    PROVIDERS[name] = factory


def _registered(name: str) -> ProviderFactory | None:
    """The factory of ``name``: registered here, or found among the installed entry points."""
    if name not in PROVIDERS:
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
            PROVIDERS[name] = ep.load()
    return PROVIDERS.get(name)


def known_providers() -> list[str]:
    """Names ``forecast.provider`` may take: the built-in baselines and every registered provider."""
    return sorted({*PROVIDERS, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def make_provider(name: str, checkpoint: str | None = None) -> ForecastProvider:
    """A forecast provider by name (``checkpoint``: for providers that load a model, e.g. ``lstm``)."""
    factory = _registered(name)
    if factory is None:
        raise ValueError(f"unknown forecast provider {name!r}; expected one of {known_providers()}")
    return factory(checkpoint)

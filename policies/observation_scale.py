"""Per-home observation scaling: what lets one policy act on homes of other sizes and data sets.

The env observes energies in kWh (``energy_env.layout``). A policy's normaliser is fitted on its
training community, so a home twice as large as those it was trained on looks out of range to
it. ``per_home`` scaling divides every energy field (battery capacity, load, PV and their
forecasts, yesterday's next 12 hours) by the home's **typical load**: its mean load per interval over the train days (a
quantity any home knows from its own history, never from test days). Then a home whose load,
PV and battery are all twice another's observes the same vector, and the battery's size relative
to the home stays visible in ``battery_capacity_kwh`` (capacity / typical load). SoC, prices,
time and signals are left as they are.

``absolute`` (the default) leaves observations unchanged. The choice is a training setting
(``training.observation_scale``) and travels with the checkpoint (``meta.json``), so
``LearnedPolicy`` applies the same scaling on any community it acts on.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from energy_env.community import Community
from energy_env.config import INTERVALS_PER_DAY
from energy_env.layout import observation_layout

SCALES = ("absolute", "per_home")
ENERGY_FIELDS = ("battery_capacity_kwh", "load_kwh", "pv_kwh", "load_forecast_kwh", "pv_forecast_kwh",
                 "load_next_12h_yesterday_kwh", "pv_next_12h_yesterday_kwh", "load_next_day_mean_kwh", "pv_next_day_mean_kwh")
MIN_TYPICAL_LOAD_KWH = 0.01  # a home with (almost) no load: scale as if it drew 10 Wh per interval


def typical_load_kwh(community: Community) -> np.ndarray:
    """Each home's mean load per interval over the train days, ``(N,)``, at least 0.01 kWh."""
    ds = community.dataset
    train = np.repeat(~ds.test_day_mask(), INTERVALS_PER_DAY)[: ds.load_kwh.shape[0]]
    if not train.any():
        raise ValueError(f"{ds.name}: no train days to take each home's typical load from")
    return np.maximum(ds.load_kwh[train].mean(axis=0), MIN_TYPICAL_LOAD_KWH)


@lru_cache(maxsize=16)
def energy_columns(horizon: int, day_ahead_blocks: int = 0, auction: bool = False) -> np.ndarray:
    """Positions of the energy fields in an observation of forecast ``horizon`` (``day_ahead_blocks`` K, the auction's layout)."""
    lay = observation_layout(horizon, auction, day_ahead_blocks)
    names = ENERGY_FIELDS if day_ahead_blocks else ENERGY_FIELDS[:-2]
    return np.concatenate([np.arange(lay.size)[lay.slice(name)] for name in names])


def scale_observation(obs: np.ndarray, horizon: int, typical_kwh: np.ndarray, day_ahead_blocks: int = 0, auction: bool = False) -> np.ndarray:
    """``obs`` ``(..., N, D)`` with its energy fields divided by each home's ``typical_kwh`` ``(N,)`` (a new array)."""
    out = np.array(obs, dtype=np.float32, copy=True)
    cols = energy_columns(horizon, day_ahead_blocks, auction)
    out[..., cols] = out[..., cols] / typical_kwh[:, None].astype(np.float32)
    return out


class ObservationScaler:
    """Applies a scale mode to a community's observations, the per-home factors computed once per community."""

    def __init__(self, mode: str = "absolute") -> None:
        if mode not in SCALES:
            raise ValueError(f"unknown observation scale {mode!r}; expected one of {SCALES}")
        self.mode = mode
        self._community: Community | None = None  # the one the factors are of (held: an id could be reused)
        self._typical: np.ndarray | None = None

    def __call__(self, obs: np.ndarray, community: Community | None) -> np.ndarray:
        """``obs`` ``(B, N, D)`` as the policy sees them."""
        if self.mode == "absolute":
            return obs
        if community is None:
            raise ValueError("per-home observation scaling needs the community the policy acts on (act(obs, state, community))")
        if self._community is not community:
            self._typical, self._community = typical_load_kwh(community), community
        p = community.params
        return scale_observation(obs, p.horizon, self._typical, p.day_ahead_blocks, p.auction)

"""The one definition of what an observation and an info dict hold, and in which order.

Everything else is derived from these tuples: :func:`energy_env.core.observe` writes each field
into its slice, the compiled kernel (:mod:`energy_env.kernel`) gets the same offsets, the
observation bounds are filled field by field, and docs/model.md's table is :func:`markdown_table`
(a test keeps them equal). Adding a field here without computing it in both cores fails the
kernel tests (every field is checked to be written, and both cores must agree bit for bit).

An observation is one household's float32 vector of three blocks:

* **household**: the home's battery state, this interval's load and PV and their forecasts, and
  the ``precomputed`` fields (a ``(T, N, K)`` table made once per data set,
  ``CommunityData.household_obs``);
* **scenario**: values shared by every home of a scenario (prices, the market, time), a row
  precomputed once per data set (``CommunityData.scenario_obs``) with the fields marked
  ``from_state`` filled in from the state at each step;
* **signals**: the home's profitability score and power-need signal;
* **day ahead** (``forecast.day_ahead_blocks`` K > 0 only): each home's expected load and PV
  over the next 24 hours in K blocks, the mean of the same clock time over its last 7 days
  (:func:`energy_env.precompute.day_ahead_block_sums`), after every other field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

TIME_FEATURES = ("time_of_day_sin", "time_of_day_cos", "day_of_year_sin", "day_of_year_cos", "is_weekend", "is_peak")


@dataclass(frozen=True)
class ObsField:
    """One named field of the observation vector.

    ``per_step``: one value per forecast step (width = horizon); ``per_block``: one value per
    day-ahead block (width = ``forecast.day_ahead_blocks``); else width 1; ``block``:
    household, scenario or signals; ``from_state``: a scenario field read from the state at each
    step rather than precomputed; ``precomputed``: a household field copied from the per-data-set
    table ``CommunityData.household_obs``; ``meaning``: the docs' description.
    """

    name: str
    block: str
    meaning: str
    per_step: bool = False
    from_state: bool = False
    precomputed: bool = False
    per_block: bool = False

    def width(self, horizon: int, blocks: int = 0) -> int:
        """Values this field takes in an observation of forecast ``horizon`` and ``blocks`` day-ahead blocks."""
        return horizon if self.per_step else blocks if self.per_block else 1


_TIME = {
    "time_of_day_sin": "time of day, sine",
    "time_of_day_cos": "time of day, cosine",
    "day_of_year_sin": "day of year, sine",
    "day_of_year_cos": "day of year, cosine",
    "is_weekend": "1 on Saturdays and Sundays",
    "is_peak": "1 in E-TOU-C's 16:00-21:00 peak",
}

OBSERVATION: tuple[ObsField, ...] = (
    ObsField("soc_fraction", "household", "state of energy / capacity (0 without a battery)"),
    ObsField("battery_capacity_kwh", "household", "nameplate capacity"),
    ObsField("load_kwh", "household", "this interval's load"),
    ObsField("pv_kwh", "household", "this interval's PV"),
    ObsField("load_forecast_kwh", "household", "load forecast of the next intervals (`forecast.provider`)", per_step=True),
    ObsField("pv_forecast_kwh", "household", "PV forecast of the next intervals", per_step=True),
    # Yesterday's next 12 hours: whether the PV to come fills the battery and how much of the
    # evening and night it can cover, beyond the forecast horizon, from the home's own history.
    ObsField("load_next_12h_yesterday_kwh", "household", "load of the 12 hours after this time yesterday", precomputed=True),
    ObsField("pv_next_12h_yesterday_kwh", "household", "PV of the 12 hours after this time yesterday", precomputed=True),
    ObsField("import_price_usd_per_kwh", "scenario", "import price now"),
    ObsField("export_price_usd_per_kwh", "scenario", "export credit now"),
    ObsField("import_price_forecast_usd_per_kwh", "scenario", "tariff import prices of the next intervals", per_step=True),
    ObsField("export_price_forecast_usd_per_kwh", "scenario", "export credits of the next intervals", per_step=True),
    # A day ahead, beyond the forecast horizon: NEM 3's evening export credits and the peak are
    # what a midday charge is for, and 3 hours do not see them.
    ObsField("import_price_max_next_day_usd_per_kwh", "scenario", "highest import price of the next 24 hours"),
    ObsField("hours_to_import_price_max", "scenario", "hours until that price first applies (0.5-24)"),
    ObsField("export_price_max_next_day_usd_per_kwh", "scenario", "highest export credit of the next 24 hours"),
    ObsField("hours_to_export_price_max", "scenario", "hours until that credit first applies (0.5-24)"),
    ObsField("last_sdr", "scenario", "last interval's supply-demand ratio (capped at `market.sdr_observation_cap`)", from_state=True),
    ObsField("last_market_price_usd_per_kwh", "scenario", "last interval's P2P price", from_state=True),
    ObsField("expected_sdr", "scenario", "the coordinator's estimate of this interval's SDR (capped)"),
    ObsField("expected_market_price_usd_per_kwh", "scenario", "the coordinator's estimate of this interval's price"),
    *(ObsField(name, "scenario", meaning) for name, meaning in _TIME.items()),
    ObsField("episode_progress", "scenario", "share of the episode elapsed", from_state=True),
    ObsField("profitability_score", "signals", "0-100, below"),
    ObsField("power_need_signal", "signals", "1 GREEN, 0 RED, below"),
)
# Appended in market.mechanism double_auction only, so the pool modes' observations stay as they were.
AUCTION_OBSERVATION: tuple[ObsField, ...] = (
    ObsField("last_p2p_volume_kwh", "auction", "energy buyers received in last interval's auction (double_auction only)", from_state=True),
)
# Appended with forecast.day_ahead_blocks K > 0 only (after the auction's field where there is
# one): at noon, whether the evening and night ahead need the battery, and whether tomorrow's sun
# refills it, from the home's own last 7 days, which a 3-hour forecast cannot say.
DAY_AHEAD_OBSERVATION: tuple[ObsField, ...] = (
    ObsField("load_next_day_mean_kwh", "day_ahead", "expected load in each of K blocks of the next 24 hours: the mean of the same clock time over the last 7 days", per_block=True),
    ObsField("pv_next_day_mean_kwh", "day_ahead", "expected PV in each of those blocks, alike", per_block=True),
)
FIELD_INDEX = {f.name: k for k, f in enumerate(OBSERVATION)}
_ALL_INDEX = {f.name: k for k, f in enumerate(OBSERVATION + AUCTION_OBSERVATION)}
_DAY_AHEAD_NAMES = {f.name for f in DAY_AHEAD_OBSERVATION}
assert len(FIELD_INDEX) == len(OBSERVATION), "observation field names must be unique"
SCENARIO_FIELDS = tuple(f for f in OBSERVATION if f.block == "scenario")
HOUSEHOLD_TABLE_FIELDS = tuple(f for f in OBSERVATION if f.precomputed)
_k = [FIELD_INDEX[f.name] for f in HOUSEHOLD_TABLE_FIELDS]
assert _k == list(range(_k[0], _k[0] + len(_k))), "precomputed household fields must be adjacent"
assert all(f.block == "household" and not f.per_step for f in HOUSEHOLD_TABLE_FIELDS)


@dataclass(frozen=True)
class ObservationLayout:
    """Offsets of every field for one forecast horizon."""

    horizon: int
    offsets: tuple[int, ...]  # start of each field of all_fields, in order
    size: int
    auction: bool = False  # the double auction's fields (AUCTION_OBSERVATION) follow the others
    day_ahead_blocks: int = 0  # K > 0: DAY_AHEAD_OBSERVATION's fields come last

    @property
    def all_fields(self) -> tuple[ObsField, ...]:
        """The fields of this layout, in order."""
        return (OBSERVATION + (AUCTION_OBSERVATION if self.auction else ())
                + (DAY_AHEAD_OBSERVATION if self.day_ahead_blocks else ()))

    def fields(self) -> list[tuple[str, int]]:
        """``[(name, width), ...]`` in order."""
        return [(f.name, f.width(self.horizon, self.day_ahead_blocks)) for f in self.all_fields]

    def _index(self, name: str) -> int:
        if name in _DAY_AHEAD_NAMES and self.day_ahead_blocks:
            return len(self.offsets) - len(DAY_AHEAD_OBSERVATION) + [f.name for f in DAY_AHEAD_OBSERVATION].index(name)
        k = _ALL_INDEX.get(name)
        if k is None or k >= len(self.offsets) - (len(DAY_AHEAD_OBSERVATION) if self.day_ahead_blocks else 0):
            raise KeyError(f"observation field {name!r} is not in this layout (auction={self.auction}, day_ahead_blocks={self.day_ahead_blocks})")
        return k

    def at(self, name: str) -> int:
        """The position of a one-value field ``name``."""
        k = self._index(name)
        if self.all_fields[k].per_step:
            raise ValueError(f"{name} has one value per forecast step; use slice()")
        return self.offsets[k]

    def slice(self, name: str) -> slice:
        """The positions of field ``name`` in an observation vector."""
        k = self._index(name)
        return slice(self.offsets[k], self.offsets[k] + self.all_fields[k].width(self.horizon, self.day_ahead_blocks))

    def household_table_slice(self) -> slice:
        """The precomputed household fields: the positions ``CommunityData.household_obs[t]`` fills."""
        return slice(self.slice(HOUSEHOLD_TABLE_FIELDS[0].name).start, self.slice(HOUSEHOLD_TABLE_FIELDS[-1].name).stop)

    def scenario_slice(self) -> slice:
        """The scenario block: the positions the precomputed per-interval row fills."""
        return slice(self.slice(SCENARIO_FIELDS[0].name).start, self.slice(SCENARIO_FIELDS[-1].name).stop)

    def in_scenario_row(self, name: str) -> slice:
        """Field ``name``'s positions within the scenario row (``CommunityData.scenario_obs``)."""
        s, base = self.slice(name), self.scenario_slice().start
        return slice(s.start - base, s.stop - base)


@lru_cache(maxsize=64)
def observation_layout(horizon: int, auction: bool = False, day_ahead_blocks: int = 0) -> ObservationLayout:
    """The layout of an observation with forecast ``horizon`` (cached: layouts are immutable).

    ``auction``: the layout of ``market.mechanism: double_auction``, the same fields followed by
    :data:`AUCTION_OBSERVATION`; ``day_ahead_blocks`` K > 0: then :data:`DAY_AHEAD_OBSERVATION`,
    K values each.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if day_ahead_blocks < 0:
        raise ValueError(f"day_ahead_blocks must be >= 0, got {day_ahead_blocks}")
    fields = OBSERVATION + (AUCTION_OBSERVATION if auction else ()) + (DAY_AHEAD_OBSERVATION if day_ahead_blocks else ())
    offsets, at = [], 0
    for f in fields:
        offsets.append(at)
        at += f.width(horizon, day_ahead_blocks)
    return ObservationLayout(horizon, tuple(offsets), at, bool(auction), int(day_ahead_blocks))


def markdown_table(horizon: int = 6) -> str:
    """The observation table of docs/model.md (the double auction's and the day-ahead fields last; K = day_ahead_blocks)."""
    rows = ["| field | width | meaning |", "|---|---|---|"]
    for f in OBSERVATION + AUCTION_OBSERVATION + DAY_AHEAD_OBSERVATION:
        rows.append(f"| `{f.name}` | {'K' if f.per_block else f.width(horizon)} | {f.meaning} |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# Info dicts: what every household's info holds after a step (all floats; flags as 0.0 / 1.0)

HOUSEHOLD_INFO = (
    "load_kwh", "pv_kwh", "pv_curtailed_kwh", "battery_ac_kwh", "soc_kwh", "grid_import_kwh", "grid_export_kwh",
    "p2p_bought_kwh", "p2p_sold_kwh", "p2p_paid_usd", "p2p_revenue_usd", "degradation_usd", "baseline_credit_usd",
    "terminal_settlement_usd", "cost_usd", "baseline_cost_usd", "action_clipped_kwh", "action_out_of_box",
    "constraint_violation_kwh", "unserved_kwh",
)
SCENARIO_INFO = ("import_price_usd_per_kwh", "export_price_usd_per_kwh", "market_price_usd_per_kwh", "sdr", "market_cleared")
SIGNAL_INFO = ("profitability_score", "power_need_signal")  # the values published for the next interval
INFO_KEYS = (*HOUSEHOLD_INFO, *SCENARIO_INFO, *SIGNAL_INFO)

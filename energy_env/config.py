"""Typed configuration of a wattshare community.

The defaults live here, in the models; ``config/config.yaml`` is the same defaults written out as
YAML (a test keeps the two equal). Every model forbids unknown keys and checks its values, so a
typo or an impossible number fails at load time with an error that names the key, e.g.
``battery.capacity_kwh: must be >= 0``.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import numpy as np
import yaml

from energy_env.market import Mechanism
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

INTERVAL_HOURS = 0.5  # every energy in the package is kWh per 30-minute interval
INTERVALS_PER_DAY = 48
SYNTHETIC_HOUSEHOLDS = 10  # the embedded default community's size (num_households: null, synthetic data)


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or impossible; the message names it."""


class StrictModel(BaseModel):
    """Base of every configuration section: unknown keys, loose types and non-finite floats fail."""

    # strict: no "5" for an int, 1 for a bool or "1.5" for a float (ints are accepted as floats);
    # allow_inf_nan=False: every float is finite (NaN or inf would end in NaN rewards).
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_assignment=True, frozen=True)

    def replace(self, **changes: Any):
        """A copy with ``changes`` applied and validated (``model_copy(update=...)`` checks nothing)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def _as_list(value: Any) -> Any:
    """Tuples and numpy arrays given for a list field, as lists (strict mode takes only lists)."""
    if isinstance(value, (tuple, np.ndarray)):
        return value.tolist() if isinstance(value, np.ndarray) else list(value)
    return value


def _as_python_int(value: Any) -> Any:
    """A numpy integer as a Python int (strict mode takes only ``int``); anything else unchanged."""
    return int(value) if isinstance(value, np.integer) else value


Int = Annotated[int, BeforeValidator(_as_python_int)]
FloatOrList = Annotated[float | list[float], BeforeValidator(_as_list)]
IntList = Annotated[list[Int], BeforeValidator(_as_list)]
StrList = Annotated[list[str], BeforeValidator(_as_list)]
LocalDate = Annotated[dt.date, Field(strict=False)]  # "2025-01-01" from YAML, JSON or a flag


def _per_household(v: float | list[float], minimum: float, strict_minimum: bool) -> float | list[float]:
    """Check a scalar-or-per-household value against its lower bound, naming the bad entry."""
    values = v if isinstance(v, list) else [v]
    if not values:
        raise ValueError("must not be an empty list")
    for i, c in enumerate(values):
        ok = c > minimum if strict_minimum else c >= minimum
        if not ok:
            where = f"[{i}] " if isinstance(v, list) else ""
            raise ValueError(f"{where}must be a finite number {'>' if strict_minimum else '>='} {minimum:g}, got {c}")
    return v


class BatteryConfig(StrictModel):
    """Home battery (defaults: a Tesla Powerwall 2 class unit, as in the proof of concept)."""

    capacity_kwh: FloatOrList = Field(
        13.5, description="Nameplate capacity; a list gives one value per household, 0 = no battery."
    )
    soc_min_fraction: float = Field(0.1, ge=0.0, le=1.0)
    soc_max_fraction: float = Field(0.9, ge=0.0, le=1.0)
    initial_soc_fraction: float = Field(0.5, ge=0.0, le=1.0)
    round_trip_efficiency: float = Field(0.9, gt=0.0, le=1.0)
    max_power_kw: float = Field(5.0, ge=0.0)
    degradation_cost_usd_per_kwh: float = Field(0.0, ge=0.0, description="Per kWh of AC throughput.")
    charge_from_grid: bool = Field(
        False, description="False: charge only from the home's own PV surplus (California rule)."
    )

    @field_validator("capacity_kwh")
    @classmethod
    def _capacity_non_negative(cls, v: float | list[float]) -> float | list[float]:
        return _per_household(v, 0.0, strict_minimum=False)

    @model_validator(mode="after")
    def _soc_bounds_ordered(self) -> "BatteryConfig":
        if self.soc_min_fraction > self.soc_max_fraction:
            raise ValueError(
                f"soc_min_fraction ({self.soc_min_fraction}) must be <= soc_max_fraction "
                f"({self.soc_max_fraction})"
            )
        if not self.soc_min_fraction <= self.initial_soc_fraction <= self.soc_max_fraction:
            raise ValueError(
                f"initial_soc_fraction ({self.initial_soc_fraction}) must lie in "
                f"[soc_min_fraction, soc_max_fraction] = [{self.soc_min_fraction}, {self.soc_max_fraction}]"
            )
        return self


class GridConfig(StrictModel):
    """Per-household limits on the meter's net position, kWh per 30-minute interval.

    Each limit is one value for every home or a list with one value per home (service limits
    differ). A home whose load exceeds PV plus its import limit cannot be served by any battery
    action: by default such data are refused naming the home and interval; ``over_limit:
    unserved`` runs them anyway, shedding the excess before the battery acts and counting it as
    ``unserved_kwh`` in infos and results (the same for every policy, baseline included).
    """

    import_limit_kwh: FloatOrList = Field(10.0, description="Largest draw from the grid; a list: one per household.")
    export_limit_kwh: FloatOrList = Field(4.0, description="Largest feed-in; a list: one per household.")
    over_limit: Literal["error", "unserved"] = Field(
        "error", description="Load above PV + import limit: error (refuse the data) or unserved (shed and count it)."
    )

    @field_validator("import_limit_kwh")
    @classmethod
    def _import_positive(cls, v: float | list[float]) -> float | list[float]:
        return _per_household(v, 0.0, strict_minimum=True)

    @field_validator("export_limit_kwh")
    @classmethod
    def _export_non_negative(cls, v: float | list[float]) -> float | list[float]:
        return _per_household(v, 0.0, strict_minimum=False)


class MarketConfig(StrictModel):
    """The central coordinator's P2P market."""

    mechanism: Annotated[Mechanism, Field(strict=False)] = Field(
        Mechanism.SDR, description="sdr, mid_market, bill_sharing, none, or double_auction (actions carry a limit price; energy_env/auction.py)."
    )
    auction_k: float = Field(0.5, ge=0.0, le=1.0, description="double_auction: price = k * lowest bid served + (1 - k) * highest ask served.")
    transmission_loss: float = Field(0.05, ge=0.0, lt=1.0, description="Share of sent energy lost.")
    sdr_observation_cap: float = Field(
        5.0, gt=0.0, description="The published SDR is capped here in observations (info has the raw value)."
    )


GapFill = Literal["none", "interpolate", "previous", "same_slot"]


class WholesaleConfig(StrictModel):
    """Wholesale prices behind ``tariff.import_pricing: caiso_indexed`` (see energy_env/dynamic_pricing.py)."""

    source: Literal["file", "postgres", "supabase"] = "file"
    path: str | None = Field(
        None, description="CSV/Parquet of CAISO prices (source 'file'), e.g. ../shared/data/caiso/caiso_2024_dlap_hourly_lmp.csv."
    )
    table: str = Field("pricing", description="Pricing table (source postgres / supabase).")
    node: str = Field("DLAP_PGAE-APND", description="CAISO node; DLAP_PGAE-APND is PG&E's load aggregation point.")
    market: str | None = Field("DAM", description="DAM or RTM, for layouts with a market column.")
    align: Literal["exact", "calendar"] = Field(
        "exact", description="exact: prices of the data set's own dates; calendar: same month, day and time of the series' year."
    )
    gap_fill: GapFill = Field("interpolate", description="How missing half hours are filled (the shared CAISO file lacks 00:00-09:00).")
    max_gap_intervals: Int | None = Field(
        48, ge=1, description="Longest gap (half hours) the rule may fill; default one day (the CAISO nights are 18-20); None = any."
    )
    multiplier: float = Field(1.0, gt=0.0)
    adder_usd_per_kwh: float | None = Field(
        None, description="Added to multiplier x wholesale; None = calibrated so the mean import price equals E-TOU-C's."
    )
    floor_usd_per_kwh: float = Field(0.0, description="Lowest import price.")
    cap_usd_per_kwh: float = Field(1.0, description="Highest import price.")

    @model_validator(mode="after")
    def _floor_below_cap(self) -> "WholesaleConfig":
        if not self.floor_usd_per_kwh < self.cap_usd_per_kwh:
            raise ValueError(f"floor_usd_per_kwh ({self.floor_usd_per_kwh}) must be below cap_usd_per_kwh ({self.cap_usd_per_kwh})")
        return self


class TariffConfig(StrictModel):
    """PG&E pricing. Import: E-TOU-C; export: Net Billing Tariff (NEM 3), NEM 2 or a flat rate."""

    import_rate_effective_date: Literal[
        "2025-01-01", "2025-03-01", "2025-09-01", "2026-01-01", "2026-03-01"
    ] = "2025-01-01"
    export: Literal["nbt", "nem2", "flat"] = "nbt"
    nbt_vintage: Literal[2024, 2025] = 2024
    nbt_calendar_year: Literal[2024, 2025] = 2025
    nbt_acc_plus_adder_usd_per_kwh: float = Field(0.0, ge=0.0)
    nem2_non_bypassable_usd_per_kwh: float = Field(0.0315, ge=0.0)
    flat_export_usd_per_kwh: float = Field(0.04, ge=0.0)
    baseline_credit: bool = Field(False, description="Credit imports within the daily baseline allowance.")
    baseline_allowance_kwh_per_day_summer: float = Field(9.8, ge=0.0)  # territory X
    baseline_allowance_kwh_per_day_winter: float = Field(9.7, ge=0.0)
    terminal_price_usd_per_kwh: float | None = Field(
        None, description="Settles the battery's end-of-episode energy change; None = off-peak import price of the last day."
    )
    import_pricing: Literal["tou_c", "caiso_indexed"] = Field(
        "tou_c", description="tou_c: E-TOU-C; caiso_indexed: import price indexed to wholesale (tariff.wholesale)."
    )
    wholesale: WholesaleConfig = WholesaleConfig()

    @model_validator(mode="after")
    def _vintage_covers_year(self) -> "TariffConfig":
        if self.nbt_calendar_year < self.nbt_vintage:
            raise ValueError(
                f"nbt_calendar_year ({self.nbt_calendar_year}) precedes nbt_vintage ({self.nbt_vintage})"
            )
        if self.import_pricing == "caiso_indexed" and self.wholesale.source == "file" and not self.wholesale.path:
            raise ValueError("import_pricing 'caiso_indexed' with wholesale.source 'file' needs wholesale.path")
        return self


class DataConfig(StrictModel):
    """Where the household load and PV come from (external sources: docs/data_sources.md)."""

    source: Literal["synthetic", "citylearn", "file", "postgres", "supabase"] = "synthetic"
    path: str | None = Field(
        None, description="Folder of a CityLearn data set (schema.json, Building_N.csv), or a CSV / Parquet file (source 'file')."
    )
    year: Int = Field(2025, ge=1990, le=2100, description="Calendar year of the synthetic data set.")
    include_faulty: bool = Field(False, description="Keep homes the loader flags as faulty.")
    buildings: IntList | None = Field(None, description="CityLearn building numbers to load (None = all kept).")
    table: str = Field("consumption", description="Consumption table (source postgres / supabase).")
    households: StrList | None = Field(None, description="Household ids to load, in order (None = the first num_households).")
    start_date: LocalDate | None = Field(None, description="First local date to load (file / postgres / supabase).")
    end_date: LocalDate | None = Field(None, description="Last local date to load, inclusive.")
    gap_fill: GapFill = Field("none", description="How missing half hours are filled; none = refuse data with gaps.")
    max_gap_intervals: Int | None = Field(
        48, ge=1, description="Longest gap (half hours) the rule may fill; default one day, longer gaps fail the load; None = any."
    )
    resolution_minutes: Literal[5, 10, 15, 30, 60] | None = Field(None, description="Input interval length; None = detected.")

    @model_validator(mode="after")
    def _path_for_citylearn(self) -> "DataConfig":
        if self.source == "citylearn" and not self.path:
            raise ValueError("source 'citylearn' needs data.path (a folder holding schema.json)")
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs data.path (a .csv or .parquet file)")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date ({self.end_date}) is before start_date ({self.start_date})")
        return self


class DatabaseConfig(StrictModel):
    """Connection settings of the postgres / supabase sources; the secrets stay in the environment."""

    dsn_env: str = Field("WATTSHARE_PG_DSN", description="Environment variable holding the PostgreSQL DSN.")
    env_file: str | None = Field(".env", description="A .env file read after the environment (SUPABASE_URL, SUPABASE_KEY, the DSN).")
    db_schema: str = Field("public", description="Database schema of the tables.")
    page_rows: Int = Field(1000, ge=1, description="Rows per request / fetch.")


class ForecastConfig(StrictModel):
    """Where the households' forecasts (observations, the coordinator's price estimate) come from."""

    provider: Literal["perfect", "persistence", "seasonal_persistence", "seasonal_mean", "lstm"] = "persistence"
    horizon: Int = Field(6, ge=1, le=48)
    checkpoint: str | None = Field(
        None, description="LSTM checkpoint (provider 'lstm'); None = data/checkpoints/forecasters/<data set>/."
    )
    day_ahead_blocks: Int = Field(
        0, ge=0, le=48,
        description="K > 0 adds each home's expected load and PV of the next 24 hours in K blocks (its 7-day mean of the same clock time) to the observation; K divides 48. 0: not observed.",
    )

    @field_validator("day_ahead_blocks")
    @classmethod
    def _divides_a_day(cls, k: int) -> int:
        if k and INTERVALS_PER_DAY % k:
            raise ValueError(f"must divide the day's {INTERVALS_PER_DAY} intervals (1, 2, 3, 4, 6, 8, 12, 16, 24 or 48), got {k}")
        return k


class RewardConfig(StrictModel):
    kind: Literal["cost", "savings"] = Field(
        "cost", description="cost: -$ paid this interval; savings: baseline $ - $ paid."
    )


class EnvConfig(StrictModel):
    """Everything a community simulation needs; see config/config.yaml."""

    num_households: Int | None = Field(
        None, ge=1,
        description="Homes in the community: the first N of the source (file order); null: every home it holds (10 synthetic homes).",
    )
    seed: Int = Field(0, ge=0, description="Seed of the synthetic data and the envs' episode draws.")
    episode_length: Int = Field(48, ge=1, description="Intervals per episode (48 = one day).")
    battery: BatteryConfig = BatteryConfig()
    grid: GridConfig = GridConfig()
    market: MarketConfig = MarketConfig()
    tariff: TariffConfig = TariffConfig()
    data: DataConfig = DataConfig()
    database: DatabaseConfig = DatabaseConfig()
    forecast: ForecastConfig = ForecastConfig()
    reward: RewardConfig = RewardConfig()

    @property
    def households_to_load(self) -> int | None:
        """``num_households``, or :data:`SYNTHETIC_HOUSEHOLDS` for synthetic data when it is null (None: all)."""
        if self.num_households is None and self.data.source == "synthetic":
            return SYNTHETIC_HOUSEHOLDS
        return self.num_households

    @model_validator(mode="after")
    def _per_household_lists_match(self) -> "EnvConfig":
        if self.households_to_load is None:
            return self  # every home of the source: checked against the loaded data set (per_household_lists_problem)
        problem = per_household_lists_problem(self, self.households_to_load)
        if problem:
            raise ValueError(problem)
        return self


def per_household_lists_problem(cfg: EnvConfig, num_households: int) -> str | None:
    """Why the config's per-household lists do not fit ``num_households`` homes, or None."""
    for key, value in (
        ("battery.capacity_kwh", cfg.battery.capacity_kwh),
        ("grid.import_limit_kwh", cfg.grid.import_limit_kwh),
        ("grid.export_limit_kwh", cfg.grid.export_limit_kwh),
    ):
        if isinstance(value, list) and len(value) != num_households:
            return f"{key} has {len(value)} values but the community has {num_households} households"
    return None


def format_validation_error(err: ValidationError, source: str) -> str:
    """A pydantic error as the lines ``key.path: message`` under ``invalid configuration (source)``."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}")
    return f"invalid configuration ({source}):\n  " + "\n  ".join(lines)


def _deep_merge(base: dict, overrides: Mapping[str, Any]) -> dict:
    """Merge ``overrides`` into a copy of ``base``; dotted keys ('battery.capacity_kwh') reach down."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        leaf = parts[-1]
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf] = _deep_merge(node[leaf], value)
        else:
            node[leaf] = value
    return out


def make_config(base: Mapping[str, Any] | None = None, source: str = "overrides", **overrides: Any) -> EnvConfig:
    """Build an :class:`EnvConfig` from a mapping plus keyword overrides.

    Overrides name config keys: ``make_config(num_households=100)``, nested mappings
    (``battery={"capacity_kwh": 10}``) or dotted keys (``**{"battery.capacity_kwh": 10}``).
    Raises :class:`ConfigError` naming every bad key.
    """
    merged = _deep_merge(dict(base or {}), overrides)
    try:
        return EnvConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


# Top-level sections of a run configuration that are not the env's: ``wattshare`` reads them
# (train/run_config.py); the env's loader leaves them alone, so one YAML describes a whole run.
RUN_SECTIONS: tuple[str, ...] = ("forecasting", "federated", "training", "oracle", "benchmark", "pipeline")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (safe loader: no code runs), or :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path | None = None, **overrides: Any) -> EnvConfig:
    """Read a YAML config file (None = built-in defaults) and apply ``overrides``.

    The file's run sections (:data:`RUN_SECTIONS`, e.g. ``oracle``) are not the env's and are left out.
    """
    if path is None:
        return make_config(**overrides)
    raw = {k: v for k, v in read_yaml(path).items() if k not in RUN_SECTIONS}
    return make_config(raw, source=str(path), **overrides)


def default_config_dict() -> dict[str, Any]:
    """The defaults as a plain dict (what ``config/config.yaml`` holds)."""
    return EnvConfig().model_dump(mode="json")

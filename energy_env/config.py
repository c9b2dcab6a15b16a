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
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

INTERVAL_HOURS = 0.5  # every energy in the package is kWh per 30-minute interval
INTERVALS_PER_DAY = 48


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or impossible; the message names it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, validate_assignment=True, frozen=True)


class BatteryConfig(_Strict):
    """Home battery (defaults: a Tesla Powerwall 2 class unit, as in the proof of concept)."""

    capacity_kwh: float | list[float] = Field(
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
        values = v if isinstance(v, list) else [v]
        if not values:
            raise ValueError("must not be an empty list")
        for i, c in enumerate(values):
            if not c >= 0.0 or c != c or c == float("inf"):
                where = f"[{i}] " if isinstance(v, list) else ""
                raise ValueError(f"{where}must be a finite number >= 0, got {c}")
        return v

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


class GridConfig(_Strict):
    """Per-household limits on the meter's net position, kWh per 30-minute interval."""

    import_limit_kwh: float = Field(10.0, gt=0.0)
    export_limit_kwh: float = Field(4.0, ge=0.0)


class MarketConfig(_Strict):
    """The central coordinator's P2P market."""

    mechanism: Literal["sdr", "mid_market", "bill_sharing", "none"] = "sdr"
    transmission_loss: float = Field(0.05, ge=0.0, lt=1.0, description="Share of sent energy lost.")
    sdr_observation_cap: float = Field(
        5.0, gt=0.0, description="The published SDR is capped here in observations (info has the raw value)."
    )


GapFill = Literal["none", "interpolate", "previous", "same_slot"]


class WholesaleConfig(_Strict):
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
    max_gap_intervals: int | None = Field(None, ge=1, description="Longest gap (half hours) the rule may fill; None = any.")
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


class TariffConfig(_Strict):
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


class DataConfig(_Strict):
    """Where the household load and PV come from (external sources: docs/data_sources.md)."""

    source: Literal["synthetic", "citylearn", "file", "postgres", "supabase"] = "synthetic"
    path: str | None = Field(
        None, description="Folder of a CityLearn data set (schema.json, Building_N.csv), or a CSV / Parquet file (source 'file')."
    )
    year: int = Field(2025, ge=1990, le=2100, description="Calendar year of the synthetic data set.")
    include_faulty: bool = Field(False, description="Keep homes the loader flags as faulty.")
    buildings: list[int] | None = Field(None, description="CityLearn building numbers to load (None = all kept).")
    table: str = Field("consumption", description="Consumption table (source postgres / supabase).")
    households: list[str] | None = Field(None, description="Household ids to load, in order (None = the first num_households).")
    start_date: dt.date | None = Field(None, description="First local date to load (file / postgres / supabase).")
    end_date: dt.date | None = Field(None, description="Last local date to load, inclusive.")
    gap_fill: GapFill = Field("none", description="How missing half hours are filled; none = refuse data with gaps.")
    max_gap_intervals: int | None = Field(None, ge=1, description="Longest gap (half hours) the rule may fill; None = any.")
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


class DatabaseConfig(_Strict):
    """Connection settings of the postgres / supabase sources; the secrets stay in the environment."""

    dsn_env: str = Field("WATTSHARE_PG_DSN", description="Environment variable holding the PostgreSQL DSN.")
    env_file: str | None = Field(".env", description="A .env file read after the environment (SUPABASE_URL, SUPABASE_KEY, the DSN).")
    db_schema: str = Field("public", description="Database schema of the tables.")
    page_rows: int = Field(1000, ge=1, description="Rows per request / fetch.")


class ForecastConfig(_Strict):
    """Where the households' forecasts (observations, the coordinator's price estimate) come from."""

    provider: Literal["perfect", "persistence", "seasonal_persistence", "seasonal_mean", "lstm"] = "persistence"
    horizon: int = Field(6, ge=1, le=48)
    checkpoint: str | None = Field(
        None, description="LSTM checkpoint (provider 'lstm'); None = data/checkpoints/forecasters/<data set>/."
    )


class RewardConfig(_Strict):
    kind: Literal["cost", "savings"] = Field(
        "cost", description="cost: -$ paid this interval; savings: baseline $ - $ paid."
    )


class EnvConfig(_Strict):
    """Everything a community simulation needs; see config/config.yaml."""

    num_households: int = Field(10, ge=1)
    seed: int = 0
    episode_length: int = Field(48, ge=1, description="Intervals per episode (48 = one day).")
    battery: BatteryConfig = BatteryConfig()
    grid: GridConfig = GridConfig()
    market: MarketConfig = MarketConfig()
    tariff: TariffConfig = TariffConfig()
    data: DataConfig = DataConfig()
    database: DatabaseConfig = DatabaseConfig()
    forecast: ForecastConfig = ForecastConfig()
    reward: RewardConfig = RewardConfig()

    @model_validator(mode="after")
    def _capacity_list_matches(self) -> "EnvConfig":
        cap = self.battery.capacity_kwh
        if isinstance(cap, list) and len(cap) != self.num_households:
            raise ValueError(
                f"battery.capacity_kwh has {len(cap)} values but num_households is {self.num_households}"
            )
        return self


def _format_error(err: ValidationError, source: str) -> str:
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
        raise ConfigError(_format_error(err, source)) from None


def load_config(path: str | Path | None = None, **overrides: Any) -> EnvConfig:
    """Read a YAML config file (None = built-in defaults) and apply ``overrides``."""
    if path is None:
        return make_config(**overrides)
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping, got {type(raw).__name__}")
    return make_config(raw, source=str(path), **overrides)


def default_config_dict() -> dict[str, Any]:
    """The defaults as a plain dict (what ``config/config.yaml`` holds)."""
    return EnvConfig().model_dump(mode="json")

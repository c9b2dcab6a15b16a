"""PG&E prices per 30-minute interval: E-TOU-C imports and NBT / NEM 2 / flat exports.

Every function takes a :class:`pandas.DatetimeIndex` of interval **starts** in naive local prevailing time
(the clock PG&E's meters use, DST included) and returns numpy arrays, one value per interval. They are
vectorised: a year of 17,520 intervals takes milliseconds.

Tariff figures come from ``energy_env/tariff_data`` (see ``SOURCES.md`` there):

* **Import, E-TOU-C** (one snapshot, chosen by ``TariffConfig.import_rate_effective_date``): peak is
  16:00-21:00 every day, weekends and holidays included; summer is June-September. The rate is the total rate
  for usage above baseline; :func:`baseline_credit_usd_per_kwh` gives the credit for usage within it.
* **Export, NBT** (Net Billing Tariff, "NEM 3"): hourly Energy Export Credits of the configured vintage and
  calendar year, looked up by each interval's month x day type x hour. The table's calendar year is a tariff
  choice; the data set's own year only decides the month, weekday / holiday and hour.
* **Export, NEM 2**: the retail TOU rate of the interval minus non-bypassable charges. This ignores NEM 2's
  annual true-up netting (surplus beyond a year's imports is really paid at the ~$0.03/kWh NSC rate), so it
  overstates the credit of a home that exports more than it imports over the year.
* **Export, flat**: one constant rate.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

import numpy as np
import pandas as pd

from .config import TariffConfig

__all__ = [
    "MissingTariffDataError",
    "PriceTable",
    "baseline_allowance_kwh_per_day",
    "baseline_credit_usd_per_kwh",
    "build_price_table",
    "day_type",
    "describe_tariff",
    "export_price_usd_per_kwh",
    "import_price_usd_per_kwh",
    "is_peak",
    "is_summer",
    "is_weekend_or_holiday",
    "off_peak_import_usd_per_kwh",
    "pge_holidays",
    "terminal_price_usd_per_kwh",
]

SUMMER_MONTHS = (6, 7, 8, 9)  # E-TOU-C summer: 1 June - 30 September
PEAK_START_HOUR, PEAK_END_HOUR = 16, 21  # peak 16:00-21:00 every day, i.e. interval starts in hours 16..20
DAY_TYPES = ("Weekday", "Weekend")  # NBT day types; "Weekend" also covers the 8 tariff holidays
INTERVAL_MINUTES = 30

_DATA_PACKAGE = __package__ or "energy_env"
_ETOUC_FILE = "e_tou_c_rates.csv"
_NBT_FILE = "nbt_export_values.csv"
_HOUR_COLUMNS = [f"h{h:02d}" for h in range(24)]


class MissingTariffDataError(LookupError):
    """The packaged tariff tables have no row for the requested effective date / vintage / year / cell."""


# --------------------------------------------------------------------------------------------- timestamps


def _as_naive_index(timestamps: object, what: str = "timestamps") -> pd.DatetimeIndex:
    """Coerce to a DatetimeIndex and reject tz-aware or NaT values (the tariff clock is naive local time)."""
    if isinstance(timestamps, pd.DatetimeIndex):
        idx = timestamps
    else:
        try:
            idx = pd.DatetimeIndex(timestamps)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{what} must be a pandas DatetimeIndex (or convertible), got {type(timestamps).__name__}: {err}"
            ) from None
    if idx.tz is not None:
        raise ValueError(
            f"{what} must be naive local prevailing time (PG&E's meter clock), got a tz-aware index "
            f"(tz={idx.tz}); convert with .tz_convert('America/Los_Angeles').tz_localize(None)"
        )
    if idx.hasnans:
        raise ValueError(f"{what} contains NaT at position {int(np.flatnonzero(idx.isna())[0])}")
    return idx


def _check_timestamps(timestamps: object) -> pd.DatetimeIndex:
    """Naive, NaT-free and every value on a :00 or :30 boundary (interval starts)."""
    idx = _as_naive_index(timestamps)
    off = (idx.minute % INTERVAL_MINUTES != 0) | (idx.second != 0) | (idx.microsecond != 0) | (idx.nanosecond != 0)
    if off.any():
        bad = np.flatnonzero(off)
        raise ValueError(
            f"timestamps must be 30-minute aligned interval starts (hh:00 or hh:30); {bad.size} are not, "
            f"first at position {int(bad[0])}: {idx[bad[0]]}"
        )
    return idx


# The underscored helpers take an already checked index, so composite functions validate once.


def _summer(idx: pd.DatetimeIndex) -> np.ndarray:
    return np.isin(idx.month.to_numpy(), SUMMER_MONTHS)


def _peak(idx: pd.DatetimeIndex) -> np.ndarray:
    hour = idx.hour.to_numpy()
    return (hour >= PEAK_START_HOUR) & (hour < PEAK_END_HOUR)


def is_summer(timestamps: pd.DatetimeIndex) -> np.ndarray:
    """(T,) bool: the interval falls in E-TOU-C summer (June-September)."""
    return _summer(_check_timestamps(timestamps))


def is_peak(timestamps: pd.DatetimeIndex) -> np.ndarray:
    """(T,) bool: the interval starts in the E-TOU-C peak, 16:00-21:00 every day (hours 16..20)."""
    return _peak(_check_timestamps(timestamps))


# ----------------------------------------------------------------------------------------------- holidays


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based; -1 = last) given weekday (Mon=0) of a month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    # PG&E "TOU holidays" rule: a holiday on Sunday moves to the following Monday; one on Saturday
    # designates no weekday (it stays on the Saturday, which is weekend-type anyway).
    return day + dt.timedelta(days=1) if day.weekday() == 6 else day


@functools.lru_cache(maxsize=256)
def _holidays_of_year(year: int) -> frozenset[dt.date]:
    days = [
        dt.date(year, 1, 1),  # New Year's Day
        _nth_weekday(year, 2, 0, 3),  # Presidents' Day: 3rd Monday of February
        _nth_weekday(year, 5, 0, -1),  # Memorial Day: last Monday of May
        dt.date(year, 7, 4),  # Independence Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day: 1st Monday of September
        dt.date(year, 11, 11),  # Veterans Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving: 4th Thursday of November
        dt.date(year, 12, 25),  # Christmas Day
    ]
    return frozenset(_observed(d) for d in days)


def pge_holidays(years: int | Iterable[int]) -> set[dt.date]:
    """PG&E's 8 TOU holidays, as observed, for one year or several.

    New Year's Day, Presidents' Day, Memorial Day, Independence Day, Labor Day, Veterans Day, Thanksgiving and
    Christmas. Following PG&E's TOU-holiday rule, a fixed-date holiday falling on a Sunday is observed on the
    Monday after; one falling on a Saturday stays there (no weekday is designated).
    """
    years = [years] if isinstance(years, (int, np.integer)) else list(years)
    out: set[dt.date] = set()
    for y in years:
        out |= _holidays_of_year(int(y))
    return out


def _weekend_or_holiday(idx: pd.DatetimeIndex) -> np.ndarray:
    weekend = idx.day_of_week.to_numpy() >= 5
    if idx.size == 0:
        return weekend
    years = np.unique(idx.year.to_numpy())
    holidays = np.array(sorted(pge_holidays(years.tolist())), dtype="datetime64[D]")
    days = idx.to_numpy().astype("datetime64[D]")
    return weekend | np.isin(days, holidays)


def is_weekend_or_holiday(timestamps: pd.DatetimeIndex) -> np.ndarray:
    """(T,) bool: the interval's day is a Saturday, Sunday or PG&E TOU holiday (NBT day type "Weekend")."""
    return _weekend_or_holiday(_check_timestamps(timestamps))


def day_type(timestamps: pd.DatetimeIndex) -> np.ndarray:
    """(T,) str: the NBT day type of each interval, "Weekday" or "Weekend" (weekends and holidays)."""
    return np.where(is_weekend_or_holiday(timestamps), DAY_TYPES[1], DAY_TYPES[0])


# ------------------------------------------------------------------------------------------- rate tables


@dataclass(frozen=True)
class _EtoucRates:
    effective_date: str
    advice_letter: str
    summer_peak: float
    summer_off_peak: float
    winter_peak: float
    winter_off_peak: float
    baseline_credit: float


def _read_data_csv(name: str) -> pd.DataFrame:
    # importlib.resources so the tables are found inside an installed wheel, not only in a checkout
    with (resources.files(_DATA_PACKAGE) / "tariff_data" / name).open("r", encoding="utf-8") as f:
        return pd.read_csv(f, dtype={"effective_date": str, "advice_letter": str, "day_type": str})


@functools.lru_cache(maxsize=None)
def _etouc_table() -> dict[str, _EtoucRates]:
    df = _read_data_csv(_ETOUC_FILE)
    return {
        r.effective_date: _EtoucRates(
            effective_date=r.effective_date,
            advice_letter=r.advice_letter,
            summer_peak=float(r.summer_peak_usd_per_kwh),
            summer_off_peak=float(r.summer_off_peak_usd_per_kwh),
            winter_peak=float(r.winter_peak_usd_per_kwh),
            winter_off_peak=float(r.winter_off_peak_usd_per_kwh),
            baseline_credit=float(r.baseline_credit_usd_per_kwh),
        )
        for r in df.itertuples(index=False)
    }


@functools.lru_cache(maxsize=None)
def _nbt_table() -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """{(vintage, calendar_year): (values[12 months, 2 day types, 24 hours], present[12, 2])}, read-only."""
    df = _read_data_csv(_NBT_FILE)
    out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for (vintage, year), g in df.groupby(["vintage", "calendar_year"], sort=True):
        values = np.full((12, 2, 24), np.nan)
        present = np.zeros((12, 2), dtype=bool)
        m = g["month"].to_numpy() - 1
        d = (g["day_type"].to_numpy() == DAY_TYPES[1]).astype(int)
        values[m, d, :] = g[_HOUR_COLUMNS].to_numpy(dtype=np.float64)
        present[m, d] = True
        values.setflags(write=False)
        present.setflags(write=False)
        out[int(vintage), int(year)] = (values, present)
    return out


def _etouc(cfg: TariffConfig) -> _EtoucRates:
    table = _etouc_table()
    try:
        return table[cfg.import_rate_effective_date]
    except KeyError:
        raise MissingTariffDataError(
            f"no E-TOU-C rates with effective date {cfg.import_rate_effective_date} in {_ETOUC_FILE}; "
            f"available: {', '.join(sorted(table))}"
        ) from None


def _nbt_values_usd_per_kwh(idx: pd.DatetimeIndex, vintage: int, calendar_year: int) -> np.ndarray:
    """Look up each interval's NBT export credit (no adder) in the (vintage, calendar_year) table."""
    table = _nbt_table()
    if (vintage, calendar_year) not in table:
        raise MissingTariffDataError(
            f"no NBT export values for vintage {vintage}, calendar year {calendar_year} in {_NBT_FILE}; "
            f"available (vintage, calendar year): {sorted(table)}"
        )
    values, present = table[vintage, calendar_year]
    month = idx.month.to_numpy() - 1
    weekend = _weekend_or_holiday(idx).astype(np.intp)
    ok = present[month, weekend]
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise MissingTariffDataError(
            f"no NBT export values for vintage {vintage}, calendar year {calendar_year}, month {month[i] + 1}, "
            f"day type {DAY_TYPES[weekend[i]]} (needed by timestamp {idx[i]})"
        )
    return values[month, weekend, idx.hour.to_numpy()]


# ------------------------------------------------------------------------------------------------ prices


def import_price_usd_per_kwh(timestamps: pd.DatetimeIndex, cfg: TariffConfig) -> np.ndarray:
    """(T,) float64 $/kWh: the E-TOU-C total rate (usage above baseline) of ``cfg.import_rate_effective_date``.

    The configured snapshot applies to every timestamp, whatever its date: the rate sheet is a tariff
    choice, the data set supplies only season and hour.
    """
    idx = _check_timestamps(timestamps)
    r = _etouc(cfg)
    summer, peak = _summer(idx), _peak(idx)
    return np.where(
        summer,
        np.where(peak, r.summer_peak, r.summer_off_peak),
        np.where(peak, r.winter_peak, r.winter_off_peak),
    ).astype(np.float64)


def off_peak_import_usd_per_kwh(timestamps: pd.DatetimeIndex, cfg: TariffConfig) -> np.ndarray:
    """(T,) float64 $/kWh: the E-TOU-C off-peak rate in force on each interval's day (its season's off-peak).

    Per interval rather than per day, so callers need not assume 48 intervals a day (DST days have 46 or 50).
    """
    idx = _check_timestamps(timestamps)
    r = _etouc(cfg)
    return np.where(_summer(idx), r.summer_off_peak, r.winter_off_peak).astype(np.float64)


def export_price_usd_per_kwh(
    timestamps: pd.DatetimeIndex, cfg: TariffConfig, import_price: np.ndarray | None = None
) -> np.ndarray:
    """(T,) float64 $/kWh credited for each kWh exported to the grid.

    * ``nbt``: the NBT Energy Export Credit of table (``cfg.nbt_vintage``, ``cfg.nbt_calendar_year``) at the
      interval's month x day type (weekday / weekend-or-holiday) x hour, plus
      ``cfg.nbt_acc_plus_adder_usd_per_kwh``.
    * ``nem2``: the import price at that time minus ``cfg.nem2_non_bypassable_usd_per_kwh`` (floored at 0).
      Simplification: NEM 2 credits exports at the retail TOU rate less non-bypassable charges; the annual
      true-up netting (net surplus paid at the NSC rate) is ignored.
    * ``flat``: ``cfg.flat_export_usd_per_kwh`` everywhere.

    ``import_price`` (T,) may be passed to reuse an already computed :func:`import_price_usd_per_kwh`
    (used by ``nem2`` only).
    """
    idx = _check_timestamps(timestamps)
    if cfg.export == "nbt":
        values = _nbt_values_usd_per_kwh(idx, int(cfg.nbt_vintage), int(cfg.nbt_calendar_year))
        return values + cfg.nbt_acc_plus_adder_usd_per_kwh
    if cfg.export == "nem2":
        if import_price is None:
            imp = import_price_usd_per_kwh(idx, cfg)
        else:
            imp = np.asarray(import_price, dtype=np.float64)
            if imp.shape != (len(idx),):
                raise ValueError(f"import_price has shape {imp.shape}, expected ({len(idx)},) like timestamps")
        # a credit never turns into a charge, whatever non-bypassable figure is configured
        return np.maximum(imp - cfg.nem2_non_bypassable_usd_per_kwh, 0.0)
    if cfg.export == "flat":
        return np.full(len(idx), cfg.flat_export_usd_per_kwh, dtype=np.float64)
    raise ValueError(f"unknown tariff.export {cfg.export!r}; expected 'nbt', 'nem2' or 'flat'")


def baseline_credit_usd_per_kwh(cfg: TariffConfig) -> float:
    """$/kWh subtracted from the E-TOU-C rate for usage within the daily baseline allowance."""
    return _etouc(cfg).baseline_credit


def baseline_allowance_kwh_per_day(dates: pd.DatetimeIndex, cfg: TariffConfig) -> np.ndarray:
    """(D,) float64 kWh/day: the baseline allowance of each day (summer or winter figure of ``cfg``).

    ``dates`` holds one timestamp per day (any time of day; only the month is used).
    """
    idx = _as_naive_index(dates, "dates")
    return np.where(
        _summer(idx), cfg.baseline_allowance_kwh_per_day_summer, cfg.baseline_allowance_kwh_per_day_winter
    ).astype(np.float64)


def terminal_price_usd_per_kwh(
    timestamps_of_episode: pd.DatetimeIndex, import_price_of_episode: np.ndarray, cfg: TariffConfig
) -> float:
    """$/kWh that values the battery's end-of-episode energy change.

    ``cfg.terminal_price_usd_per_kwh`` if set; otherwise the E-TOU-C off-peak rate in force on the episode's
    last calendar day (its season's off-peak rate from the rate table). It is taken from the table rather than
    as a minimum over the episode's prices so that an episode whose last day holds only peak intervals still
    settles at the off-peak rate. ``import_price_of_episode`` is only checked to match the timestamps.
    """
    idx = _check_timestamps(timestamps_of_episode)
    if idx.size == 0:
        raise ValueError("timestamps_of_episode is empty; an episode has at least one interval")
    prices = np.asarray(import_price_of_episode, dtype=np.float64)
    if prices.shape != (len(idx),):
        raise ValueError(f"import_price_of_episode has shape {prices.shape}, expected ({len(idx)},)")
    if cfg.terminal_price_usd_per_kwh is not None:
        return float(cfg.terminal_price_usd_per_kwh)
    # the season (hence off-peak rate) of the last interval is that of its whole calendar day
    return float(off_peak_import_usd_per_kwh(idx[-1:], cfg)[0])


# ------------------------------------------------------------------------------------------ price table


def describe_tariff(cfg: TariffConfig) -> str:
    """One line naming the rate sheet and export scheme, e.g.
    "PG&E E-TOU-C 2025-01-01 (AL 7469-E); NBT vintage 2024, calendar 2025"."""
    r = _etouc(cfg)
    parts = [f"PG&E E-TOU-C {r.effective_date} (AL {r.advice_letter})"]
    if cfg.baseline_credit:
        parts.append(
            f"baseline credit {r.baseline_credit:.5f} $/kWh within {cfg.baseline_allowance_kwh_per_day_summer:g}"
            f"/{cfg.baseline_allowance_kwh_per_day_winter:g} kWh/day (summer/winter)"
        )
    if cfg.export == "nbt":
        nbt = f"NBT vintage {cfg.nbt_vintage}, calendar {cfg.nbt_calendar_year}"
        if cfg.nbt_acc_plus_adder_usd_per_kwh > 0:
            nbt += f" + ACC Plus adder {cfg.nbt_acc_plus_adder_usd_per_kwh:g} $/kWh"
        parts.append(nbt)
    elif cfg.export == "nem2":
        parts.append(f"NEM 2 export at TOU rate - {cfg.nem2_non_bypassable_usd_per_kwh:g} $/kWh non-bypassable")
    else:
        parts.append(f"flat export {cfg.flat_export_usd_per_kwh:g} $/kWh")
    return "; ".join(parts)


@dataclass(frozen=True, eq=False)
class PriceTable:
    """Per-interval prices of an episode or data set; every array is (T,) and read-only."""

    timestamps: pd.DatetimeIndex
    import_usd_per_kwh: np.ndarray
    export_usd_per_kwh: np.ndarray
    is_peak: np.ndarray
    is_summer: np.ndarray
    description: str
    off_peak_import_usd_per_kwh: np.ndarray  # off-peak rate of each interval's day: the default terminal price

    def __len__(self) -> int:
        return len(self.timestamps)


def build_price_table(timestamps: pd.DatetimeIndex, cfg: TariffConfig) -> PriceTable:
    """Compute import / export prices and period flags for every interval of ``timestamps``."""
    idx = _check_timestamps(timestamps)
    imp = import_price_usd_per_kwh(idx, cfg)
    exp = export_price_usd_per_kwh(idx, cfg, import_price=imp)
    off_peak = off_peak_import_usd_per_kwh(idx, cfg)
    arrays = [imp, exp, _peak(idx), _summer(idx), off_peak]
    for a in arrays:
        a.setflags(write=False)  # shared by every agent and step; nobody may edit prices in place
    return PriceTable(
        timestamps=idx,
        import_usd_per_kwh=imp,
        export_usd_per_kwh=exp,
        is_peak=arrays[2],
        is_summer=arrays[3],
        description=describe_tariff(cfg),
        off_peak_import_usd_per_kwh=off_peak,
    )


def baseline_credit_kwh(import_kwh: np.ndarray, used_before_kwh: np.ndarray, allowance_kwh: np.ndarray) -> np.ndarray:
    """Part of this interval's grid import that falls within what is left of today's allowance."""
    return np.minimum(import_kwh, np.maximum(allowance_kwh - used_before_kwh, 0.0))

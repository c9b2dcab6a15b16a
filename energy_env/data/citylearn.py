"""Loader for CityLearn data-set folders (``schema.json``, ``Building_N.csv``, ``weather.csv``).

Written for the CityLearn Challenge 2022 set (17 measured homes in Fontana, CA; see
``shared/data/PROVENANCE.md`` and ``docs/data.md``), and any folder laid out the same way.

Units and time convention:

* ``non_shiftable_load`` is kWh per hour; ``solar_generation`` is W (AC) per kW of installed PV, so a
  home's PV kWh in an hour is ``solar_generation * nominal_power / 1000`` with ``nominal_power`` (kW)
  from ``schema.json`` (``buildings.Building_N.pv.attributes.nominal_power``).
* Rows are consecutive hours of local clock time. Label ``hour = h`` is the hour starting at h:00;
  ``hour = 24`` is 00:00 of the next day and carries the previous day's ``month`` and ``day_type``
  (1 = Monday ... 7 = Sunday, 8 = holiday). Row 0 of the 2022 set (month 7, hour 24, day_type 7) is
  2016-08-01 00:00, so the data start at midnight on 1 August of ``start_year``.
* Each hour is split into two 30-minute intervals of half its energy; temperature and irradiance
  (``diffuse + direct``, W/m²) are repeated for both halves.

Errors name the file, the column and the row: "data row R" counts data lines from 1 (the header is
line 1 of the file, so data row R is file line R+1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import DataError, Dataset

HOURS_PER_DAY = 24
_HALVES_PER_HOUR = INTERVALS_PER_DAY // HOURS_PER_DAY
START_MONTH, START_DAY = 8, 1  # CityLearn 2022: row 0 is 1 August 00:00

BUILDING_COLUMNS = ("month", "hour", "day_type", "non_shiftable_load", "solar_generation")
WEATHER_COLUMNS = ("outdoor_dry_bulb_temperature", "diffuse_solar_irradiance", "direct_solar_irradiance")

# Fault screens (per home, so a home's flag does not depend on which others are loaded).
# Load: a real home draws standby power all night; a load that is ~0 most nights is net of PV or
# mis-metered (CityLearn 2022 Buildings 12 and 15: 98% and 93% of night hours; healthy homes <= 22%).
NIGHT_HOURS = range(0, 5)  # clock hours 00:00-05:00
NIGHT_ZERO_LOAD_KWH = 1e-3
MAX_NIGHT_ZERO_FRACTION = 0.5
# PV: Wh per kW of PV per Wh/m² of (diffuse + direct) irradiance over the file. Healthy 2022 homes:
# 0.34-0.50 with correlation 0.75-0.83; Building 14: 0.14 (under-reports), Building 15: 0.01 (missing).
MIN_PV_PER_IRRADIANCE = 0.2
MIN_PV_IRRADIANCE_CORRELATION = 0.5


def _row_ref(row0: int) -> str:
    """A 0-based array index as the message's 1-based data row."""
    return f"data row {row0 + 1} (file line {row0 + 2})"


@dataclass(frozen=True)
class CityLearnLocator:
    """A :class:`~energy_env.data.dataset.Locator` for a CityLearn data set: every 30-minute slot
    is half of one hourly row, e.g. ``".../Building_5.csv data row 4321 (file line 4322)"``.

    Attributes:
        files: household id -> its ``Building_N.csv``.
        start: the naive local time of data row 1.
    """

    files: Mapping[str, str]
    start: pd.Timestamp

    def __call__(self, household_id: str, timestamp: pd.Timestamp) -> str:
        row0 = int((pd.Timestamp(timestamp) - self.start) // pd.Timedelta(hours=1))
        return f"{self.files[household_id]} {_row_ref(row0)}"


def _read_schema(folder: Path) -> dict:
    file = folder / "schema.json"
    if not folder.is_dir():
        raise DataError(f"{folder}: CityLearn data folder not found")
    if not file.is_file():
        raise DataError(f"{file}: file not found (a CityLearn folder needs schema.json)")
    try:
        schema = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{file}: not valid JSON: {err}") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("buildings"), dict) or not schema["buildings"]:
        raise DataError(f"{file}: key 'buildings' must be a non-empty mapping of building name -> settings")
    step = schema.get("seconds_per_time_step", 3600)
    if step != 3600:
        raise DataError(f"{file}: seconds_per_time_step is {step}; this loader reads hourly (3600 s) data only")
    return schema


def _read_csv(file: Path, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The named numeric columns of a CSV file as float arrays, or a DataError naming file/column/row."""
    if not file.is_file():
        raise DataError(f"{file}: file not found")
    try:
        df = pd.read_csv(file, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: file is empty (expected a header and hourly rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{file}: not a readable CSV file: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {', '.join(map(repr, missing))}; it has {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{file}: no data rows (only a header)")
    out = {}
    for col in columns:
        raw = df[col]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if bad.any():
            r = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{file}: column {col!r}, {_row_ref(r)}: non-numeric value {raw.iloc[r]!r}")
        arr = values.to_numpy(dtype=float)
        nan = ~np.isfinite(arr)
        if nan.any():
            r = int(np.flatnonzero(nan)[0])
            what = "missing value (empty or NaN)" if np.isnan(arr[r]) else f"non-finite value {arr[r]}"
            raise DataError(f"{file}: column {col!r}, {_row_ref(r)}: {what}")
        out[col] = arr
    return out


def _expected_labels(start: pd.Timestamp, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CityLearn (month, hour, day_type) of ``rows`` consecutive hours from ``start``."""
    ts = pd.date_range(start, periods=rows, freq="h")
    hour = ts.hour.to_numpy()
    label_day = ts - pd.to_timedelta((hour == 0).astype(int), unit="D")  # hour 24 belongs to the day before
    return label_day.month.to_numpy(), np.where(hour == 0, 24, hour), label_day.day_of_week.to_numpy() + 1


def _check_time_labels(file: Path, cols: dict[str, np.ndarray], start: pd.Timestamp, start_year: int) -> None:
    """Rows must be consecutive hours from ``start``; day_type 8 (holiday) matches any day."""
    month, hour, day_type = _expected_labels(start, len(cols["hour"]))
    got = {"month": cols["month"], "hour": cols["hour"], "day_type": cols["day_type"]}
    first = {k: v[0] for k, v in got.items()}
    if not (first["month"] == month[0] and first["hour"] == hour[0] and first["day_type"] in (day_type[0], 8)):
        raise DataError(
            f"{file}: columns 'month', 'hour', 'day_type', {_row_ref(0)}: got month={first['month']:g}, "
            f"hour={first['hour']:g}, day_type={first['day_type']:g}, but a start at {start:%Y-%m-%d %H:%M} "
            f"(start_year={start_year}) needs month={month[0]}, hour={hour[0]}, day_type={day_type[0]} "
            f"(1=Monday..7=Sunday; hour 24 = 00:00 of the next day). Check start_year, or the file does not "
            f"start at midnight on {START_DAY} {pd.Timestamp(2000, START_MONTH, 1):%B} as CityLearn 2022 does."
        )
    for col, expected in (("hour", hour), ("month", month), ("day_type", day_type)):
        wrong = got[col] != expected
        if col == "day_type":
            wrong &= got[col] != 8
        if wrong.any():
            r = int(np.flatnonzero(wrong)[0])
            raise DataError(
                f"{file}: column {col!r}, {_row_ref(r)}: got {got[col][r]:g}, expected {expected[r]} "
                f"(rows must be consecutive hours from {start:%Y-%m-%d %H:%M}; is a row missing or repeated?)"
            )


def _pv_capacity_kw(schema_file: Path, name: str, entry: dict) -> float:
    pv = entry.get("pv")
    if pv is None:
        return 0.0  # CityLearn: a building without a pv entry has no PV
    key = f"buildings.{name}.pv.attributes.nominal_power"
    try:
        value = pv["attributes"]["nominal_power"]
    except (KeyError, TypeError):
        raise DataError(f"{schema_file}: {key} is missing (autosized PV is not supported)") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise DataError(f"{schema_file}: {key} must be a number >= 0 (kW), got {value!r}")
    return float(value)


def _fault_reasons(
    load_kwh: np.ndarray, pv_w_per_kw: np.ndarray, capacity_kw: float, irradiance: np.ndarray, night: np.ndarray
) -> list[str]:
    """Why a home's hourly series look faulty (empty list: plausible)."""
    reasons = []
    zero_share = float(np.mean(load_kwh[night] < NIGHT_ZERO_LOAD_KWH)) if night.any() else 0.0
    if zero_share > MAX_NIGHT_ZERO_FRACTION:
        reasons.append(
            f"non_shiftable_load is ~0 in {zero_share:.0%} of night hours (00:00-05:00): "
            "probably net of PV or mis-metered"
        )
    if capacity_kw > 0 and irradiance.sum() > 0:
        ratio = float(pv_w_per_kw.sum() / irradiance.sum())
        corr = float(np.corrcoef(pv_w_per_kw, irradiance)[0, 1]) if pv_w_per_kw.std() > 0 else 0.0
        if ratio < MIN_PV_PER_IRRADIANCE or corr < MIN_PV_IRRADIANCE_CORRELATION:
            kwh_per_kw_year = pv_w_per_kw.sum() / 1000.0 * 8760.0 / len(pv_w_per_kw)
            reasons.append(
                f"solar_generation is implausible: {kwh_per_kw_year:,.0f} kWh/kW/yr, {ratio:.2f} Wh/kW per Wh/m² "
                f"of irradiance (healthy homes 0.3-0.5), correlation {corr:.2f} with irradiance"
            )
    return reasons


def load_citylearn(
    path: str | Path,
    buildings: list[int] | None = None,
    include_faulty: bool = False,
    start_year: int = 2016,
) -> Dataset:
    """Load a CityLearn data-set folder onto the 30-minute grid.

    Args:
        path: folder holding ``schema.json``, the ``Building_N.csv`` files and the weather file.
        buildings: building numbers N to load, in this order; None = every ``Building_N`` in the
            schema (skipping ``"include": false``), sorted by N, minus the faulty ones.
        include_faulty: keep homes the fault screens flag (always kept when named in ``buildings``).
        start_year: year of the first row, which must be 00:00 on 1 August (CityLearn 2022: 2016).

    Returns:
        A :class:`Dataset` with ids ``"Building_N"``; ``flags`` maps every flagged home among those
        considered (kept or dropped) to the reason.

    Raises:
        DataError: naming the file, column and (1-based data) row of the first problem.
    """
    folder = Path(path).expanduser()
    schema = _read_schema(folder)
    schema_file = folder / "schema.json"
    entries = schema["buildings"]
    numbered = {int(m.group(1)): k for k in entries if (m := re.fullmatch(r"Building_(\d+)", str(k)))}

    if buildings is None:
        chosen = [numbered[n] for n in sorted(numbered) if entries[numbered[n]].get("include", True) is not False]
        if not chosen:
            raise DataError(f"{schema_file}: 'buildings' lists no included Building_N entries")
    else:
        chosen = []
        for b in buildings:
            name = f"Building_{b}"
            if name not in entries:
                have = ", ".join(numbered[n] for n in sorted(numbered)) or "none"
                raise DataError(f"{schema_file}: no building {name!r} under 'buildings' (it has: {have})")
            if name in chosen:
                raise DataError(f"buildings lists {name} twice")
            chosen.append(name)
        if not chosen:
            raise DataError("buildings is an empty list; pass None to load every building")

    weather_files = {entries[n].get("weather", "weather.csv") for n in chosen}
    if len(weather_files) > 1:
        raise DataError(f"{schema_file}: the chosen buildings use different weather files {sorted(weather_files)}")
    weather_file = folder / weather_files.pop()

    start = pd.Timestamp(start_year, START_MONTH, START_DAY)
    series, capacities, files = {}, {}, {}
    first_file, rows = None, None
    for name in chosen:
        entry = entries[name] if isinstance(entries[name], dict) else {}
        capacities[name] = _pv_capacity_kw(schema_file, name, entry)
        file = folder / entry.get("energy_simulation", f"{name}.csv")
        files[name] = str(file.absolute())
        cols = _read_csv(file, BUILDING_COLUMNS)
        n = len(cols["hour"])
        if rows is None:
            first_file, rows = file, n
            if rows % HOURS_PER_DAY:
                raise DataError(
                    f"{file}: {rows} data rows is not a whole number of days of {HOURS_PER_DAY} hours "
                    f"(the last day ends at {_row_ref(rows - 1)})"
                )
        elif n != rows:
            raise DataError(
                f"{file}: {n} data rows, but {first_file.name} has {rows}; the files must align row by row "
                f"(the shorter one ends at {_row_ref(min(n, rows) - 1)})"
            )
        _check_time_labels(file, cols, start, start_year)
        for col in ("non_shiftable_load", "solar_generation"):
            neg = cols[col] < 0
            if neg.any():
                r = int(np.flatnonzero(neg)[0])
                raise DataError(f"{file}: column {col!r}, {_row_ref(r)}: negative value {cols[col][r]:g}")
        series[name] = cols

    weather = _read_csv(weather_file, WEATHER_COLUMNS)
    if len(weather["outdoor_dry_bulb_temperature"]) != rows:
        raise DataError(
            f"{weather_file}: {len(weather['outdoor_dry_bulb_temperature'])} data rows, but {first_file.name} "
            f"has {rows}; the files must align row by row"
        )
    irradiance = weather["diffuse_solar_irradiance"] + weather["direct_solar_irradiance"]

    night = np.isin(pd.date_range(start, periods=rows, freq="h").hour, NIGHT_HOURS)
    flags = {}
    for name in chosen:
        reasons = _fault_reasons(
            series[name]["non_shiftable_load"], series[name]["solar_generation"], capacities[name], irradiance, night
        )
        if reasons:
            flags[name] = "; ".join(reasons)
    keep = chosen if (buildings is not None or include_faulty) else [n for n in chosen if n not in flags]
    if not keep:
        raise DataError(f"{folder}: every building was flagged as faulty ({flags}); pass include_faulty=True")

    capacity_kw = np.array([capacities[n] for n in keep])
    load_h = np.stack([series[n]["non_shiftable_load"] for n in keep], axis=1)
    pv_h = np.stack([series[n]["solar_generation"] for n in keep], axis=1) * capacity_kw / 1000.0
    # Hourly kWh -> two 30-minute intervals of half each (conserves energy exactly).
    return Dataset(
        name=str(folder),
        timestamps=pd.date_range(start, periods=rows * _HALVES_PER_HOUR, freq="30min", unit="ns"),
        load_kwh=np.repeat(load_h / _HALVES_PER_HOUR, _HALVES_PER_HOUR, axis=0),
        pv_kwh=np.repeat(pv_h / _HALVES_PER_HOUR, _HALVES_PER_HOUR, axis=0),
        household_ids=tuple(keep),
        pv_capacity_kw=capacity_kw,
        temperature_c=np.repeat(weather["outdoor_dry_bulb_temperature"], _HALVES_PER_HOUR),
        irradiance_w_per_m2=np.repeat(irradiance, _HALVES_PER_HOUR),
        flags=flags,
        source=f"citylearn {folder.absolute()}",
        locator=CityLearnLocator({n: files[n] for n in keep}, start),
    )

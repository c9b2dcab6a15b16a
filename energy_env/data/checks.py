"""Checks that keep external data from changing silently: rows isolated in time, implausible values.

Two kinds of check, both run by :func:`~energy_env.data.assemble.rows_to_dataset` (and the first by
the CAISO price loader too):

* :func:`isolated_in_time`: rows far from the bulk of the table (a timestamp from another century
  would otherwise stretch the grid over 125 years of gaps). They are **rejected**, with a reason
  and an example, and counted in the report.
* :func:`plausibility`: load and PV values no home produces, and shapes that suggest a wrong unit
  (Wh read as kWh) or a wrong clock. They only **warn** (``LoadReport.warnings``, and
  ``logging.WARNING``): the data are not changed, since a plausible-looking fix could be wrong.

The thresholds are module constants, each explained below; they are far from what real homes do,
so that a warning means the data are wrong, not unusual.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

TIME_OUTLIER_SEPARATION = pd.Timedelta(days=30)
"""A row more than 30 days from every other row of its cluster starts a new cluster (see below)."""

TIME_OUTLIER_SHARE = 0.10
"""A cluster of rows with fewer than 10 % of the rows of the largest cluster is isolated in time.

The table's timestamps (all homes together) are split wherever two consecutive ones are more than
:data:`TIME_OUTLIER_SEPARATION` apart; the cluster with the most rows is the bulk. A cluster that
small and that far away is a typo or a test reading, not data: two equal seasons a year apart are
both kept (and then the gap between them needs dates or a fill rule, as any gap does).
"""

PV_MAX_KWH_PER_SLOT = 10.0
"""kWh of PV in one half hour above which a reading is implausible: 20 kW AC for 30 minutes.

Residential systems in PG&E territory are mostly 3-10 kW DC (NEM / NBT interconnections above
30 kW are not residential at all); 20 kW of AC output is twice a large home system. Wh read as
kWh gives 1,000 times the energy and always trips it.
"""

LOAD_MAX_KWH_PER_SLOT = 50.0
"""kWh of load in one half hour above which a reading is implausible: 100 kW for 30 minutes.

A 400 A residential service at 240 V carries at most 96 kW; most homes have 100-200 A (24-48 kW).
"""

WH_LOOKING_MEDIAN = 100.0
"""A home whose median positive reading (PV: daytime values; load: all) exceeds 100 looks like Wh.

In kWh per half hour that would be 200 kW on a typical half hour; in Wh it is a 200 W load or a
small PV system's morning: exactly what a column in Wh looks like.
"""

PV_MAX_YIELD_KWH_PER_KW_YEAR = 4000.0
"""Annual PV energy per kW of the home's own peak 30-minute power above which the shape is not PV.

``pv_capacity_kw`` is estimated from the data (peak 30-minute power), so the yield is measured per
kW of that peak: mean power / peak power x 8,760 h. Fixed residential arrays in California yield
about 1,400-1,800 kWh per kW of nameplate a year, some 1,900 per kW of their peak output (the
synthetic homes and CityLearn 2022: 1,700-1,900); a single clear June day, taken as a year, gives
about 3,100. A flat series in the PV column (a constant, a cumulative meter reading) gives
5,000-8,760.
"""

PV_NIGHT_KWH_PER_SLOT = 0.05
"""PV above 0.05 kWh per half hour (100 W) at night means the clock or the columns are wrong."""

NIGHT_HOURS_LOCAL = (22, 23, 0, 1, 2, 3)
"""Local clock hours with no sun anywhere in the US all year (latest sunset ~21:00, earliest sunrise ~05:00)."""


@dataclass(frozen=True)
class Finding:
    """One failed plausibility check: its name, how many slots or homes, and the first example."""

    check: str
    count: int
    example: str


# ---------------------------------------------------------------------------------------- time outliers


def isolated_in_time(ts_utc: pd.Series) -> tuple[np.ndarray, pd.Timestamp, pd.Timestamp]:
    """Rows far from the bulk of the table (see :data:`TIME_OUTLIER_SHARE`).

    Args:
        ts_utc: (n,) the rows' times (any order, no NaT).

    Returns:
        ``(isolated, bulk_start, bulk_end)``: a (n,) bool mask in the order of ``ts_utc``, and the
        first and last time of the bulk.
    """
    index = pd.DatetimeIndex(ts_utc).as_unit("ns")
    ns = index.asi8  # ns since 1970 (of the UTC instant, for tz-aware times)
    order = np.argsort(ns, kind="stable")
    sorted_ns = ns[order]
    new_cluster = np.diff(sorted_ns) > TIME_OUTLIER_SEPARATION.value
    cluster = np.concatenate([[0], np.cumsum(new_cluster)])
    size = np.bincount(cluster)
    bulk = int(np.argmax(size))
    small = size < TIME_OUTLIER_SHARE * size[bulk]
    isolated = np.empty(len(ns), dtype=bool)
    isolated[order] = small[cluster]
    in_bulk = sorted_ns[cluster == bulk]
    start, end = (pd.Timestamp(int(v), unit="ns", tz="UTC").tz_convert(index.tz) if index.tz else pd.Timestamp(int(v), unit="ns")
                  for v in (in_bulk[0], in_bulk[-1]))
    return isolated, start, end


# ------------------------------------------------------------------------------------------- plausibility


def _first(mask: np.ndarray) -> tuple[int, int]:
    """(t, home) of the first True of a (T, N) mask, in time order."""
    t, j = np.argwhere(mask)[0]
    return int(t), int(j)


def plausibility(
    load_kwh: np.ndarray, pv_kwh: np.ndarray, grid: pd.DatetimeIndex, keys: Sequence[str], series: str = "household"
) -> list[Finding]:
    """Every check of this module that the measured values fail (NaN = no reading, ignored).

    Args:
        load_kwh, pv_kwh: (T, N) kWh per half hour on ``grid``, NaN where no row.
        grid: (T,) naive local slot starts.
        keys: the N ids, for the examples.

    Returns:
        Findings in a fixed order; per-slot checks count slots, per-home checks count homes.
    """
    out: list[Finding] = []
    keys = list(keys)

    def slot_check(mask: np.ndarray, check: str, values: np.ndarray, column: str) -> None:
        if mask.any():
            t, j = _first(mask)
            out.append(Finding(check, int(mask.sum()), f"{series} {keys[j]} at {grid[t]:%Y-%m-%d %H:%M}: {column} {values[t, j]:g}"))

    def home_check(mask: np.ndarray, check: str, text: Sequence[str]) -> None:
        if mask.any():
            j = int(np.flatnonzero(mask)[0])
            out.append(Finding(check, int(mask.sum()), f"{series} {keys[j]}: {text[j]}"))

    with np.errstate(invalid="ignore"):
        slot_check(pv_kwh > PV_MAX_KWH_PER_SLOT, f"pv_kwh above {PV_MAX_KWH_PER_SLOT:g} kWh in a half hour "
                   f"({2 * PV_MAX_KWH_PER_SLOT:g} kW: more than a home's PV system)", pv_kwh, "pv_kwh")
        slot_check(load_kwh > LOAD_MAX_KWH_PER_SLOT, f"load_kwh above {LOAD_MAX_KWH_PER_SLOT:g} kWh in a half hour "
                   f"({2 * LOAD_MAX_KWH_PER_SLOT:g} kW: more than a home's service)", load_kwh, "load_kwh")
        night = np.isin(grid.hour, NIGHT_HOURS_LOCAL)[:, None]
        slot_check(night & (pv_kwh > PV_NIGHT_KWH_PER_SLOT), f"pv_kwh above {PV_NIGHT_KWH_PER_SLOT:g} kWh at night "
                   "(22:00-04:00 local: wrong time zone, or load and PV swapped?)", pv_kwh, "pv_kwh")
        pv_day = np.where(pv_kwh > 0, pv_kwh, np.nan)
        load_pos = np.where(load_kwh > 0, load_kwh, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a home with no PV: all-NaN medians
        pv_median = np.nanmedian(pv_day, axis=0)
        load_median = np.nanmedian(load_pos, axis=0)
        pv_peak = np.nanmax(pv_kwh, axis=0)
        pv_mean = np.nanmean(pv_kwh, axis=0)
    home_check(pv_median > WH_LOOKING_MEDIAN, f"pv_kwh looks like Wh (median daytime value above {WH_LOOKING_MEDIAN:g})",
               [f"median daytime pv_kwh {v:g}" for v in pv_median])
    home_check(load_median > WH_LOOKING_MEDIAN, f"load_kwh looks like Wh (median above {WH_LOOKING_MEDIAN:g})",
               [f"median load_kwh {v:g}" for v in load_median])
    with np.errstate(invalid="ignore", divide="ignore"):
        yield_kwh_per_kw = pv_mean / pv_peak * 8760.0
    home_check(
        (pv_peak > PV_NIGHT_KWH_PER_SLOT) & (yield_kwh_per_kw > PV_MAX_YIELD_KWH_PER_KW_YEAR),
        f"PV yield above {PV_MAX_YIELD_KWH_PER_KW_YEAR:g} kWh per kW of peak a year (not a PV shape: a constant, or load?)",
        [f"{v:.0f} kWh/kW/year (mean {m:.3g}, peak {p:.3g} kWh per half hour)" for v, m, p in zip(yield_kwh_per_kw, pv_mean, pv_peak)],
    )
    return out


__all__ = [
    "Finding",
    "LOAD_MAX_KWH_PER_SLOT",
    "PV_MAX_KWH_PER_SLOT",
    "PV_MAX_YIELD_KWH_PER_KW_YEAR",
    "PV_NIGHT_KWH_PER_SLOT",
    "TIME_OUTLIER_SEPARATION",
    "TIME_OUTLIER_SHARE",
    "WH_LOOKING_MEDIAN",
    "isolated_in_time",
    "plausibility",
]

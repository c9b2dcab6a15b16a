"""CAISO wholesale prices -> a 30-minute price series on the package's local clock, with its gaps.

Two layouts are read (``tables.py``), from a file, PostgreSQL or Supabase:

* ``caiso_price_kwh``: the original team's table, ``INTERVALSTARTTIME_GMT`` (UTC), ``NODE``,
  ``Price KWH`` ($/kWh); hourly in their data (40,200 rows for 1-9 Oct 2024 = 186 nodes x 216 h).
* ``caiso_lmp_hourly``: ``shared/data/caiso/caiso_2024_dlap_hourly_lmp.csv``, ``node``, ``market``
  (``DAM`` / ``RTM``), ``interval_start_local`` (Pacific prevailing time), ``price_usd_per_kwh``.

Prices are intensive: an hourly price is repeated on both half hours, shorter intervals are averaged
(``resample.py``). Price series keep partial days (a day without its night hours still has its
daytime prices); every missing slot is a gap, reported with its range and filled by the
:class:`~energy_env.data.resample.GapPolicy`, by default ``interpolate``: linear in time between the
last price before and the first after, the nearest price at the ends of the series.

**The gap in shared/data/caiso.** That file lacks the intervals starting 00:00-08:00 (hours ending
HE1-HE9) of every day (``shared/data/PROVENANCE.md`` section 2): 9 hours, 18 half-hour slots, a day
(plus 23:00 on four days). ``interpolate`` bridges each night linearly from the 23:00 price of the day
before to the 09:00 price; night prices are flat-ish and between those two in most days, but the
morning ramp (06:00-09:00) is smoothed away. The report lists every such gap; ``none`` refuses the
series instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from energy_env.config import DatabaseConfig, WholesaleConfig
from energy_env.data.assemble import assemble_grid, pivot
from energy_env.data.dataset import DataError
from energy_env.data.report import LoadReport
from energy_env.data.resample import ROWS, GapPolicy, fill_series, nonexistent_slots
from energy_env.data.rows import RawRows, Source, TimeWindow, ValueSpec, validate_rows
from energy_env.data.sources import SourceOptions, open_source
from energy_env.data.tables import CAISO_PRICE_KWH

DEFAULT_NODE = "DLAP_PGAE-APND"  # PG&E's default load aggregation point
DEFAULT_MARKET = "DAM"
Alignment = Literal["exact", "calendar"]


@dataclass(frozen=True)
class PriceSeries:
    """Wholesale prices of one node on the naive 30-minute local grid (whole days, gaps filled).

    Attributes:
        name: e.g. ``"CAISO DAM DLAP_PGAE-APND (file ../shared/data/caiso/...)"``.
        timestamps: ``(T,)`` naive local interval starts, 30 minutes apart, from midnight.
        usd_per_kwh: ``(T,)`` $/kWh (may be negative: CAISO prices go below 0 on sunny afternoons).
        report: rows read / kept / rejected, resampling and gaps.
    """

    name: str
    node: str
    market: str | None
    timestamps: pd.DatetimeIndex
    usd_per_kwh: np.ndarray
    report: LoadReport

    def on(self, timestamps: pd.DatetimeIndex, align: Alignment = "exact") -> np.ndarray:
        """Prices at ``timestamps`` (naive local 30-minute starts).

        ``exact``: the series must cover every timestamp. ``calendar``: each timestamp takes the
        price of the same month, day and clock time in the series (for a data set of another year,
        e.g. CAISO 2024 on synthetic 2025; 29 February takes 28 February when the series lacks it).
        Weekdays do not line up across years: a Saturday may get a Friday's prices.

        Raises:
            DataError: naming the first timestamp without a price.
        """
        ts = pd.DatetimeIndex(timestamps)
        if align == "exact":
            pos = self.timestamps.get_indexer(ts)
            if (pos < 0).any():
                first = ts[int(np.flatnonzero(pos < 0)[0])]
                raise DataError(
                    f"{self.name}: no price for {first} (the series covers {self.timestamps[0]} to "
                    f"{self.timestamps[-1]}); use wholesale alignment 'calendar' to replay its year on another"
                )
            return self.usd_per_kwh[pos]
        if align != "calendar":
            raise ValueError(f"unknown alignment {align!r}; expected 'exact' or 'calendar'")
        src_key = _calendar_key(self.timestamps)
        table = pd.Series(self.usd_per_kwh, index=src_key)
        table = table[~table.index.duplicated(keep="first")]  # a multi-year series: its first year wins
        want = _calendar_key(ts)
        out = table.reindex(want).to_numpy()
        leap = np.isnan(out) & (ts.month == 2) & (ts.day == 29)
        if leap.any():
            alt = _calendar_key(ts[leap] - pd.Timedelta(days=1))
            out[leap] = table.reindex(alt).to_numpy()
        if np.isnan(out).any():
            first = ts[int(np.flatnonzero(np.isnan(out))[0])]
            raise DataError(
                f"{self.name}: no price for {first:%m-%d %H:%M} in any year of the series "
                f"({self.timestamps[0]:%Y-%m-%d} to {self.timestamps[-1]:%Y-%m-%d})"
            )
        return out

    def describe(self) -> str:
        days = len(self.timestamps) // 48
        filled = sum(g.intervals for g in self.report.gaps if g.filled_by)
        return (
            f"{self.name}, {self.timestamps[0]:%Y-%m-%d} to {self.timestamps[-1]:%Y-%m-%d} ({days} days, "
            f"{filled} of {len(self.timestamps)} half hours filled by {self.report.fill_policy})"
        )


def _calendar_key(ts: pd.DatetimeIndex) -> pd.Index:
    return pd.Index(ts.strftime("%m-%d %H:%M"))


def rows_to_price_series(
    raw: RawRows,
    node: str,
    market: str | None,
    *,
    window: TimeWindow = TimeWindow(),
    gap_policy: GapPolicy = GapPolicy("interpolate"),
    resolution_minutes: int | None = None,
) -> PriceSeries:
    """Validate, resample and gap-fill the price rows of one node (see the module docstring)."""
    report = LoadReport(source=raw.where, expected_rows=raw.expected_rows, fill_policy=gap_policy.describe())
    rows = validate_rows(raw, [ValueSpec("price_usd_per_kwh", non_negative=False)], report, window.tz)
    if rows.empty:
        raise DataError(f"{raw.where}: no usable price rows for node {node!r} ({report.rows_read} read, all rejected)")
    grid, local = assemble_grid(
        rows, report, [], ["price_usd_per_kwh"],
        resolution_minutes=resolution_minutes, window=window, partial_days="keep",
        row_ref=raw.row_ref, series="node",
    )
    series = f"{raw.where}: node {node}" + (f" {market}" if market else "")
    values = pivot(local, grid, [node], "price_usd_per_kwh")[:, 0]
    filled, gaps = fill_series(values, grid, series, gap_policy, nonexistent_slots(grid, window.tz))
    report.gaps.extend(gaps)
    report.rows_kept = int(round(local[ROWS].sum()))
    report.check_balance()
    filled.setflags(write=False)
    label = f"CAISO {market + ' ' if market else ''}{node} ({raw.where})"
    return PriceSeries(label, node, market, grid, filled, report)


@dataclass(frozen=True, kw_only=True)
class PriceSourceOptions(SourceOptions):
    """Where to read wholesale prices: a file, or a ``pricing`` table in PostgreSQL or Supabase.

    ``market`` applies to layouts with a market column (``shared/data/caiso``: DAM or RTM); the
    original team's table has one market and ignores it. The rest: :class:`SourceOptions`.
    """

    table: str = CAISO_PRICE_KWH.default_table
    node: str = DEFAULT_NODE
    market: str | None = DEFAULT_MARKET
    gap_fill: str = "interpolate"

    @classmethod
    def from_config(cls, wholesale: WholesaleConfig, database: DatabaseConfig | None = None) -> "PriceSourceOptions":
        """From ``EnvConfig.tariff.wholesale`` and ``EnvConfig.database`` (None: the default connection settings)."""
        return cls(
            source=wholesale.source,
            path=wholesale.path,
            table=wholesale.table,
            node=wholesale.node,
            market=wholesale.market,
            gap_fill=wholesale.gap_fill,
            max_gap_intervals=wholesale.max_gap_intervals,  # null in a config means no limit
            database=database if database is not None else DatabaseConfig(),
        )


def open_price_source(options: PriceSourceOptions) -> Source:
    """The :class:`~energy_env.data.rows.Source` holding the prices."""
    return open_source(options)


def load_price_series(options: PriceSourceOptions, source: Source | None = None) -> PriceSeries:
    """Read, validate, resample and gap-fill one node's prices.

    Raises:
        DataError: naming the table or file and the cause (unknown node or layout, no rows, gaps
            the rule does not fill, ...).
    """
    src = source or open_price_source(options)
    window = options.window
    raw = src.read_pricing(options.table, options.node, options.market, window)
    market = options.market if "market" in raw.frame.columns else None
    return rows_to_price_series(
        raw, options.node, market, window=window,
        gap_policy=options.gap_policy,
        resolution_minutes=options.resolution_minutes,
    )


@lru_cache(maxsize=4)
def cached_price_series(options: PriceSourceOptions) -> PriceSeries:
    """:func:`load_price_series`, cached in-process (price series are read-only)."""
    return load_price_series(options)

"""Raw rows as a source hands them back, the :class:`Source` protocol and the row checks.

A :class:`Source` (``files.py``, ``postgres.py``, ``supabase_source.py``) returns :class:`RawRows`
of a ``consumption`` or ``pricing`` table, filtered by household and time where it can do so on the
server. :func:`validate_rows` then rejects bad rows, each for its first problem, into a
:class:`~energy_env.data.report.LoadReport`; ``assemble.py`` puts the good ones on the grid.

Also here: the one rule for ids (:func:`clean_id`), :func:`parse_times` (every time column to UTC)
and :class:`TableLocator`, which names the table rows behind one (household, slot) of a data set.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd

from energy_env.data.dataset import DataError, Locator
from energy_env.data.report import LoadReport
from energy_env.data.resample import KEY, LOCAL_TZ, POS, TS, local_to_utc
from energy_env.data.tables import Layout

# A factory the loader calls once the rows are on the grid, with each household's interval length
# in minutes, to get the :class:`~energy_env.data.dataset.Locator` of the data set.
LocatorFactory = Callable[[Mapping[str, int]], Locator]


# ------------------------------------------------------------------------------------ raw rows, query


@dataclass
class RawRows:
    """Rows as a source returns them, columns renamed to their roles (``key``, ``ts``, values).

    Attributes:
        frame: one row per source row, values as received (strings, numbers, datetimes, None).
        where: e.g. ``"postgres table public.consumption"`` or ``"file data/c.csv"``.
        ts_zone: ``utc`` (a timezone-aware column, or one whose name says UTC/GMT: naive values
            are read as UTC) or ``local`` (naive Pacific prevailing time).
        row_ref: 0-based position -> how a message names the row.
        expected_rows: the server's count of matching rows (already checked against ``frame``).
        layout: the layout the rows were read in.
        locator: given each household's interval length in minutes, the data set's
            :class:`~energy_env.data.dataset.Locator` (None: slots are named by household and time only).
    """

    frame: pd.DataFrame
    where: str
    ts_zone: Literal["utc", "local"]
    row_ref: Callable[[int], str]
    layout: Layout
    expected_rows: int | None = None
    locator: LocatorFactory | None = None


@dataclass(frozen=True)
class TimeWindow:
    """Whole local days ``[start_date, end_date]`` (inclusive); None = unbounded on that side."""

    start_date: dt.date | None = None
    end_date: dt.date | None = None
    tz: str = LOCAL_TZ

    def __post_init__(self) -> None:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise DataError(f"end_date {self.end_date} is before start_date {self.start_date}")

    def local_bounds(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """Naive local ``[start, end)``: midnight of the first day, midnight after the last day."""
        start = pd.Timestamp(self.start_date) if self.start_date else None
        end = pd.Timestamp(self.end_date) + pd.Timedelta(days=1) if self.end_date else None
        return start, end

    def utc_bounds(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """``[start, end)`` in UTC (local midnight always exists in US time zones: DST moves at 02:00)."""
        start, end = self.local_bounds()
        conv = lambda t: None if t is None else t.tz_localize(self.tz).tz_convert("UTC")  # noqa: E731
        return conv(start), conv(end)

    def describe(self) -> str:
        """E.g. ``"2024-10-01 to 2024-10-09 (local dates, inclusive)"`` or ``"all dates"``."""
        if not self.start_date and not self.end_date:
            return "all dates"
        return f"{self.start_date or '...'} to {self.end_date or '...'} (local dates, inclusive)"


class Source(Protocol):
    """What every data source provides. Writers (import) are in the same classes, see ``train/import_data.py``."""

    def describe(self) -> str:
        """Where the data live, without credentials."""
        ...

    def list_households(self, table: str, window: TimeWindow) -> list[str]:
        """Distinct household ids of ``table`` within ``window`` (filtered on the server), in the
        source's order: a file's order of first appearance; a table's natural order (:func:`natural_key`)."""
        ...

    def read_consumption(self, table: str, households: Sequence[str], window: TimeWindow) -> RawRows:
        """Rows of ``households`` within ``window``, ordered by household and time, count checked."""
        ...

    def read_pricing(self, table: str, node: str, market: str | None, window: TimeWindow) -> RawRows:
        """Price rows of one node (and market, where the layout has one) within ``window``."""
        ...


# ------------------------------------------------------------------------------------- ids, validation


@dataclass(frozen=True)
class ValueSpec:
    """A value column to validate: role name, whether null is allowed, whether it must be >= 0."""

    role: str
    nullable: bool = False
    non_negative: bool = True
    clip_tolerance: float = 0.0  # values in [-tolerance, 0) become 0 (counted as adjusted)


def natural_key(text: str) -> list:
    """Sort key that orders ``household_2`` before ``household_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


# The one rule for ids (households, nodes, markets) in every source: surrounding whitespace is not
# part of the id, so " h1", "h1 " and "h1" are one home. Postgres applies the same characters
# (btrim), Supabase a regular expression over them (supabase_source.py). ASCII only, so that a
# database of any encoding accepts them.
ID_WHITESPACE = " \t\n\r\f\v"


def clean_id(value: object) -> str:
    """An id as the package uses it: text, without surrounding whitespace (:data:`ID_WHITESPACE`)."""
    return str(value).strip(ID_WHITESPACE)


def clean_ids(values: pd.Series) -> pd.Series:
    """:func:`clean_id` of every value of a Series (None / NaN become the text ``None`` / ``nan``: check those first)."""
    return values.astype(str).str.strip(ID_WHITESPACE)


def unique_ids(households: Sequence[object], where: str) -> list[str]:
    """Requested ids by the id rule (:func:`clean_id`); an id listed twice (after stripping) raises."""
    keys = [clean_id(h) for h in households]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise DataError(f"{where}: household(s) {repeated} listed more than once (ids are compared without surrounding whitespace)")
    if "" in keys:
        raise DataError(f"{where}: an empty household id was requested")
    return keys


def parse_times(raw: pd.Series, zone: str, tz: str) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """A time column to UTC: ``zone`` ``utc`` (naive values read as UTC) or ``local`` (naive values in ``tz``).

    Returns:
        ``(utc, unparseable, nonexistent, ambiguous)``: the parsed times (NaT where they fail) and
        masks over ``raw`` (the last two for local times the DST changes skip or repeat).
    """
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = raw
    else:
        # ISO 8601 strings (Supabase JSON, CSV) or datetime objects (psycopg); a mixed offset column
        # needs utc=True to parse at all, so local strings are parsed naive first.
        if zone == "utc":
            parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
        else:
            parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    unparseable = np.asarray(parsed.isna() & raw.notna())
    empty = np.zeros(len(raw), dtype=bool)
    if zone == "utc":
        if parsed.dt.tz is None:
            parsed = parsed.dt.tz_localize("UTC")  # the column's name says UTC / GMT
        return parsed.dt.tz_convert("UTC"), unparseable, empty, empty
    if parsed.dt.tz is not None:  # a local column that carries offsets anyway: trust them
        return parsed.dt.tz_convert("UTC"), unparseable, empty, empty
    first = parsed.dt.tz_localize(tz, ambiguous=np.ones(len(raw), dtype=bool), nonexistent="NaT")
    second = parsed.dt.tz_localize(tz, ambiguous=np.zeros(len(raw), dtype=bool), nonexistent="NaT")
    ok = parsed.notna().to_numpy()
    nonexistent = ok & first.isna().to_numpy()
    ambiguous = ok & ~nonexistent & (first != second).to_numpy()
    return first.dt.tz_convert("UTC"), unparseable, nonexistent, ambiguous


def validate_rows(raw: RawRows, values: Sequence[ValueSpec], report: LoadReport, tz: str = LOCAL_TZ) -> pd.DataFrame:
    """Check every row; reject bad ones (each for its first problem) into ``report``.

    Checks, in order: missing key, missing or unparseable time, DST-impossible local time (local
    layouts), then per value column null / non-numeric / non-finite / negative, and last repeats of
    (key, time) among the good rows: an *exact* duplicate (same values) is dropped, the first copy
    kept; *conflicting* duplicates (different values) are all rejected, since nothing says which
    is right: the slot becomes a gap, which the gap rule fills or refuses like any other. Keys are
    stripped of surrounding whitespace (:func:`clean_id`) before any comparison.

    Returns:
        The good rows: ``key`` (str), ``ts`` (UTC), one float column per value role, and ``pos``
        (the row's position in ``raw.frame``, for ``raw.row_ref`` in later messages).
    """
    df = raw.frame.reset_index(drop=True)
    n = len(df)
    report.rows_read += n
    reason = np.full(n, None, dtype=object)
    key_col = raw.layout.column("key").name
    ts_col = raw.layout.time_column.name

    def mark(mask: np.ndarray, why: str) -> None:
        new = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711 (elementwise on object array)
        if new.any():
            i = int(np.flatnonzero(new)[0])
            report.reject(why, int(new.sum()), f"{raw.row_ref(i)}: {_row_text(df, i, raw.layout)}")
            reason[new] = why

    keys = df[KEY]
    clean = clean_ids(keys)
    mark(keys.isna().to_numpy() | (clean == "").to_numpy(), f"missing {key_col}")
    ts_raw = df[TS]
    mark(ts_raw.isna().to_numpy(), f"missing {ts_col}")
    utc, unparseable, nonexistent, ambiguous = parse_times(ts_raw, raw.ts_zone, tz)
    mark(unparseable, f"unparseable {ts_col}")
    mark(nonexistent, f"{ts_col} does not exist in local time (DST spring forward)")
    mark(ambiguous, f"{ts_col} is ambiguous in local time (DST fall back hour); store UTC instead")
    out = pd.DataFrame({KEY: clean, TS: utc, POS: np.arange(n)})
    for spec in values:
        col = raw.layout.column(spec.role)
        name = col.name if col is not None else spec.role
        if spec.role not in df.columns:
            out[spec.role] = np.nan
            continue
        rawv = df[spec.role]
        num = pd.to_numeric(rawv, errors="coerce")
        arr = num.to_numpy(dtype=np.float64, na_value=np.nan)
        is_null = rawv.isna().to_numpy()
        if not spec.nullable:
            mark(is_null, f"missing {name}")
        mark(~is_null & np.isnan(arr), f"non-numeric {name}")
        mark(np.isinf(arr), f"non-finite {name}")
        if spec.non_negative:
            tiny = (arr < 0) & (arr >= -spec.clip_tolerance)
            mark((arr < 0) & ~tiny, f"negative {name}")
            adjust = tiny & (reason == None)  # noqa: E711
            if adjust.any():
                report.adjusted[f"{name} in [-{spec.clip_tolerance:g}, 0) read as 0"] += int(adjust.sum())
                arr = np.where(tiny, 0.0, arr)
        out[spec.role] = arr
    # duplicates among the good rows only, so that a bad twin never hides a good row
    value_roles = [spec.role for spec in values if spec.role in df.columns]
    exact, conflict, example = _duplicates(out[reason == None], value_roles, df, raw, key_col, ts_col)  # noqa: E711
    mark(exact, f"exact duplicate ({key_col}, {ts_col}): same values as an earlier row")
    why = f"conflicting duplicates ({key_col}, {ts_col}): same time, different values (every copy rejected)"
    new = conflict & (reason == None)  # noqa: E711
    report.reject(why, int(new.sum()), example)
    reason[new] = why
    return out[reason == None].reset_index(drop=True)  # noqa: E711


def _duplicates(
    good: pd.DataFrame, value_roles: Sequence[str], df: pd.DataFrame, raw: RawRows, key_col: str, ts_col: str
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Masks over ``raw.frame`` of exact duplicates (not the first copy) and of conflicting ones (every copy).

    Returns:
        ``(exact, conflict, example)``: the example names both rows and their differing values.
    """
    n = len(df)
    exact = np.zeros(n, dtype=bool)
    conflict = np.zeros(n, dtype=bool)
    if good.empty:
        return exact, conflict, None
    ordered = good.sort_values([KEY, TS, POS], kind="stable")
    repeat = ordered.duplicated([KEY, TS], keep="first").to_numpy()
    if not repeat.any():
        return exact, conflict, None
    group = np.cumsum(~repeat) - 1
    first = np.flatnonzero(~repeat)[group]  # position in ``ordered`` of each row's first copy
    vals = ordered[list(value_roles)].to_numpy(dtype=np.float64)
    ref = vals[first]
    differs = ~((vals == ref) | (np.isnan(vals) & np.isnan(ref)))  # (rows, values)
    row_differs = differs.any(axis=1)
    group_conflicts = np.bincount(group, weights=row_differs) > 0
    pos = ordered[POS].to_numpy()
    in_conflict = group_conflicts[group]
    exact[pos[repeat & ~in_conflict]] = True
    conflict[pos[in_conflict]] = True
    if not in_conflict.any():
        return exact, conflict, None
    # the example: the conflicting pair whose second row comes first in the source
    i = int(np.flatnonzero(row_differs)[np.argmin(pos[row_differs])])
    a, b = int(pos[first[i]]), int(pos[i])
    size = int((group == group[i]).sum())
    cols = [value_roles[c] for c in np.flatnonzero(differs[i])]
    name = lambda role: raw.layout.column(role).name if raw.layout.column(role) is not None else role  # noqa: E731
    what = ", ".join(f"{name(c)} {df[c].iloc[a]!r} vs {df[c].iloc[b]!r}" for c in cols)
    more = f" ({size} rows share that time)" if size > 2 else ""
    example = (
        f"{raw.row_ref(a)} and {raw.row_ref(b)}: {key_col}={df[KEY].iloc[b]!r}, {ts_col}={df[TS].iloc[b]!r}: {what}{more}"
    )
    return exact, conflict, example


def _row_text(df: pd.DataFrame, i: int, layout: Layout) -> str:
    """The row's values under their column names in the source (not the internal role names)."""
    row = df.iloc[i]
    name = lambda role: (layout.column(role).name if layout.column(role) is not None else role)  # noqa: E731
    return ", ".join(f"{name(c)}={row[c]!r}" for c in df.columns)


# ------------------------------------------------------------------------------------------ locating


def slot_row_starts(slot: pd.Timestamp, minutes: int, tz: str = LOCAL_TZ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """UTC ranges ``[first, last]`` (inclusive) of the row starts whose ``minutes``-long interval
    overlaps the naive local 30-minute ``slot``.

    One range per real occurrence of the slot: two for a fall-back slot (the hour repeats, and the
    data set holds the mean of both), none for a spring-forward slot (no clock shows it; its value
    was filled). E.g. 60-minute rows: ``[t - 30 min, t]``; 15-minute rows: ``[t, t + 15 min]``.
    """
    idx = pd.DatetimeIndex([pd.Timestamp(slot)])
    first, nonexistent, ambiguous = local_to_utc(idx, tz)
    if nonexistent[0]:
        return []
    starts = [first[0]]
    if ambiguous[0]:
        starts.append(idx.tz_localize(tz, ambiguous=np.zeros(1, dtype=bool)).tz_convert("UTC")[0])
    before = pd.Timedelta(minutes=max(int(minutes) - 30, 0))
    after = pd.Timedelta(minutes=max(30 - int(minutes), 0))
    return [(s - before, s + after) for s in starts]


def _utc_text(t: pd.Timestamp) -> str:
    return f"{t:%Y-%m-%dT%H:%M}Z"


@dataclass(frozen=True)
class TableLocator:
    """A :class:`~energy_env.data.dataset.Locator` for data loaded from a database table.

    A table has no line numbers: the rows are named by household and the range of their start
    times, e.g. ``postgres u@db:5432/x table public.consumption: the row of household 'h7' with
    interval_start_utc 2025-07-02T01:00Z``.

    Attributes:
        where: the table, as :attr:`RawRows.where` names it (no credential).
        key_column, time_column: the table's column names.
        minutes: household -> its interval length in minutes (absent: 30).
        tz: the local time zone of the data set's clock.
    """

    where: str
    key_column: str
    time_column: str
    minutes: Mapping[str, int]
    tz: str = LOCAL_TZ

    def __call__(self, household_id: str, timestamp: pd.Timestamp) -> str:
        ranges = slot_row_starts(timestamp, self.minutes.get(household_id, 30), self.tz)
        if not ranges:
            return f"{self.where}: no row of household {household_id!r} (the local time does not exist, DST spring forward; the slot was filled)"
        spans = [
            f"= {_utc_text(a)}" if a == b else f"from {_utc_text(a)} to {_utc_text(b)}" for a, b in ranges
        ]
        what = "the row" if len(ranges) == 1 and ranges[0][0] == ranges[0][1] else "the rows"
        return f"{self.where}: {what} of household {household_id!r} with {self.time_column} {' and '.join(spans)}"

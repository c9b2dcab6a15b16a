"""One interface over the external data sources: files, PostgreSQL and Supabase.

A :class:`Source` hands back raw rows (:class:`RawRows`) of a ``consumption`` or ``pricing`` table,
filtered by household and time where it can do so on the server. Everything after that is shared:
:func:`validate_rows` rejects bad rows with reasons, :func:`assemble_grid` resamples to the naive
30-minute local grid (``energy_env/data/resample.py``), and :func:`rows_to_dataset` builds the
:class:`Dataset`. A :class:`LoadReport` follows the rows through: read = kept + rejected, always,
with every rejection's reason and a first example.

:func:`load_consumption` is the entry point (options in :class:`ExternalDataOptions`);
:func:`load_external_dataset` is what ``energy_env.data.load_dataset`` calls for the sources
``file``, ``postgres`` and ``supabase``. Credentials (a DSN, a Supabase key) are read from the
environment or a ``.env`` file by :func:`read_setting` and never appear in a message or a name.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, Sequence

import numpy as np
import pandas as pd

from energy_env.data.checks import TIME_OUTLIER_SEPARATION, isolated_in_time, plausibility
from energy_env.data.dataset import DataError, Dataset
from energy_env.data.redact import redact
from energy_env.data.resample import (
    DEFAULT_MAX_GAP_INTERVALS,
    KEY,
    LOCAL_TZ,
    POS,
    ROWS,
    SLOT,
    TS,
    GapPolicy,
    GapRange,
    day_grid,
    fill_series,
    nonexistent_slots,
    series_resolutions,
    series_steps,
    to_30min,
    to_local_clock,
)
from energy_env.data.tables import CONSUMPTION, Layout

_log = logging.getLogger(__name__)
ExternalSource = Literal["file", "postgres", "supabase"]
EXTERNAL_SOURCES: tuple[str, ...] = ("file", "postgres", "supabase")
# A PV meter reads slightly negative at night (inverter standby); values down to this are read as 0.
PV_NEGATIVE_TOLERANCE_KWH = 0.01
INTERVAL_HOURS = 0.5
# A series with fewer of its steps at its own interval length than this is warned about: part of it
# may be at another interval length (an hourly stretch read as half-hourly puts an hour's energy in
# one slot and leaves the next empty, for a fill rule to add energy that was never used).
MIN_STEP_SHARE = 0.8


# ------------------------------------------------------------------------------------------ settings


def _parse_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (``export`` prefix, quotes and ``#`` comments allowed)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[name.strip()] = value
    return out


def read_setting(names: str | Sequence[str], env_file: str | Path | None = ".env") -> str | None:
    """The first of ``names`` set in the environment, else in ``env_file`` (if it exists), else None.

    The environment wins over the file, as with most ``.env`` loaders. Values are secrets: callers
    must not print or log them.
    """
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if env_file is not None and Path(env_file).is_file():
        values = _parse_env_file(Path(env_file))
        for name in names:
            if values.get(name):
                return values[name]
    return None


# ------------------------------------------------------------------------------------------- report


@dataclass
class LoadReport:
    """What happened to the rows of one load: read = kept + rejected, with reasons.

    Attributes:
        source: where the rows came from (a table or file; never a credential).
        rows_read: rows received from the source after its server-side filters.
        rows_kept: rows that made it into the result.
        rejected: reason -> rows.
        examples: reason -> the first affected row, e.g. "file line 12: household h1, ...: 'abc'".
        adjusted: change -> rows kept but altered (e.g. tiny negative PV read as 0).
        expected_rows: the server's count of matching rows, when it gives one (checked = rows_read).
        resolution_minutes: the interval length of the input when every series shares one, else None;
            ``resampling`` says what was done.
        series_resolutions: series -> interval length, when the series differ; empty otherwise
            (a stated ``resolution_minutes`` applies to all; a series contradicting it is a warning).
        warnings: check -> slots or homes that failed a plausibility or consistency check; the data
            are kept unchanged (see ``energy_env/data/checks.py``). Each is logged at WARNING.
        warning_examples: check -> the first case, e.g. "household h1 at 2025-10-06 12:00: pv_kwh 1999".
        dst_merged_slots: local slots that averaged the two intervals of the fall-back hour.
        gaps: every run of missing 30-minute slots, filled or not.
        notes: anything else worth knowing (estimates, alignment).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    adjusted: Counter = field(default_factory=Counter)
    expected_rows: int | None = None
    resolution_minutes: int | None = None
    series_resolutions: dict[str, int] = field(default_factory=dict)
    warnings: Counter = field(default_factory=Counter)
    warning_examples: dict[str, str] = field(default_factory=dict)
    resampling: str = ""
    fill_policy: str = ""
    dst_merged_slots: int = 0
    gaps: list[GapRange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return int(sum(self.rejected.values()))

    def reject(self, reason: str, count: int, example: str | None = None) -> None:
        if count <= 0:
            return
        self.rejected[reason] += int(count)
        if example is not None and reason not in self.examples:
            self.examples[reason] = example

    def warn(self, check: str, count: int, example: str | None = None) -> None:
        """Count ``count`` slots or homes failing ``check`` (data unchanged) and log it at WARNING."""
        if count <= 0:
            return
        self.warnings[check] += int(count)
        if example is not None and check not in self.warning_examples:
            self.warning_examples[check] = example
        _log.warning("%s", redact(f"{self.source}: warning {count}: {check}" + (f"; first: {example}" if example else "")))

    def check_balance(self) -> None:
        """Raise if a row went missing between read and kept + rejected (a bug, never bad data)."""
        if self.rows_read != self.rows_kept + self.rows_rejected:
            raise AssertionError(
                f"{self.source}: {self.rows_read} rows read but {self.rows_kept} kept + {self.rows_rejected} rejected"
            )

    def summary(self) -> str:
        """A few lines for a log or the terminal."""
        lines = [
            f"{self.source}: {self.rows_read} rows read, {self.rows_kept} kept, {self.rows_rejected} rejected"
            + (f" (server count {self.expected_rows})" if self.expected_rows is not None else "")
        ]
        for reason, n in self.rejected.most_common():
            ex = f"; first: {self.examples[reason]}" if reason in self.examples else ""
            lines.append(f"  rejected {n}: {reason}{ex}")
        for change, n in self.adjusted.most_common():
            lines.append(f"  adjusted {n}: {change}")
        for check, n in self.warnings.most_common():
            ex = f"; first: {self.warning_examples[check]}" if check in self.warning_examples else ""
            lines.append(f"  WARNING {n}: {check}{ex}")
        if self.series_resolutions:
            by_minutes: dict[int, list[str]] = {}
            for key, minutes in self.series_resolutions.items():
                by_minutes.setdefault(minutes, []).append(key)
            lines.append("  interval lengths per series: " + "; ".join(
                f"{m} min: {', '.join(keys[:5])}{f' (+{len(keys) - 5} more)' if len(keys) > 5 else ''}"
                for m, keys in sorted(by_minutes.items())
            ))
        if self.resampling:
            lines.append(f"  {self.resampling}")
        if self.dst_merged_slots:
            lines.append(f"  DST fall back: {self.dst_merged_slots} local slots averaged two intervals")
        filled = [g for g in self.gaps if g.filled_by]
        if self.gaps:
            lines.append(f"  gaps: {len(self.gaps)} ({len(filled)} filled; {self.fill_policy})")
            for g in self.gaps[:10]:
                lines.append(f"    {g}")
            if len(self.gaps) > 10:
                lines.append(f"    ... {len(self.gaps) - 10} more")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (gap list shortened to counts per kind plus the first 20 ranges)."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": self.rows_rejected,
            "rejected": dict(self.rejected),
            "examples": dict(self.examples),
            "adjusted": dict(self.adjusted),
            "expected_rows": self.expected_rows,
            "resolution_minutes": self.resolution_minutes,
            "series_resolutions": dict(self.series_resolutions),
            "warnings": dict(self.warnings),
            "warning_examples": dict(self.warning_examples),
            "resampling": self.resampling,
            "fill_policy": self.fill_policy,
            "dst_merged_slots": self.dst_merged_slots,
            "gaps": dict(Counter(f"{g.kind}, {'filled by ' + g.filled_by if g.filled_by else 'not filled'}" for g in self.gaps)),
            "first_gaps": [str(g) for g in self.gaps[:20]],
            "notes": list(self.notes),
        }


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
    """

    frame: pd.DataFrame
    where: str
    ts_zone: Literal["utc", "local"]
    row_ref: Callable[[int], str]
    layout: Layout
    expected_rows: int | None = None


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
        if not self.start_date and not self.end_date:
            return "all dates"
        return f"{self.start_date or '...'} to {self.end_date or '...'} (local dates, inclusive)"


class Source(Protocol):
    """What every data source provides. Writers (import) are in the same classes, see ``train/import_data.py``."""

    def describe(self) -> str:
        """Where the data live, without credentials."""
        ...

    def list_households(self, table: str, window: TimeWindow) -> list[str]:
        """Distinct household ids of ``table`` within ``window`` (filtered on the server)."""
        ...

    def read_consumption(self, table: str, households: Sequence[str], window: TimeWindow) -> RawRows:
        """Rows of ``households`` within ``window``, ordered by household and time, count checked."""
        ...

    def read_pricing(self, table: str, node: str, market: str | None, window: TimeWindow) -> RawRows:
        """Price rows of one node (and market, where the layout has one) within ``window``."""
        ...


# ------------------------------------------------------------------------------------------ validation


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


def _parse_times(raw: pd.Series, zone: str, tz: str) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """Parse to UTC. Returns (utc, unparseable, nonexistent, ambiguous) with masks over ``raw``."""
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
    utc, unparseable, nonexistent, ambiguous = _parse_times(ts_raw, raw.ts_zone, tz)
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


# ---------------------------------------------------------------------------------------- the grid


def assemble_grid(
    rows: pd.DataFrame,
    report: LoadReport,
    energy: Sequence[str],
    intensive: Sequence[str],
    *,
    resolution_minutes: int | None,
    window: TimeWindow,
    partial_days: Literal["drop", "keep"],
    row_ref: Callable[[int], str] | None = None,
    series: str = "household",
) -> tuple[pd.DatetimeIndex, pd.DataFrame]:
    """Validated UTC rows -> (grid, one row per (key, local slot) inside the grid).

    Rejects rows isolated in time (``checks.isolated_in_time``), resamples each series to 30
    minutes at its own interval length (stating what it did in ``report.resampling``), converts to
    local clock time (fall-back hour averaged), builds the whole-day grid and rejects rows outside
    it. ``partial_days="drop"`` leaves out incomplete first / last days (household data: the
    package simulates whole days); ``"keep"`` keeps them and leaves their missing slots to the gap
    rule (prices: a day without its night hours is still worth its daytime prices).

    Args:
        resolution_minutes: the interval length of every series (None: detected per series); a
            series whose own steps say otherwise is counted in ``report.warnings``.
        row_ref: how messages name a row by its ``pos`` (:attr:`RawRows.row_ref`).
        series: what a key is, for messages (``household``, ``node``).
    """
    where = report.source
    if rows.empty:
        raise DataError(f"{where}: no usable rows ({report.rows_read} read, all rejected){_reasons(report)}")
    rows = _reject_isolated(rows, report, row_ref, series)
    steps = series_steps(rows)
    if resolution_minutes:
        resolution = pd.Series(int(resolution_minutes), index=steps.index)
        contradict = steps["minutes"][(steps["minutes"] > 0) & (steps["minutes"] != resolution_minutes)]
        if not contradict.empty:
            k = contradict.index[0]
            report.warn(
                f"{series}'s own steps contradict the stated resolution_minutes={resolution_minutes} (read at the stated one)",
                len(contradict), f"{series} {k}: most of its steps are {contradict.iloc[0]} minutes",
            )
    else:
        resolution, notes = series_resolutions(rows, where, series, steps)
        report.notes.extend(notes)
    mixed = steps[(steps["minutes"] > 0) & (steps["share"] < MIN_STEP_SHARE)]
    if not mixed.empty:
        k = mixed.index[0]
        report.warn(
            f"{series} with fewer than {MIN_STEP_SHARE:.0%} of its steps at its interval length "
            "(mixed interval lengths, or many gaps)",
            len(mixed), f"{series} {k}: {mixed['share'].iloc[0]:.0%} of its steps are {mixed['minutes'].iloc[0]} minutes",
        )
    lengths = sorted(int(m) for m in resolution.unique())
    report.resolution_minutes = lengths[0] if len(lengths) == 1 else None
    if len(lengths) > 1:
        report.series_resolutions = {str(k): int(m) for k, m in resolution.items()}
    parts, descriptions = [], []
    for minutes in lengths:
        keys = resolution.index[resolution == minutes]
        part, rejected = to_30min(rows[rows[KEY].isin(keys)], minutes, energy, intensive)
        parts.append(part)
        for why, count in rejected.items():
            report.reject(why, count)
        text = _describe_resampling(minutes, energy, intensive, bool(resolution_minutes))
        if len(lengths) > 1:
            text = f"{series} {', '.join(map(str, keys[:5]))}{f' (+{len(keys) - 5} more)' if len(keys) > 5 else ''}: {text}"
        descriptions.append(text)
    frame30 = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    report.resampling = "; ".join(descriptions)
    if frame30.empty:
        raise DataError(f"{where}: no complete 30-minute interval{_reasons(report)}")
    local, merged = to_local_clock(frame30, [*energy, *intensive], window.tz)
    report.dst_merged_slots = merged
    first, last = local[TS].min(), local[TS].max()
    start_date, end_date = window.start_date, window.end_date
    if partial_days == "keep":
        start_date = start_date or first.normalize()
        end_date = end_date or last.normalize()
    grid = day_grid(first, last, start_date, end_date)
    inside = (local[TS] >= grid[0]) & (local[TS] <= grid[-1])
    if not inside.all():
        before = local.loc[~inside & (local[TS] < grid[0]), ROWS].sum()
        after = local.loc[~inside & (local[TS] > grid[-1]), ROWS].sum()
        bounded = window.start_date is not None or window.end_date is not None
        label = "outside the requested dates" if bounded else "partial day at the {} (whole local days only)"
        report.reject(label.format("start"), int(round(before)))
        report.reject(label.format("end"), int(round(after)))
        local = local[inside]
    return grid, local.reset_index(drop=True)


def _reject_isolated(rows: pd.DataFrame, report: LoadReport, row_ref: Callable[[int], str] | None, series: str) -> pd.DataFrame:
    """``rows`` less those isolated in time (counted in ``report`` with an example)."""
    isolated, start, end = isolated_in_time(rows[TS])
    if not isolated.any():
        return rows
    i = int(np.flatnonzero(isolated)[np.argmin(rows[POS].to_numpy()[isolated])]) if POS in rows else int(np.flatnonzero(isolated)[0])
    ref = f"{row_ref(int(rows[POS].iloc[i]))}: " if row_ref is not None and POS in rows else ""
    report.reject(
        f"isolated in time: more than {TIME_OUTLIER_SEPARATION.days} days from the bulk of the rows "
        f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)",
        int(isolated.sum()),
        f"{ref}{series} {rows[KEY].iloc[i]} at {rows[TS].iloc[i]:%Y-%m-%d %H:%M} UTC",
    )
    return rows[~isolated]


def _reasons(report: LoadReport) -> str:
    if not report.rejected:
        return ""
    return "; rejected: " + ", ".join(f"{n} {why}" for why, n in report.rejected.most_common(4))


def _describe_resampling(resolution: int, energy: Sequence[str], intensive: Sequence[str], stated: bool) -> str:
    how = "stated" if stated else "detected"
    if resolution == 30:
        return f"{how} 30-minute intervals: no resampling"
    if resolution == 60:
        parts = [f"{', '.join(energy)} split in two halves" if energy else "", f"{', '.join(intensive)} repeated" if intensive else ""]
        return f"{how} 60-minute intervals resampled to 30 minutes: " + "; ".join(p for p in parts if p)
    k = 30 // resolution
    parts = [f"{', '.join(energy)} summed over {k} readings" if energy else "", f"{', '.join(intensive)} averaged over {k} readings" if intensive else ""]
    return f"{how} {resolution}-minute intervals resampled to 30 minutes: " + "; ".join(p for p in parts if p)


def _unique_ids(households: Sequence[object], where: str) -> list[str]:
    """Requested ids by the id rule (:func:`clean_id`); an id listed twice (after stripping) raises."""
    keys = [clean_id(h) for h in households]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise DataError(f"{where}: household(s) {repeated} listed more than once (ids are compared without surrounding whitespace)")
    if "" in keys:
        raise DataError(f"{where}: an empty household id was requested")
    return keys


def pivot(local: pd.DataFrame, grid: pd.DatetimeIndex, keys: Sequence[str], column: str) -> np.ndarray:
    """(T, len(keys)) matrix of ``column`` on ``grid``; NaN where a slot has no row."""
    t_idx = ((local[TS] - grid[0]) // SLOT).to_numpy().astype(np.int64)
    k_pos = {k: j for j, k in enumerate(keys)}
    k_idx = local[KEY].map(k_pos).to_numpy()
    out = np.full((len(grid), len(keys)), np.nan)
    ok = ~pd.isna(k_idx)
    out[t_idx[ok], k_idx[ok].astype(np.int64)] = local[column].to_numpy()[ok]
    return out


# ------------------------------------------------------------------------------------------ datasets


def rows_to_dataset(
    raw: RawRows,
    *,
    households: Sequence[str] | None = None,
    window: TimeWindow = TimeWindow(),
    gap_policy: GapPolicy = GapPolicy(),
    resolution_minutes: int | None = None,
) -> tuple[Dataset, LoadReport]:
    """Build a :class:`Dataset` from consumption rows; see the module docstring of ``resample.py``.

    Args:
        households: the homes, in this order (None: every home in the rows, natural order).
        window: the local dates wanted (None sides: what the data cover, whole days only).
        gap_policy: how missing slots are filled (default: any gap raises).
        resolution_minutes: the input's interval length (None: detected).

    Returns:
        ``(dataset, report)``; ``dataset.pv_capacity_kw`` is estimated as each home's peak
        30-minute PV power (the tables carry no nameplate).
    """
    report = LoadReport(source=raw.where, expected_rows=raw.expected_rows, fill_policy=gap_policy.describe())
    values = [
        ValueSpec("load_kwh"),
        ValueSpec("pv_kwh", clip_tolerance=PV_NEGATIVE_TOLERANCE_KWH),
        ValueSpec("temperature_c", nullable=True, non_negative=False),
    ]
    rows = validate_rows(raw, values, report, window.tz)
    if households is None:
        keys = sorted(rows[KEY].unique(), key=natural_key)
    else:
        keys = _unique_ids(households, raw.where)
        present = set(rows[KEY].unique())
        absent = [h for h in keys if h not in present]
        if absent:
            raise DataError(f"{raw.where}: no usable rows for household(s) {absent} ({window.describe()}){_reasons(report)}")
        extra = ~rows[KEY].isin(keys)
        if extra.any():  # a source that could not filter on the server
            report.reject("household not selected", int(extra.sum()))
            rows = rows[~extra]
    grid, local = assemble_grid(
        rows, report, ["load_kwh", "pv_kwh"], ["temperature_c"],
        resolution_minutes=resolution_minutes, window=window, partial_days="drop", row_ref=raw.row_ref,
    )
    skipped = nonexistent_slots(grid, window.tz)
    load = pivot(local, grid, keys, "load_kwh")
    pv = pivot(local, grid, keys, "pv_kwh")
    for finding in plausibility(load, pv, grid, keys):  # on the measured values, before any fill
        report.warn(finding.check, finding.count, finding.example)
    for j, h in enumerate(keys):
        try:
            load[:, j], gaps = fill_series(load[:, j], grid, f"{raw.where}: household {h}", gap_policy, skipped)
            pv[:, j], _ = fill_series(pv[:, j], grid, f"{raw.where}: household {h}", gap_policy, skipped)
        except DataError as err:  # rejected rows are often the cause of a gap: say which
            raise DataError(f"{err}{_reasons(report)}") from None
        report.gaps.extend(gaps)
    temperature = None
    temp = pivot(local, grid, keys, "temperature_c")
    if np.isfinite(temp).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # slots where no home reports a temperature
            mean = np.nanmean(temp, axis=1)
        # a shared weather series: its holes are always interpolated (it only feeds observations)
        temperature, _ = fill_series(mean, grid, f"{raw.where}: temperature_c", GapPolicy("interpolate"), skipped)
        report.notes.append("temperature_c: mean over households per slot, holes interpolated")
    report.rows_kept = int(round(local[ROWS].sum()))
    report.check_balance()
    capacity = np.round(pv.max(axis=0) / INTERVAL_HOURS, 3)
    report.notes.append("pv_capacity_kw estimated as each home's peak 30-minute PV power (no nameplate in the table)")
    ds = Dataset(
        name=raw.where,
        timestamps=grid,
        load_kwh=np.ascontiguousarray(load),
        pv_kwh=np.ascontiguousarray(pv),
        household_ids=tuple(keys),
        pv_capacity_kw=capacity,
        temperature_c=temperature,
    )
    return ds, report


# ---------------------------------------------------------------------------------------- dispatcher


def config_value(obj: Any, name: str, default: Any) -> Any:
    """``obj.name`` where the config has it and sets it, else ``default``."""
    value = getattr(obj, name, default) if obj is not None else default
    return default if value is None and default is not None else value


CONNECTION_FIELDS = ("db_schema", "dsn_env", "env_file", "page_rows")  # from EnvConfig.database
READ_FIELDS = ("path", "table", "start_date", "end_date", "gap_fill", "max_gap_intervals", "resolution_minutes")


@dataclass(frozen=True, kw_only=True)
class SourceOptions:
    """What every read from a file, PostgreSQL or Supabase needs.

    Attributes:
        path: the file (``file`` only).
        table: the table (``postgres`` / ``supabase``); checked against the identifier allow-list.
        start_date, end_date: local dates, inclusive (None: what the data cover, whole days).
        gap_fill, max_gap_intervals: the :class:`GapPolicy` (``max_gap_intervals`` default one day,
            :data:`~energy_env.data.resample.DEFAULT_MAX_GAP_INTERVALS`; None = no limit).
        resolution_minutes: the input interval length (None: detected).
        tz: the local time zone of the simulation clock.
        db_schema: database schema of the table.
        dsn_env: environment variable holding the PostgreSQL DSN (never the DSN itself).
        env_file: a ``.env`` file read after the environment (None: none).
        page_rows: rows per request / fetch.
    """

    path: str | None = None
    table: str = CONSUMPTION.default_table
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    gap_fill: str = "none"
    max_gap_intervals: int | None = DEFAULT_MAX_GAP_INTERVALS
    resolution_minutes: int | None = None
    tz: str = LOCAL_TZ
    db_schema: str = "public"
    dsn_env: str = "WATTSHARE_PG_DSN"
    env_file: str | None = ".env"
    page_rows: int = 1000

    @property
    def window(self) -> TimeWindow:
        return TimeWindow(self.start_date, self.end_date, self.tz)

    @property
    def gap_policy(self) -> GapPolicy:
        return GapPolicy(self.gap_fill, self.max_gap_intervals)  # type: ignore[arg-type]

    @classmethod
    def _kwargs_from_config(cls, read_cfg: Any, database_cfg: Any, extra: Sequence[str] = ()) -> dict[str, Any]:
        """Fields named in ``read_cfg`` (data or wholesale section) and ``database_cfg``; defaults elsewhere."""
        defaults = {f.name: f.default for f in fields(cls)}
        kw = {n: config_value(read_cfg, n, defaults[n]) for n in (*READ_FIELDS, *extra)}
        if read_cfg is not None and hasattr(read_cfg, "max_gap_intervals"):
            kw["max_gap_intervals"] = read_cfg.max_gap_intervals  # null in a config means no limit, not the default
        kw.update({n: config_value(database_cfg, n, defaults[n]) for n in CONNECTION_FIELDS})
        return kw


@dataclass(frozen=True, kw_only=True)
class ExternalDataOptions(SourceOptions):
    """Where and how to load household data: ``source`` is ``file`` (CSV or Parquet, by
    extension), ``postgres`` or ``supabase``; ``households`` the ids to load, in this order (None:
    the first ``num_households`` in natural order). The rest: :class:`SourceOptions`.
    """

    source: ExternalSource
    households: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, data_cfg: Any, database_cfg: Any = None) -> "ExternalDataOptions":
        """From ``EnvConfig.data`` (and ``EnvConfig.database``); missing fields take the defaults."""
        households = config_value(data_cfg, "households", None)
        return cls(
            source=data_cfg.source,
            households=tuple(clean_id(h) for h in households) if households else None,
            **cls._kwargs_from_config(data_cfg, database_cfg),
        )


def open_source(options: ExternalDataOptions) -> Source:
    """The :class:`Source` named by ``options.source`` (credentials from the environment / ``.env``)."""
    if options.source == "file":
        from energy_env.data.files import FileSource

        if not options.path:
            raise DataError("data.source 'file' needs data.path (a .csv or .parquet file)")
        return FileSource(options.path)
    if options.source == "postgres":
        from energy_env.data.postgres import PostgresSource

        return PostgresSource.from_env(options.dsn_env, options.env_file, schema=options.db_schema, page_rows=options.page_rows)
    if options.source == "supabase":
        from energy_env.data.supabase_source import SupabaseSource

        return SupabaseSource.from_env(options.env_file, schema=options.db_schema, page_rows=options.page_rows)
    raise DataError(f"unknown external data source {options.source!r}; expected one of {', '.join(EXTERNAL_SOURCES)}")


def load_consumption(
    options: ExternalDataOptions, num_households: int | None = None, source: Source | None = None
) -> tuple[Dataset, LoadReport]:
    """Load household data as a :class:`Dataset`, with its :class:`LoadReport`.

    Households: ``options.households`` if given, else the first ``num_households`` ids in natural
    order among those with rows in the window (listed on the server), else all of them.

    Raises:
        DataError: naming the source and cause (missing table, wrong column type, no rows, gaps the
            rule does not fill, too few households, ...).
    """
    src = source or open_source(options)
    window = options.window
    table = options.table
    if options.households:
        households = _unique_ids(options.households, src.describe())
        if num_households is not None and num_households != len(households):
            if num_households > len(households):
                raise DataError(f"data.households lists {len(households)} homes, but num_households is {num_households}")
            households = households[:num_households]
    else:
        available = sorted({clean_id(h) for h in src.list_households(table, window)} - {""}, key=natural_key)
        what = "the file" if src.describe().startswith("file ") else f"table {table!r}"
        if not available:
            raise DataError(f"{src.describe()}: {what} has no rows ({window.describe()})")
        if num_households is not None and num_households > len(available):
            raise DataError(
                f"{src.describe()}: {what} has {len(available)} households ({window.describe()}), "
                f"but num_households is {num_households}"
            )
        households = available[:num_households] if num_households is not None else available
    raw = src.read_consumption(table, households, window)
    return rows_to_dataset(
        raw,
        households=households,
        window=window,
        gap_policy=options.gap_policy,
        resolution_minutes=options.resolution_minutes,
    )


@lru_cache(maxsize=4)
def _cached_external(options: ExternalDataOptions, num_households: int) -> Dataset:
    ds, report = load_consumption(options, num_households)
    # the config path has no caller to hand the report to: log it (a warning when rows were lost or
    # filled, or a check failed)
    lossy = report.rows_rejected or report.warnings or any(g.kind == "missing" for g in report.gaps)
    _log.log(logging.WARNING if lossy else logging.INFO, "%s", redact(report.summary()))
    return ds


def load_external_dataset(data_cfg: Any, num_households: int, database_cfg: Any = None) -> Dataset:
    """``energy_env.data.load_dataset`` for ``file`` / ``postgres`` / ``supabase`` (cached in-process)."""
    return _cached_external(ExternalDataOptions.from_config(data_cfg, database_cfg), int(num_households))


def clear_cache() -> None:
    """Forget data sets loaded from external sources."""
    _cached_external.cache_clear()


# -------------------------------------------------------------------------------------------- writing


def dataset_to_rows(ds: Dataset, tz: str = LOCAL_TZ) -> tuple[pd.DataFrame, Counter]:
    """A :class:`Dataset` as ``consumption`` rows: one per household and slot, time in UTC.

    Naive local slots become UTC by :func:`~energy_env.data.resample.local_to_utc`: the two
    spring-forward slots, which no clock shows, are skipped (counted in the returned Counter); the
    fall-back slots are written once, at their first (daylight time) occurrence.

    Returns:
        ``(rows, skipped)``: columns ``household_id``, ``interval_start_utc``, ``load_kwh``,
        ``pv_kwh``, ``temperature_c`` (None where the data set has no temperature).
    """
    from energy_env.data.resample import local_to_utc

    utc, nonexistent, _ = local_to_utc(ds.timestamps, tz)
    keep = ~nonexistent
    t_keep = int(keep.sum())
    n = ds.num_households
    rows = pd.DataFrame(
        {
            "household_id": np.repeat(np.asarray(ds.household_ids, dtype=object), t_keep),
            "interval_start_utc": np.tile(utc[keep], n),
            "load_kwh": ds.load_kwh[keep].T.reshape(-1),
            "pv_kwh": ds.pv_kwh[keep].T.reshape(-1),
            "temperature_c": np.tile(ds.temperature_c[keep], n) if ds.temperature_c is not None else None,
        }
    )
    skipped: Counter = Counter()
    if nonexistent.any():
        skipped["slot does not exist in local time (DST spring forward)"] = int(nonexistent.sum()) * n
    return rows, skipped

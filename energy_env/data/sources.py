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

from energy_env.data.dataset import DataError, Dataset
from energy_env.data.resample import (
    KEY,
    LOCAL_TZ,
    ROWS,
    SLOT,
    TS,
    GapPolicy,
    GapRange,
    day_grid,
    detect_resolution_minutes,
    fill_series,
    nonexistent_slots,
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


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each secret (and of its URL-encoded form) replaced by ``***``."""
    from urllib.parse import quote

    for secret in secrets:
        if secret and len(secret) >= 4:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, "***")
    return text


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
        resolution_minutes: the interval length of the input; ``resampling`` says what was done.
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
    layouts), then per value column null / non-numeric / non-finite / negative, and last duplicates
    of (key, time) (the first is kept).

    Returns:
        The good rows: ``key`` (str), ``ts`` (UTC), one float column per value role.
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
    mark(keys.isna().to_numpy() | (keys.astype(str).str.strip() == "").to_numpy(), f"missing {key_col}")
    ts_raw = df[TS]
    mark(ts_raw.isna().to_numpy(), f"missing {ts_col}")
    utc, unparseable, nonexistent, ambiguous = _parse_times(ts_raw, raw.ts_zone, tz)
    mark(unparseable, f"unparseable {ts_col}")
    mark(nonexistent, f"{ts_col} does not exist in local time (DST spring forward)")
    mark(ambiguous, f"{ts_col} is ambiguous in local time (DST fall back hour); store UTC instead")
    out = pd.DataFrame({KEY: keys.astype(str).str.strip(), TS: utc})
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
    good = reason == None  # noqa: E711
    # duplicates among the good rows only, so that a bad twin never hides a good row
    sub = out[good]
    dup = np.zeros(n, dtype=bool)
    dup[np.flatnonzero(good)] = sub.duplicated([KEY, TS], keep="first").to_numpy()
    mark(dup, f"duplicate ({key_col}, {ts_col})")
    return out[reason == None].reset_index(drop=True)  # noqa: E711


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
) -> tuple[pd.DatetimeIndex, pd.DataFrame]:
    """Validated UTC rows -> (grid, one row per (key, local slot) inside the grid).

    Resamples to 30 minutes (stating what it did in ``report.resampling``), converts to local
    clock time (fall-back hour averaged), builds the whole-day grid and rejects rows outside it.
    ``partial_days="drop"`` leaves out incomplete first / last days (household data: the package
    simulates whole days); ``"keep"`` keeps them and leaves their missing slots to the gap rule
    (prices: a day without its night hours is still worth its daytime prices).
    """
    where = report.source
    if rows.empty:
        raise DataError(f"{where}: no usable rows ({report.rows_read} read, all rejected){_reasons(report)}")
    resolution = resolution_minutes or detect_resolution_minutes(rows, where)
    report.resolution_minutes = resolution
    frame30, rejected = to_30min(rows, resolution, energy, intensive)
    for why, count in rejected.items():
        report.reject(why, count)
    report.resampling = _describe_resampling(resolution, energy, intensive, bool(resolution_minutes))
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
        keys = list(households)
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
        resolution_minutes=resolution_minutes, window=window, partial_days="drop",
    )
    skipped = nonexistent_slots(grid, window.tz)
    load = pivot(local, grid, keys, "load_kwh")
    pv = pivot(local, grid, keys, "pv_kwh")
    for j, h in enumerate(keys):
        load[:, j], gaps = fill_series(load[:, j], grid, f"{raw.where}: household {h}", gap_policy, skipped)
        pv[:, j], _ = fill_series(pv[:, j], grid, f"{raw.where}: household {h}", gap_policy, skipped)
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
        gap_fill, max_gap_intervals: the :class:`GapPolicy`.
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
    max_gap_intervals: int | None = None
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
            households=tuple(str(h) for h in households) if households else None,
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
        households = list(options.households)
        if num_households is not None and num_households != len(households):
            if num_households > len(households):
                raise DataError(f"data.households lists {len(households)} homes, but num_households is {num_households}")
            households = households[:num_households]
    else:
        available = sorted(src.list_households(table, window), key=natural_key)
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
    # the config path has no caller to hand the report to: log it (a warning when rows were lost or filled)
    lossy = report.rows_rejected or any(g.kind == "missing" for g in report.gaps)
    _log.log(logging.WARNING if lossy else logging.INFO, "%s", report.summary())
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

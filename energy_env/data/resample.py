"""From timestamped rows to the naive 30-minute local grid: resampling, DST, gaps and fill rules.

Every external source (PostgreSQL, Supabase, CSV / Parquet, CAISO price files) goes through the same
steps, in this order, so that their results agree:

1. **Resolution.** The interval length of each series (household or price node) is the most common
   step between its consecutive timestamps (:func:`series_resolutions`), or the value the caller
   states for all of them. Series may differ (one hourly home among half-hourly ones): each is
   resampled at its own. 5, 10, 15, 30 and 60 minutes are supported; anything else raises
   :class:`DataError` naming the series (no silent guessing).
2. **To 30 minutes, in UTC** (:func:`to_30min`). Energy columns (kWh per interval) are *extensive*:
   an hourly value is split into two halves of half the energy each; 2 (or 3, 6) shorter readings are
   summed. Prices and temperatures are *intensive*: an hourly value is repeated for both halves;
   shorter readings are averaged. A 30-minute slot whose shorter readings are not all present is
   dropped (its rows are rejected as "incomplete 30-minute interval") and becomes a gap.
3. **UTC -> local clock time** (:func:`to_local_clock`), ``America/Los_Angeles`` by default, then the
   time zone is dropped: the package's grid is naive local prevailing time with 48 slots every day.

   * *Fall back* (first Sunday of November): the clock repeats 01:00-02:00, so two real 30-minute
     intervals land on each of the naive slots 01:00 and 01:30. They are **averaged** (energy and
     prices alike). Averaging keeps every slot a physical 30-minute amount (a sum would double the
     kWh of a slot and break the per-interval power limits); the day loses one hour of energy, which
     the report counts (``dst_merged_slots``).
   * *Spring forward* (second Sunday of March): the clock skips 02:00-03:00, so the naive slots 02:00
     and 02:30 have no real interval. They are **always filled by linear interpolation** between
     01:30 and 03:00, whatever the gap rule, and reported as ``dst_spring_forward`` gaps; the day
     gains about one hour of night-time energy. If real data are missing next to them, the whole
     run is an ordinary gap and the configured rule decides.
4. **Whole days.** The grid runs from the first local midnight covered to the last complete day
   (or over the requested dates). Rows of partial days at either end are rejected with that reason.
5. **Gaps** (:func:`find_gap_runs`, :func:`fill_series`): every run of missing slots is reported with
   its range, then filled only by the configured :class:`GapPolicy`:

   * ``none`` (default for household data): any gap raises :class:`DataError` listing the ranges;
   * ``interpolate``: linear in time between the slots on either side; a run at the very start or
     end takes the nearest value;
   * ``previous``: the last value before the run (a run at the start takes the first value after);
   * ``same_slot``: the value at the same clock slot on the nearest day that has it (earlier day on
     a tie), which keeps daily shapes (load, PV); raises if no day has that slot.

   ``max_gap_intervals`` bounds the runs a rule may fill (default one day,
   :data:`DEFAULT_MAX_GAP_INTERVALS`): a longer run raises instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import DataError

LOCAL_TZ = "America/Los_Angeles"  # PG&E territory; CAISO's operating day is Pacific prevailing time
SLOT = pd.Timedelta(minutes=30)
SUPPORTED_RESOLUTIONS_MIN = (5, 10, 15, 30, 60)
FillRule = Literal["none", "interpolate", "previous", "same_slot"]
FILL_RULES: tuple[str, ...] = ("none", "interpolate", "previous", "same_slot")

# Column names of the frames passed between the steps (sources rename their columns to these).
KEY, TS, ROWS, POS = "key", "ts", "rows", "pos"

DEFAULT_MAX_GAP_INTERVALS = 48
"""The longest run of missing half hours a fill rule bridges unless told otherwise: one day.

Longer runs fail the load, naming them: a straight line (or a copied day) across more than a day of
a home's load is invention, and a stray timestamp would otherwise stretch the data over years of
filled gaps. The shared CAISO price file's nightly gaps are 18 slots (20 on four days), within it.
``max_gap_intervals: null`` lifts the bound explicitly.
"""


@dataclass(frozen=True)
class GapPolicy:
    """How missing 30-minute slots are filled (see the module docstring).

    Attributes:
        rule: ``none`` (raise on any gap), ``interpolate``, ``previous`` or ``same_slot``.
        max_gap_intervals: the longest run of missing slots the rule may fill (default
            :data:`DEFAULT_MAX_GAP_INTERVALS`, one day; None = no limit); longer runs raise
            :class:`DataError` naming them.
    """

    rule: FillRule = "none"
    max_gap_intervals: int | None = DEFAULT_MAX_GAP_INTERVALS

    def __post_init__(self) -> None:
        if self.rule not in FILL_RULES:
            raise ValueError(f"unknown gap fill rule {self.rule!r}; expected one of {', '.join(FILL_RULES)}")
        if self.max_gap_intervals is not None and self.max_gap_intervals < 1:
            raise ValueError(f"max_gap_intervals must be >= 1 or None, got {self.max_gap_intervals}")

    def describe(self) -> str:
        limit = "" if self.max_gap_intervals is None else f", at most {self.max_gap_intervals} slots per gap"
        return f"gap fill {self.rule}{limit}"


@dataclass(frozen=True)
class GapRange:
    """One run of missing 30-minute slots of one series.

    ``start`` and ``end`` are naive local clock times, ``end`` exclusive; ``kind`` is ``missing``
    (no data) or ``dst_spring_forward`` (the clock hour that does not exist); ``filled_by`` is the
    rule that filled it, or None when it was not filled.
    """

    series: str
    start: pd.Timestamp
    end: pd.Timestamp
    intervals: int
    kind: str
    filled_by: str | None

    def __str__(self) -> str:
        how = f"filled by {self.filled_by}" if self.filled_by else "not filled"
        label = " (DST spring forward)" if self.kind == "dst_spring_forward" else ""
        slots = f"{self.intervals} slot{'' if self.intervals == 1 else 's'}"
        return f"{self.series}: {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}{label}, {slots}, {how}"


# ------------------------------------------------------------------------------------------ resolution


def epoch_minutes(ts: pd.Series) -> np.ndarray:
    """Whole minutes since 1970 of a datetime Series (tz-aware: of its UTC instant), as int64."""
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy().astype("datetime64[m]").astype(np.int64)


def detect_resolution_minutes(frame: pd.DataFrame, source: str) -> int:
    """The interval length of ``frame`` (columns ``key``, ``ts``): the most common step within a series.

    Raises:
        DataError: fewer than two timestamps in every series, or a step that is not supported.
    """
    ordered = frame[[KEY, TS]].sort_values([KEY, TS])
    same_key = ordered[KEY].to_numpy()[1:] == ordered[KEY].to_numpy()[:-1]
    steps_min = np.diff(epoch_minutes(ordered[TS]))[same_key].astype(np.float64)
    steps_min = steps_min[steps_min > 0]
    if steps_min.size == 0:
        raise DataError(
            f"{source}: cannot tell the interval length (no series has two distinct timestamps); "
            "state it (resolution_minutes: 15, 30 or 60)"
        )
    values, counts = np.unique(steps_min, return_counts=True)
    step = float(values[np.argmax(counts)])
    if step not in SUPPORTED_RESOLUTIONS_MIN:
        raise DataError(
            f"{source}: the most common step between timestamps is {step:g} minutes; supported interval "
            f"lengths are {', '.join(map(str, SUPPORTED_RESOLUTIONS_MIN))} minutes (aggregate the data first)"
        )
    return int(step)


def series_steps(frame: pd.DataFrame) -> pd.DataFrame:
    """Per series of ``frame`` (columns ``key``, ``ts``): its most common step and how often it occurs.

    Returns:
        Indexed by key (every key of ``frame``): ``minutes`` (the most common positive step, the
        shorter on a tie; 0 for a series with fewer than two distinct timestamps) and ``share``
        (the fraction of its steps equal to it; NaN when ``minutes`` is 0).
    """
    ordered = frame[[KEY, TS]].sort_values([KEY, TS])
    keys = ordered[KEY].to_numpy()
    same = keys[1:] == keys[:-1]
    steps = pd.DataFrame({KEY: keys[1:][same], "step": np.diff(epoch_minutes(ordered[TS]))[same]})
    steps = steps[steps["step"] > 0]
    out = pd.DataFrame(index=pd.Index(pd.unique(keys), name=KEY))
    out["minutes"] = 0
    out["share"] = np.nan
    if steps.empty:
        return out
    counts = steps.groupby([KEY, "step"]).size()
    best = counts.groupby(level=0).idxmax()  # (key, step) of the most common step; index sorted: shorter first
    total = counts.groupby(level=0).sum()
    top_keys = [k for k, _ in best]
    out.loc[top_keys, "minutes"] = [int(m) for _, m in best]
    out.loc[top_keys, "share"] = counts.loc[list(best)].to_numpy() / total.loc[top_keys].to_numpy()
    return out


def series_resolutions(
    frame: pd.DataFrame, source: str, series: str = "household", steps: pd.DataFrame | None = None
) -> tuple[pd.Series, list[str]]:
    """The interval length of every series of ``frame`` (see :func:`series_steps`).

    A series with a single timestamp has no step: it takes the most common interval length of the
    others, which the returned notes say.

    Args:
        steps: :func:`series_steps` of ``frame``, if already computed.

    Returns:
        ``(minutes by key, notes)``.

    Raises:
        DataError: naming the series whose most common step is not supported, or when no series
            has two distinct timestamps.
    """
    steps = series_steps(frame) if steps is None else steps
    minutes = steps["minutes"]
    known = minutes[minutes > 0]
    if known.empty:
        raise DataError(
            f"{source}: cannot tell the interval length (no {series} has two distinct timestamps); "
            "state it (resolution_minutes: 15, 30 or 60)"
        )
    bad = known[~known.isin(SUPPORTED_RESOLUTIONS_MIN)]
    if not bad.empty:
        shown = ", ".join(f"{series} {k}: {m:g} minutes" for k, m in bad.head(5).items())
        raise DataError(
            f"{source}: the most common step between timestamps is not a supported interval length for "
            f"{len(bad)} {series}(s) ({shown}); supported are {', '.join(map(str, SUPPORTED_RESOLUTIONS_MIN))} "
            "minutes (aggregate the data first)"
        )
    notes = []
    single = minutes[minutes == 0]
    if not single.empty:
        fallback = int(known.value_counts().sort_index().idxmax())  # the shorter on a tie
        minutes = minutes.where(minutes > 0, fallback)
        notes.append(
            f"{len(single)} {series}(s) with a single timestamp ({', '.join(map(str, single.index[:5]))}) "
            f"read at the {fallback}-minute interval of the others"
        )
    return minutes.astype(int), notes


# ------------------------------------------------------------------------------------------- to 30 min


def to_30min(
    frame: pd.DataFrame,
    resolution_minutes: int,
    energy_columns: Sequence[str] = (),
    intensive_columns: Sequence[str] = (),
) -> tuple[pd.DataFrame, Counter]:
    """Resample validated rows (``key``, ``ts`` in UTC, value columns) to 30-minute slots, in UTC.

    Energy columns are split (hourly: half each) or summed (shorter intervals); intensive columns
    are repeated or averaged. The output has one row per (key, slot) and a ``rows`` column: how many
    input rows the slot carries (0.5 per half of an hourly row), so rejections further on can be
    counted in input rows.

    Returns:
        ``(frame30, rejected)``: ``rejected`` counts input rows dropped, by reason.
    """
    if resolution_minutes not in SUPPORTED_RESOLUTIONS_MIN:
        raise ValueError(f"resolution_minutes must be one of {SUPPORTED_RESOLUTIONS_MIN}, got {resolution_minutes}")
    rejected: Counter = Counter()
    values = list(energy_columns) + list(intensive_columns)
    ts_min = epoch_minutes(frame[TS])
    step = 30 if resolution_minutes == 60 else resolution_minutes  # hourly rows must start on a :00 or :30
    aligned = ts_min % step == 0
    if not aligned.all():
        rejected[f"timestamp not on the {resolution_minutes}-minute grid"] += int((~aligned).sum())
        frame = frame[aligned]
    if resolution_minutes == 30:
        out = frame[[KEY, TS, *values]].copy()
        out[ROWS] = 1.0
        return out.reset_index(drop=True), rejected
    if resolution_minutes == 60:
        first = frame[[KEY, TS, *values]].copy()
        second = first.copy()
        second[TS] = second[TS] + SLOT
        for col in energy_columns:
            first[col] = first[col] / 2.0
            second[col] = second[col] / 2.0
        out = pd.concat([first, second], ignore_index=True)
        out[ROWS] = 0.5
        # two hourly rows at :00 and :30 of the same series would overlap: keep neither half twice
        dup = out.duplicated([KEY, TS], keep=False)
        if dup.any():
            rejected["overlapping hourly intervals"] += int(round(dup.sum() * 0.5))
            out = out[~dup]
        return out.sort_values([KEY, TS]).reset_index(drop=True), rejected
    # 5, 10 or 15 minutes: every 30-minute slot needs all of its k readings
    k = 30 // resolution_minutes
    work = frame[[KEY, TS, *values]].copy()
    work["slot"] = work[TS].dt.floor("30min")
    agg: dict[str, tuple[str, str]] = {c: (c, "sum") for c in energy_columns}
    agg.update({c: (c, "mean") for c in intensive_columns})
    agg["n"] = (TS, "size")
    grouped = work.groupby([KEY, "slot"], sort=True).agg(**agg).reset_index()
    incomplete = grouped["n"] != k
    if incomplete.any():
        rejected[f"incomplete 30-minute interval (fewer than {k} {resolution_minutes}-minute readings)"] += int(
            grouped.loc[incomplete, "n"].sum()
        )
    out = grouped[~incomplete].rename(columns={"slot": TS})
    out[ROWS] = out.pop("n").astype(float)
    return out[[KEY, TS, *values, ROWS]].reset_index(drop=True), rejected


# ------------------------------------------------------------------------------------ to local clock


def to_local_clock(frame30: pd.DataFrame, value_columns: Sequence[str], tz: str = LOCAL_TZ) -> tuple[pd.DataFrame, int]:
    """Convert 30-minute UTC slots to naive local clock slots; average the slots the fall-back hour repeats.

    Returns:
        ``(frame, merged)``: ``ts`` is naive local time, one row per (key, slot); ``merged`` is how
        many local slots averaged two real intervals (2 per series per fall-back day).
    """
    out = frame30.copy()
    out[TS] = out[TS].dt.tz_convert(tz).dt.tz_localize(None)
    dup = out.duplicated([KEY, TS], keep=False)
    if not dup.any():
        return out, 0
    merged = int(out[dup].drop_duplicates([KEY, TS]).shape[0])
    agg: dict[str, tuple[str, str]] = {c: (c, "mean") for c in value_columns}
    agg[ROWS] = (ROWS, "sum")
    out = out.groupby([KEY, TS], sort=True).agg(**agg).reset_index()
    return out, merged


def local_to_utc(naive_local: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Naive local clock times -> UTC, for writing a :class:`Dataset` to a UTC table.

    A clock time that does not exist (spring forward, 02:00-02:59) maps to NaT and is flagged in
    ``nonexistent``; one that occurs twice (fall back, 01:00-01:59) maps to its **first** (daylight
    time) occurrence and is flagged in ``ambiguous``. So a data set written and read back is
    unchanged except for the spring-forward slots, which the reader interpolates.

    Returns:
        ``(utc, nonexistent, ambiguous)``.
    """
    first = naive_local.tz_localize(tz, ambiguous=np.ones(len(naive_local), dtype=bool), nonexistent="NaT")
    second = naive_local.tz_localize(tz, ambiguous=np.zeros(len(naive_local), dtype=bool), nonexistent="NaT")
    nonexistent = np.asarray(first.isna())
    ambiguous = np.asarray((first != second) & ~first.isna())
    return first.tz_convert("UTC"), nonexistent, ambiguous


def nonexistent_slots(grid: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> np.ndarray:
    """(T,) bool: naive local slots the clock skips (spring forward)."""
    return local_to_utc(grid, tz)[1]


# ------------------------------------------------------------------------------------------ day grid


def day_grid(
    first_local: pd.Timestamp,
    last_local: pd.Timestamp,
    start_date: pd.Timestamp | None = None,
    end_date: pd.Timestamp | None = None,
) -> pd.DatetimeIndex:
    """The naive 30-minute grid of whole local days.

    With ``start_date`` / ``end_date`` (inclusive local dates) the grid is exactly those days.
    Otherwise it runs from the first midnight at or after ``first_local`` to the last 23:30 at or
    before ``last_local``, i.e. partial days at the ends are left out.

    Raises:
        DataError: if that leaves no whole day.
    """
    start = pd.Timestamp(start_date).normalize() if start_date is not None else first_local.ceil("D")
    if end_date is not None:
        end = pd.Timestamp(end_date).normalize() + pd.Timedelta(days=1)
    else:
        end = (last_local + SLOT).floor("D")
    days = (end - start).days
    if days < 1:
        raise DataError(
            f"the data cover {first_local} to {last_local} (local time), which holds no whole day from midnight "
            "to midnight; the package simulates whole days"
        )
    return pd.date_range(start, periods=days * INTERVALS_PER_DAY, freq="30min", unit="ns")


# ----------------------------------------------------------------------------------------------- gaps


def find_gap_runs(missing: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[start, end)`` of consecutive True values of a (T,) bool mask."""
    if not missing.any():
        return []
    padded = np.concatenate([[False], missing, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _interpolate(values: np.ndarray, a: int, b: int) -> None:
    left = values[a - 1] if a > 0 else None
    right = values[b] if b < len(values) else None
    if left is None and right is None:
        raise DataError("no value at all to interpolate from")
    if left is None:
        values[a:b] = right
    elif right is None:
        values[a:b] = left
    else:
        frac = np.arange(1, b - a + 1) / (b - a + 1)
        values[a:b] = left + (right - left) * frac


def _previous(values: np.ndarray, a: int, b: int) -> None:
    values[a:b] = values[a - 1] if a > 0 else values[b]


def _same_slot(values: np.ndarray, source: np.ndarray, a: int, b: int, series: str, grid: pd.DatetimeIndex) -> None:
    # copy from the measured values only, so that a filled day never becomes the source of another
    per_day = source.reshape(-1, INTERVALS_PER_DAY)
    for i in range(a, b):
        day, slot = divmod(i, INTERVALS_PER_DAY)
        have = np.flatnonzero(np.isfinite(per_day[:, slot]))
        if have.size == 0:
            raise DataError(
                f"{series}: gap rule same_slot cannot fill {grid[i]}: no day has a value at {grid[i]:%H:%M} "
                "(use interpolate or previous)"
            )
        dist = np.abs(have - day) * 2 + (have > day)  # nearest day, the earlier one on a tie
        values[i] = per_day[have[np.argmin(dist)], slot]


def fill_series(
    values: np.ndarray,
    grid: pd.DatetimeIndex,
    series: str,
    policy: GapPolicy,
    dst_skipped: np.ndarray,
) -> tuple[np.ndarray, list[GapRange]]:
    """Fill the NaN slots of one (T,) series by ``policy``; spring-forward-only runs are interpolated.

    Returns:
        ``(filled, gaps)``: a filled copy and every gap found, in order.

    Raises:
        DataError: naming the series and the ranges that the policy does not fill (all of them for
        ``none``), or a series with no value at all.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    missing = ~np.isfinite(out)
    gaps: list[GapRange] = []
    if not missing.any():
        return out, gaps
    if missing.all():
        raise DataError(f"{series}: no data at all between {grid[0]} and {grid[-1] + SLOT}")
    unfilled: list[GapRange] = []
    # Fill DST runs first so that same_slot / previous never copy from a NaN.
    runs = find_gap_runs(missing)
    ordinary = []
    for a, b in runs:
        end = grid[b - 1] + SLOT
        if dst_skipped[a:b].all():
            _interpolate(out, a, b)
            gaps.append(GapRange(series, grid[a], end, b - a, "dst_spring_forward", "interpolate"))
        else:
            ordinary.append((a, b))
    measured = out.copy()
    for a, b in ordinary:
        end = grid[b - 1] + SLOT
        too_long = policy.max_gap_intervals is not None and b - a > policy.max_gap_intervals
        if policy.rule == "none" or too_long:
            gap = GapRange(series, grid[a], end, b - a, "missing", None)
            unfilled.append(gap)
            gaps.append(gap)
            continue
        if policy.rule == "interpolate":
            _interpolate(out, a, b)
        elif policy.rule == "previous":
            _previous(out, a, b)
        else:
            _same_slot(out, measured, a, b, series, grid)
        gaps.append(GapRange(series, grid[a], end, b - a, "missing", policy.rule))
    if unfilled:
        shown = "; ".join(str(g) for g in unfilled[:5])
        more = f" (and {len(unfilled) - 5} more)" if len(unfilled) > 5 else ""
        why = (
            "gap fill rule is 'none'"
            if policy.rule == "none"
            else f"longer than max_gap_intervals={policy.max_gap_intervals}"
        )
        raise DataError(
            f"{series}: {len(unfilled)} gap(s) not filled ({why}): {shown}{more}. Choose a fill rule "
            f"({', '.join(FILL_RULES[1:])}) or a larger max_gap_intervals, or restrict the dates"
        )
    return out, gaps

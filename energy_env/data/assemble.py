"""Validated rows -> the naive 30-minute local grid -> a :class:`Dataset`.

:func:`assemble_grid` is shared by household data and prices (``caiso.py``): it rejects rows
isolated in time, resamples each series at its own interval length (``resample.py``), converts to
local clock time and builds the whole-day grid. :func:`rows_to_dataset` does the rest for
household data: pivot to ``(T, N)``, plausibility warnings (``checks.py``), the gap rule, the
data set with its source, locator and :class:`~energy_env.data.report.LoadReport`.
"""

from __future__ import annotations

import warnings
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd

from energy_env.config import INTERVAL_HOURS
from energy_env.data.checks import TIME_OUTLIER_SEPARATION, isolated_in_time, plausibility
from energy_env.data.dataset import DataError, Dataset
from energy_env.data.report import LoadReport
from energy_env.data.resample import (
    KEY,
    POS,
    ROWS,
    SLOT,
    TS,
    GapPolicy,
    day_grid,
    fill_series,
    nonexistent_slots,
    series_resolutions,
    series_steps,
    to_30min,
    to_local_clock,
)
from energy_env.data.rows import RawRows, TimeWindow, ValueSpec, natural_key, unique_ids, validate_rows

# A PV meter reads slightly negative at night (inverter standby); values down to this are read as 0.
PV_NEGATIVE_TOLERANCE_KWH = 0.01
# A series with fewer of its steps at its own interval length than this is warned about: part of it
# may be at another interval length (an hourly stretch read as half-hourly puts an hour's energy in
# one slot and leaves the next empty, for a fill rule to add energy that was never used).
MIN_STEP_SHARE = 0.8


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
        30-minute PV power (the tables carry no nameplate). The data set carries ``raw.where`` as
        its source, the locator of ``raw.locator`` and ``report`` as ``load_report``.
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
        keys = unique_ids(households, raw.where)
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
        source=raw.where,
        locator=raw.locator(interval_minutes(report, keys)) if raw.locator is not None else None,
        load_report=report,
    )
    return ds, report


def interval_minutes(report: LoadReport, keys: Sequence[str]) -> dict[str, int]:
    """Household -> the interval length its rows were read at (after :func:`assemble_grid`)."""
    default = report.resolution_minutes or 30
    return {k: int(report.series_resolutions.get(k, default)) for k in keys}

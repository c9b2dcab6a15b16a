"""Resampling to 30 minutes, UTC -> local clock with DST, whole days, gaps and fill rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_env.data.dataset import DataError
from energy_env.data.resample import (
    GapPolicy,
    day_grid,
    detect_resolution_minutes,
    fill_series,
    find_gap_runs,
    local_to_utc,
    nonexistent_slots,
    to_30min,
    to_local_clock,
)
from energy_env.data.assemble import rows_to_dataset
from energy_env.data.report import LoadReport
from energy_env.data.rows import RawRows, TimeWindow
from energy_env.data.tables import CONSUMPTION


def _frame(ts_utc: list[str] | pd.DatetimeIndex, key: str = "h1", **values) -> pd.DataFrame:
    ts = pd.DatetimeIndex(ts_utc)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return pd.DataFrame({"key": key, "ts": ts, **values})


def _raw(frame: pd.DataFrame) -> RawRows:
    return RawRows(frame, "test rows", "utc", lambda i: f"row {i + 1}", CONSUMPTION)


def _consumption(ts_utc: pd.DatetimeIndex, load, pv=None, key="h1") -> pd.DataFrame:
    load = np.asarray(load, dtype=float)
    pv = np.zeros_like(load) if pv is None else np.asarray(pv, dtype=float)
    return pd.DataFrame({"key": key, "ts": ts_utc, "load_kwh": load, "pv_kwh": pv})


# ------------------------------------------------------------------------------------------ resample


def test_hourly_energy_is_split_in_halves_and_prices_repeated():
    df = _frame(["2024-10-01 07:00", "2024-10-01 08:00"], load_kwh=[2.0, 3.0], price=[0.1, 0.2])
    out, rejected = to_30min(df, 60, energy_columns=["load_kwh"], intensive_columns=["price"])
    assert not rejected
    assert list(out["ts"].dt.strftime("%H:%M")) == ["07:00", "07:30", "08:00", "08:30"]
    np.testing.assert_allclose(out["load_kwh"], [1.0, 1.0, 1.5, 1.5])
    np.testing.assert_allclose(out["price"], [0.1, 0.1, 0.2, 0.2])
    assert out["load_kwh"].sum() == pytest.approx(5.0)  # energy conserved
    assert out["rows"].sum() == pytest.approx(2.0)  # each hourly row counted once


def test_quarter_hours_are_summed_and_averaged_and_incomplete_slots_dropped():
    ts = ["2024-10-01 07:00", "2024-10-01 07:15", "2024-10-01 07:30", "2024-10-01 07:45", "2024-10-01 08:00"]
    df = _frame(ts, load_kwh=[0.1, 0.2, 0.3, 0.4, 0.5], price=[1.0, 3.0, 5.0, 7.0, 9.0])
    out, rejected = to_30min(df, 15, energy_columns=["load_kwh"], intensive_columns=["price"])
    np.testing.assert_allclose(out["load_kwh"], [0.3, 0.7])
    np.testing.assert_allclose(out["price"], [2.0, 6.0])
    # 08:00 has no 08:15 partner: the slot is a gap, its one row rejected with the reason
    assert rejected == {"incomplete 30-minute interval (fewer than 2 15-minute readings)": 1}


def test_rows_off_the_grid_are_rejected():
    df = _frame(["2024-10-01 07:00", "2024-10-01 07:10", "2024-10-01 08:00"], load_kwh=[1.0, 1.0, 1.0])
    _, rejected = to_30min(df, 60, energy_columns=["load_kwh"])
    assert rejected == {"timestamp not on the 60-minute grid": 1}


def test_resolution_is_detected_or_refused():
    hourly = _frame(pd.date_range("2024-10-01", periods=10, freq="h"), load_kwh=1.0)
    assert detect_resolution_minutes(hourly.drop(index=[3, 4]), "t") == 60  # gaps do not fool it
    quarter = _frame(pd.date_range("2024-10-01", periods=10, freq="15min"), load_kwh=1.0)
    assert detect_resolution_minutes(quarter, "t") == 15
    with pytest.raises(DataError, match="20 minutes; supported"):
        detect_resolution_minutes(_frame(pd.date_range("2024-10-01", periods=5, freq="20min"), load_kwh=1.0), "t")
    with pytest.raises(DataError, match="cannot tell the interval length"):
        detect_resolution_minutes(_frame(["2024-10-01 07:00"], load_kwh=1.0), "t")


# ---------------------------------------------------------------------------------------------- DST


def test_fall_back_hour_is_averaged_onto_two_naive_slots():
    # 2024-11-03: 01:00-02:00 happens twice (PDT 08:00-09:00 UTC, then PST 09:00-10:00 UTC)
    utc = pd.date_range("2024-11-03 08:00", periods=4, freq="30min", tz="UTC")
    frame30 = pd.DataFrame({"key": "h1", "ts": utc, "load_kwh": [1.0, 2.0, 3.0, 4.0], "rows": 1.0})
    local, merged = to_local_clock(frame30, ["load_kwh"])
    assert merged == 2
    assert list(local["ts"].dt.strftime("%H:%M")) == ["01:00", "01:30"]
    np.testing.assert_allclose(local["load_kwh"], [2.0, 3.0])  # (1+3)/2, (2+4)/2
    assert local["rows"].sum() == 4  # nothing lost: the four rows are kept, merged


def test_spring_forward_slots_are_interpolated_and_reported():
    # a day of 30-minute UTC rows across 2024-03-10: the local day has 46 real intervals
    start = pd.Timestamp("2024-03-10 00:00").tz_localize("America/Los_Angeles").tz_convert("UTC")
    end = pd.Timestamp("2024-03-11 00:00").tz_localize("America/Los_Angeles").tz_convert("UTC")
    utc = pd.date_range(start, end, freq="30min", inclusive="left")
    assert len(utc) == 46
    load = np.arange(46, dtype=float)
    ds, report = rows_to_dataset(_raw(_consumption(utc, load)))
    assert ds.num_intervals == 48
    slots = ds.timestamps.strftime("%H:%M")
    i = list(slots).index("02:00")
    # 01:30 holds 3.0 (the 4th interval), 03:00 holds 4.0: the two missing slots lie on the line between
    np.testing.assert_allclose(ds.load_kwh[i - 1 : i + 3, 0], [3.0, 3 + 1 / 3, 3 + 2 / 3, 4.0])
    (gap,) = report.gaps
    assert gap.kind == "dst_spring_forward" and gap.filled_by == "interpolate" and gap.intervals == 2
    assert report.rows_read == report.rows_kept == 46


def test_dst_days_with_gap_rule_none_still_load():
    """The spring-forward hour is not missing data: rule none does not refuse it."""
    start = pd.Timestamp("2024-03-09 00:00").tz_localize("America/Los_Angeles").tz_convert("UTC")
    end = pd.Timestamp("2024-03-12 00:00").tz_localize("America/Los_Angeles").tz_convert("UTC")
    utc = pd.date_range(start, end, freq="30min", inclusive="left")
    ds, report = rows_to_dataset(_raw(_consumption(utc, np.ones(len(utc)))), gap_policy=GapPolicy("none"))
    assert ds.num_days == 3
    assert report.rows_kept == len(utc)


def test_local_to_utc_flags_nonexistent_and_ambiguous_slots():
    naive = pd.date_range("2024-03-10 01:30", periods=4, freq="30min").append(
        pd.date_range("2024-11-03 00:30", periods=4, freq="30min")
    )
    utc, nonexistent, ambiguous = local_to_utc(naive)
    assert list(nonexistent) == [False, True, True, False, False, False, False, False]
    assert list(ambiguous) == [False, False, False, False, False, True, True, False]
    assert utc[5] == pd.Timestamp("2024-11-03 08:00", tz="UTC")  # 01:00 PDT: the first occurrence
    grid = day_grid(pd.Timestamp("2024-03-10"), pd.Timestamp("2024-03-10 23:30"))
    assert nonexistent_slots(grid).sum() == 2


# ---------------------------------------------------------------------------------------- whole days


def test_partial_days_at_the_ends_are_rejected_with_their_reason():
    # UTC midnight to UTC midnight is 17:00 to 17:00 local (PDT): only the middle day is whole
    utc = pd.date_range("2024-10-01 00:00", "2024-10-03 00:00", freq="h", inclusive="left", tz="UTC")
    ds, report = rows_to_dataset(_raw(_consumption(utc, np.ones(len(utc)))))
    assert ds.num_days == 1 and str(ds.timestamps[0]) == "2024-10-01 00:00:00"
    assert report.rows_read == 48 and report.rows_kept == 24
    assert report.rejected["partial day at the start (whole local days only)"] == 7
    assert report.rejected["partial day at the end (whole local days only)"] == 17
    report.check_balance()


def test_requested_dates_define_the_grid():
    utc = pd.date_range("2024-10-01 07:00", periods=24 * 3, freq="h", tz="UTC")  # 3 local days
    window = TimeWindow(pd.Timestamp("2024-10-02").date(), pd.Timestamp("2024-10-02").date())
    ds, report = rows_to_dataset(_raw(_consumption(utc, np.ones(len(utc)))), window=window)
    assert ds.num_days == 1 and ds.timestamps[0] == pd.Timestamp("2024-10-02")
    assert report.rejected["outside the requested dates"] == 48


# ---------------------------------------------------------------------------------------------- gaps


def _grid(days: int = 2) -> pd.DatetimeIndex:
    return pd.date_range("2024-10-01", periods=48 * days, freq="30min")


def test_gap_runs_are_found_with_their_ranges():
    missing = np.zeros(10, dtype=bool)
    missing[[2, 3, 7]] = True
    assert find_gap_runs(missing) == [(2, 4), (7, 8)]


def test_rule_none_raises_naming_every_range():
    values = np.arange(96, dtype=float)
    values[10:14] = np.nan
    values[50] = np.nan
    with pytest.raises(DataError, match=r"h1: 2 gap\(s\) not filled.*2024-10-01 05:00 to 2024-10-01 07:00.*2024-10-02 01:00 to 2024-10-02 01:30"):
        fill_series(values, _grid(), "h1", GapPolicy("none"), np.zeros(96, dtype=bool))


def test_fill_rules():
    grid = _grid()
    values = np.arange(96, dtype=float)
    values[10:14] = np.nan
    no_dst = np.zeros(96, dtype=bool)
    interp, gaps = fill_series(values, grid, "h", GapPolicy("interpolate"), no_dst)
    np.testing.assert_allclose(interp[9:15], np.arange(9, 15))
    assert [(str(g.start), g.intervals, g.filled_by) for g in gaps] == [("2024-10-01 05:00:00", 4, "interpolate")]
    prev, _ = fill_series(values, grid, "h", GapPolicy("previous"), no_dst)
    np.testing.assert_allclose(prev[10:14], 9.0)
    same, _ = fill_series(values, grid, "h", GapPolicy("same_slot"), no_dst)
    np.testing.assert_allclose(same[10:14], values[58:62])  # the next day's same clock slots
    lead = values.copy()
    lead[:3] = np.nan
    held, _ = fill_series(lead, grid, "h", GapPolicy("interpolate"), no_dst)
    np.testing.assert_allclose(held[:3], 3.0)  # an edge run takes the nearest value


def test_max_gap_intervals_bounds_what_a_rule_fills():
    values = np.ones(96)
    values[10:20] = np.nan
    with pytest.raises(DataError, match="longer than max_gap_intervals=4"):
        fill_series(values, _grid(), "h", GapPolicy("interpolate", max_gap_intervals=4), np.zeros(96, dtype=bool))


def test_same_slot_without_any_day_holding_the_slot_is_refused():
    values = np.ones(96)
    values[[5, 53]] = np.nan  # 02:30 of both days
    with pytest.raises(DataError, match="no day has a value at 02:30"):
        fill_series(values, _grid(), "h", GapPolicy("same_slot"), np.zeros(96, dtype=bool))


def test_bad_policy_values_are_refused():
    with pytest.raises(ValueError, match="unknown gap fill rule"):
        GapPolicy("zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_gap_intervals"):
        GapPolicy("interpolate", 0)


def test_report_balances_and_summarises():
    report = LoadReport("x", rows_read=5, rows_kept=3)
    report.reject("negative load_kwh", 2, "row 4: ...")
    report.check_balance()
    assert "rejected 2: negative load_kwh; first: row 4" in report.summary()
    report.rows_kept = 2
    with pytest.raises(AssertionError):
        report.check_balance()

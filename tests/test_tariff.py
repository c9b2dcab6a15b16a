"""Tariff layer: E-TOU-C import rates, NBT / NEM 2 / flat export, holidays, terminal price, errors."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy_env import tariff
from energy_env.config import TariffConfig
from energy_env.tariff import (
    MissingTariffDataError,
    baseline_allowance_kwh_per_day,
    baseline_credit_usd_per_kwh,
    build_price_table,
    day_type,
    export_price_usd_per_kwh,
    import_price_usd_per_kwh,
    is_peak,
    is_summer,
    is_weekend_or_holiday,
    pge_holidays,
    terminal_price_usd_per_kwh,
)

SHARED_TARIFF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pge_tariff"
needs_shared = pytest.mark.skipif(
    not SHARED_TARIFF.is_dir(), reason=f"shared PG&E tariff data not found at {SHARED_TARIFF}"
)

# 2025-01-01 sheet (AL 7469-E), total rates above baseline
SUMMER_PEAK, SUMMER_OFF, WINTER_PEAK, WINTER_OFF = 0.60729, 0.50429, 0.49312, 0.46312


def ts(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(stamps)


# ------------------------------------------------------------------------------------------ import rates


@pytest.mark.parametrize(
    "stamp, expected",
    [
        ("2025-07-15 15:30", SUMMER_OFF),  # last off-peak interval before the peak
        ("2025-07-15 16:00", SUMMER_PEAK),
        ("2025-07-15 20:30", SUMMER_PEAK),  # last peak interval
        ("2025-07-15 21:00", SUMMER_OFF),
        ("2025-07-19 18:00", SUMMER_PEAK),  # Saturday: E-TOU-C peak applies every day
        ("2025-07-04 18:00", SUMMER_PEAK),  # holiday too
        ("2025-01-15 15:30", WINTER_OFF),
        ("2025-01-15 16:00", WINTER_PEAK),
        ("2025-01-15 20:30", WINTER_PEAK),
        ("2025-01-15 21:00", WINTER_OFF),
        ("2025-05-31 12:00", WINTER_OFF),  # season edges
        ("2025-06-01 00:00", SUMMER_OFF),
        ("2025-09-30 23:30", SUMMER_OFF),
        ("2025-10-01 00:00", WINTER_OFF),
        ("2025-05-31 17:00", WINTER_PEAK),
        ("2025-06-01 17:00", SUMMER_PEAK),
        ("2025-09-30 17:00", SUMMER_PEAK),
        ("2025-10-01 17:00", WINTER_PEAK),
    ],
)
def test_default_import_rates(stamp, expected):
    price = import_price_usd_per_kwh(ts(stamp), TariffConfig())
    assert price.dtype == np.float64 and price.shape == (1,)
    assert price[0] == expected


def test_season_and_peak_flags():
    idx = ts("2025-05-31 15:30", "2025-06-01 16:00", "2025-09-30 20:30", "2025-10-01 21:00")
    np.testing.assert_array_equal(is_summer(idx), [False, True, True, False])
    np.testing.assert_array_equal(is_peak(idx), [False, True, True, False])
    day = pd.date_range("2025-03-03", periods=48, freq="30min")
    assert is_peak(day).sum() == 10  # 5 hours x 2 intervals
    np.testing.assert_array_equal(np.flatnonzero(is_peak(day)), np.arange(32, 42))


@needs_shared
@pytest.mark.parametrize("effective_date", ["2025-01-01", "2025-03-01", "2025-09-01", "2026-01-01", "2026-03-01"])
def test_every_import_snapshot_matches_shared_csv(effective_date):
    src = pd.read_csv(SHARED_TARIFF / "pge_e_tou_c_rates_2025_2026.csv", dtype={"effective_date": str})
    src = src[src["effective_date"] == effective_date]
    cfg = TariffConfig(import_rate_effective_date=effective_date)
    stamp = {("summer", "peak"): "2025-08-01 17:00", ("summer", "off_peak"): "2025-08-01 03:00",
             ("winter", "peak"): "2025-12-01 17:00", ("winter", "off_peak"): "2025-12-01 03:00"}
    for row in src.itertuples():
        assert import_price_usd_per_kwh(ts(stamp[row.season, row.period]), cfg)[0] == row.total_rate_usd_per_kwh
    assert baseline_credit_usd_per_kwh(cfg) == src["baseline_credit_usd_per_kwh"].iloc[0]


def test_baseline_allowance_and_credit():
    cfg = TariffConfig()
    days = pd.date_range("2025-05-30", "2025-06-02", freq="D").append(pd.DatetimeIndex(["2025-09-30", "2025-10-01"]))
    np.testing.assert_array_equal(baseline_allowance_kwh_per_day(days, cfg), [9.7, 9.7, 9.8, 9.8, 9.8, 9.7])
    assert baseline_credit_usd_per_kwh(cfg) == 0.10135


# -------------------------------------------------------------------------------------------- holidays


def test_holidays_match_provenance_lists():
    expected_2024 = ["01-01", "02-19", "05-27", "07-04", "09-02", "11-11", "11-28", "12-25"]
    expected_2025 = ["01-01", "02-17", "05-26", "07-04", "09-01", "11-11", "11-27", "12-25"]
    assert pge_holidays(2024) == {dt.date.fromisoformat(f"2024-{d}") for d in expected_2024}
    assert pge_holidays(2025) == {dt.date.fromisoformat(f"2025-{d}") for d in expected_2025}
    assert pge_holidays([2024, 2025]) == pge_holidays(2024) | pge_holidays(2025)


def test_sunday_holiday_moves_to_monday_saturday_stays():
    h2023 = pge_holidays(2023)
    assert dt.date(2023, 1, 2) in h2023 and dt.date(2023, 1, 1) not in h2023  # Jan 1 2023 was a Sunday
    assert dt.date(2023, 11, 11) in h2023 and dt.date(2023, 11, 10) not in h2023  # Saturday: no Friday off
    assert dt.date(2022, 12, 26) in pge_holidays(2022)  # Christmas 2022 was a Sunday
    assert all(len(pge_holidays(y)) == 8 for y in range(2000, 2040))


def test_holidays_are_weekend_type():
    idx = ts("2025-07-04 12:00", "2025-07-03 12:00", "2025-07-05 12:00", "2025-11-27 19:00", "2024-09-02 19:00")
    np.testing.assert_array_equal(is_weekend_or_holiday(idx), [True, False, True, True, True])
    np.testing.assert_array_equal(day_type(idx), ["Weekend", "Weekday", "Weekend", "Weekend", "Weekend"])
    year = pd.date_range("2025-01-01", periods=365, freq="D")
    assert is_weekend_or_holiday(year).sum() == 104 + 8  # 2025: 104 weekend days, all 8 holidays on weekdays


# ---------------------------------------------------------------------------------------------- export


def _shared_nbt_long() -> pd.DataFrame:
    parts = []
    for vintage in (2024, 2025):
        df = pd.read_csv(SHARED_TARIFF / f"pge_nbt_export_values_{vintage}_vintage.csv", dtype={"day_type": str})
        df.insert(0, "vintage", vintage)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _representative_day(year: int, month: int, weekend: bool) -> pd.Timestamp:
    """A day of ``year``/``month`` that is a plain weekday or a Saturday, for the cell lookups."""
    for d in pd.date_range(f"{year}-{month:02d}-01", periods=28, freq="D"):
        if (d.day_of_week == 5) if weekend else (d.day_of_week < 5 and d.date() not in pge_holidays(year)):
            return d
    raise AssertionError("unreachable")


@needs_shared
def test_nbt_values_equal_shared_csv_in_every_cell():
    src = _shared_nbt_long()
    assert len(src) == 3 * 576
    for (vintage, year), g in src.groupby(["vintage", "calendar_year"]):
        cfg = TariffConfig(nbt_vintage=vintage, nbt_calendar_year=year)
        # one timestamp per cell (:00 and :30 of each hour), taken from a *different* data year (2023): the
        # table's calendar year is a tariff choice, the timestamps only supply month / day type / hour
        stamps = [
            _representative_day(2023, r.month, r.day_type == "Weekend") + pd.Timedelta(hours=r.hour_start, minutes=m)
            for r in g.itertuples()
            for m in (0, 30)
        ]
        got = export_price_usd_per_kwh(pd.DatetimeIndex(stamps), cfg)
        np.testing.assert_array_equal(got, np.repeat(g["total_usd_per_kwh"].to_numpy(), 2))


def test_nbt_known_maximum_and_adder():
    cfg = TariffConfig(nbt_vintage=2024, nbt_calendar_year=2024)
    sept_2024 = pd.date_range("2024-09-01", "2024-10-01", freq="30min", inclusive="left")
    price = export_price_usd_per_kwh(sept_2024, cfg)
    assert price.max() == 3.90338
    hit = sept_2024[price == price.max()]
    assert set(hit.hour) == {19} and not is_weekend_or_holiday(hit).any()
    # Labor Day 2024-09-02 (a Monday) is weekend-type, so it does not get the weekday 19:00 value
    assert pd.Timestamp("2024-09-02 19:00") not in hit and pd.Timestamp("2024-09-03 19:00") in hit
    with_adder = export_price_usd_per_kwh(sept_2024, cfg.model_copy(update={"nbt_acc_plus_adder_usd_per_kwh": 0.0176}))
    np.testing.assert_allclose(with_adder - price, 0.0176, rtol=0, atol=1e-15)


def test_nbt_default_is_vintage_2024_calendar_2025():
    idx = pd.date_range("2025-01-01", periods=17520, freq="30min")
    assert export_price_usd_per_kwh(idx, TariffConfig()).max() == 3.11066


def test_nem2_and_flat_export():
    idx = pd.date_range("2025-06-01", periods=96, freq="30min")
    nem2 = TariffConfig(export="nem2")
    imp = import_price_usd_per_kwh(idx, nem2)
    np.testing.assert_allclose(export_price_usd_per_kwh(idx, nem2), imp - 0.0315, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(export_price_usd_per_kwh(idx, nem2, import_price=imp), export_price_usd_per_kwh(idx, nem2))
    assert export_price_usd_per_kwh(idx, TariffConfig(export="nem2", nem2_non_bypassable_usd_per_kwh=5.0)).min() == 0.0
    flat = export_price_usd_per_kwh(idx, TariffConfig(export="flat", flat_export_usd_per_kwh=0.05))
    assert flat.dtype == np.float64 and np.all(flat == 0.05)


# ------------------------------------------------------------------------------------ terminal price


def test_terminal_price():
    cfg = TariffConfig()
    # episode ends inside a winter peak: the off-peak rate of that day still applies
    winter = pd.date_range("2025-01-15 16:00", periods=4, freq="30min")
    assert terminal_price_usd_per_kwh(winter, import_price_usd_per_kwh(winter, cfg), cfg) == WINTER_OFF
    # crossing into summer: the last calendar day decides
    edge = pd.date_range("2025-05-31 12:00", "2025-06-01 18:00", freq="30min")
    assert terminal_price_usd_per_kwh(edge, import_price_usd_per_kwh(edge, cfg), cfg) == SUMMER_OFF
    fixed = TariffConfig(terminal_price_usd_per_kwh=0.3)
    assert terminal_price_usd_per_kwh(edge, import_price_usd_per_kwh(edge, fixed), fixed) == 0.3
    with pytest.raises(ValueError, match="shape"):
        terminal_price_usd_per_kwh(edge, np.zeros(3), cfg)


# ------------------------------------------------------------------------------------------ price table


def test_price_table():
    idx = pd.date_range("2025-01-01", periods=17520, freq="30min")
    cfg = TariffConfig()
    start = time.perf_counter()
    table = build_price_table(idx, cfg)
    assert time.perf_counter() - start < 1.0  # vectorised: milliseconds in practice
    assert table.description == "PG&E E-TOU-C 2025-01-01 (AL 7469-E); NBT vintage 2024, calendar 2025"
    assert len(table) == 17520
    for name in ("import_usd_per_kwh", "export_usd_per_kwh", "is_peak", "is_summer", "off_peak_import_usd_per_kwh"):
        arr = getattr(table, name)
        assert arr.shape == (17520,) and not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1
    assert table.import_usd_per_kwh.dtype == np.float64 and table.is_peak.dtype == bool
    np.testing.assert_array_equal(table.import_usd_per_kwh, import_price_usd_per_kwh(idx, cfg))
    np.testing.assert_array_equal(table.export_usd_per_kwh, export_price_usd_per_kwh(idx, cfg))
    assert set(np.unique(table.import_usd_per_kwh)) == {SUMMER_PEAK, SUMMER_OFF, WINTER_PEAK, WINTER_OFF}
    # the off-peak rate of each day equals the day's cheapest import interval
    np.testing.assert_array_equal(
        table.off_peak_import_usd_per_kwh, np.repeat(table.import_usd_per_kwh.reshape(-1, 48).min(axis=1), 48)
    )
    with pytest.raises(Exception):
        table.description = "x"  # frozen


def test_price_table_descriptions():
    assert build_price_table(ts("2025-01-01"), TariffConfig(export="flat")).description.endswith("flat export 0.04 $/kWh")
    nem2 = build_price_table(ts("2025-01-01"), TariffConfig(export="nem2", import_rate_effective_date="2026-03-01"))
    assert nem2.description.startswith("PG&E E-TOU-C 2026-03-01 (AL 7846-E); NEM 2")


def test_dst_days_are_priced():
    # naive prevailing time: the spring-forward day has no 02:00-02:30, fall-back repeats 01:00-01:30
    spring = pd.date_range("2025-03-09", periods=48, freq="30min").delete([4, 5])
    fall = pd.date_range("2025-11-02", periods=48, freq="30min").insert(4, pd.Timestamp("2025-11-02 01:00"))
    for idx in (spring, fall):
        table = build_price_table(idx, TariffConfig())
        assert np.isfinite(table.export_usd_per_kwh).all() and len(table) == len(idx)


# ------------------------------------------------------------------------------------------------ errors


def test_tz_aware_timestamps_rejected():
    idx = pd.date_range("2025-01-01", periods=4, freq="30min", tz="America/Los_Angeles")
    with pytest.raises(ValueError, match="tz-aware"):
        import_price_usd_per_kwh(idx, TariffConfig())
    with pytest.raises(ValueError, match="tz-aware"):
        baseline_allowance_kwh_per_day(idx, TariffConfig())


@pytest.mark.parametrize("stamp", ["2025-01-01 00:15", "2025-01-01 10:30:01", "2025-01-01 10:00:00.5"])
def test_unaligned_timestamps_rejected(stamp):
    with pytest.raises(ValueError, match="30-minute aligned.*position 1"):
        build_price_table(ts("2025-01-01 00:00", stamp), TariffConfig())


def test_nat_and_non_datetime_rejected():
    with pytest.raises(ValueError, match="NaT"):
        is_peak(pd.DatetimeIndex(["2025-01-01", None]))
    with pytest.raises(ValueError, match="DatetimeIndex"):
        is_peak([object()])


def test_missing_nbt_table_names_vintage_and_year():
    with pytest.raises(MissingTariffDataError, match="vintage 2023, calendar year 2025"):
        tariff._nbt_values_usd_per_kwh(ts("2025-01-01"), 2023, 2025)


def test_missing_nbt_row_names_month_and_day_type(monkeypatch):
    values, present = tariff._nbt_table()[2024, 2025]
    holes = present.copy()
    holes[6, 1] = False  # drop July weekend-type row
    monkeypatch.setattr(tariff, "_nbt_table", lambda: {(2024, 2025): (values, holes)})
    cfg = TariffConfig()
    assert export_price_usd_per_kwh(ts("2025-07-03 12:00"), cfg).shape == (1,)  # weekday still priced
    with pytest.raises(
        MissingTariffDataError, match="vintage 2024, calendar year 2025, month 7, day type Weekend"
    ):
        export_price_usd_per_kwh(ts("2025-07-03 12:00", "2025-07-04 12:00"), cfg)


def test_missing_effective_date(monkeypatch):
    monkeypatch.setattr(tariff, "_etouc_table", lambda: {})
    with pytest.raises(MissingTariffDataError, match="effective date 2025-01-01"):
        import_price_usd_per_kwh(ts("2025-01-01"), TariffConfig())


def test_empty_index():
    empty = pd.DatetimeIndex([])
    table = build_price_table(empty, TariffConfig())
    assert len(table) == 0 and table.export_usd_per_kwh.shape == (0,)
    with pytest.raises(ValueError, match="empty"):
        terminal_price_usd_per_kwh(empty, np.zeros(0), TariffConfig())

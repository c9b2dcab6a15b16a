"""The embedded synthetic community: determinism, shapes, calendar, and calibration to the real homes."""

import numpy as np
import pandas as pd
import pytest

from energy_env.config import DataConfig
from energy_env.data import Dataset, generate_synthetic, load_dataset
from energy_env.data.synthetic import ar1, dst_offset_hours, mean_deficit, mean_excess

HH_PER_DAY = 48


@pytest.fixture(scope="module")
def year20() -> Dataset:
    """20 homes, one calendar year: the calibration checks run on this."""
    return generate_synthetic(num_households=20, year=2025, seed=0)


def _hourly_profile(ds: Dataset, months=None) -> np.ndarray:
    """Community mean load by clock hour (kWh per interval)."""
    mask = np.ones(ds.num_intervals, bool) if months is None else np.isin(ds.timestamps.month, months)
    hour = ds.timestamps.hour[mask]
    load = ds.load_kwh[mask].mean(axis=1)
    return np.array([load[hour == h].mean() for h in range(24)])


# --- determinism and layout -------------------------------------------------------------------


def test_same_seed_same_data_other_seed_other_data():
    a = generate_synthetic(5, seed=3, num_days=4)
    b = generate_synthetic(5, seed=3, num_days=4)
    c = generate_synthetic(5, seed=4, num_days=4)
    for field in ("load_kwh", "pv_kwh", "pv_capacity_kw", "temperature_c", "irradiance_w_per_m2"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.allclose(a.load_kwh, c.load_kwh)
    assert not np.allclose(a.temperature_c, c.temperature_c)


def test_shapes_ids_and_timestamps():
    ds = generate_synthetic(num_households=4, year=2025, seed=0, num_days=3)
    assert ds.load_kwh.shape == ds.pv_kwh.shape == (3 * HH_PER_DAY, 4)
    assert ds.household_ids == ("household_0", "household_1", "household_2", "household_3")
    assert ds.pv_capacity_kw.shape == (4,)
    assert ds.temperature_c.shape == ds.irradiance_w_per_m2.shape == (3 * HH_PER_DAY,)
    assert ds.timestamps[0] == pd.Timestamp("2025-01-01 00:00")
    assert ds.timestamps[-1] == pd.Timestamp("2025-01-03 23:30")
    assert (np.diff(ds.timestamps) == pd.Timedelta(minutes=30)).all()
    assert ds.timestamps.tz is None
    assert ds.name == "synthetic(n=4, year=2025, seed=0, days=3)"
    assert generate_synthetic(2, num_days=1).name.startswith("synthetic(n=2, year=2025, seed=0")


@pytest.mark.parametrize(("year", "days"), [(2024, 366), (2025, 365), (2000, 366), (2100, 365)])
def test_full_year_follows_the_real_calendar(year, days):
    ds = generate_synthetic(num_households=2, year=year, seed=1)
    assert ds.num_days == days
    assert ds.timestamps[0] == pd.Timestamp(f"{year}-01-01")
    assert ds.timestamps[-1] == pd.Timestamp(f"{year}-12-31 23:30")


def test_shorter_series_is_a_prefix_and_home_traits_do_not_depend_on_n():
    long = generate_synthetic(6, seed=7, num_days=20)
    short = generate_synthetic(6, seed=7, num_days=5)
    n = 5 * HH_PER_DAY
    np.testing.assert_allclose(short.load_kwh, long.load_kwh[:n], rtol=1e-12)
    np.testing.assert_allclose(short.pv_kwh, long.pv_kwh[:n], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(short.temperature_c, long.temperature_c[:n], rtol=1e-12)
    more_homes = generate_synthetic(9, seed=7, num_days=5)
    np.testing.assert_array_equal(more_homes.pv_capacity_kw[:6], short.pv_capacity_kw)
    np.testing.assert_array_equal(more_homes.temperature_c, short.temperature_c)  # weather is shared


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_households"):
        generate_synthetic(0)
    with pytest.raises(ValueError, match="num_days"):
        generate_synthetic(2, num_days=0)


# --- calibration (ranges from the 14 plausible CityLearn 2022 homes) ----------------------------


def test_annual_load_per_home_like_the_real_homes(year20):
    annual_kwh = year20.load_kwh.sum(axis=0)
    assert annual_kwh.min() >= 6_000 and annual_kwh.max() <= 15_000, annual_kwh.round()
    assert 8_500 <= annual_kwh.mean() <= 12_000  # real mean 10,268
    assert annual_kwh.std() > 1_000  # spread like the real ones (s.d. 2,216), not one size for all
    hourly = year20.load_kwh.reshape(-1, 2, year20.num_households).sum(axis=1)
    assert 3.0 < hourly.max(axis=0).mean() < 10.0  # real hourly peaks 4.9-8.8 kWh/h
    assert (year20.load_kwh >= 0).all()


def test_pv_size_and_yield_like_the_real_homes(year20):
    cap = year20.pv_capacity_kw
    assert ((cap >= 3.0) & (cap <= 6.0)).all()
    yield_kwh_per_kw = year20.pv_kwh.sum(axis=0) / cap
    assert 1_300 <= yield_kwh_per_kw.mean() <= 1_700  # real 1,520
    assert ((yield_kwh_per_kw > 1_150) & (yield_kwh_per_kw < 1_900)).all()  # real 1,222-1,803
    # An interval never yields more than the inverter allows, and nothing at night.
    assert (year20.pv_kwh <= cap * 0.5 + 1e-12).all()
    assert (year20.pv_kwh[year20.irradiance_w_per_m2 == 0] == 0).all()


def test_daily_load_shape_evening_peak_above_midday_and_morning_bump(year20):
    prof = _hourly_profile(year20)
    evening, midday = prof[17:21].mean(), prof[11:15].mean()
    assert evening > midday
    assert prof.argmax() in range(16, 23)
    assert prof[7:10].mean() > prof[2:5].mean() * 1.1  # morning rise above the night trough


def test_summer_pv_above_winter_pv(year20):
    month = year20.timestamps.month
    summer = year20.pv_kwh[np.isin(month, (6, 7, 8))].sum()
    winter = year20.pv_kwh[np.isin(month, (12, 1, 2))].sum()
    assert summer > 1.6 * winter  # real 2.1


def test_pv_follows_clock_time_with_daylight_saving(year20):
    """Solar noon moves ~1 h later on the clock in summer (DST)."""
    hours = (year20.timestamps.hour + year20.timestamps.minute / 60).to_numpy() + 0.25
    pv = year20.pv_kwh.sum(axis=1)

    def centroid(month):
        m = np.asarray(year20.timestamps.month == month)
        return float((pv[m] * hours[m]).sum() / pv[m].sum())

    assert 0.6 < centroid(7) - centroid(1) < 1.4
    assert 11.5 < centroid(1) < 12.6


def test_summer_cooling_load_tracks_temperature(year20):
    month = year20.timestamps.month
    summer = np.isin(month, (6, 7, 8, 9))
    daily_load = year20.load_kwh[summer].sum(axis=1).reshape(-1, HH_PER_DAY).sum(axis=1)
    daily_temp = year20.temperature_c[summer].reshape(-1, HH_PER_DAY).mean(axis=1)
    assert np.corrcoef(daily_load, daily_temp)[0, 1] > 0.5
    # Summer and winter both above the mild shoulder months, as in the real homes.
    per_day = lambda months: year20.load_kwh[np.isin(month, months)].sum() / np.isin(month, months).sum()  # noqa: E731
    assert per_day((7, 8)) > 1.3 * per_day((4, 10))
    assert per_day((12, 1)) > 1.2 * per_day((4, 10))


def test_weekends_differ_from_weekdays(year20):
    weekend = year20.timestamps.day_of_week >= 5
    ratio = year20.load_kwh[weekend].mean() / year20.load_kwh[~weekend].mean()
    assert 1.02 < ratio < 1.25  # real 1.09


def test_weather_is_plausible_for_inland_southern_california(year20):
    month = year20.timestamps.month
    t = year20.temperature_c
    assert 8 < t[month == 1].mean() < 17 and 22 < t[month == 7].mean() < 30
    assert -5 < t.min() and t.max() < 47
    ghi = year20.irradiance_w_per_m2
    assert ghi.min() >= 0 and 850 < ghi.max() < 1_150


def test_households_differ(year20):
    prof = np.stack([year20.load_kwh[:, i].reshape(-1, HH_PER_DAY).mean(axis=0) for i in range(20)])
    corr = np.corrcoef(prof)[np.triu_indices(20, 1)]
    assert corr.mean() < 0.9  # real homes: 0.70 to their community profile
    assert np.unique(year20.pv_capacity_kw).size > 3


# --- scale ---------------------------------------------------------------------------------------


def test_ten_thousand_homes_two_days_vectorised():
    ds = generate_synthetic(num_households=10_000, seed=2, num_days=2)
    assert ds.load_kwh.shape == (2 * HH_PER_DAY, 10_000)
    assert np.isfinite(ds.load_kwh).all() and np.isfinite(ds.pv_kwh).all()
    assert ds.household_ids[-1] == "household_9999"
    daily_kwh = ds.load_kwh.sum(axis=0) / 2
    assert 5 < daily_kwh.mean() < 60
    assert daily_kwh.std() > 2  # homes differ
    assert ((ds.pv_capacity_kw >= 3) & (ds.pv_capacity_kw <= 6)).all()
    assert abs(ds.pv_capacity_kw.mean() - 4.5) < 0.05
    # The first homes are the same homes as in a small community with this seed.
    np.testing.assert_array_equal(ds.pv_capacity_kw[:10], generate_synthetic(10, seed=2, num_days=2).pv_capacity_kw)


# --- helpers and dispatch ------------------------------------------------------------------------


def test_ar1_matches_the_recursion():
    z = np.random.default_rng(0).standard_normal((301, 3))
    y = ar1(z, 0.7)
    ref = np.empty((300, 3))
    prev = z[0]
    for i in range(300):
        prev = 0.7 * prev + np.sqrt(1 - 0.49) * z[i + 1]
        ref[i] = prev
    np.testing.assert_allclose(y, ref, atol=1e-12)


def test_degree_day_helpers_match_brute_force():
    x = np.random.default_rng(1).normal(18, 6, 2_000)
    w = np.random.default_rng(2).random(2_000)
    g = np.array([5.0, 15.0, 18.0, 30.0])
    np.testing.assert_allclose(mean_excess(x, g, w), [(w * np.maximum(x - v, 0)).mean() for v in g])
    np.testing.assert_allclose(mean_deficit(x, g), [np.maximum(v - x, 0).mean() for v in g])


def test_dst_rules():
    ts = pd.DatetimeIndex(["2025-03-09 01:30", "2025-03-09 03:00", "2025-11-02 01:30", "2025-11-02 02:00", "2006-04-02 03:00"])
    np.testing.assert_array_equal(dst_offset_hours(ts), [0, 1, 1, 0, 1])


def test_load_dataset_dispatches_and_caches():
    cfg = DataConfig(source="synthetic", year=2024)
    ds = load_dataset(cfg, 3, 5)
    assert ds.num_households == 3 and ds.num_days == 366
    assert load_dataset(cfg, 3, 5) is ds  # cached: loading happens once per data set
    np.testing.assert_array_equal(ds.load_kwh, generate_synthetic(3, 2024, 5).load_kwh)

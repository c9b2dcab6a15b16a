"""Forecast providers (no look-ahead, shapes, zero copy) and the profitability score and signal."""

import numpy as np
import pytest

from energy_env import signals
from energy_env.forecast import PerfectForecast, PersistenceForecast, SeasonalPersistenceForecast, make_provider


@pytest.fixture(scope="module")
def dataset(community):
    return community.dataset


def test_perfect_forecast_is_the_future(dataset):
    load_fc, pv_fc = PerfectForecast().forecast(dataset, 6)
    assert load_fc.shape == (*dataset.load_kwh.shape, 6)
    t = 1000
    np.testing.assert_allclose(load_fc[t, :, 0], dataset.load_kwh[t + 1], rtol=1e-6)
    np.testing.assert_allclose(pv_fc[t, :, 5], dataset.pv_kwh[t + 6], rtol=1e-6)
    np.testing.assert_allclose(load_fc[-1, :, 3], dataset.load_kwh[-1], rtol=1e-6)  # edge-padded


def test_persistence_uses_only_the_present(dataset):
    load_fc, _ = PersistenceForecast().forecast(dataset, 6)
    np.testing.assert_allclose(load_fc[500], np.repeat(dataset.load_kwh[500][:, None], 6, axis=1), rtol=1e-6)
    assert not load_fc.flags.owndata  # a view: no memory per household


def test_seasonal_persistence_uses_yesterday(dataset):
    load_fc, _ = SeasonalPersistenceForecast().forecast(dataset, 6)
    t = 4000
    for k in range(6):
        np.testing.assert_allclose(load_fc[t, :, k], dataset.load_kwh[t + 1 + k - 48], rtol=1e-6)


@pytest.mark.parametrize("name", ["persistence", "seasonal_persistence"])
def test_no_look_ahead(dataset, name):
    """Changing the data after interval t leaves every forecast made at or before t unchanged."""
    from energy_env.data.dataset import Dataset

    t = 3000
    load = dataset.load_kwh.copy()
    load[t + 1 :] *= 3.0
    changed = Dataset(dataset.name, dataset.timestamps, load, dataset.pv_kwh.copy(), dataset.household_ids, dataset.pv_capacity_kw.copy())
    a, _ = make_provider(name).forecast(dataset, 6)
    b, _ = make_provider(name).forecast(changed, 6)
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])


def test_unknown_provider():
    with pytest.raises(ValueError, match="unknown forecast provider 'lstm9'"):
        make_provider("lstm9")


def score(**kw):
    args = dict(
        load_kwh=np.array([[1.0]]), pv_kwh=np.array([[0.0]]), soc_fraction_usable=np.array([[0.5]]),
        cycles_per_day=np.array([[0.0]]), has_battery=np.array([True]), expected_price_usd_per_kwh=np.array([0.3]),
        import_price_usd_per_kwh=np.array([0.5]), export_price_usd_per_kwh=np.array([0.095]), loss=0.05,
    )
    args.update(kw)
    return signals.profitability_score(**args)[0, 0]


def test_profitability_score_components():
    # p = 1/2.5, m = (0.5 - 0.3) / 0.4, h = 1, c = 0.5
    assert score() == pytest.approx(100 * (0.4 * 0.4 + 0.3 * 0.5 + 0.15 + 0.15 * 0.5))
    assert score(load_kwh=np.array([[10.0]])) > score()  # more to trade
    assert score(expected_price_usd_per_kwh=np.array([0.1])) > score()  # cheaper market for a buyer
    assert score(cycles_per_day=np.array([[2.0]])) < score()  # a worn battery
    # no market when export credit / 0.95 >= import price
    no_market = score(export_price_usd_per_kwh=np.array([3.9]))
    assert no_market == pytest.approx(100 * (0.4 * 0.4 + 0.15 + 0.15 * 0.5))


def test_profitability_score_bounds():
    rng = np.random.default_rng(0)
    s = signals.profitability_score(
        rng.uniform(0, 5, (4, 50)), rng.uniform(0, 5, (4, 50)), rng.uniform(0, 1, (4, 50)), rng.uniform(0, 5, (4, 50)),
        rng.uniform(size=50) > 0.3, rng.uniform(0, 1, 4), rng.uniform(0.3, 0.6, 4), rng.uniform(0, 4, 4), 0.05,
    )
    assert (s >= 0).all() and (s <= 100).all()


def test_power_need_signal():
    need = signals.power_need_signal(np.array([2.0, 2.0, 1.0]), np.array([0.5, 0.5, 3.0]), np.array([2.0, 1.0, 0.0]))
    np.testing.assert_array_equal(need, [1.0, 0.0, 1.0])  # GREEN, RED, GREEN

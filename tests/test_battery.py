"""Battery limits and transitions on hand-made cases."""

import numpy as np
import pytest

from energy_env import battery as bat
from energy_env.config import BatteryConfig


def params(**kw):
    return bat.battery_params(BatteryConfig(**kw), 3)


def test_defaults_match_the_seed():
    p = params()
    np.testing.assert_allclose(p.capacity_kwh, 13.5)
    np.testing.assert_allclose(p.soc_min_kwh, 1.35)
    np.testing.assert_allclose(p.soc_max_kwh, 12.15)
    np.testing.assert_allclose(p.initial_soc_kwh, 6.75)
    np.testing.assert_allclose(p.max_ac_kwh, 2.5)  # 5 kW x 0.5 h
    assert p.eta_charge * p.eta_discharge == pytest.approx(0.9)


def test_heterogeneous_and_missing_batteries():
    p = params(capacity_kwh=[13.5, 0.0, 6.4])
    np.testing.assert_allclose(p.max_ac_kwh, [2.5, 0.0, 2.5])
    lo, hi = bat.ac_bounds(p.initial_soc_kwh, np.zeros(3), np.full(3, 3.0), p, 10.0, 4.0)
    assert lo[1] == 0 and hi[1] == 0


def test_charge_only_from_own_pv_surplus_by_default():
    p = params()
    soc = p.initial_soc_kwh
    load, pv = np.array([1.0, 1.0, 1.0]), np.array([0.0, 1.8, 5.0])
    _, hi = bat.ac_bounds(soc, load, pv, p, 10.0, 4.0)
    np.testing.assert_allclose(hi, [0.0, 0.8, 2.5])


def test_charge_from_grid_bounded_by_import_limit():
    p = params(charge_from_grid=True)
    _, hi = bat.ac_bounds(p.initial_soc_kwh, np.array([1.0, 8.5, 9.5]), np.zeros(3), p, 10.0, 4.0)
    np.testing.assert_allclose(hi, [2.5, 1.5, 0.5])


def test_state_bounds_limit_power():
    p = params()
    soc = np.array([p.soc_min_kwh[0], p.soc_max_kwh[0], p.soc_max_kwh[0] - 0.1])
    lo, hi = bat.ac_bounds(soc, np.full(3, 2.0), np.full(3, 9.0), p, 10.0, 4.0)
    assert lo[0] == 0.0  # empty battery cannot discharge
    assert hi[1] == 0.0  # full battery cannot charge
    assert hi[2] == pytest.approx(0.1 / np.sqrt(0.9))


def test_discharge_limited_to_what_the_home_can_use_or_export():
    p = params()
    load, pv = np.array([0.0, 0.5, 0.0]), np.array([3.0, 0.0, 5.0])
    lo, _ = bat.ac_bounds(p.initial_soc_kwh, load, pv, p, 10.0, 4.0)
    # export room 4 - (pv - load): 1.0; 4.5 capped at 2.5 by power; surplus 5 > 4 leaves no room
    np.testing.assert_allclose(lo, [-1.0, -2.5, 0.0])


def test_next_soc_applies_efficiency_each_way():
    p = params()
    soc = p.initial_soc_kwh
    after = bat.next_soc(soc, np.array([1.0, -1.0, 0.0]), p)
    eta = np.sqrt(0.9)
    np.testing.assert_allclose(after - soc, [eta, -1 / eta, 0.0])


def test_degradation_cost_on_throughput():
    p = params(degradation_cost_usd_per_kwh=0.02)
    np.testing.assert_allclose(bat.degradation_cost_usd(np.array([1.0, -2.0, 0.0]), p), [0.02, 0.04, 0.0])

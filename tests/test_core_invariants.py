"""Invariants of the core over random and adversarial actions, many steps, B scenarios at once."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energy_env import core
from energy_env.config import INTERVALS_PER_DAY

TOL = 1e-9


def check_step(community, state, res):
    bp = community.params.battery
    p = community.params
    lhs = res.load_kwh - (res.pv_kwh - res.pv_curtailed_kwh) + res.battery_ac_kwh
    rhs = res.grid_import_kwh - res.grid_export_kwh + res.p2p_bought_kwh - res.p2p_sold_kwh
    np.testing.assert_allclose(lhs, rhs, atol=TOL, rtol=0)  # energy balance per home
    assert (res.soc_kwh >= bp.soc_min_kwh - TOL).all() and (res.soc_kwh <= bp.soc_max_kwh + TOL).all()
    net = lhs
    assert (net <= p.import_limit_kwh + TOL).all() and (net >= -p.export_limit_kwh - TOL).all()
    assert (res.constraint_violation_kwh == 0).all()
    for f in ("grid_import_kwh", "grid_export_kwh", "p2p_bought_kwh", "p2p_sold_kwh", "pv_curtailed_kwh"):
        assert (getattr(res, f) >= -TOL).all(), f
    assert (res.pv_curtailed_kwh <= res.pv_kwh + TOL).all()
    assert (res.unserved_kwh >= 0).all()
    shed = res.unserved_kwh > 0  # load is shed only down to what PV plus the import limit can serve
    np.testing.assert_allclose((res.load_kwh - res.pv_kwh)[shed], np.broadcast_to(p.import_limit_kwh, shed.shape)[shed], atol=TOL)
    np.testing.assert_allclose(res.p2p_paid_usd.sum(1), res.p2p_revenue_usd.sum(1), atol=TOL)  # money
    np.testing.assert_allclose(res.p2p_bought_kwh.sum(1), (1 - p.loss) * res.p2p_sold_kwh.sum(1), atol=TOL)
    cleared = res.market_cleared
    price = res.market_price_usd_per_kwh[cleared]
    assert (price >= res.export_price_usd_per_kwh[cleared] / (1 - p.loss) - TOL).all()
    assert (price <= res.import_price_usd_per_kwh[cleared] + TOL).all()
    # a battery charges only from its own PV surplus unless grid charging is on
    if not bp.charge_from_grid:
        assert (res.battery_ac_kwh <= np.maximum(res.pv_kwh - res.load_kwh, 0) + TOL).all()
    # the stored energy follows the efficiencies
    delta = np.where(res.battery_ac_kwh >= 0, res.battery_ac_kwh * bp.eta_charge, res.battery_ac_kwh / bp.eta_discharge)
    np.testing.assert_allclose(res.soc_kwh - state.soc_kwh, delta, atol=1e-9)


def run(community, actions_fn, starts, length):
    params, data = community.params, community.data
    state = core.reset_state(params, data, starts, length)
    for k in range(length):
        obs = core.observe(state, params, data)
        assert obs.dtype == np.float32 and np.isfinite(obs).all()
        a = actions_fn(k, state)
        new_state, res = core.transition(state, a, params, data)
        check_step(community, state, res)
        state = new_state
    assert res.done.all()
    return state


@pytest.mark.parametrize("fixture", ["community", "grid_charging_community", "limited_community"])
@pytest.mark.parametrize("kind", ["uniform", "extreme", "out_of_box", "bang_bang"])
def test_invariants_random_and_adversarial(request, fixture, kind):
    community = request.getfixturevalue(fixture)
    rng = np.random.default_rng(hash(kind) % 2**32)
    n = community.num_households
    starts = np.array([0, 100 * INTERVALS_PER_DAY, 180 * INTERVALS_PER_DAY, 250 * INTERVALS_PER_DAY])
    makers = {
        "uniform": lambda k, s: rng.uniform(-1, 1, (4, n)),
        "extreme": lambda k, s: rng.choice([-1.0, 1.0], (4, n)),
        "out_of_box": lambda k, s: rng.uniform(-50, 50, (4, n)),
        "bang_bang": lambda k, s: np.full((4, n), 1.0 if (k // 6) % 2 else -1.0),
    }
    run(community, makers[kind], starts, 3 * INTERVALS_PER_DAY)


@settings(max_examples=25, deadline=None)
@given(day=st.integers(0, 300), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.0, 3.0))
def test_invariants_hypothesis(community, day, seed, scale):
    rng = np.random.default_rng(seed)
    n = community.num_households
    run(community, lambda k, s: rng.normal(0, scale, (2, n)), np.array([day * INTERVALS_PER_DAY, (day + 7) * INTERVALS_PER_DAY]), 24)


def test_out_of_box_actions_are_clipped_and_counted(community):
    params, data = community.params, community.data
    state = core.reset_state(params, data, np.array([0]), 48)
    _, res = core.transition(state, np.full((1, community.num_households), -7.0), params, data)
    assert res.action_out_of_box.all()
    assert (res.action_clipped_kwh >= 7.0 * 2.5 - 2.5 - 1e-9).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_actions_raise(community, bad):
    params, data = community.params, community.data
    state = core.reset_state(params, data, np.array([0]), 48)
    a = np.zeros((1, community.num_households))
    a[0, 3] = bad
    with pytest.raises(ValueError, match=r"\(0, 3\).*must be finite"):
        core.transition(state, a, params, data)


def test_terminal_settlement_removes_the_gain_of_draining(community):
    """Draining in the last interval is paid back at the terminal price."""
    params, data = community.params, community.data
    n = community.num_households
    start = 200 * INTERVALS_PER_DAY
    state = core.reset_state(params, data, np.array([start]), 1)
    new, res = core.transition(state, -np.ones((1, n)), params, data)
    drained = state.soc_kwh - new.soc_kwh
    price = data.offpeak_usd_per_kwh[start // INTERVALS_PER_DAY]
    np.testing.assert_allclose(res.terminal_settlement_usd, drained * price)
    assert res.done.all()


def test_same_actions_same_results(community):
    a = np.random.default_rng(1).uniform(-1, 1, (48, 1, community.num_households))
    out = []
    for _ in range(2):
        state = core.reset_state(community.params, community.data, np.array([4800]), 48)
        costs = []
        for k in range(48):
            state, res = core.transition(state, a[k], community.params, community.data)
            costs.append(res.cost_usd)
        out.append(np.array(costs))
    np.testing.assert_array_equal(out[0], out[1])


def test_episode_outside_data_rejected(community):
    with pytest.raises(ValueError, match="outside the data set"):
        core.reset_state(community.params, community.data, np.array([community.data.load_kwh.shape[0] - 10]), 48)


def test_baseline_credit_idle_battery_matches_precomputed_baseline():
    """With the E-TOU-C baseline credit on, an idle battery without P2P costs exactly the baseline."""
    from energy_env.community import build_community
    from energy_env.config import make_config

    com = build_community(make_config(num_households=3, tariff={"baseline_credit": True}, market={"mechanism": "none"}))
    params, data = com.params, com.data
    assert params.baseline_credit_usd_per_kwh == pytest.approx(0.10135)
    state = core.reset_state(params, data, np.array([10 * 48, 200 * 48]), 96)
    total_credit = 0.0
    for _ in range(96):
        state, res = core.transition(state, np.zeros((2, 3)), params, data)
        np.testing.assert_allclose(res.cost_usd - res.terminal_settlement_usd, res.baseline_cost_usd, atol=1e-12)
        total_credit += res.baseline_credit_usd.sum()
    # winter allowance 9.7 kWh/day x 0.10135 $/kWh caps the credit per home and day
    assert 0 < total_credit <= 0.10135 * (9.7 * 2 + 9.8 * 2) * 3 + 1e-9

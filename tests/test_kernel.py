"""The compiled step kernel computes exactly what the numpy core defines (bit for bit)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from energy_env import core, kernel
from energy_env.env import WattshareParallelEnv, make_community

pytestmark = pytest.mark.skipif(not kernel.HAVE_NUMBA, reason="numba is not installed: the envs use the numpy core")

CITYLEARN = Path(__file__).resolve().parents[2] / "shared" / "data" / "citylearn_2022"


def _assert_same_trajectory(community, scenarios: int, steps: int, seed: int, scale: float = 1.3) -> None:
    rng = np.random.default_rng(seed)
    n = community.num_households
    starts = rng.integers(0, community.data.load_kwh.shape[0] - steps, scenarios)
    state = core.reset_state(community.params, community.data, starts, steps)
    fast = kernel.Stepper(community.params, community.data, compiled=True)
    slow = kernel.Stepper(community.params, community.data, compiled=False)
    np.testing.assert_array_equal(fast.observe(state), slow.observe(state))
    fast_state, slow_state = state, state
    for _ in range(steps):
        action = rng.uniform(-scale, scale, (scenarios, n))  # some out of the box: clipped and counted
        if community.params.auction and rng.random() < 0.8:  # with price actions (else truthful bids)
            prices = rng.choice([-1.0, 1.0, 0.0], (scenarios, n)) if rng.random() < 0.3 else rng.uniform(-scale, scale, (scenarios, n))
            action = np.stack([action, prices], axis=-1)
        fast_state, fast_result, fast_obs, rows = fast.step(fast_state, action)
        slow_state, slow_result, slow_obs, _ = slow.step(slow_state, action)
        for f in fields(core.StepResult):
            a, b = getattr(fast_result, f.name), getattr(slow_result, f.name)
            assert (a.dtype, a.shape) == (b.dtype, b.shape), f.name
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        for f in fields(core.State):
            np.testing.assert_array_equal(getattr(fast_state, f.name), getattr(slow_state, f.name), err_msg=f.name)
        np.testing.assert_array_equal(fast_obs, slow_obs)
        # the row block carries the info keys: per-scenario values repeated, flags as 0/1
        np.testing.assert_array_equal(rows[kernel.ROWS.index("market_cleared")], np.repeat(slow_result.market_cleared[:, None], n, 1))
        np.testing.assert_array_equal(rows[kernel.ROWS.index("sdr")], np.repeat(slow_result.sdr[:, None], n, 1))
        score_at = core.layout_of(community.params).at("profitability_score")
        np.testing.assert_array_equal(rows[kernel.ROWS.index("profitability_score")], slow_obs[..., score_at])


def test_numpy_sum_matches_numpy_pairwise_order():
    rng = np.random.default_rng(0)
    for n in [0, 1, 7, 8, 9, 16, 17, 127, 128, 129, 300, 1000, 10_001]:
        x = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, n)
        assert kernel._numpy_sum(x) == np.add.reduce(x), n


def test_default_community_identical_to_numpy():
    _assert_same_trajectory(make_community(num_households=17), scenarios=3, steps=120, seed=1)


@pytest.mark.parametrize("mechanism", ["mid_market", "bill_sharing", "none", "double_auction"])
def test_other_mechanisms_identical_to_numpy(mechanism):
    _assert_same_trajectory(make_community(num_households=9, market={"mechanism": mechanism}), scenarios=2, steps=60, seed=2)


@pytest.mark.parametrize("mechanism", ["sdr", "double_auction"])
def test_day_ahead_fields_identical_to_numpy(mechanism):
    com = make_community(num_households=5, forecast={"day_ahead_blocks": 8}, market={"mechanism": mechanism})
    _assert_same_trajectory(com, scenarios=3, steps=70, seed=6)


def test_mixed_batteries_credit_terminal_price_identical_to_numpy():
    caps = [13.5, 0.0, 5.0, 0.0, 20.0, 13.5]
    options = dict(
        battery={"capacity_kwh": caps, "charge_from_grid": True},
        tariff={"baseline_credit": True, "terminal_price_usd_per_kwh": 0.3},
        reward={"kind": "cost"},
    )
    _assert_same_trajectory(make_community(num_households=6, **options), scenarios=3, steps=200, seed=4)
    _assert_same_trajectory(make_community(num_households=6, battery={"capacity_kwh": caps}, tariff={"baseline_credit": True}), 2, 96, 5)


def test_per_home_limits_and_unserved_load_identical_to_numpy():
    grid = {"import_limit_kwh": [10.0, 1.0, 1.5, 10.0, 0.8, 2.0], "export_limit_kwh": [4.0, 0.5, 2.0, 0.0, 1.0, 4.0], "over_limit": "unserved"}
    com = make_community(num_households=6, grid=grid, battery={"charge_from_grid": True})
    assert com.data.unserved_kwh.sum() > 0 and (com.data.unserved_kwh[:, [0, 3]] == 0).all()
    _assert_same_trajectory(com, scenarios=3, steps=200, seed=8)


def test_double_auction_many_households_identical_to_numpy():
    _assert_same_trajectory(make_community(num_households=150, market={"mechanism": "double_auction", "auction_k": 0.3}), scenarios=3, steps=30, seed=4)


def test_many_households_identical_to_numpy():
    # N > 128: numpy's pairwise sum splits the row recursively
    _assert_same_trajectory(make_community(num_households=300), scenarios=2, steps=12, seed=6)


@pytest.mark.skipif(not CITYLEARN.exists(), reason="../shared/data/citylearn_2022 is not beside the checkout")
def test_citylearn_homes_identical_to_numpy():
    com = make_community(num_households=17, data={"source": "citylearn", "path": str(CITYLEARN), "include_faulty": True})
    _assert_same_trajectory(com, scenarios=2, steps=336, seed=7)


def test_env_infos_and_rewards_same_with_either_core(monkeypatch):
    compiled = WattshareParallelEnv(num_households=5)
    monkeypatch.setenv("WATTSHARE_KERNEL", "numpy")
    reference = WattshareParallelEnv(num_households=5)
    assert compiled._stepper.compiled and not reference._stepper.compiled
    rng = np.random.default_rng(3)
    obs_a, _ = compiled.reset(seed=11)
    obs_b, _ = reference.reset(seed=11)
    while compiled.agents:
        actions = {a: rng.uniform(-1.5, 1.5, 1).astype(np.float32) for a in compiled.agents}
        obs_a, rew_a, term_a, _, info_a = compiled.step(actions)
        obs_b, rew_b, term_b, _, info_b = reference.step(actions)
        assert rew_a == rew_b and term_a == term_b
        for agent in obs_a:
            np.testing.assert_array_equal(obs_a[agent], obs_b[agent])
            assert info_a[agent].keys() == info_b[agent].keys()
            assert info_a[agent] == info_b[agent]
            assert type(info_a[agent]["interval"]) is int
            assert all(type(v) is float for k, v in info_a[agent].items() if k != "interval")
            assert all(type(v) is float for k, v in info_b[agent].items() if k != "interval")


def test_bad_actions_rejected_by_the_compiled_path():
    com = make_community(num_households=4)
    stepper = kernel.Stepper(com.params, com.data, compiled=True)
    state = core.reset_state(com.params, com.data, np.array([0, 48]), 10)
    with pytest.raises(ValueError, match=r"\(scenario, household\) \(1, 2\) is nan"):
        stepper.step(state, np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="expected \\(2, 4\\)"):
        stepper.step(state, np.zeros((2, 3)))


def test_fallback_env_variable(monkeypatch):
    monkeypatch.setenv("WATTSHARE_KERNEL", "numpy")
    assert not kernel.compiled_available()
    monkeypatch.setenv("WATTSHARE_KERNEL", "compiled")
    assert kernel.compiled_available()


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 9),
    mechanism=st.sampled_from(["sdr", "mid_market", "bill_sharing", "none", "double_auction"]),
    reward=st.sampled_from(["cost", "savings"]),
    wear=st.sampled_from([0.0, 0.02]),
    loss=st.floats(0.0, 0.3),
    grid_charging=st.booleans(),
    credit=st.booleans(),
    terminal=st.sampled_from([None, 0.25]),
    tight=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_configurations_identical_to_numpy(n, mechanism, reward, wear, loss, grid_charging, credit, terminal, tight, seed):
    """Every mechanism, reward kind, wear, loss, per-home limits and mixed capacities: kernel == numpy."""
    from energy_env.community import build_community
    from energy_env.config import make_config
    from energy_env.data.synthetic import generate_synthetic

    rng = np.random.default_rng(seed)
    caps = rng.choice([0.0, 5.0, 13.5, 20.0], n).tolist()
    limits = rng.uniform(0.5, 3.0, n).tolist() if tight else rng.uniform(8.0, 12.0, n).tolist()
    cfg = make_config(
        num_households=n, market={"mechanism": mechanism, "transmission_loss": loss}, reward={"kind": reward},
        battery={"capacity_kwh": caps, "degradation_cost_usd_per_kwh": wear, "charge_from_grid": grid_charging},
        grid={"import_limit_kwh": limits, "export_limit_kwh": rng.uniform(0.0, 4.0, n).tolist(), "over_limit": "unserved"},
        tariff={"baseline_credit": credit, "terminal_price_usd_per_kwh": terminal},
    )
    com = build_community(cfg, dataset=generate_synthetic(n, 2025, seed, num_days=21))
    _assert_same_trajectory(com, scenarios=2, steps=60, seed=seed, scale=2.0)

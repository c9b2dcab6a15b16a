"""Scale: the invariants at N = 1,000 with B > 1, a 10,000-home smoke run, and memory that grows
linearly in N and B with no history kept."""

import tracemalloc

import numpy as np
import pytest
from test_core_invariants import check_step

from energy_env import core, kernel
from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from energy_env.data import generate_synthetic
from energy_env.vector import WattshareVectorEnv

DAYS = 35  # January and a few days of February: train and test days, a month boundary


def community_of(n, days=DAYS, **overrides):
    return build_community(make_config(num_households=n, **overrides), dataset=generate_synthetic(n, 2025, 0, num_days=days))


@pytest.fixture(scope="module")
def thousand():
    return community_of(1000)


@pytest.fixture(scope="module")
def thousand_mixed():
    """1,000 homes, a quarter without a battery, heterogeneous sizes, grid charging and wear cost."""
    caps = np.tile([13.5, 0.0, 6.4, 10.0], 250).tolist()
    return community_of(1000, battery={"capacity_kwh": caps, "charge_from_grid": True, "degradation_cost_usd_per_kwh": 0.03})


@pytest.mark.parametrize("fixture", ["thousand", "thousand_mixed"])
@pytest.mark.parametrize("kind", ["uniform", "out_of_box"])
@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.skipif(not kernel.HAVE_NUMBA, reason="no numba"))])
def test_invariants_at_a_thousand_homes(request, fixture, kind, compiled):
    com = request.getfixturevalue(fixture)
    params, data = com.params, com.data
    stepper = kernel.Stepper(params, data, compiled=compiled)  # the numpy core, or the kernel the envs use
    rng = np.random.default_rng(len(kind))
    starts = np.array([0, 5, 20, 33]) * INTERVALS_PER_DAY + np.array([0, 0, 17, 0])
    length = 2 * INTERVALS_PER_DAY
    state = core.reset_state(params, data, starts, length)
    obs = stepper.observe(state)
    scale = 1.0 if kind == "uniform" else 40.0
    for _ in range(length):
        assert obs.shape == (4, 1000, core.observation_size(params.horizon))
        assert np.isfinite(obs).all()
        new, res, obs, _ = stepper.step(state, rng.uniform(-scale, scale, (4, 1000)))
        check_step(com, state, res)
        state = new
    assert res.done.all()


def test_ten_thousand_homes_smoke():
    com = community_of(10_000, days=7)
    venv = WattshareVectorEnv(num_scenarios=2, community=com)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (20_000, venv.single_observation_space.shape[0])
    for _ in range(5):
        obs, rewards, term, _, _ = venv.step(np.random.default_rng(0).uniform(-1, 1, (20_000, 1)))
        assert np.isfinite(obs).all() and np.isfinite(rewards).all() and not term.any()


def step_peak_bytes(com, b):
    """Peak bytes allocated by one transition + observe of ``b`` scenarios (nothing retained)."""
    state = core.reset_state(com.params, com.data, np.arange(b) * INTERVALS_PER_DAY, INTERVALS_PER_DAY)
    actions = np.zeros((b, com.num_households))
    core.observe(*core.transition(state, actions, com.params, com.data)[:1], com.params, com.data)  # warm caches
    tracemalloc.start()
    try:
        new, res = core.transition(state, actions, com.params, com.data)
        core.observe(new, com.params, com.data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_step_memory_is_linear_in_households_and_scenarios(thousand):
    two_thousand = community_of(2000, days=3)
    base = step_peak_bytes(thousand, 2)
    assert 1.8 < step_peak_bytes(two_thousand, 2) / base < 2.2  # twice the homes
    assert 1.8 < step_peak_bytes(thousand, 4) / base < 2.2  # twice the scenarios
    assert base / (2 * 1000) < 2_000  # bytes per household-step: a few dozen float64 temporaries


def test_no_history_is_kept(thousand):
    """Stepping a whole episode holds no more memory than the first step did."""
    params, data = thousand.params, thousand.data
    state = core.reset_state(params, data, np.array([0, 480]), INTERVALS_PER_DAY)
    state, _ = core.transition(state, np.zeros((2, 1000)), params, data)
    tracemalloc.start()
    try:
        held = []
        for _ in range(INTERVALS_PER_DAY - 1):
            state, _ = core.transition(state, np.zeros((2, 1000)), params, data)
            core.observe(state, params, data)
            held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert max(held) - held[0] < 100_000  # flat, not growing with the steps taken

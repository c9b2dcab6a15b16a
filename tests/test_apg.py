"""Analytic policy gradients: the differentiable twin is the core, its gradients are the cost's, training improves."""

import json

import numpy as np
import pytest
import torch

from energy_env import core
from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from energy_env.episodes import WEEK, test_week_starts, train_window_starts
from policies.learned import LearnedPolicy
from train import differentiable as twin_lib
from train.apg import NAME, train_apg
from train.evaluation import TestWeekEvaluator
from train.settings import PPOSettings


def twin_rollout(community, actions, start, length):
    """Cost ``(length, B, N)`` and state of energy of the twin under fixed setpoints ``(length, B, N)``."""
    twin = twin_lib.twin_of(community)
    state = core.reset_state(community.params, community.data, start, length)
    soc = torch.as_tensor(state.soc_kwh.copy())
    soc_start, used = soc.clone(), torch.zeros_like(soc)
    costs, socs = [], []
    for k in range(length):
        t = torch.as_tensor(start + k)
        out, used = twin_lib.step(twin, soc, actions[k], t, used, soc_start, t + 1 >= torch.as_tensor(start + length))
        soc = out.soc_kwh
        costs.append(out.cost_usd)
        socs.append(soc)
    return torch.stack(costs), torch.stack(socs)


def core_rollout(community, actions, start, length):
    state = core.reset_state(community.params, community.data, start, length)
    costs, socs = [], []
    for k in range(length):
        state, result = core.transition(state, actions[k], community.params, community.data)
        costs.append(result.cost_usd)
        socs.append(state.soc_kwh)
    return np.stack(costs), np.stack(socs)


@pytest.mark.parametrize("mechanism", ["sdr", "mid_market", "bill_sharing", "none"])
@pytest.mark.parametrize("variant", ["default", "grid_charging_credit_wear", "limits"])
def test_twin_returns_the_cores_cost_and_state(mechanism, variant):
    overrides = {"num_households": 5, "market": {"mechanism": mechanism}}
    if variant == "grid_charging_credit_wear":
        overrides.update(battery={"charge_from_grid": True, "capacity_kwh": [13.5, 0.0, 6.4, 13.5, 20.0], "degradation_cost_usd_per_kwh": 0.03},
                         tariff={"baseline_credit": True, "terminal_price_usd_per_kwh": 0.3})
    elif variant == "limits":
        overrides.update(grid={"import_limit_kwh": [10.0, 1.5, 10.0, 2.0, 3.0], "export_limit_kwh": [4.0, 0.5, 0.0, 1.0, 4.0], "over_limit": "unserved"})
    community = build_community(make_config(**overrides))
    length = 3 * INTERVALS_PER_DAY + 5  # crosses midnights, ends mid-day (the settlement)
    start = np.array([0, 150 * INTERVALS_PER_DAY + 17, 200 * INTERVALS_PER_DAY])
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1.3, 1.3, (length, 3, 5))  # some outside the box: clipped by both
    actions[::7] = np.sign(actions[::7])  # full power, often projected onto a bound
    twin_cost, twin_soc = twin_rollout(community, torch.as_tensor(actions), start, length)
    cost, soc = core_rollout(community, actions, start, length)
    np.testing.assert_allclose(twin_cost.numpy(), cost, rtol=0, atol=1e-12)
    np.testing.assert_allclose(twin_soc.numpy(), soc, rtol=0, atol=1e-12)


def test_twin_gradient_is_the_costs_derivative(community):
    """Autograd against central differences of the episode cost, setpoint by setpoint."""
    length, start = 2 * INTERVALS_PER_DAY, np.array([170 * INTERVALS_PER_DAY])
    rng = np.random.default_rng(2)
    actions = torch.as_tensor(rng.uniform(-0.6, 0.6, (length, 1, community.num_households)), dtype=torch.float64)
    actions.requires_grad_(True)
    twin_rollout(community, actions, start, length)[0].sum().backward()
    grad = actions.grad.numpy()
    base = actions.detach().numpy()
    moving = np.argwhere(np.abs(grad[:, 0]) > 1e-3)
    assert len(moving) > 40  # the test compares real derivatives, not only zeros
    picks = [*moving[rng.choice(len(moving), 40, replace=False)], *zip(rng.integers(0, length, 20), rng.integers(0, community.num_households, 20))]
    for k, i in picks:
        step = 1e-6
        up, down = base.copy(), base.copy()
        up[k, 0, i] += step
        down[k, 0, i] -= step
        numeric = (core_rollout(community, up, start, length)[0].sum() - core_rollout(community, down, start, length)[0].sum()) / (2 * step)
        assert grad[k, 0, i] == pytest.approx(numeric, abs=1e-6), (k, i)


def test_twin_refuses_the_double_auction():
    auction = build_community(make_config(num_households=3, market={"mechanism": "double_auction"}))
    with pytest.raises(twin_lib.TwinError, match="double_auction"):
        twin_lib.twin_of(auction)


def test_train_windows_hold_only_train_days(community):
    ds = community.dataset
    starts = train_window_starts(ds, WEEK)
    test = ds.test_day_mask()
    assert len(starts) > 150
    days = starts[:, None] // INTERVALS_PER_DAY + np.arange(7)
    assert not test[days].any()
    # every start of a train day that would reach a test day is left out
    all_train_starts = np.flatnonzero(~test) * INTERVALS_PER_DAY
    assert set(starts) < set(all_train_starts)
    with pytest.raises(ValueError, match="no window of"):
        train_window_starts(ds, 30 * INTERVALS_PER_DAY)


def test_normalizer_merges_chunks_into_the_statistics_of_every_window(monkeypatch):
    from energy_env.rollout import rollout
    from policies.observation_scale import ObservationScaler
    from policies.registry import make_policy
    from train import apg

    community = build_community(make_config(num_households=3))
    starts = train_window_starts(community.dataset, 2 * INTERVALS_PER_DAY)[:7]
    monkeypatch.setattr(apg, "NORMALIZER_CHUNK_HOUSEHOLDS", 6)  # 2 windows a chunk, the last one alone
    norm = apg.fit_normalizer(community, starts, 2 * INTERVALS_PER_DAY, ObservationScaler("absolute"))
    seen = rollout(community, make_policy("rule_based").act, starts, 2 * INTERVALS_PER_DAY)["observation"]
    flat = seen.reshape(-1, seen.shape[-1]).astype(np.float64)
    np.testing.assert_allclose(norm.mean, flat.mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(norm.var, flat.var(axis=0), rtol=1e-7, atol=1e-9)
    # at scale: evenly spaced windows, never fewer than the minimum
    monkeypatch.setattr(apg, "NORMALIZER_HOUSEHOLD_WINDOWS", 3)
    monkeypatch.setattr(apg, "NORMALIZER_MIN_WINDOWS", 4)
    calls = []
    monkeypatch.setattr(apg, "rollout", lambda c, act, s, length: calls.append(s) or rollout(c, act, s, length))
    apg.fit_normalizer(community, starts, 2 * INTERVALS_PER_DAY, ObservationScaler("absolute"))
    used = np.concatenate(calls)
    assert len(used) == 4 and used[0] == starts[0] and used[-1] == starts[-1]


def test_batch_weeks_bound_the_households_per_step():
    from train.apg import batch_weeks

    s = PPOSettings(algorithm="apg")  # 16 weeks, at most 320 households
    assert batch_weeks(s, 10, 209) == 16 and batch_weeks(s, 14, 209) == 16
    assert batch_weeks(s, 100, 209) == 3 and batch_weeks(s, 1000, 209) == 1  # one week of every home at least
    assert batch_weeks(s, 10, 5) == 5


def test_settings_refuse_apg_with_ppo_only_options():
    with pytest.raises(ValueError, match="algorithm 'apg'"):
        PPOSettings(algorithm="apg", residual_base="rule_based")
    with pytest.raises(ValueError, match="algorithm 'apg'"):
        PPOSettings(algorithm="apg", pretrain="mpc_bc")


SMALL = dict(num_households=3, episode_length=2 * INTERVALS_PER_DAY)


@pytest.fixture(scope="module")
def apg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("apg")
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(algorithm="apg", apg_iterations=25, apg_batch_weeks=8, apg_learning_rate=3e-3, episode_length=2 * INTERVALS_PER_DAY, seed=0)
    policy = train_apg(community, settings, out, evaluate=False)
    return community, settings, policy, out


def test_apg_improves_over_its_untrained_start(apg_run, tmp_path):
    community, settings, policy, _ = apg_run
    untrained = train_apg(community, settings.replace(apg_iterations=1, apg_learning_rate=1e-12), tmp_path, evaluate=False)
    evaluator = TestWeekEvaluator(community, max_weeks=2)
    before, after = evaluator.cost_usd(untrained), evaluator.cost_usd(policy)
    idle = evaluator.baseline_usd
    assert after < before - 0.2 * (idle - before) and after < 0.9 * idle


def test_apg_checkpoint_loads_and_acts_on_other_homes(apg_run):
    community, _, policy, out = apg_run
    meta = json.loads((out / "meta.json").read_text())
    assert meta["name"] == NAME and meta["mode"] == "shared" and meta["settings"]["algorithm"] == "apg"
    assert meta["household_steps"] == 25 * 8 * 3 * 2 * INTERVALS_PER_DAY
    loaded = LearnedPolicy.load(out, community)
    evaluator = TestWeekEvaluator(community, max_weeks=1)
    assert evaluator.cost_usd(loaded) == evaluator.cost_usd(policy)
    # 7 homes of another synthetic year and seed, mixed batteries: loads, acts within bounds
    other = build_community(make_config(num_households=7, seed=5, data={"year": 2024}, battery={"capacity_kwh": [13.5, 6.4, 0.0, 13.5, 10.0, 13.5, 20.0]}))
    acting = LearnedPolicy.load(out, other)
    state = core.reset_state(other.params, other.data, test_week_starts(other.dataset)[:2], WEEK)
    setpoints = acting.act(core.observe(state, other.params, other.data), state, other)
    assert setpoints.shape == (2, 7) and np.all(np.abs(setpoints) <= 1.0)
    assert TestWeekEvaluator(other, max_weeks=1).cost_usd(acting) > 0
    progress = (out / "progress.csv").read_text().splitlines()
    assert progress[0].startswith("iteration,household_steps") and len(progress) == 26

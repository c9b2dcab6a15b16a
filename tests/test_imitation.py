"""Behaviour cloning of an expert (the oracle, the day-ahead MPC): the demonstrations, the fit, and PPO started from the clone."""

import json

import numpy as np
import pytest
import torch

from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from energy_env.episodes import WEEK
from policies.learned import ObsNormalizer
from energy_env import core
from train.evaluation import TestWeekEvaluator
from train.imitation import behaviour_clone, demonstration_weeks, expert_demonstrations, learner_demonstrations
from train.ppo import make_vec_env, new_model, train_shared
from train.settings import PPOSettings

SMALL = dict(num_households=3, reward={"kind": "savings"})


@pytest.fixture(scope="module")
def community():
    return build_community(make_config(**SMALL))


def test_demonstration_weeks_are_whole_weeks_of_train_days(community):
    ds = community.dataset
    starts = demonstration_weeks(ds)
    train_days = set(ds.split_days("train").tolist())
    assert len(starts) >= 24  # three weeks of train days in every month
    assert np.all(np.diff(starts) >= WEEK)  # never overlapping
    for s in starts:
        days = range(s // INTERVALS_PER_DAY, s // INTERVALS_PER_DAY + 7)
        assert s % INTERVALS_PER_DAY == 0 and all(d in train_days for d in days)


@pytest.fixture(scope="module")
def demo(community, tmp_path_factory):
    return expert_demonstrations(community, "oracle", max_weeks=2, cache=tmp_path_factory.mktemp("cache"))


def test_demonstrations_replay_the_oracle(community, demo):
    n = community.num_households
    assert demo.episodes == 2 and demo.observations.shape == (2 * WEEK * n, core.observation_size(community.params.horizon))
    assert demo.clipped_share == 0.0 and np.all(np.abs(demo.targets) <= 1.0)
    assert np.mean(np.abs(demo.targets) > 0.2) > 0.01  # the oracle does use the batteries


def test_residual_targets_are_the_correction_to_the_base(community, demo, tmp_path):
    # base "idle" (setpoint 0): the correction is the oracle's setpoint over the scale, clipped to [-1, 1]
    residual = expert_demonstrations(community, "oracle", max_weeks=2, residual_base="idle", residual_scale=0.5, cache=tmp_path)
    np.testing.assert_allclose(residual.observations, demo.observations)  # the oracle drives both replays
    np.testing.assert_allclose(residual.targets, np.clip(demo.targets / 0.5, -1.0, 1.0), atol=1e-6)
    assert residual.clipped_share == pytest.approx(np.mean(np.abs(demo.targets) > 0.5 + 1e-9))
    assert residual.clipped_share > 0.0


def test_behaviour_cloning_reproduces_the_oracle_on_its_training_days(community, demo):
    torch.manual_seed(0)
    venv = make_vec_env(community, 2, 0)
    model = new_model(venv, PPOSettings(net_arch=[128, 128]))
    norm = ObsNormalizer(demo.observations.mean(0), demo.observations.var(0))
    x = norm(demo.observations)
    untrained = model.policy.predict(x, deterministic=True)[0].reshape(-1)
    losses = behaviour_clone(model.policy, x, demo.targets, epochs=200, learning_rate=3e-3, batch_size=256)
    cloned = model.policy.predict(x, deterministic=True)[0].reshape(-1)
    venv.close()
    active = np.abs(demo.targets) > 0.2  # the steps where the oracle charges or discharges
    # within 3 % of full power overall, and 5 % where the battery works (untrained: far off)
    assert np.sqrt(np.mean((cloned - demo.targets) ** 2)) < 0.03 < np.sqrt(np.mean((untrained - demo.targets) ** 2))
    assert np.abs(cloned - demo.targets)[active].mean() < 0.05 < np.abs(untrained - demo.targets)[active].mean()
    assert losses[-1] < 0.1 * losses[0]


def test_behaviour_cloning_rejects_mismatched_data(community, demo):
    venv = make_vec_env(community, 2, 0)
    model = new_model(venv, PPOSettings())
    with pytest.raises(ValueError, match="observations but"):
        behaviour_clone(model.policy, demo.observations, demo.targets[:-1])
    venv.close()


def test_ppo_from_the_clone_starts_better_than_from_scratch(community, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demonstration cache goes under data/cache
    settings = PPOSettings(total_timesteps=2_000, scenarios=4, batch_size=192, n_epochs=1, eval_every=10**9, seed=0,
                           pretrain="oracle_bc", bc_weeks=4, bc_epochs=15)
    evaluator = TestWeekEvaluator(community, max_weeks=2)
    cloned = train_shared(community, settings, tmp_path / "bc", evaluate=False)
    scratch = train_shared(community, settings.model_copy(update={"pretrain": "none"}), tmp_path / "scratch", evaluate=False)
    record = json.loads((tmp_path / "bc" / "bc.json").read_text())
    assert record["weeks"] == 4 and record["mse_per_epoch"][-1] < record["mse_per_epoch"][0]
    assert evaluator.cost_usd(cloned) < evaluator.cost_usd(scratch)


def test_pretrain_needs_shared_mode():
    with pytest.raises(ValueError, match="pretrain 'oracle_bc' needs mode 'shared'"):
        PPOSettings(mode="independent", pretrain="oracle_bc")


def test_a_bad_demonstration_cache_is_named(community, tmp_path):
    expert_demonstrations(community, "oracle", max_weeks=1, cache=tmp_path)
    (cached,) = tmp_path.glob("demonstrations_*.npz")
    np.savez(cached, battery_ac_kwh=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"demonstrations_.*npz: battery_ac_kwh of shape \(3, 3\)"):
        expert_demonstrations(community, "oracle", max_weeks=1, cache=tmp_path)
    cached.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="not a readable demonstration cache"):
        expert_demonstrations(community, "oracle", max_weeks=1, cache=tmp_path)


def test_mpc_demonstrations_replay_the_day_ahead_mpc(community, tmp_path):
    # the demonstrations are what the online controller (one LP per step, no worker processes) does
    from energy_env.rollout import rollout
    from policies.optimum import setpoints_from_ac_kwh
    from policies.registry import make_policy

    demo = expert_demonstrations(community, "mpc_day_ahead", max_weeks=1, cache=tmp_path)
    weekly = build_community(community.config.model_copy(update={"episode_length": WEEK}), dataset=community.dataset)
    online = make_policy("mpc_day_ahead")
    online.workers = 1
    traj = rollout(weekly, online.act, demonstration_weeks(weekly.dataset)[:1], WEEK)
    expected = setpoints_from_ac_kwh(traj["battery_ac_kwh"], weekly.params.battery.max_ac_kwh).reshape(-1)
    np.testing.assert_allclose(demo.targets, np.clip(expected, -1.0, 1.0), atol=1e-6)
    np.testing.assert_allclose(demo.observations, traj["observation"].reshape(demo.observations.shape), atol=1e-6)
    assert np.mean(np.abs(demo.targets) > 0.2) > 0.01  # the MPC does use the batteries
    cached = expert_demonstrations(community, "mpc_day_ahead", max_weeks=1, cache=tmp_path)
    assert cached.expert_seconds == 0.0 and np.array_equal(cached.targets, demo.targets)
    assert len(list(tmp_path.glob("demonstrations_*.npz"))) == 1


def test_unknown_expert_is_named(community, tmp_path):
    with pytest.raises(ValueError, match="unknown expert 'mpc'"):
        expert_demonstrations(community, "mpc", max_weeks=1, cache=tmp_path)


def test_learner_demonstrations_label_the_learners_states_with_the_mpc(community, tmp_path):
    from policies.registry import make_policy
    from policies.simple import IdlePolicy

    visits = learner_demonstrations(community, IdlePolicy(), "mpc_day_ahead", max_weeks=1, label_every=48, offset=7)
    n = community.num_households
    assert visits.observations.shape == (7 * n, core.observation_size(community.params.horizon))  # 03:30 of each day
    # the labels are the MPC's setpoints from the states the idle learner reached
    from energy_env.rollout import rollout

    weekly = build_community(community.config.model_copy(update={"episode_length": WEEK}), dataset=community.dataset)
    start = int(demonstration_weeks(weekly.dataset)[0])
    k = 7 + 48 * np.arange(7)
    soc = rollout(weekly, IdlePolicy().act, np.array([start]), WEEK, observations=False)["soc_kwh"][k - 1, 0]  # after step k-1
    expected = make_policy("mpc_day_ahead").setpoints_at(weekly, start + k, np.full(7, start + WEEK), soc)
    np.testing.assert_allclose(visits.targets, np.clip(expected.reshape(-1), -1, 1), atol=1e-6)
    with pytest.raises(ValueError, match="DAgger needs an expert that acts from any state"):
        learner_demonstrations(community, IdlePolicy(), "oracle", max_weeks=1)
    with pytest.raises(ValueError, match="label_every must be >= 1"):
        learner_demonstrations(community, IdlePolicy(), "mpc_day_ahead", max_weeks=1, label_every=4, offset=4)


def test_dagger_refits_the_clone_on_its_own_states(community, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = PPOSettings(total_timesteps=1, scenarios=2, batch_size=96, n_epochs=1, eval_every=10**9, seed=0,
                           pretrain="mpc_bc", bc_weeks=1, bc_epochs=5, dagger_iterations=2, dagger_label_every=48)
    train_shared(community, settings, tmp_path / "dagger", evaluate=False)
    record = json.loads((tmp_path / "dagger" / "bc.json").read_text())
    n = community.num_households
    assert record["expert"] == "mpc_day_ahead" and len(record["dagger"]) == 2
    # the demonstrations (a week) plus 7 labelled states per round
    assert [r["household_steps"] for r in record["dagger"]] == [(WEEK + 7) * n, (WEEK + 14) * n]
    with pytest.raises(ValueError, match="dagger_iterations needs pretrain 'mpc_bc'"):
        PPOSettings(dagger_iterations=1, pretrain="oracle_bc")


def test_critic_warmup_freezes_the_actor_for_its_updates(community):
    from train.ppo import _CriticWarmup

    def weights(policy):
        actor = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters(), policy.log_std]
        critic = [*policy.mlp_extractor.value_net.parameters(), *policy.value_net.parameters()]
        return [torch.cat([p.detach().reshape(-1).clone() for p in part]) for part in (actor, critic)]

    # a constant rate: the linear schedule's last update has rate 0
    settings = PPOSettings(n_steps=48, batch_size=96, n_epochs=2, seed=0, learning_rate_schedule="constant")
    two_updates = 2 * 48 * 2 * community.num_households
    for warmup, actor_moves in ((2, False), (1, True)):
        venv = make_vec_env(community, 2, 0)
        model = new_model(venv, settings)
        actor0, critic0 = weights(model.policy)
        model.learn(two_updates, callback=_CriticWarmup(warmup))
        actor1, critic1 = weights(model.policy)
        venv.close()
        assert not torch.equal(critic0, critic1)
        assert torch.equal(actor0, actor1) != actor_moves

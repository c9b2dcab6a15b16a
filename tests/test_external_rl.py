"""External RL libraries through the standard PettingZoo API (recipes in docs/training.md)."""

import warnings

import numpy as np
import pytest

import energy_env


def test_torchrl_pettingzoo_wrapper():
    pytest.importorskip("torchrl", reason="TorchRL is an optional extra: pip install 'wattshare[torchrl]'")
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchRL warns that it was tested on PettingZoo 1.24
        env = PettingZooWrapper(env=energy_env.parallel_env(num_households=3), use_mask=False, categorical_actions=False)
        check_env_specs(env)
        td = env.rollout(48)
    assert env.group_map == {"household": ["household_0", "household_1", "household_2"]}
    assert td["next", "household", "reward"].shape == (48, 3, 1)
    cost = td["next", "household", "info", "cost_usd"].numpy()
    np.testing.assert_allclose(-cost, td["next", "household", "reward"].numpy()[..., 0], rtol=1e-6)
    assert bool(td["next", "household", "terminated"][-1].all())


def test_supersuit_vec_env_for_sb3():
    ss = pytest.importorskip("supersuit")
    venv = ss.pettingzoo_env_to_vec_env_v1(energy_env.parallel_env(num_households=3))
    venv = ss.concat_vec_envs_v1(venv, 2, num_cpus=0, base_class="stable_baselines3")
    try:
        obs = venv.reset()
        assert obs.shape[0] == 6
        obs, rewards, dones, infos = venv.step(np.zeros((6, 1), np.float32))
        assert rewards.shape == (6,) and len(infos) == 6
    finally:
        venv.close()


def test_independent_learners_short_run(tmp_path):
    """One PPO per household, each on its own experience; the after_update hook sees every model."""
    from energy_env.community import build_community
    from energy_env.config import make_config
    from policies.learned import LearnedPolicy
    from train.independent import train_independent
    from energy_env import core
    from train.ppo import PPOSettings

    community = build_community(make_config(num_households=2, reward={"kind": "savings"}))
    seen = []
    settings = PPOSettings(total_timesteps=2 * 4 * 48 * 2, scenarios=4, batch_size=96, n_epochs=2, eval_every=10**9)
    policy = train_independent(community, settings, tmp_path, evaluate=False, after_update=lambda u, models, obs_rms, ret_rms: seen.append((u, len(models))))
    assert seen == [(0, 2), (1, 2)]
    loaded = LearnedPolicy.load(tmp_path, community)
    assert loaded.mode == "independent" and len(loaded.models) == 2
    obs = np.zeros((3, 2, core.observation_size(community.params.horizon)), np.float32)
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))

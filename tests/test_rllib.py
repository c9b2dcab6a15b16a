"""The RLlib recipe (optional extra): skipped unless ray[rllib] is installed (its own venv, see docs/scaling.md)."""

import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="ray[rllib] is an optional extra (pip install 'wattshare[rllib]' in its own venv)")

from train import rllib_config  # noqa: E402


def test_multi_agent_adapter_steps_the_pettingzoo_env():
    env = rllib_config.make_env({"num_households": 3, "episode_length": 4})
    obs, _ = env.reset(seed=0)
    assert sorted(obs) == env.possible_agents == ["household_0", "household_1", "household_2"]
    assert env.observation_spaces["household_0"].contains(obs["household_0"])
    for k in range(4):
        obs, rewards, terminated, truncated, _ = env.step({a: np.array([0.5], np.float32) for a in env.agents})
        assert set(rewards) == set(env.possible_agents)
    assert terminated["__all__"] and not truncated["__all__"] and env.agents == []


def test_ppo_trains_on_two_env_runners():
    summary = rllib_config.train(
        iterations=1,
        num_env_runners=2,
        env_config={"num_households": 3, "episode_length": 8},
        train_batch_size=64,
        minibatch_size=32,
        num_epochs=1,
    )
    assert summary[0]["iteration"] == 1 and summary[0]["num_env_runners"] == 2
    assert summary[0]["env_steps_sampled"] >= 64
    assert summary[0]["agent_steps_sampled"] >= 3 * 64

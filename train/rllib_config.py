"""RLlib recipe (optional extra ``wattshare[rllib]``): PPO with one policy shared by every household.

Where one machine's core is not enough, RLlib spreads the rollouts over env runners (processes,
or nodes of a Ray cluster) and trains the shared policy on their batches; wattshare brings only
the environment and this configuration, no distribution of its own. See docs/scaling.md.

    pip install -e ".[rllib]"          # in its own virtual environment: RLlib pins gymnasium
    python -m train.rllib_config --env-runners 2 --iterations 5

Each env runner steps the PettingZoo env through :class:`RllibWattshareEnv`, a thin
``MultiAgentEnv`` adapter; every household maps to the policy ``"shared"``.
"""

from __future__ import annotations

import argparse
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ENV_NAME = "wattshare"
POLICY = "shared"


def _require_rllib() -> None:
    try:
        import ray.rllib  # noqa: F401
    except ImportError as e:  # an optional extra, never a dependency of the core package
        raise ImportError('RLlib is not installed: pip install "wattshare[rllib]" (in its own virtual environment)') from e


@lru_cache(maxsize=1)
def _env_class() -> type:
    _require_rllib()
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    import energy_env

    class RllibWattshareEnv(MultiAgentEnv):
        """The PettingZoo env as an RLlib ``MultiAgentEnv``; ``env_config`` holds config overrides."""

        def __init__(self, env_config: dict | None = None) -> None:
            super().__init__()
            self.env = energy_env.parallel_env(**dict(env_config or {}))
            self.possible_agents = list(self.env.possible_agents)
            self.agents = list(self.possible_agents)
            self.observation_spaces = {a: self.env.observation_space(a) for a in self.possible_agents}
            self.action_spaces = {a: self.env.action_space(a) for a in self.possible_agents}

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            obs, infos = self.env.reset(seed=seed, options=options)
            self.agents = list(self.env.agents)
            return obs, infos

        def step(self, action_dict: dict[str, Any]):
            actions = {a: np.asarray(v, dtype=np.float32).reshape(1) for a, v in action_dict.items()}
            obs, rewards, terminated, truncated, infos = self.env.step(actions)
            terminated["__all__"] = all(terminated.values())
            truncated["__all__"] = all(truncated.values())
            self.agents = list(self.env.agents)
            return obs, rewards, terminated, truncated, infos

    return RllibWattshareEnv


def make_env(env_config: dict | None = None):
    """An :class:`RllibWattshareEnv` (the env creator registered with Ray)."""
    return _env_class()(env_config)


def ppo_config(
    num_env_runners: int = 2,
    env_config: dict | None = None,
    *,
    train_batch_size: int = 2_000,
    minibatch_size: int = 500,
    num_epochs: int = 4,
    lr: float = 3e-4,
    seed: int = 0,
):
    """A PPO ``AlgorithmConfig`` (RLlib's new API stack) on ``num_env_runners`` env runners.

    Every household maps to one shared policy (``"shared"``), as with the SB3 vectorised env.
    ``env_config`` takes config overrides, e.g. ``{"num_households": 17, "episode_length": 48}``.
    """
    _require_rllib()
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    # Register the creator through the module's import name (not ``__main__`` when run with -m),
    # so that env runner processes can unpickle it.
    from train.rllib_config import make_env as creator

    register_env(ENV_NAME, creator)
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=dict(env_config or {"num_households": 10}))
        .framework("torch")
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1)
        .multi_agent(policies={POLICY}, policy_mapping_fn=lambda agent_id, *args, **kwargs: POLICY)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={POLICY: RLModuleSpec()}))
        .training(train_batch_size_per_learner=train_batch_size, minibatch_size=minibatch_size, num_epochs=num_epochs, lr=lr)
        .debugging(seed=seed)
    )


def train(iterations: int = 2, num_env_runners: int = 2, env_config: dict | None = None, **kwargs: Any) -> list[dict]:
    """Build PPO, train ``iterations`` times and return a short summary of each iteration."""
    import ray

    config = ppo_config(num_env_runners, env_config, **kwargs)
    started = not ray.is_initialized()
    if started:
        # Env runners import energy_env and train: give them this checkout's root on their path.
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        ray.init(num_cpus=num_env_runners + 1, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        algo = config.build_algo()
        summary = []
        for _ in range(iterations):
            result = algo.train()
            runners = result.get("env_runners", {})
            agent_steps = runners.get("num_agent_steps_sampled_lifetime", {})
            summary.append(
                {
                    "iteration": int(result["training_iteration"]),
                    "env_steps_sampled": int(runners.get("num_env_steps_sampled_lifetime", 0)),
                    "agent_steps_sampled": int(sum(agent_steps.values())) if isinstance(agent_steps, dict) else int(agent_steps or 0),
                    "episode_return_mean": runners.get("episode_return_mean"),
                    "num_env_runners": num_env_runners,
                }
            )
        algo.stop()
        return summary
    finally:
        if started:
            ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-runners", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--households", type=int, default=10)
    parser.add_argument("--episode-length", type=int, default=48)
    args = parser.parse_args()
    env_config = {"num_households": args.households, "episode_length": args.episode_length}
    for row in train(args.iterations, args.env_runners, env_config):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

"""The Stable-Baselines3 ``VecEnv`` on the batched core (needs the ``[train]`` extra: stable-baselines3)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as err:  # pragma: no cover - the env itself needs no SB3
    raise ImportError("WattshareVecEnv needs Stable-Baselines3: pip install 'wattshare[train]'") from err

from energy_env.community import Community
from energy_env.config import EnvConfig
from energy_env.data.dataset import Dataset
from energy_env.forecast import ForecastProvider
from energy_env.vector import SharedVectorSetup, info_columns


class WattshareVecEnv(SharedVectorSetup, VecEnv):
    """Stable-Baselines3 ``VecEnv``: ``num_envs = num_scenarios * N`` households for a shared policy.

    Episodes end by termination (as in the PettingZoo env); the finished scenario is reset in the
    same step and each of its households' infos carries ``terminal_observation`` and
    ``TimeLimit.truncated`` (False), as SB3 expects. Other infos are empty unless ``info_fields``
    names :data:`~energy_env.env.INFO_FIELDS` / ``SCENARIO_INFO_FIELDS`` (or ``"all"``); building
    a dict per household costs time, so training leaves them out.

    >>> venv = WattshareVecEnv(num_scenarios=4, num_households=10)
    >>> venv.seed(0); obs = venv.reset()     # (40, obs_dim)
    """

    def __init__(
        self,
        num_scenarios: int = 1,
        config: EnvConfig | None = None,
        *,
        dataset: Dataset | None = None,
        forecast_provider: ForecastProvider | None = None,
        community: Community | None = None,
        split: str = "train",
        info_fields: Sequence[str] | str = (),
        **overrides: Any,
    ) -> None:
        self._setup(num_scenarios, config, dataset, forecast_provider, community, split, info_fields, overrides)
        self.render_mode = None
        self._pending_actions: np.ndarray | None = None
        super().__init__(self.num_scenarios * self.num_households, self._single_obs_space, self._single_act_space)

    def reset(self) -> np.ndarray:
        n = self.num_households
        seeds = self._seeds[::n]  # a scenario takes the seed of its first household
        options = [dict(o) for o in self._options[::n]]
        obs = self.engine.reset(seeds, options)
        self._reset_seeds()
        self._reset_options()
        return obs.reshape(self.num_envs, -1)

    def step_async(self, actions: np.ndarray) -> None:
        self._pending_actions = self._actions(actions)

    def step_wait(self):
        if self._pending_actions is None:
            raise RuntimeError("step_wait() without step_async()")
        result = self.engine.step(self._pending_actions)
        self._pending_actions = None
        n, num_envs = self.num_households, self.num_envs
        obs = self.engine.obs.reshape(num_envs, -1)
        rewards = result.reward.reshape(-1).astype(np.float32)
        dones = np.repeat(result.done, n)
        if self.info_fields:
            columns = info_columns(result, self.info_fields, n)
            names = list(columns)
            infos = [dict(zip(names, row)) for row in zip(*(c.tolist() for c in columns.values()))]
        else:
            infos = [{} for _ in range(num_envs)]
        if result.done.any():
            terminal = obs  # the observation after the last step; the reset below makes a new array
            for i in np.flatnonzero(dones).tolist():
                infos[i]["terminal_observation"] = terminal[i]
                infos[i]["TimeLimit.truncated"] = False
            obs = self.engine.reset_scenarios(result.done).reshape(num_envs, -1)
        return obs, rewards, dones, infos

    def close(self) -> None:
        return None

    # Every sub-env is a view on this one object, so attribute calls go to it.
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

"""Single-agent gymnasium views of the community, for libraries that expect one agent.

* :class:`CentralizedEnv`: one controller sees every household's observation concatenated,
  ``(N * D,)``, and sets every battery at once, ``(N,)``; the reward is the community's total.
* :class:`SharedPolicyEnv`: the same, but observations keep the household axis, ``(N, D)``, so a
  shared (parameter-sharing) network can be applied row by row; the reward is the total too.

Both run on the core with one scenario and follow the PettingZoo env exactly: same episodes for
the same seed, same dynamics, same reward per household (summed here). They pass
``gymnasium.utils.env_checker.check_env``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from energy_env import core
from energy_env.env import WattshareParallelEnv

INFO_KEYS = ("cost_usd", "baseline_cost_usd", "grid_import_kwh", "grid_export_kwh", "p2p_sold_kwh", "p2p_bought_kwh")


class _CommunityView(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, **env_kwargs: Any) -> None:
        self.par = WattshareParallelEnv(**env_kwargs)
        self.n = len(self.par.possible_agents)
        obs_space = self.par.observation_space(self.par.possible_agents[0])
        self._low, self._high = obs_space.low, obs_space.high
        # double auction: every household's (setpoint, price action), household-major
        self._width = core.action_width(self.par.params)
        self.action_space = spaces.Box(-1.0, 1.0, (self.n * self._width,), np.float32)

    def _shape(self, obs_matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, _ = self.par.reset(seed=seed, options=options)
        return self._shape(self.par._obs), {"interval": int(self.par._state.start[0])}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.size != self.n * self._width:
            raise ValueError(f"expected {self.n * self._width} action values, got shape {action.shape}")
        action = action.reshape((1, self.n) + ((self._width,) if self._width > 1 else ()))
        par = self.par
        if par._state is None or not par.agents:
            raise RuntimeError("step() called before reset() or after the episode ended")
        par._state, result = core.transition(par._state, action, par.params, par.data)
        par._obs = core.observe(par._state, par.params, par.data)[0]
        done = bool(result.done[0])
        if done:
            par.agents = []
        info = {k: getattr(result, k)[0].copy() for k in INFO_KEYS}
        return self._shape(par._obs), float(result.reward[0].sum()), done, False, info


class CentralizedEnv(_CommunityView):
    """One agent, every household: observation ``(N * D,)``, action ``(N,)``."""

    def __init__(self, **env_kwargs: Any) -> None:
        super().__init__(**env_kwargs)
        self.observation_space = spaces.Box(np.tile(self._low, self.n), np.tile(self._high, self.n), dtype=np.float32)

    def _shape(self, obs_matrix: np.ndarray) -> np.ndarray:
        return obs_matrix.reshape(-1).copy()


class SharedPolicyEnv(_CommunityView):
    """One agent, every household, household axis kept: observation ``(N, D)``, action ``(N,)``."""

    def __init__(self, **env_kwargs: Any) -> None:
        super().__init__(**env_kwargs)
        self.observation_space = spaces.Box(np.tile(self._low, (self.n, 1)), np.tile(self._high, (self.n, 1)), dtype=np.float32)

    def _shape(self, obs_matrix: np.ndarray) -> np.ndarray:
        return obs_matrix.copy()

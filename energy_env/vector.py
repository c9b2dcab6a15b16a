"""Vectorised training envs on the batched core: every household of every scenario is a sub-env.

The PettingZoo env (:mod:`energy_env.env`) is the reference API; it pays for a dict per agent on
every step. Training a shared policy needs none of that: these envs step ``B`` scenarios of ``N``
households at once with one call of the core and hand back flat arrays.

* :class:`WattshareVecEnv` is a Stable-Baselines3 ``VecEnv`` (in :mod:`energy_env.sb3_vec`, loaded on
  first use: SB3 comes with the ``[train]`` extra);
* :class:`WattshareVectorEnv` is a gymnasium ``VectorEnv`` (next-step or same-step autoreset).

Both run on :class:`BatchedEpisodes`. Sub-env ``b * N + i`` is household ``i`` of scenario ``b``;
its observation and action are those of the PettingZoo env's ``household_i``. The households of
a scenario share one episode, so they end and reset together. Scenario ``b`` draws its episodes
with its own generator, seeded with the seed of its first sub-env (``seed + b * N``, the
seed-plus-index convention of both libraries), so it replays the PettingZoo env exactly: reset
with ``seed + b * N``, then plain ``reset()`` at every episode end.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from energy_env import core, kernel
from energy_env.community import Community
from energy_env.config import EnvConfig
from energy_env.data.dataset import Dataset
from energy_env.env import INFO_FIELDS, SCENARIO_INFO_FIELDS, make_community
from energy_env.episodes import episode_start, split_start_days
from energy_env.forecast import ForecastProvider

PER_SCENARIO_OPTIONS = ("day", "start_interval")  # reset options that may give one value per scenario


class BatchedEpisodes:
    """``B`` scenarios of one community stepped together, each with its own episode draws.

    Holds the core's :class:`~energy_env.core.State` and the current observation
    ``(B, N, obs_dim)``; keeps no history. The community's arrays are shared, never copied.
    """

    def __init__(self, community: Community, num_scenarios: int, split: str = "train") -> None:
        if num_scenarios < 1:
            raise ValueError(f"num_scenarios must be >= 1, got {num_scenarios}")
        split_start_days(community.dataset, split, community.config.episode_length)  # fail early on an unknown split or no window
        self.community = community
        self.params = community.params
        self.data = community.data
        self.num_scenarios = int(num_scenarios)
        self.num_households = community.num_households
        self.episode_length = community.config.episode_length
        self.split = split
        self.rngs = [np.random.default_rng() for _ in range(self.num_scenarios)]
        self.stepper = kernel.Stepper(self.params, self.data)
        self.state: core.State | None = None
        self.obs: np.ndarray | None = None

    def reset(self, seeds: Sequence[int | None] | None = None, options: Sequence[dict] | None = None) -> np.ndarray:
        """Start a new episode in every scenario; ``seeds``/``options`` hold one entry per scenario."""
        b = self.num_scenarios
        seeds = [None] * b if seeds is None else list(seeds)
        options = [{}] * b if options is None else list(options)
        if len(seeds) != b or len(options) != b:
            raise ValueError(f"expected {b} seeds and option dicts (one per scenario), got {len(seeds)} and {len(options)}")
        for k, seed in enumerate(seeds):
            if seed is not None:
                self.rngs[k] = np.random.default_rng(seed)
        starts = [self._draw_start(k, opts) for k, opts in enumerate(options)]
        self.state = core.reset_state(self.params, self.data, np.array(starts), self.episode_length)
        self.obs = self.stepper.observe(self.state)
        return self.obs

    def _draw_start(self, k: int, options: dict) -> int:
        options = {"split": self.split, **options}
        return episode_start(self.data.dataset, self.episode_length, options, self.rngs[k], stacklevel=5)

    def step(self, actions: np.ndarray) -> core.StepResult:
        """One interval of every scenario; ``actions`` ``(B, N)``. Updates :attr:`obs`."""
        if self.state is None:
            raise RuntimeError("step() called before reset()")
        if np.any(self.state.t >= self.state.end):
            raise RuntimeError("step() on a finished episode: reset the scenarios that are done first")
        self.state, result, self.obs, _ = self.stepper.step(self.state, actions)
        return result

    def reset_scenarios(self, mask: np.ndarray) -> np.ndarray:
        """Start a new episode (drawn from the split) in the scenarios where ``mask`` is True."""
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return self.obs
        starts = np.array([self._draw_start(int(k), {}) for k in idx])
        fresh = core.reset_state(self.params, self.data, starts, self.episode_length)
        if idx.size == self.num_scenarios:
            self.state = fresh
        else:
            self.state = core.State(**{f.name: _put_rows(getattr(self.state, f.name), idx, getattr(fresh, f.name)) for f in fields(core.State)})
        self.obs = self.stepper.observe(self.state)
        return self.obs


def _put_rows(array: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = array.copy()  # state arrays may be shared with a StepResult: never write into them
    out[idx] = rows
    return out


def _scenario_options(options: dict | None, num_scenarios: int) -> list[dict]:
    """Split reset options into one dict per scenario (``day``/``start_interval`` may be sequences)."""
    options = dict(options or {})
    out = []
    for k in range(num_scenarios):
        opts = {}
        for key, value in options.items():
            if key in PER_SCENARIO_OPTIONS and np.ndim(value) > 0:
                if len(value) != num_scenarios:
                    raise ValueError(f"reset option {key!r} has {len(value)} values for {num_scenarios} scenarios")
                value = value[k]
            opts[key] = value
        out.append(opts)
    return out


def _resolve_info_fields(info_fields: Sequence[str] | str) -> tuple[str, ...]:
    known = INFO_FIELDS + SCENARIO_INFO_FIELDS
    names = known if info_fields == "all" else tuple(info_fields)
    unknown = [f for f in names if f not in known]
    if unknown:
        raise ValueError(f"unknown info field(s) {unknown}; known: {list(known)}")
    return names


def info_columns(result: core.StepResult, names: tuple[str, ...], num_households: int) -> dict[str, np.ndarray]:
    """Info fields as flat ``(B * N,)`` arrays (per-scenario values repeated for each household)."""
    out = {}
    for name in names:
        value = getattr(result, name)
        out[name] = np.repeat(value, num_households) if value.ndim == 1 else value.reshape(-1)
    return out


class SharedVectorSetup:
    """What every vectorised front end builds the same way: community, engine, spaces (and the SB3 one, energy_env.sb3_vec)."""

    def _setup(
        self,
        num_scenarios: int,
        config: EnvConfig | None,
        dataset: Dataset | None,
        forecast_provider: ForecastProvider | None,
        community: Community | None,
        split: str,
        info_fields: Sequence[str] | str,
        overrides: dict[str, Any],
    ) -> None:
        if community is None:
            community = make_community(config, dataset, forecast_provider, **overrides)
        elif overrides or config is not None or dataset is not None:
            raise ValueError("pass either a community or config/dataset/overrides, not both")
        self.community = community
        self.engine = BatchedEpisodes(community, num_scenarios, split)
        self.num_scenarios = self.engine.num_scenarios
        self.num_households = self.engine.num_households
        self.info_fields = _resolve_info_fields(info_fields)
        low, high = core.observation_bounds(community.params, community.data)
        self.observation_fields = core.layout_of(community.params).fields()
        self._single_obs_space = spaces.Box(low, high, low.shape, np.float32)
        # double auction: (setpoint, price action) per household (energy_env.auction.order_limits)
        self._action_width = core.action_width(community.params)
        self._single_act_space = spaces.Box(-1.0, 1.0, (self._action_width,), np.float32)

    def _actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        width = self._action_width
        total = self.num_scenarios * self.num_households * width
        if actions.size != total:
            what = "actions (one per household and scenario)" if width == 1 else "action values (a setpoint and a price action per household and scenario)"
            raise ValueError(f"expected {total} {what}, got shape {actions.shape}")
        shape = (self.num_scenarios, self.num_households) + ((width,) if width > 1 else ())
        return actions.reshape(shape)


class WattshareVectorEnv(SharedVectorSetup, VectorEnv):
    """Gymnasium ``VectorEnv``: ``num_envs = num_scenarios * N`` households for a shared policy.

    ``autoreset_mode`` is ``NEXT_STEP`` (gymnasium's default: the step after an episode's end
    resets its scenario, ignores its actions and returns reward 0) or ``SAME_STEP`` (reset at
    once; ``infos["final_obs"]`` holds the last observations). Infos are empty unless
    ``info_fields`` names fields, which come as ``(num_envs,)`` arrays with ``_name`` masks.
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
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **overrides: Any,
    ) -> None:
        self._setup(num_scenarios, config, dataset, forecast_provider, community, split, info_fields, overrides)
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"autoreset_mode {mode} is not supported: use NEXT_STEP or SAME_STEP")
        self.autoreset_mode = mode
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self.num_envs = self.num_scenarios * self.num_households
        self.single_observation_space = self._single_obs_space
        self.single_action_space = self._single_act_space
        self._batched_spaces: tuple[spaces.Box, spaces.Box] | None = None
        self._needs_reset = np.zeros(self.num_scenarios, dtype=bool)

    # The batched spaces hold (num_envs, obs_dim) bounds: built only when someone asks.
    @property
    def observation_space(self) -> spaces.Box:
        return self._spaces()[0]

    @property
    def action_space(self) -> spaces.Box:
        return self._spaces()[1]

    def _spaces(self) -> tuple[spaces.Box, spaces.Box]:
        if self._batched_spaces is None:
            self._batched_spaces = (
                batch_space(self.single_observation_space, self.num_envs),
                batch_space(self.single_action_space, self.num_envs),
            )
        return self._batched_spaces

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        n = self.num_households
        seeds = [None] * self.num_scenarios if seed is None else [seed + k * n for k in range(self.num_scenarios)]
        obs = self.engine.reset(seeds, _scenario_options(options, self.num_scenarios))
        self._needs_reset[:] = False
        return obs.reshape(self.num_envs, -1), {}

    def step(self, actions: np.ndarray):
        actions = self._actions(actions)
        n = self.num_households
        if self._needs_reset.any():
            # Next-step mode, the step after the episodes ended: reset, ignore the actions. Every
            # scenario has the same episode length and all start at reset(), so they end together.
            obs = self.engine.reset_scenarios(self._needs_reset)
            self._needs_reset[:] = False
            zeros = np.zeros(self.num_envs)
            return obs.reshape(self.num_envs, -1), zeros, zeros.astype(bool), zeros.astype(bool), {}
        result = self.engine.step(actions)
        rewards = result.reward.reshape(-1).copy()
        terminated = np.repeat(result.done, n)
        infos = self._infos(result)
        obs = self.engine.obs.reshape(self.num_envs, -1)
        if result.done.any():
            if self.autoreset_mode == AutoresetMode.NEXT_STEP:
                self._needs_reset |= result.done
            else:
                final_obs = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(terminated).tolist():
                    final_obs[i] = obs[i]
                infos = {"final_obs": final_obs, "_final_obs": terminated.copy(), "final_info": infos, "_final_info": terminated.copy()}
                obs = self.engine.reset_scenarios(result.done).reshape(self.num_envs, -1)
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), infos

    def _infos(self, result: core.StepResult) -> dict[str, Any]:
        if not self.info_fields:
            return {}
        infos: dict[str, Any] = {}
        every = np.ones(self.num_envs, dtype=bool)
        for name, column in info_columns(result, self.info_fields, self.num_households).items():
            infos[name] = column
            infos[f"_{name}"] = every  # gymnasium's mask of the sub-envs that have the key
        return infos

    def render(self) -> None:
        return None



def __getattr__(name: str):
    """``energy_env.vector.WattshareVecEnv`` without importing Stable-Baselines3 before it is asked for."""
    if name == "WattshareVecEnv":
        from energy_env.sb3_vec import WattshareVecEnv

        return WattshareVecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

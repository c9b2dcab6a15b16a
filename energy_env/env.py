"""The PettingZoo environment: a thin shell over the pure core in :mod:`energy_env.core`.

Agents are ``household_0 .. household_{N-1}``. Each acts with a battery setpoint in [-1, 1]
(fraction of max power, + charges) and observes the float32 vector described in docs/model.md.
One episode is ``episode_length`` intervals (default 48 = one day) starting at midnight of a day
drawn from the train split by the seed, or chosen with ``reset(options={"day": d, "split": s})``.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from energy_env import core, kernel
from energy_env.community import Community, build_community
from energy_env.config import EnvConfig, load_config, make_config
from energy_env.data.dataset import Dataset
from energy_env.episodes import RESET_OPTIONS, episode_start  # noqa: F401 (re-exported: the env's reset options)
from energy_env.forecast import ForecastProvider
from energy_env.auction import ORDER_INFO, order_infos
from energy_env.layout import HOUSEHOLD_INFO, INFO_KEYS, SCENARIO_INFO

# Info keys (energy_env/layout.py): per household, per scenario (repeated for each home), signals.
INFO_FIELDS, SCENARIO_INFO_FIELDS, _INFO_KEYS = HOUSEHOLD_INFO, SCENARIO_INFO, INFO_KEYS


def make_community(
    config: EnvConfig | None = None,
    dataset: Dataset | None = None,
    forecast_provider: ForecastProvider | None = None,
    **overrides: Any,
) -> Community:
    """The community an env is built on: ``config`` (default: the built-in one) with ``overrides``."""
    base = config.model_dump(mode="json") if config is not None else None
    config = make_config(base, **overrides) if (base or overrides) else load_config()
    return build_community(config, dataset, forecast_provider)


class WattshareParallelEnv(ParallelEnv):
    """P2P energy trading among N households with PV and batteries (PettingZoo Parallel API)."""

    metadata = {"name": "wattshare_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        config: EnvConfig | None = None,
        *,
        dataset: Dataset | None = None,
        forecast_provider: ForecastProvider | None = None,
        community: Community | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported (use the benchmark plots)")
        if community is None:
            community = make_community(config, dataset, forecast_provider, **overrides)
        self.community = community
        self.config = community.config
        self.params = community.params
        self.data = community.data
        self.render_mode = None
        n = community.num_households
        self.possible_agents = [f"household_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._agent_set = frozenset(self.possible_agents)
        self._lay = core.layout_of(self.params)
        self.observation_fields = self._lay.fields()
        obs_dim = self._lay.size
        low, high = core.observation_bounds(self.params, self.data)
        self._obs_space = spaces.Box(low, high, (obs_dim,), np.float32)
        # double auction: (setpoint, price action), energy_env.auction.order_limits
        self._act_width = core.action_width(self.params)
        self._act_space = spaces.Box(-1.0, 1.0, (self._act_width,), np.float32)
        self._info_keys = _INFO_KEYS + (ORDER_INFO if self.params.auction else ())
        self._state_space = spaces.Box(np.tile(low, n), np.tile(high, n), (n * obs_dim,), np.float32)
        self._stepper = kernel.Stepper(self.params, self.data)
        self._state: core.State | None = None
        self._obs: np.ndarray | None = None
        self.np_random = np.random.default_rng()

    # Spaces are the same objects on every call (PettingZoo's cached-spaces habit).
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_space

    @property
    def state_space(self) -> spaces.Box:
        return self._state_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        start = self._episode_start(options or {})
        self._state = core.reset_state(self.params, self.data, np.array([start]), self.config.episode_length)
        self.agents = list(self.possible_agents)
        self._obs = self._stepper.observe(self._state)[0]
        observations = {a: self._obs[i] for i, a in enumerate(self.agents)}
        # Numbers only (TorchRL and RLlib turn infos into arrays); the timestamp of an interval is
        # env.data.dataset.timestamps[interval].
        # The same keys as a step's infos (TorchRL builds its info spec from reset), all 0: nothing
        # has flowed yet.
        infos = {a: {"interval": start, **dict.fromkeys(self._info_keys, 0.0)} for a in self.agents}
        return observations, infos

    def _episode_start(self, options: dict) -> int:
        return episode_start(self.data.dataset, self.config.episode_length, options, self.np_random, stacklevel=4)

    def step(self, actions: dict[str, Any]):
        if self._state is None or not self.agents:
            raise RuntimeError("step() called before reset() or after the episode ended")
        if actions.keys() != self._agent_set:  # the common case costs one set comparison
            missing = [a for a in self.agents if a not in actions]
            if missing:
                raise ValueError(f"no action for agent(s) {missing[:5]}{'...' if len(missing) > 5 else ''}")
            extra = [a for a in actions if a not in self._index]
            if extra:
                raise ValueError(f"actions for unknown agent(s) {extra[:5]}")
        act = self._action_array([actions[a] for a in self.possible_agents])
        self._state, result, obs, rows = self._stepper.step(self._state, act)
        self._obs = obs[0]
        done = bool(result.done[0])
        agents = self.agents
        observations = dict(zip(agents, self._obs))  # row views of one array
        rewards = dict(zip(agents, result.reward[0].tolist()))
        terminations = dict.fromkeys(agents, done)
        truncations = dict.fromkeys(agents, False)
        infos = self._infos(result, rows)
        if self.params.auction:
            self._add_order_infos(infos, result, act)
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _action_array(self, values: list[Any]) -> np.ndarray:
        """Setpoints ``(1, N)`` in agent order; one conversion for the usual ``(1,)`` arrays or scalars.

        In the double auction each action is ``(setpoint, price action)``: ``(1, N, 2)``.
        """
        if self._act_width > 1:
            try:
                act = np.array(values, dtype=np.float64)
            except (TypeError, ValueError):
                act = None
            if act is None or act.size != 2 * len(values):
                for a, v in zip(self.possible_agents, values):
                    if np.size(v) != 2:
                        raise ValueError(f"action of {a} must be (setpoint, price action), got shape {np.shape(v)}")
                act = np.array([np.asarray(v, dtype=np.float64).reshape(2) for v in values])  # mixed shapes, each of 2 values
            return act.reshape(1, len(values), 2)
        try:
            act = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or not numbers: the check below names the agent
            act = None
        if act is None or act.size != len(values):
            for a, v in zip(self.possible_agents, values):
                if np.asarray(v).size != 1:
                    raise ValueError(f"action of {a} must be a single setpoint, got shape {np.shape(v)}")
            act = np.array([np.asarray(v, dtype=np.float64).reshape(-1)[0] for v in values])
        return act.reshape(1, -1)

    def _infos(self, result: core.StepResult, rows: np.ndarray | None) -> dict[str, dict]:
        interval = int(self._state.t[0]) - 1  # the interval just simulated
        if rows is not None:  # the compiled kernel's block: its first rows are the info keys
            table = rows[: kernel.NUM_INFO_ROWS, 0, :].T.tolist()
            infos = {}
            for agent, values in zip(self.possible_agents, table):
                info = {"interval": interval}
                info.update(zip(_INFO_KEYS, values))
                infos[agent] = info
            return infos
        # The numpy core: column lists (one tolist per field) zipped into rows, one dict per agent.
        # Flags (action_out_of_box, market_cleared) as 0.0/1.0, as the kernel's block has them.
        columns = [getattr(result, f)[0].astype(np.float64).tolist() for f in INFO_FIELDS]
        scenario = [repeat(float(getattr(result, f)[0])) for f in SCENARIO_INFO_FIELDS]
        score = self._obs[:, self._lay.at("profitability_score")].tolist()
        need = self._obs[:, self._lay.at("power_need_signal")].tolist()  # 1.0 GREEN, 0.0 RED (numbers, like every info value)
        table = zip(*columns, *scenario, score, need)
        return {a: {"interval": interval, **dict(zip(_INFO_KEYS, row))} for a, row in zip(self.possible_agents, table)}

    def _add_order_infos(self, infos: dict[str, dict], result: core.StepResult, act: np.ndarray) -> None:
        """The double auction's per-order infos (:func:`energy_env.auction.order_infos`)."""
        orders = order_infos(
            act[..., 1], result.p2p_bought_kwh, result.p2p_sold_kwh, result.grid_import_kwh, result.grid_export_kwh,
            result.market_price_usd_per_kwh, result.import_price_usd_per_kwh, result.export_price_usd_per_kwh, self.params.loss,
        )
        columns = [orders[k][0].tolist() for k in ORDER_INFO]
        for agent, row in zip(self.possible_agents, zip(*columns)):
            infos[agent].update(zip(ORDER_INFO, row))

    def state(self) -> np.ndarray:
        """Global state: every household's observation, concatenated in agent order."""
        if self._obs is None:
            raise RuntimeError("state() called before reset()")
        return self._obs.reshape(-1).copy()

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None


def parallel_env(**overrides: Any) -> WattshareParallelEnv:
    """The Parallel env on the embedded default data; keyword arguments override config keys."""
    return WattshareParallelEnv(**overrides)


def env(**overrides: Any):
    """The AEC version of :func:`parallel_env`."""
    return parallel_to_aec(parallel_env(**overrides))

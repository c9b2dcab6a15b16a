"""The perfect-foresight optimum: one community-wide schedule per episode, replayed as setpoints.

Two methods (docs/oracle.md):

* ``exact``: the whole community's MILP per episode (:func:`policies.schedule_lp.solve_schedule`,
  HiGHS, then a Lagrangian round for a week it does not close); the method up to
  ``exact_max_households`` homes;
* ``decomposition``: one exact MILP per home, coordinated by P2P prices, with a proven bound and a
  schedule replayed through the env (:mod:`policies.decomposition`); the method beyond, and the
  fallback of an exact episode that found no schedule within its budget.

The oracle knows every future load and PV value, so its cost is a lower bound for any controller on
the same episodes (under the same physics), up to the gap each schedule reports.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from energy_env.community import Community
from energy_env.core import State
from energy_env.rollout import rollout
from policies.decomposition import WeekDecomposition, decompose_week
from policies.executors import map_tasks
from policies.schedule_lp import Schedule, ScheduleError, SearchBudget, episode_problem, solve_schedule

__all__ = ["OraclePolicy", "Schedule", "ScheduleError", "setpoints_from_ac_kwh", "solve_schedule"]


def setpoints_from_ac_kwh(battery_ac_kwh: np.ndarray, max_ac_kwh: np.ndarray) -> np.ndarray:
    """Setpoints in [-1, 1] that ask for ``battery_ac_kwh`` (0 for homes without a battery).

    The clip only removes solver dust (|b| a hair above max power), which the env would otherwise
    count as an out-of-box action.
    """
    safe = np.where(max_ac_kwh > 0, max_ac_kwh, 1.0)
    return np.where(max_ac_kwh > 0, np.clip(battery_ac_kwh / safe, -1.0, 1.0), 0.0)


def _exact(community: Community, length: int, gap: float, budget: SearchBudget, start: int) -> Schedule | None:
    """The exact method's schedule of one episode, or None where HiGHS found none within the budget."""
    try:
        return solve_schedule(community, start, length, mip_rel_gap=gap, time_limit_s=budget.time_limit_s, node_limit=budget.node_limit)
    except ScheduleError:
        return None


def _decomposed(problem, sample: int, passes: int, group_size: int, budget: SearchBudget) -> tuple[WeekDecomposition, float]:
    t0 = time.perf_counter()
    return decompose_week(problem, sample, passes, budget, group_size), time.perf_counter() - t0


def replay_decomposition(community: Community, start: int, length: int, found: WeekDecomposition, seconds: float) -> Schedule:
    """The cheapest of ``found``'s candidate schedules, replayed through the env, with its proven gap."""
    starts = np.full(len(found.candidates), start)
    candidates = np.stack(found.candidates)  # (K, T, N)
    max_ac = community.params.battery.max_ac_kwh

    def act(obs: np.ndarray, state: State, com: Community) -> np.ndarray:
        return setpoints_from_ac_kwh(candidates[np.arange(len(starts)), state.t - state.start], max_ac)

    traj = rollout(community, act, starts, length, observations=False)
    costs = traj["cost_usd"].sum(axis=(0, 2))
    k = int(np.argmin(costs))
    problem = episode_problem(community, start, length)
    bound = found.bound + problem.terminal_constant_usd
    cost = float(costs[k])
    return Schedule(
        start=int(start),
        battery_ac_kwh=traj["battery_ac_kwh"][:, k],
        soc_kwh=traj["soc_kwh"][:, k],
        grid_import_kwh=traj["grid_import_kwh"][:, k],
        grid_export_kwh=traj["grid_export_kwh"][:, k],
        p2p_sent_kwh=traj["p2p_sold_kwh"][:, k],
        p2p_received_kwh=traj["p2p_bought_kwh"][:, k],
        curtailed_kwh=traj["pv_curtailed_kwh"][:, k],
        community_cost_usd=cost,
        terminal_price_usd_per_kwh=problem.terminal_price_usd_per_kwh,
        solve_seconds=seconds,
        status="Decomposed",
        num_binaries=0,
        mip_gap=max(cost - bound, 0.0) / max(abs(cost), 1e-12),  # HiGHS's definition
        lower_bound_usd=bound,
        bound_method="decomposition",
        schedule_method="decomposition",
    )


class OraclePolicy:
    """Replays the perfect-foresight schedule of each planned episode.

    Call :meth:`plan` with the episodes' start intervals and length before the rollout; ``act``
    then looks up scenario ``b``'s schedule at ``state.t[b] - state.start[b]``.

    ``method``: ``"exact"``, ``"decomposition"`` or ``"auto"`` (exact up to
    ``exact_max_households`` homes). Exact: ``time_limit_s`` caps HiGHS's branch and bound (wall
    clock), ``node_limit`` its nodes (with ``time_limit_s=None``: the same schedule on any machine);
    a week it does not close gets a Lagrangian round, one it finds no schedule for is decomposed.
    Decomposition: prices from the LP of ``sample_households`` homes, ``passes`` of single homes'
    best responses, then one pass of groups of ``group_households`` homes.
    Episodes run ``workers`` at once, in spawned processes (``engine="processes"``) or as Ray
    tasks (``engine="ray"``, the ``[ray]`` extra; a cluster through ``RAY_ADDRESS``).
    """

    def __init__(
        self, name: str = "oracle", mip_rel_gap: float = 1e-6, time_limit_s: float | None = 300.0, workers: int = 1,
        node_limit: int | None = None, method: str = "auto", exact_max_households: int = 150, sample_households: int = 150,
        passes: int = 2, group_households: int = 100, engine: str = "processes",
    ) -> None:
        if method not in ("auto", "exact", "decomposition"):
            raise ValueError(f"method must be 'auto', 'exact' or 'decomposition', got {method!r}")
        self.name = name
        self.mip_rel_gap = mip_rel_gap
        self.budget = SearchBudget(time_limit_s, node_limit)
        self.workers = workers
        self.method, self.exact_max_households = method, exact_max_households
        self.sample_households, self.passes, self.engine = sample_households, passes, engine
        self.group_households = group_households
        self.progress = False  # a bar over the episodes (the benchmark switches it on)
        self.settings = None  # the OracleSettings it was made from (the registry sets it): results record them
        self.schedules: list[Schedule] = []
        self._starts = np.zeros(0, dtype=np.int64)

    def method_for(self, num_households: int) -> str:
        """The method a community of ``num_households`` homes is solved with."""
        if self.method != "auto":
            return self.method
        return "exact" if num_households <= self.exact_max_households else "decomposition"

    def plan(self, community: Community, starts: np.ndarray, length: int) -> list[Schedule]:
        """Solve one schedule per episode (``starts``: ``(B,)`` global start intervals)."""
        self._starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        starts_list = [int(s) for s in self._starts]
        workers = min(self.workers, len(starts_list))
        schedules: list[Schedule | None] = [None] * len(starts_list)
        if self.method_for(community.num_households) == "exact":
            schedules = map_tasks(partial(_exact, community, length, self.mip_rel_gap, self.budget), starts_list, workers, self.engine,
                                  progress="oracle (exact)" if self.progress else None)
        todo = [i for i, s in enumerate(schedules) if s is None]  # decomposed: by method, or for want of a schedule
        if todo:
            problems = [episode_problem(community, starts_list[i], length) for i in todo]
            found = map_tasks(partial(_decomposed, sample=self.sample_households, passes=self.passes,
                                      group_size=self.group_households, budget=self.budget),
                              problems, workers, self.engine, progress="oracle (decomposed)" if self.progress else None)
            for i, (week, seconds) in zip(todo, found):
                schedules[i] = replay_decomposition(community, starts_list[i], length, week, seconds)
        self.schedules = schedules
        return self.schedules

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """Setpoints ``(B, N)``: each scenario's planned AC energy over max power."""
        if not np.array_equal(state.start, self._starts):
            raise ValueError(f"the oracle planned episodes starting at {self._starts.tolist()}, but the state's start at {state.start.tolist()}; call plan() first")
        steps = state.t - state.start
        b_kwh = np.stack([sched.battery_ac_kwh[k] for sched, k in zip(self.schedules, steps)])
        return setpoints_from_ac_kwh(b_kwh, community.params.battery.max_ac_kwh)

    def settings_record(self, num_households: int) -> dict | None:
        """What a results file records of the method and budget used for ``num_households`` homes."""
        return self.settings.record(num_households) if self.settings is not None else None

    @property
    def time_limit_s(self) -> float | None:
        """The wall-clock cap per episode (None in the deterministic mode)."""
        return self.budget.time_limit_s

    def total_cost_usd(self) -> float:
        """Sum of the planned episodes' community costs (terminal settlement included)."""
        return float(sum(s.community_cost_usd for s in self.schedules))

"""The perfect-foresight optimum: one community-wide schedule per episode, replayed as setpoints.

The LP itself lives in :mod:`policies.schedule_lp`; this module re-exports :func:`solve_schedule`
and :class:`Schedule` and wraps them as a policy. The oracle knows every future load and PV value,
so its cost is a lower bound for any controller on the same episodes (under the same physics).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from energy_env.community import Community
from energy_env.core import State
from policies.schedule_lp import Schedule, ScheduleError, SearchBudget, solve_schedule

__all__ = ["OraclePolicy", "Schedule", "ScheduleError", "setpoints_from_ac_kwh", "solve_schedule"]


def setpoints_from_ac_kwh(battery_ac_kwh: np.ndarray, max_ac_kwh: np.ndarray) -> np.ndarray:
    """Setpoints in [-1, 1] that ask for ``battery_ac_kwh`` (0 for homes without a battery).

    The clip only removes solver dust (|b| a hair above max power), which the env would otherwise
    count as an out-of-box action.
    """
    safe = np.where(max_ac_kwh > 0, max_ac_kwh, 1.0)
    return np.where(max_ac_kwh > 0, np.clip(battery_ac_kwh / safe, -1.0, 1.0), 0.0)


def _solve(community: Community, length: int, gap: float, budget: SearchBudget, start: int) -> Schedule:
    return solve_schedule(community, start, length, mip_rel_gap=gap, time_limit_s=budget.time_limit_s, node_limit=budget.node_limit)


class OraclePolicy:
    """Replays the perfect-foresight schedule of each planned episode.

    Call :meth:`plan` with the episodes' start intervals and length before the rollout; ``act``
    then looks up scenario ``b``'s schedule at ``state.t[b] - state.start[b]``.

    Day-long episodes solve to optimality in about a second. Week-long episodes with many NBT
    evenings (export credit above the import price) are MILPs that HiGHS may not close quickly:
    ``time_limit_s`` caps HiGHS's search (wall clock), ``node_limit`` its branch-and-bound nodes
    (with ``time_limit_s=None``: the same schedule on any machine); a week it does not close then
    gets a Lagrangian round (:mod:`policies.lagrangian`: a proven bound and often a cheaper
    schedule), and the schedule reports its ``mip_gap`` to the better bound.
    """

    def __init__(
        self, name: str = "oracle", mip_rel_gap: float = 1e-6, time_limit_s: float | None = 300.0, workers: int = 1,
        node_limit: int | None = None,
    ) -> None:
        self.name = name
        self.mip_rel_gap = mip_rel_gap
        self.budget = SearchBudget(time_limit_s, node_limit)
        self.workers = workers  # episodes solved at once, in spawned processes (> 1)
        self.settings_record: dict | None = None  # what a results file records of the budget (set by the registry)
        self.schedules: list[Schedule] = []
        self._starts = np.zeros(0, dtype=np.int64)

    def plan(self, community: Community, starts: np.ndarray, length: int) -> list[Schedule]:
        """Solve one schedule per episode (``starts``: ``(B,)`` global start intervals)."""
        self._starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        solve = partial(_solve, community, length, self.mip_rel_gap, self.budget)
        workers = min(self.workers, len(self._starts))
        if workers <= 1:
            self.schedules = [solve(int(s)) for s in self._starts]
        else:
            # Episodes are independent MILPs; spawn, not fork (a forked HiGHS/torch process can deadlock).
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                self.schedules = list(pool.map(solve, [int(s) for s in self._starts]))
        return self.schedules

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """Setpoints ``(B, N)``: each scenario's planned AC energy over max power."""
        if not np.array_equal(state.start, self._starts):
            raise ValueError(f"the oracle planned episodes starting at {self._starts.tolist()}, but the state's start at {state.start.tolist()}; call plan() first")
        steps = state.t - state.start
        b_kwh = np.stack([sched.battery_ac_kwh[k] for sched, k in zip(self.schedules, steps)])
        return setpoints_from_ac_kwh(b_kwh, community.params.battery.max_ac_kwh)

    @property
    def time_limit_s(self) -> float | None:
        """The wall-clock cap per episode (None in the deterministic mode)."""
        return self.budget.time_limit_s

    def total_cost_usd(self) -> float:
        """Sum of the planned episodes' community costs (terminal settlement included)."""
        return float(sum(s.community_cost_usd for s in self.schedules))

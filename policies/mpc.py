"""Model predictive control: re-solve the community LP over a short horizon at every step.

At interval ``t`` the controller knows this interval's load and PV exactly (the inverter follows the
meter in real time, as the env assumes) and uses the env's forecast provider for the next ``H``
intervals (``data.load_fc_kwh[t]``, made at ``t`` for ``t+1 .. t+H``). Windows longer than the
provider's horizon are filled with seasonal persistence: interval ``t+k`` takes the measured value
of ``t+k-48``, the same clock time a day earlier (known at ``t`` as long as ``k <= 48``). Where the
data set has no earlier day, the provider's last forecast is repeated.

The window never runs past the episode's end, and the energy left at the window's end is valued at
the env's terminal price (the off-peak import price of the window's last day by default), the same
valuation the env applies at the end of the episode: the last window, which reaches the episode's
end, therefore optimises exactly the env's settlement. Only the first interval's action is applied.
"""

from __future__ import annotations

import numpy as np

from energy_env.community import Community
from energy_env.config import INTERVALS_PER_DAY
from energy_env.core import State
from policies.optimum import setpoints_from_ac_kwh
from policies.schedule_lp import episode_problem, solve_problem


def forecast_window(community: Community, t: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Load and PV ``(length, N)`` that a controller at interval ``t`` expects for ``t .. t+length-1``.

    Row 0 is measured; rows ``1..H`` come from the forecast provider; later rows from seasonal
    persistence. Values are made physical (non-negative, net demand within the import limit) so a
    poor forecast cannot make the LP infeasible.
    """
    data, params = community.data, community.params
    if length > INTERVALS_PER_DAY + 1:
        raise ValueError(f"window of {length} intervals: seasonal persistence reaches at most {INTERVALS_PER_DAY + 1}")
    h = data.load_fc_kwh.shape[2]
    load = np.empty((length, data.load_kwh.shape[1]))
    pv = np.empty_like(load)
    load[0], pv[0] = data.load_kwh[t], data.pv_kwh[t]
    k_fc = min(h, length - 1)
    load[1 : 1 + k_fc] = data.load_fc_kwh[t, :, :k_fc].T
    pv[1 : 1 + k_fc] = data.pv_fc_kwh[t, :, :k_fc].T
    if length > 1 + h:
        earlier = t + np.arange(1 + h, length) - INTERVALS_PER_DAY
        ok = earlier >= 0
        load[1 + h :] = np.where(ok[:, None], data.load_kwh[np.maximum(earlier, 0)], data.load_fc_kwh[t, :, -1])
        pv[1 + h :] = np.where(ok[:, None], data.pv_kwh[np.maximum(earlier, 0)], data.pv_fc_kwh[t, :, -1])
    load, pv = np.maximum(load, 0.0), np.maximum(pv, 0.0)
    load = np.minimum(load, pv + params.import_limit_kwh)
    return load, pv


class MPCPolicy:
    """Receding-horizon LP controller of every home's battery (see the module docstring)."""

    def __init__(self, horizon_intervals: int = 12, name: str = "mpc", workers: int = 1, engine: str = "processes") -> None:
        if not 1 <= horizon_intervals <= INTERVALS_PER_DAY:
            raise ValueError(f"horizon_intervals must lie in 1..{INTERVALS_PER_DAY}, got {horizon_intervals}")
        self.horizon_intervals = horizon_intervals
        self.name = name
        self.workers, self.engine = workers, engine
        self.solve_seconds = 0.0  # total HiGHS time, for benchmarks
        self.num_solves = 0
        self._planned: dict[tuple[int, int], np.ndarray] = {}  # (start, length) -> closed-loop AC energy (T, N)

    def plan(self, community: Community, starts: np.ndarray, length: int) -> None:
        """With ``workers > 1``, run each episode's closed loop in worker processes now; :meth:`act` replays it.

        Scenarios are independent and the controller deterministic, so this computes exactly the
        setpoints the online loop would (the same LPs from the same states); it only uses every core.
        """
        starts = [int(s) for s in np.asarray(starts).reshape(-1)]
        self._planned = {}
        if self.workers <= 1 or len(starts) <= 1:
            return
        from functools import partial

        from policies.executors import map_tasks

        chunks = [starts[k :: self.workers] for k in range(self.workers)]
        done = map_tasks(partial(_closed_loop, community, length, self.horizon_intervals), [c for c in chunks if c], self.workers, self.engine)
        for chunk_starts, (b_kwh, seconds, solves) in zip([c for c in chunks if c], done):
            for j, s in enumerate(chunk_starts):
                self._planned[(s, length)] = b_kwh[:, j]
            self.solve_seconds += seconds
            self.num_solves += solves

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """Setpoints ``(B, N)``: the first interval of each scenario's window schedule."""
        keys = [(int(s), int(e - s)) for s, e in zip(state.start, state.end)]
        if self._planned and all(k in self._planned for k in keys):
            b_kwh = np.stack([self._planned[k][int(t - s)] for k, t, s in zip(keys, state.t, state.start)])
            return setpoints_from_ac_kwh(b_kwh, community.params.battery.max_ac_kwh)
        b_kwh = np.zeros(state.soc_kwh.shape)
        for b in range(state.t.shape[0]):  # scenarios are independent LPs
            t = int(state.t[b])
            length = min(self.horizon_intervals, int(state.end[b]) - t)
            load, pv = forecast_window(community, t, length)
            sched = solve_problem(episode_problem(community, t, length, load, pv, state.soc_kwh[b]), t)
            b_kwh[b] = sched.battery_ac_kwh[0]
            self.solve_seconds += sched.solve_seconds
            self.num_solves += 1
        return setpoints_from_ac_kwh(b_kwh, community.params.battery.max_ac_kwh)


def _closed_loop(community: Community, length: int, horizon_intervals: int, starts: list[int]) -> tuple[np.ndarray, float, int]:
    """MPC's closed loop over the episodes ``starts``: the AC energy it applied ``(T, B, N)``, HiGHS seconds, solves."""
    from energy_env.rollout import rollout

    controller = MPCPolicy(horizon_intervals)
    traj = rollout(community, controller.act, np.asarray(starts), length, observations=False)
    return traj["battery_ac_kwh"], controller.solve_seconds, controller.num_solves

"""Model predictive control: re-solve the community LP over a short horizon at every step.

At interval ``t`` the controller knows this interval's load and PV exactly (the inverter follows the
meter in real time, as the env assumes) and uses the env's forecast provider for the next ``H``
intervals (``data.load_fc_kwh[t]``, made at ``t`` for ``t+1 .. t+H``). Windows longer than the
provider's horizon are filled with seasonal persistence: interval ``t+k`` takes the measured value
of ``t+k-48``, the same clock time a day earlier (known at ``t`` as long as ``k <= 48``).
``source="seasonal_mean"`` (``mpc_day_ahead``, 24 hours) plans on the mean of that clock time over
the last ``history_days`` days instead, from the first forecast interval on (fewer days where the
data set has fewer): persistence of the current interval is a poor PV forecast hours ahead.
Where the data set has no earlier day, the provider's last forecast is repeated.

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


SOURCES = ("provider", "seasonal_mean")  # what a window's forecast rows come from


def _history_mean(x: np.ndarray, intervals: np.ndarray, days: int, fallback: np.ndarray) -> np.ndarray:
    """``(K, N)``: the mean of ``x`` at each of ``intervals`` minus 1..``days`` days, over the days inside the data set.

    Rows with no earlier day in the data set take ``fallback`` ``(N,)``.
    """
    earlier = intervals[None, :] - INTERVALS_PER_DAY * np.arange(1, days + 1)[:, None]  # (days, K)
    ok = earlier >= 0
    total = (x[np.maximum(earlier, 0)] * ok[..., None]).sum(axis=0)
    count = ok.sum(axis=0)[:, None]
    return np.where(count > 0, total / np.maximum(count, 1), fallback)


def forecast_window(
    community: Community, t: int, length: int, source: str = "provider", history_days: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """Load and PV ``(length, N)`` that a controller at interval ``t`` expects for ``t .. t+length-1``.

    Row 0 is measured. ``source="provider"``: rows ``1..H`` come from the forecast provider, later
    rows from seasonal persistence; ``"seasonal_mean"``: every later row is the mean of the same
    clock time over the last ``history_days`` days.
    Values are made physical (non-negative, net demand within the import limit) so a poor
    forecast cannot make the LP infeasible.
    """
    data, params = community.data, community.params
    if length > INTERVALS_PER_DAY + 1:
        raise ValueError(f"window of {length} intervals: the home's history reaches at most {INTERVALS_PER_DAY + 1}")
    if source not in SOURCES:
        raise ValueError(f"unknown forecast source {source!r}; expected one of {SOURCES}")
    if history_days < 1:
        raise ValueError(f"history_days must be >= 1, got {history_days}")
    h = data.load_fc_kwh.shape[2] if source == "provider" else 0
    load = np.empty((length, data.load_kwh.shape[1]))
    pv = np.empty_like(load)
    load[0], pv[0] = data.load_kwh[t], data.pv_kwh[t]
    k_fc = min(h, length - 1)
    load[1 : 1 + k_fc] = data.load_fc_kwh[t, :, :k_fc].T
    pv[1 : 1 + k_fc] = data.pv_fc_kwh[t, :, :k_fc].T
    if length > 1 + h:
        later = t + np.arange(1 + h, length)
        days = 1 if source == "provider" else history_days
        load[1 + h :] = _history_mean(data.load_kwh, later, days, data.load_fc_kwh[t, :, -1])
        pv[1 + h :] = _history_mean(data.pv_kwh, later, days, data.pv_fc_kwh[t, :, -1])
    load, pv = np.maximum(load, 0.0), np.maximum(pv, 0.0)
    load = np.minimum(load, pv + params.import_limit_kwh)
    return load, pv


class MPCPolicy:
    """Receding-horizon LP controller of every home's battery (see the module docstring)."""

    def __init__(
        self, horizon_intervals: int = 12, name: str = "mpc", workers: int = 1, engine: str = "processes",
        source: str = "provider", history_days: int = 7,
    ) -> None:
        if not 1 <= horizon_intervals <= INTERVALS_PER_DAY:
            raise ValueError(f"horizon_intervals must lie in 1..{INTERVALS_PER_DAY}, got {horizon_intervals}")
        if source not in SOURCES:
            raise ValueError(f"unknown forecast source {source!r}; expected one of {SOURCES}")
        if history_days < 1:
            raise ValueError(f"history_days must be >= 1, got {history_days}")
        self.horizon_intervals = horizon_intervals
        self.source, self.history_days = source, history_days
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
        loop = partial(_closed_loop, community, length, self.horizon_intervals, self.source, self.history_days)
        done = map_tasks(loop, [c for c in chunks if c], self.workers, self.engine)
        for chunk_starts, (b_kwh, seconds, solves) in zip([c for c in chunks if c], done):
            for j, s in enumerate(chunk_starts):
                self._planned[(s, length)] = b_kwh[:, j]
            self.solve_seconds += seconds
            self.num_solves += solves

    def closed_loop(self, community: Community, starts: np.ndarray, length: int) -> np.ndarray:
        """The AC battery energy ``(length, B, N)`` this controller applies over each episode of ``starts``.

        The episodes run on ``workers`` processes where there are several (see :meth:`plan`).
        """
        starts = [int(s) for s in np.asarray(starts).reshape(-1)]
        self.plan(community, np.asarray(starts), length)
        if self._planned:
            return np.stack([self._planned[(s, length)] for s in starts], axis=1)
        b_kwh, seconds, solves = _closed_loop(community, length, self.horizon_intervals, self.source, self.history_days, starts)
        self.solve_seconds += seconds
        self.num_solves += solves
        return b_kwh

    def setpoints_at(self, community: Community, t: np.ndarray, end: np.ndarray, soc_kwh: np.ndarray) -> np.ndarray:
        """Setpoints ``(M, N)`` the controller chooses at ``M`` states: interval ``t[m]`` of an episode
        ending at ``end[m]``, with the batteries at ``soc_kwh[m]`` ``(N,)``.

        An expert's labels for states another policy visited (DAgger, ``train/imitation.py``); the
        states are split over ``workers`` processes.
        """
        t, end = np.asarray(t, dtype=np.int64).reshape(-1), np.asarray(end, dtype=np.int64).reshape(-1)
        soc_kwh = np.asarray(soc_kwh, dtype=np.float64)
        if soc_kwh.shape != (len(t), community.num_households) or len(end) != len(t) or np.any(end <= t):
            raise ValueError(f"states: t {t.shape}, end {end.shape} (end > t), soc_kwh {soc_kwh.shape}; "
                             f"expected ({len(t)},), ({len(t)},) and ({len(t)}, {community.num_households})")
        from functools import partial

        from policies.executors import map_tasks

        parts = [c for c in np.array_split(np.arange(len(t)), max(1, min(self.workers, len(t)))) if len(c)]
        label = partial(_setpoints_at, community, self.horizon_intervals, self.source, self.history_days)
        done = map_tasks(label, [(t[c], end[c], soc_kwh[c]) for c in parts], self.workers, self.engine)
        return np.concatenate(done) if done else np.zeros((0, community.num_households))

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
            load, pv = forecast_window(community, t, length, self.source, self.history_days)
            sched = solve_problem(episode_problem(community, t, length, load, pv, state.soc_kwh[b]), t)
            b_kwh[b] = sched.battery_ac_kwh[0]
            self.solve_seconds += sched.solve_seconds
            self.num_solves += 1
        return setpoints_from_ac_kwh(b_kwh, community.params.battery.max_ac_kwh)


def _closed_loop(
    community: Community, length: int, horizon_intervals: int, source: str, history_days: int, starts: list[int]
) -> tuple[np.ndarray, float, int]:
    """MPC's closed loop over the episodes ``starts``: the AC energy it applied ``(T, B, N)``, HiGHS seconds, solves."""
    from energy_env.rollout import rollout

    controller = MPCPolicy(horizon_intervals, source=source, history_days=history_days)
    traj = rollout(community, controller.act, np.asarray(starts), length, observations=False)
    return traj["battery_ac_kwh"], controller.solve_seconds, controller.num_solves


def _setpoints_at(
    community: Community, horizon_intervals: int, source: str, history_days: int, states: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """The online controller's setpoints ``(M, N)`` at the states ``(t, end, soc_kwh)``, one LP each."""
    from types import SimpleNamespace

    t, end, soc_kwh = states
    controller = MPCPolicy(horizon_intervals, source=source, history_days=history_days)
    return controller.act(None, SimpleNamespace(t=t, start=t, end=end, soc_kwh=soc_kwh), community)

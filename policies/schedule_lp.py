"""The oracle's schedule of one episode: :func:`solve_schedule` and what it returns.

The model is :mod:`policies.schedule_model` (the env's physics and market as constraints over
``T`` intervals and ``N`` homes); a week HiGHS does not close within its budget gets a round of
:mod:`policies.lagrangian`. The method is described in docs/oracle.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from energy_env import core
from energy_env.community import Community
from policies.schedule_model import (  # noqa: F401 (re-exported: the model's public names)
    BIG_M_FLOOR_KWH,
    BLOCKS,
    SIMULTANEOUS_TOL_KWH,
    TIE_BREAK_CURTAIL_USD_PER_KWH,
    TIE_BREAK_THROUGHPUT_USD_PER_KWH,
    ModelSolution,
    RowBlock,
    ScheduleError,
    ScheduleModel,
    ScheduleProblem,
    SearchBudget,
    Var,
    build_model,
    simultaneous_cells,
    solve_model,
)


@dataclass(frozen=True)
class Schedule:
    """An optimal schedule of ``length`` intervals from global interval ``start``; arrays ``(length, N)``."""

    start: int
    battery_ac_kwh: np.ndarray  # c - d, + charges (what the env's setpoint asks for)
    soc_kwh: np.ndarray  # stored energy at the end of each interval
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    p2p_sent_kwh: np.ndarray
    p2p_received_kwh: np.ndarray
    curtailed_kwh: np.ndarray
    community_cost_usd: float  # grid bill + degradation - terminal settlement (the objective without tie-breaks)
    terminal_price_usd_per_kwh: float  # 0 where terminal=False
    solve_seconds: float
    status: str  # HiGHS's model status: "Optimal", or "Time limit reached" with a feasible schedule
    num_binaries: int
    mip_gap: float  # relative gap between this schedule and lower_bound_usd (0 for an LP)
    lower_bound_usd: float  # no schedule costs less (up to the tie-break costs, < 1e-6 $/kWh)
    bound_method: str = "highs"  # where lower_bound_usd comes from: "highs", or "lagrangian" (policies.lagrangian)
    schedule_method: str = "highs"  # who found the schedule: HiGHS's search, or "lagrangian" (the homes' modes fixed)

    @property
    def length(self) -> int:
        return self.battery_ac_kwh.shape[0]


def episode_problem(
    community: Community,
    start: int,
    length: int,
    load_kwh: np.ndarray | None = None,
    pv_kwh: np.ndarray | None = None,
    soc0_kwh: np.ndarray | None = None,
    terminal: bool = True,
    terminal_price_usd_per_kwh: float | None = None,
) -> ScheduleProblem:
    """The :class:`ScheduleProblem` of one episode of ``community``: intervals ``start .. start+length-1``.

    ``load_kwh``/``pv_kwh`` (``(length, N)``) replace the data set's values (forecasts, for MPC);
    ``soc0_kwh`` (``(N,)``) replaces the configured initial state of energy. With ``terminal`` the
    energy left above (below) ``soc0`` is credited (charged) at the env's terminal price of the
    last interval, or at ``terminal_price_usd_per_kwh`` if given.
    """
    params, data = community.params, community.data
    if getattr(params, "baseline_credit_usd_per_kwh", 0.0) > 0.0:
        # The credit applies to each home's own imports after the env's pro-rata P2P matching; a
        # community LP would allocate imports differently and undercut the env, so it is not modelled.
        raise NotImplementedError("the schedule does not model tariff.baseline_credit; switch it off")
    t_total = data.load_kwh.shape[0]
    if length < 1 or start < 0 or start + length > t_total:
        raise ValueError(f"schedule [{start}, {start + length}) runs outside the data set (0..{t_total})")
    sl = slice(start, start + length)
    load = np.asarray(data.load_kwh[sl] if load_kwh is None else load_kwh, dtype=np.float64)
    pv = np.asarray(data.pv_kwh[sl] if pv_kwh is None else pv_kwh, dtype=np.float64)
    n = params.battery.capacity_kwh.shape[0]
    if load.shape != (length, n) or pv.shape != (length, n):
        raise ValueError(f"load/pv must be ({length}, {n}), got {load.shape}/{pv.shape}")
    soc0 = np.asarray(params.battery.initial_soc_kwh if soc0_kwh is None else soc0_kwh, dtype=np.float64).reshape(n)
    imp = np.asarray(data.import_usd_per_kwh[sl], dtype=np.float64)
    exp = np.asarray(data.export_usd_per_kwh[sl], dtype=np.float64)
    if terminal:
        tp = float(core.terminal_price(params, data, np.array(start + length - 1)) if terminal_price_usd_per_kwh is None else terminal_price_usd_per_kwh)
    else:
        tp = 0.0
    return ScheduleProblem(params, load, pv, imp, exp, soc0, tp)


def solve_schedule(community: Community, start: int, length: int, **solver: Any) -> Schedule:
    """Cost-minimal battery schedule of ``community`` over intervals ``start .. start+length-1``,
    on the data set's own load, PV and initial state: :func:`solve_problem` of
    :func:`episode_problem` (``solver``: :func:`solve_problem`'s keyword arguments)."""
    return solve_problem(episode_problem(community, start, length), start, **solver)


def solve_problem(
    problem: ScheduleProblem,
    start: int,
    meter_binaries: bool = True,
    mip_rel_gap: float = 1e-6,
    time_limit_s: float | None = None,
    lagrangian_bound: bool = True,
    node_limit: int | None = None,
    highs_options: Mapping[str, Any] | None = None,
) -> Schedule:
    """Cost-minimal battery schedule of an episode's problem (:func:`episode_problem`), which starts at
    the data set's interval ``start``.

    ``meter_binaries=False`` solves the
    plain LP: no import-xor-export binaries and only the connection limits on the meter's flows
    (only to show the arbitrage the binaries prevent).

    With binaries (NBT summer evenings) the problem is a MILP; HiGHS stops at ``mip_rel_gap``, after
    ``time_limit_s`` or after ``node_limit`` branch-and-bound nodes (:class:`SearchBudget`; a node
    limit alone is deterministic). A schedule cut off by a limit is still feasible (the replay
    identity holds for it) and reports its gap and ``lower_bound_usd``: the better of HiGHS's bound
    and, with ``lagrangian_bound``, the bound of :mod:`policies.lagrangian` (one exact MILP per home,
    the P2P balance priced by the LP duals; a few seconds), whose import/export modes, fixed in the
    community's model, also give a second schedule: the cheaper one is kept. ``highs_options``: more
    HiGHS options (e.g. to switch off the MILP heuristics). Raises :class:`ScheduleError` naming
    HiGHS's model status when there is no feasible schedule.
    """
    n, bp, length = problem.num_households, problem.params.battery, problem.load_kwh.shape[0]
    imp, exp, soc0, tp = problem.import_usd_per_kwh, problem.export_usd_per_kwh, problem.soc0_kwh, problem.terminal_price_usd_per_kwh
    model = build_model(problem, meter_binaries)
    # The budget caps HiGHS's branch and bound; an LP stopped by the clock has no schedule at all.
    budget = SearchBudget(time_limit_s, node_limit) if model.num_binaries else SearchBudget()
    t0 = time.perf_counter()
    x, status, gap, bound = solve_model(model, mip_rel_gap, budget, highs_options)
    extra_pairs = simultaneous_cells(x, length * n)
    if extra_pairs.size:  # see schedule_model's docstring: re-solve with charge-xor-discharge binaries there
        model = build_model(problem, meter_binaries, cd_cells=extra_pairs)
        x, status, gap, bound = solve_model(model, mip_rel_gap, budget, highs_options)
    bound_method = schedule_method = "highs"
    if lagrangian_bound and model.num_binaries and gap > mip_rel_gap and extra_pairs.size == 0:
        objective = float(np.dot(model.lp.col_cost_, x))
        found = _lagrangian(problem, model, budget)
        if found is not None:
            if found.bound > bound:
                bound, bound_method = found.bound, "lagrangian"
            if found.objective < objective:
                x, objective, schedule_method = found.x, found.objective, "lagrangian"
            gap = max(objective - bound, 0.0) / max(abs(objective), 1e-12)  # HiGHS's definition
    seconds = time.perf_counter() - t0

    blk = {name: model.block(x, Var(k)) for k, name in enumerate(BLOCKS)}
    c, d, e = blk["c"], blk["d"], blk["e"]
    cost = float(
        (imp[:, None] * blk["gi"]).sum() - (exp[:, None] * blk["ge"]).sum()
        + bp.degradation_cost_usd_per_kwh * (c + d).sum()
        - tp * (e[-1] - soc0).sum()
    )
    return Schedule(
        start=int(start),
        battery_ac_kwh=c - d,
        soc_kwh=e,
        grid_import_kwh=blk["gi"],
        grid_export_kwh=blk["ge"],
        p2p_sent_kwh=blk["s"],
        p2p_received_kwh=blk["r"],
        curtailed_kwh=blk["u"],
        community_cost_usd=cost,
        terminal_price_usd_per_kwh=tp,
        solve_seconds=seconds,
        status=status,
        num_binaries=model.num_binaries,
        mip_gap=gap,
        lower_bound_usd=bound + tp * soc0.sum(),
        bound_method=bound_method,
        schedule_method=schedule_method,
    )


def _lagrangian(problem: ScheduleProblem, model: ScheduleModel, budget: SearchBudget):
    """:func:`policies.lagrangian.lagrangian_round` on this model, or None where one of its models does not solve."""
    from policies import lagrangian

    try:
        return lagrangian.lagrangian_round(model, problem, budget)
    except ScheduleError:
        return None

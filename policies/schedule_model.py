"""The oracle's model: one episode's battery schedule as a linear program (a small MILP where needed).

:class:`ScheduleProblem` is what is scheduled (the community's parameters and an episode's load,
PV, prices, initial energy and terminal price); :func:`build_model` writes it as a
:class:`ScheduleModel` for HiGHS, whose variable blocks (:class:`Var`) and row blocks
(:class:`RowBlock`) are named; :func:`solve_model` runs HiGHS under a :class:`SearchBudget`.
:func:`policies.schedule_lp.solve_schedule` and :mod:`policies.lagrangian` build on these.

The model is the env's physics and market written as constraints over ``T`` intervals and ``N``
homes (``docs/model.md``). Per home and interval there are eight continuous variables, each block
a ``(T, N)`` array flattened interval-major:

====  ==========================================================================================
c, d  battery charge / discharge on the AC side (``b = c - d``), kWh
e     stored energy at the end of the interval, kWh
u     curtailed PV, ``0 <= u <= max(G - L - X, 0)`` (the most the env's export limit can force)
gi    grid import, ``ge`` grid export
s, r  P2P energy sent / received (the community's sum: ``sum r = (1 - loss) sum s``)
====  ==========================================================================================

Under every settlement rule the internal P2P payments cancel over the community, so the objective
is the community's grid bill plus degradation minus the terminal settlement of the batteries.

Two meter/battery effects a plain LP would get wrong are closed with binaries, only where they can
matter:

* **Import and export at one meter.** Where the export credit exceeds the import price (NBT summer
  evenings), importing and exporting the same kWh at one meter would earn ``Ps - Pb`` per kWh; a
  real meter only sees the net. A binary per home and such interval forces ``gi = 0`` or ``ge = 0``
  (only at homes whose net position can take both signs there; the big-Ms are each home's largest
  possible import and export). Elsewhere (``Ps <= Pb``) doing both never pays, so the LP stays an
  LP. The resulting MILP is exact but can be slow over a week with many such evenings: the LP
  relaxation spreads a scarce evening's battery energy over several export intervals at the
  averaged value, and closing that knapsack-like gap home by home takes branching.
* **Charging and discharging at once.** ``c`` and ``d`` both positive only dissipates energy
  (``eta_c c - d / eta_d`` stored for ``c - d`` on the AC side). With positive prices that never
  pays: where more discharge is allowed, plain discharge (exported or used at a positive price)
  beats burning the energy, and where it is not (``d`` at its bound) adding ``c`` raises the stored
  energy rather than lowering it. It can tie, though, when the marginal energy is worthless (PV
  curtailed anyway, no degradation cost), and the env only knows ``b = c - d``. So a tiny throughput
  cost breaks the ties, and if a solution still does both (a corner case the argument above misses),
  those cells get a binary and the model is solved again.

Constraints are built as sparse COO triplets with numpy, vectorised over homes and intervals.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Mapping, NamedTuple

import highspy
import numpy as np
import scipy.sparse as sp

from energy_env import core


class Var(IntEnum):
    """The variable blocks of a model, in column order; each is a ``(T, N)`` block, interval-major."""

    CHARGE = 0  # c
    DISCHARGE = 1  # d
    STORED = 2  # e, end of the interval
    CURTAILED = 3  # u
    GRID_IMPORT = 4  # gi
    GRID_EXPORT = 5  # ge
    SENT = 6  # s, P2P
    RECEIVED = 7  # r, P2P


class RowBlock(IntEnum):
    """The row blocks of a model, in order (the binaries' rows follow them)."""

    BALANCE = 0  # per cell: L - G + u + c - d = gi - ge + r - s
    NET_LIMITS = 1  # per cell: -X <= L - G + u + c - d <= I
    BATTERY = 2  # per cell: e_t - e_{t-1} - eta_c c_t + d_t / eta_d = 0
    P2P = 3  # per interval: sum r = (1 - loss) sum s, the only rows coupling the homes


BLOCKS = ("c", "d", "e", "u", "gi", "ge", "s", "r")  # short names of Var, in order
_C, _D, _E, _U, _GI, _GE, _S, _R = (int(v) for v in Var)

# Tie-breaking costs ($/kWh), far below any price (NBT credits start at 1e-5 $/kWh) but above
# HiGHS's optimality tolerance (1e-7). They are left out of the reported cost.
TIE_BREAK_THROUGHPUT_USD_PER_KWH = 1e-6  # prefer no simultaneous charge and discharge
BIG_M_FLOOR_KWH = 1e-6
TIE_BREAK_CURTAIL_USD_PER_KWH = 1e-6  # curtail only what the export limit forces, as the env does
SIMULTANEOUS_TOL_KWH = 1e-6


class ScheduleError(RuntimeError):
    """HiGHS did not find an optimal schedule; the message names the model status."""


@dataclass(frozen=True)
class SearchBudget:
    """How long HiGHS may search one MILP: wall-clock seconds, branch-and-bound nodes, or both.

    A wall-clock limit stops the search wherever the machine got to, so the schedule depends on
    the machine and its load. A node limit alone (``time_limit_s=None``) stops it at the same
    point everywhere (HiGHS's search is deterministic for one version and one model): the
    deterministic mode. Neither: search to the gap.
    """

    time_limit_s: float | None = None
    node_limit: int | None = None

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not (self.time_limit_s > 0 and np.isfinite(self.time_limit_s)):
            raise ValueError(f"time_limit_s must be a finite number > 0 or None, got {self.time_limit_s}")
        if self.node_limit is not None and (isinstance(self.node_limit, bool) or not isinstance(self.node_limit, (int, np.integer)) or self.node_limit < 1):
            raise ValueError(f"node_limit must be an integer >= 1 or None, got {self.node_limit!r}")

    @property
    def deterministic(self) -> bool:
        """True when no wall-clock limit can cut the search (the same schedule on any machine)."""
        return self.time_limit_s is None

    def apply(self, h: highspy.Highs) -> None:
        """Set the limits on a HiGHS instance."""
        if self.time_limit_s is not None:
            h.setOptionValue("time_limit", float(self.time_limit_s))
        if self.node_limit is not None:
            h.setOptionValue("mip_max_nodes", int(self.node_limit))




def household_params(params: core.CommunityParams, k: int | np.ndarray) -> core.CommunityParams:
    """``params`` restricted to household ``k`` (arrays of length 1), or to the households of an index array."""
    bp = params.battery
    idx = [k] if np.ndim(k) == 0 else np.asarray(k)
    battery = dataclasses.replace(
        bp,
        capacity_kwh=bp.capacity_kwh[idx],
        soc_min_kwh=bp.soc_min_kwh[idx],
        soc_max_kwh=bp.soc_max_kwh[idx],
        initial_soc_kwh=bp.initial_soc_kwh[idx],
        max_ac_kwh=bp.max_ac_kwh[idx],
    )
    return dataclasses.replace(
        params, battery=battery, import_limit_kwh=params.import_limit_kwh[idx], export_limit_kwh=params.export_limit_kwh[idx]
    )


@dataclass(frozen=True)
class ScheduleProblem:
    """What one schedule optimises: the community's parameters and an episode's exogenous arrays.

    ``load_kwh``/``pv_kwh`` are ``(T, N)``, the prices ``(T,)``, ``soc0_kwh`` ``(N,)``; energy left
    above (below) ``soc0`` at the end is credited (charged) at ``terminal_price_usd_per_kwh``.
    """

    params: core.CommunityParams
    load_kwh: np.ndarray
    pv_kwh: np.ndarray
    import_usd_per_kwh: np.ndarray
    export_usd_per_kwh: np.ndarray
    soc0_kwh: np.ndarray
    terminal_price_usd_per_kwh: float

    def __post_init__(self) -> None:
        t, n = self.load_kwh.shape
        if self.pv_kwh.shape != (t, n) or self.soc0_kwh.shape != (n,):
            raise ValueError(f"load {self.load_kwh.shape}, pv {self.pv_kwh.shape} and soc0 {self.soc0_kwh.shape} disagree")
        if self.import_usd_per_kwh.shape != (t,) or self.export_usd_per_kwh.shape != (t,):
            raise ValueError(f"prices must be ({t},), got {self.import_usd_per_kwh.shape}/{self.export_usd_per_kwh.shape}")

    @property
    def num_intervals(self) -> int:
        return self.load_kwh.shape[0]

    @property
    def num_households(self) -> int:
        return self.load_kwh.shape[1]

    @property
    def terminal_constant_usd(self) -> float:
        """``tp * sum(soc0)``: the part of the terminal settlement a model's objective leaves out."""
        return float(self.terminal_price_usd_per_kwh * self.soc0_kwh.sum())

    def household(self, k: int) -> "ScheduleProblem":
        """Household ``k`` alone (its P2P row then couples nothing)."""
        return self.households(np.array([k]))

    def households(self, idx: np.ndarray) -> "ScheduleProblem":
        """The households ``idx`` alone: a smaller community with the same prices."""
        idx = np.asarray(idx)
        return ScheduleProblem(
            household_params(self.params, idx), self.load_kwh[:, idx], self.pv_kwh[:, idx], self.import_usd_per_kwh,
            self.export_usd_per_kwh, self.soc0_kwh[idx], self.terminal_price_usd_per_kwh,
        )


def _coo(rows: list, cols: list, vals: list, row: np.ndarray, col: np.ndarray, val) -> None:
    rows.append(np.asarray(row, dtype=np.int64).ravel())
    cols.append(np.asarray(col, dtype=np.int64).ravel())
    vals.append(np.broadcast_to(np.asarray(val, dtype=np.float64), np.shape(row)).ravel())


@dataclass
class ScheduleModel:
    """A :class:`ScheduleProblem` as a HiGHS model: the continuous blocks of :class:`Var`, then the binaries.

    ``meter_cells`` are the cells (flat interval-major offsets) of the import-xor-export binaries,
    which come first among the binary columns (column :attr:`first_binary` ``+ j`` is the binary of
    ``meter_cells[j]``).
    """

    lp: highspy.HighsLp
    num_binaries: int
    meter_cells: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    num_intervals: int = 0
    num_households: int = 0

    @property
    def first_binary(self) -> int:
        """Column of the first binary (every continuous block comes before)."""
        return len(Var) * self.num_intervals * self.num_households

    def columns(self, var: Var) -> slice:
        """The columns of block ``var`` (``T * N``, interval-major)."""
        tn = self.num_intervals * self.num_households
        return slice(int(var) * tn, (int(var) + 1) * tn)

    def block(self, x: np.ndarray, var: Var) -> np.ndarray:
        """Block ``var`` of a solution ``x`` as ``(T, N)``."""
        return x[self.columns(var)].reshape(self.num_intervals, self.num_households)

    def rows(self, block: RowBlock) -> slice:
        """The rows of ``block`` (``T * N`` per cell, or ``T`` for the P2P balance)."""
        tn, t = self.num_intervals * self.num_households, self.num_intervals
        if block == RowBlock.P2P:
            return slice(3 * tn, 3 * tn + t)
        return slice(int(block) * tn, (int(block) + 1) * tn)


def build_model(problem: ScheduleProblem, meter_binaries: bool = True, cd_cells: np.ndarray | None = None) -> ScheduleModel:
    """Assemble the HiGHS model of ``problem`` (columns, rows, CSC matrix).

    ``meter_binaries``: import-xor-export binaries where they can matter (else the plain LP, with
    only the connection limits on the meter's flows); ``cd_cells``: cells that also get a
    charge-xor-discharge binary.
    """
    params, load, pv = problem.params, problem.load_kwh, problem.pv_kwh
    imp, exp, soc0, tp = problem.import_usd_per_kwh, problem.export_usd_per_kwh, problem.soc0_kwh, problem.terminal_price_usd_per_kwh
    bp = params.battery
    t, n = load.shape
    tn = t * n
    imp_lim, exp_lim = params.import_limit_kwh, params.export_limit_kwh
    keep = 1.0 - params.loss
    eta_c, eta_d = bp.eta_charge, bp.eta_discharge
    idx = np.arange(tn).reshape(t, n)  # cell (interval, home) -> offset within a block

    def col(block: int) -> np.ndarray:
        return block * tn + idx

    # --- column bounds (data-dependent bounds go here rather than into rows)
    max_ac = np.broadcast_to(bp.max_ac_kwh, (t, n))
    if bp.charge_from_grid:
        source = np.maximum(imp_lim - load + pv, 0.0)
    else:
        source = np.maximum(pv - load, 0.0)  # own PV surplus, uncurtailed PV as in battery.ac_bounds
    sink = np.maximum(exp_lim + load - pv, 0.0)  # never discharge into curtailment
    p2p_open = (exp / keep < imp) & (params.mechanism != "none")  # the env's market clears only then
    p2p_ub = np.where(p2p_open[:, None], np.inf, 0.0) * np.ones((1, n))
    c_ub, d_ub = np.minimum(max_ac, source), np.minimum(max_ac, sink)
    # The env curtails only what the export limit forces, and with d <= sink that is at most
    # G - L - X (see grid.curtailment_kwh); bounding u there loses no env behaviour.
    u_ub = np.minimum(pv, np.maximum(pv - load - exp_lim, 0.0))
    # The meter's flows are bounded by the largest net position each way. Tight bounds matter:
    # they are the big-M of the binaries below, and where one is 0 the cell needs no binary.
    gi_ub = np.minimum(imp_lim, np.maximum(np.maximum(load - pv, -exp_lim) + c_ub, 0.0))
    ge_ub = np.minimum(exp_lim, np.maximum(pv - load + d_ub, 0.0))
    # A big-M of a few 1e-8 kWh (a net position of float dust) makes HiGHS's presolve declare the
    # MILP infeasible; a floor of 1e-6 kWh on the nonzero ones relaxes nothing that matters.
    gi_ub = np.where(gi_ub > 0.0, np.maximum(gi_ub, BIG_M_FLOOR_KWH), 0.0)
    ge_ub = np.where(ge_ub > 0.0, np.maximum(ge_ub, BIG_M_FLOOR_KWH), 0.0)
    if not meter_binaries:  # the plain LP, with only the connection limits on the meter's flows
        gi_ub, ge_ub = np.full((t, n), imp_lim), np.full((t, n), exp_lim)
    lower = np.zeros((len(BLOCKS), t, n))
    upper = np.stack([c_ub, d_ub, np.broadcast_to(bp.soc_max_kwh, (t, n)), u_ub, gi_ub, ge_ub, p2p_ub, p2p_ub])
    lower[_E] = bp.soc_min_kwh

    cost = np.zeros((len(BLOCKS), t, n))
    cost[_C] = cost[_D] = bp.degradation_cost_usd_per_kwh + TIE_BREAK_THROUGHPUT_USD_PER_KWH
    cost[_U] = TIE_BREAK_CURTAIL_USD_PER_KWH
    cost[_GI] = imp[:, None]
    cost[_GE] = -exp[:, None]
    cost[_E, -1] = -tp  # terminal settlement; the constant tp * soc0 is added back in the reported cost

    rows, cols, vals = [], [], []
    row_lo, row_hi = [], []
    r0 = 0
    cells = idx.ravel()
    # balance: L - G + u + c - d = gi - ge + r - s
    for block, v in ((_C, 1.0), (_D, -1.0), (_U, 1.0), (_GI, -1.0), (_GE, 1.0), (_R, -1.0), (_S, 1.0)):
        _coo(rows, cols, vals, r0 + cells, col(block).ravel(), v)
    rhs = (pv - load).ravel()
    row_lo.append(rhs), row_hi.append(rhs)
    r0 += tn
    # net position within the connection limits: -X <= L - G + u + c - d <= I
    for block, v in ((_C, 1.0), (_D, -1.0), (_U, 1.0)):
        _coo(rows, cols, vals, r0 + cells, col(block).ravel(), v)
    row_lo.append((-exp_lim - load + pv).ravel()), row_hi.append((imp_lim - load + pv).ravel())
    r0 += tn
    # battery: e_t - e_{t-1} - eta_c c_t + d_t / eta_d = 0 (e_{-1} = soc0 moves to the right-hand side)
    for block, v in ((_E, 1.0), (_C, -eta_c), (_D, 1.0 / eta_d)):
        _coo(rows, cols, vals, r0 + cells, col(block).ravel(), v)
    _coo(rows, cols, vals, r0 + cells[n:], col(_E)[:-1].ravel(), -1.0)
    rhs = np.zeros((t, n))
    rhs[0] = soc0
    row_lo.append(rhs.ravel()), row_hi.append(rhs.ravel())
    r0 += tn
    # P2P per interval: sum r = keep * sum s
    per_t = np.repeat(r0 + np.arange(t), n)
    _coo(rows, cols, vals, per_t, col(_R).ravel(), 1.0)
    _coo(rows, cols, vals, per_t, col(_S).ravel(), -keep)
    row_lo.append(np.zeros(t)), row_hi.append(np.zeros(t))
    r0 += t

    # --- binaries: x1 <= ub1 * z, x2 <= ub2 * (1 - z)
    pairs = []
    arb = np.zeros(0, dtype=np.int64)
    if meter_binaries:
        # export credit above the import price, at homes that can both import and export there
        arb = np.flatnonzero(((exp > imp)[:, None] & (gi_ub > 0) & (ge_ub > 0)).ravel())
        if arb.size:
            pairs.append((_GI * tn + arb, _GE * tn + arb, gi_ub.ravel()[arb], ge_ub.ravel()[arb]))
    if cd_cells is not None and cd_cells.size:
        ub_c, ub_d = upper[_C].ravel()[cd_cells], upper[_D].ravel()[cd_cells]
        pairs.append((_C * tn + cd_cells, _D * tn + cd_cells, ub_c, ub_d))
    num_bin = sum(p[0].size for p in pairs)
    num_col = len(BLOCKS) * tn + num_bin
    z0 = len(BLOCKS) * tn
    for x1, x2, ub1, ub2 in pairs:
        k = x1.size
        z = z0 + np.arange(k)
        _coo(rows, cols, vals, r0 + np.arange(k), x1, 1.0)
        _coo(rows, cols, vals, r0 + np.arange(k), z, -np.broadcast_to(ub1, (k,)))
        row_lo.append(np.full(k, -np.inf)), row_hi.append(np.zeros(k))
        r0 += k
        _coo(rows, cols, vals, r0 + np.arange(k), x2, 1.0)
        _coo(rows, cols, vals, r0 + np.arange(k), z, np.broadcast_to(ub2, (k,)))
        row_lo.append(np.full(k, -np.inf)), row_hi.append(np.broadcast_to(np.asarray(ub2, dtype=float), (k,)).copy())
        r0 += k
        z0 += k

    a = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, num_col)
    )
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = num_col, r0
    lp.col_cost_ = np.concatenate([cost.ravel(), np.zeros(num_bin)])
    lp.col_lower_ = np.concatenate([lower.ravel(), np.zeros(num_bin)])
    lp.col_upper_ = np.concatenate([upper.ravel(), np.ones(num_bin)])
    lp.row_lower_ = np.concatenate(row_lo)
    lp.row_upper_ = np.concatenate(row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = num_col, r0
    if num_bin:
        lp.integrality_ = [highspy.HighsVarType.kContinuous] * (len(BLOCKS) * tn) + [highspy.HighsVarType.kInteger] * num_bin
    return ScheduleModel(lp, num_bin, arb, t, n)


class ModelSolution(NamedTuple):
    """What HiGHS returned: the columns, its model status, the relative gap and the objective's bound."""

    x: np.ndarray
    status: str
    gap: float
    bound: float



def household_model(problem: ScheduleProblem, k: int) -> tuple[ScheduleProblem, ScheduleModel]:
    """Home ``k``'s problem and model with its P2P rows freed: its pool flows are priced, not balanced.

    The home's own P2P row is the community's coupling row restricted to it; a decomposition
    (Lagrangian bound, per-home subproblems) frees it and prices the flows in the objective.
    """
    home = problem.household(k)
    model = build_model(home)
    lower, upper = np.asarray(model.lp.row_lower_), np.asarray(model.lp.row_upper_)
    rows = model.rows(RowBlock.P2P)
    lower[rows], upper[rows] = -np.inf, np.inf
    model.lp.row_lower_, model.lp.row_upper_ = lower, upper
    return home, model

def solve_model(
    model: ScheduleModel, mip_rel_gap: float, budget: SearchBudget = SearchBudget(), highs_options: Mapping[str, Any] | None = None
) -> ModelSolution:
    """Run HiGHS on ``model``; return the primal solution, model status, relative gap and objective bound.

    ``highs_options``: further HiGHS options (e.g. the decomposition's, which switch off the
    primal heuristics for its small MILPs).

    Raises :class:`ScheduleError` unless the model is solved to optimality, or a MILP stopped
    by the budget's time or node limit holds a feasible solution.
    """
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if model.num_binaries:
        h.setOptionValue("mip_rel_gap", mip_rel_gap)
        h.setOptionValue("mip_feasibility_tolerance", 1e-9)  # z = 1e-7 would let gi and ge both leak
    budget.apply(h)
    for key, value in (highs_options or {}).items():
        h.setOptionValue(key, value)
    h.passModel(model.lp)
    h.run()
    status = h.getModelStatus()
    name = h.modelStatusToString(status)
    info = h.getInfo()
    feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
    # a node limit ends HiGHS's search with "Solution limit reached"
    cut_off = status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kSolutionLimit)
    if not (status == highspy.HighsModelStatus.kOptimal or (cut_off and feasible and model.num_binaries)):
        raise ScheduleError(f"HiGHS found no optimal schedule: model status {name!r}")
    if model.num_binaries:
        gap, bound = float(info.mip_gap), float(info.mip_dual_bound)
    else:
        gap, bound = 0.0, float(info.objective_function_value)
    return ModelSolution(np.asarray(h.getSolution().col_value), name, gap, bound)


def simultaneous_cells(x: np.ndarray, tn: int) -> np.ndarray:
    """Cells (flat interval-home offsets) where the solution both charges and discharges."""
    both = np.minimum(x[_C * tn : (_C + 1) * tn], x[_D * tn : (_D + 1) * tn])
    return np.flatnonzero(both > SIMULTANEOUS_TOL_KWH)

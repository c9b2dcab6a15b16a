"""A lower bound on the community's optimal schedule cost that the MILP's own bound cannot reach.

Why: in weeks with many NBT evenings (export credit above the import price) HiGHS finds the
schedule quickly but proves it slowly. Its bound starts from the LP relaxation, which values each
evening interval's discharge at the average of self-use and export (the chord of the import-xor-
export choice); the true value is a knapsack per home and evening, and closing that by branching
on the whole community's model takes minutes.

How: the only constraint that couples the homes is each interval's P2P balance
``sum r = (1 - loss) sum s``. Pricing it instead (Lagrangian relaxation with multipliers ``y_t``)
splits the problem into one MILP per home (336 intervals and a few dozen binaries for a week),
which HiGHS solves exactly in a fraction of a second. For any prices, the sum of the homes' optimal
costs is a lower bound on the community's optimum (weak duality); the LP relaxation's duals of the
balance rows are good prices (on the September week below, :func:`maximize_dual` found no better
ones in 18 tries). The binaries are then handled exactly home by home, and only the coupling is
relaxed; what the bound still misses is the duality gap of that pricing.

The homes' import/export modes at those prices also make a schedule: fixed in the community's
model, they leave an LP whose optimum is feasible for the env. How close bound and schedule come
is measured in docs/oracle.md (``benchmarks/oracle_gap.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from policies.schedule_model import (
    RowBlock,
    ScheduleError,
    ScheduleModel,
    ScheduleProblem,
    SearchBudget,
    Var,
    household_model,
    simultaneous_cells,
    solve_model,
)


@dataclass(frozen=True)
class LagrangianRound:
    """One round: the bound, and the schedule made from the homes' modes (``x`` None if none)."""

    bound: float  # lower bound on the community model's objective (its constant left out, as HiGHS's)
    x: np.ndarray | None  # the community model's columns with the modes fixed
    objective: float  # that schedule's objective (inf without one)
    prices_usd_per_kwh: np.ndarray  # (T,) multipliers of the P2P balance, HiGHS's sign convention


def p2p_balance_duals(model: ScheduleModel, solver: str = "simplex") -> np.ndarray:
    """Duals ``(T,)`` of the P2P balance rows in the LP relaxation of ``model`` (HiGHS's sign convention).

    ``solver``: HiGHS's ``simplex``, or ``ipm`` (interior point, no crossover: faster on large models,
    duals as good for pricing).
    """
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", solver)
    if solver == "ipm":
        h.setOptionValue("run_crossover", "off")
    integrality = model.lp.integrality_
    model.lp.integrality_ = []  # passModel copies: the caller's model keeps its binaries
    try:
        h.passModel(model.lp)
    finally:
        model.lp.integrality_ = integrality
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise ScheduleError(f"the LP relaxation did not solve: {h.modelStatusToString(h.getModelStatus())}")
    return np.asarray(h.getSolution().row_dual)[model.rows(RowBlock.P2P)]


@dataclass(frozen=True)
class HomeSolutions:
    """Each home's exact MILP at one set of P2P prices (see :func:`home_subproblems`)."""

    bound: float  # sum of home_bounds: a lower bound on the community model's objective
    home_bounds: np.ndarray  # (N,) each home's proven optimum of its priced problem
    modes: np.ndarray  # (T, N) import mode: 1.0 importing, 0.0 exporting, NaN where no binary
    p2p_net_kwh: np.ndarray  # (T, N) received - (1 - loss) * sent: the home's share of the relaxed rows


def home_subproblems(
    problem: ScheduleProblem, prices: np.ndarray, budget: SearchBudget = SearchBudget(), cap_p2p: bool = False,
) -> HomeSolutions:
    """Solve each home's MILP with the P2P balance priced at ``prices``.

    ``prices`` follow HiGHS's convention (objective ``c - A^T y``): received energy costs ``-y_t``
    per kWh and sent energy earns ``-(1 - loss) y_t``. Each home contributes its proven bound (its
    optimum, or HiGHS's bound if ``budget`` cuts it off); their sum is the Lagrangian bound
    (weak duality).

    With ``cap_p2p`` a home sends at most its largest net surplus and receives at most its largest
    net need per interval. Some optimal community schedule keeps to these caps (energy passed on
    through a home, or received and exported, only loses the 5 %: the sender could export it
    itself at the same credit), so the bound stays valid; without them, prices away from the LP
    duals can make sending and receiving at once pay without limit (an unbounded home).
    """
    t, n = problem.num_intervals, problem.num_households
    keep = 1.0 - problem.params.loss
    home_bounds = np.zeros(n)
    modes = np.full((t, n), np.nan)
    p2p_net = np.zeros((t, n))
    for k in range(n):
        home, model = household_model(problem, k)  # its P2P row freed, its pool flows priced
        col = model.columns
        if cap_p2p:
            col_upper = np.asarray(model.lp.col_upper_).copy()
            need = np.maximum(home.load_kwh[:, 0] - home.pv_kwh[:, 0] + col_upper[col(Var.CHARGE)] + col_upper[col(Var.CURTAILED)], 0.0)
            surplus = np.maximum(home.pv_kwh[:, 0] - home.load_kwh[:, 0] + col_upper[col(Var.DISCHARGE)], 0.0)
            col_upper[col(Var.RECEIVED)] = np.minimum(col_upper[col(Var.RECEIVED)], need)
            col_upper[col(Var.SENT)] = np.minimum(col_upper[col(Var.SENT)], surplus)
            model.lp.col_upper_ = col_upper
        cost = np.asarray(model.lp.col_cost_).copy()
        cost[col(Var.RECEIVED)] -= prices
        cost[col(Var.SENT)] += keep * prices
        model.lp.col_cost_ = cost
        x, _, _, home_bounds[k] = solve_model(model, 1e-9, budget)
        first_z = model.first_binary
        modes[model.meter_cells, k] = np.round(x[first_z : first_z + model.meter_cells.size])
        p2p_net[:, k] = x[col(Var.RECEIVED)] - keep * x[col(Var.SENT)]
    return HomeSolutions(float(home_bounds.sum()), home_bounds, modes, p2p_net)


def fixed_mode_schedule(
    model: ScheduleModel, modes: np.ndarray, budget: SearchBudget = SearchBudget()
) -> tuple[np.ndarray, float, float]:
    """The community model's optimum with its import-xor-export binaries fixed to ``modes`` ``(T, N)``.

    Cells where ``modes`` is NaN keep their binary: the model is then a smaller MILP (a
    neighbourhood of a schedule), otherwise an LP. Returns the columns, the objective and its
    proven lower bound (equal to the objective once solved to optimality). ``model`` is left as it was.
    """
    if model.num_binaries != model.meter_cells.size:
        raise ValueError("fixed_mode_schedule fixes the meter binaries only; this model has others too")
    z = modes.ravel()[model.meter_cells]
    fixed = ~np.isnan(z)
    first_z = model.lp.num_col_ - model.num_binaries
    lower, upper = np.asarray(model.lp.col_lower_), np.asarray(model.lp.col_upper_)
    fixed_lo, fixed_hi = lower.copy(), upper.copy()
    fixed_lo[first_z:][fixed] = fixed_hi[first_z:][fixed] = z[fixed]
    model.lp.col_lower_, model.lp.col_upper_ = fixed_lo, fixed_hi
    try:
        x, _, _, bound = solve_model(model, 1e-9, budget)
    finally:
        model.lp.col_lower_, model.lp.col_upper_ = lower, upper
    return x, float(np.dot(model.lp.col_cost_, x)), float(bound)


def lagrangian_round(model: ScheduleModel, problem: ScheduleProblem, budget: SearchBudget = SearchBudget()) -> LagrangianRound:
    """Duals of ``model``'s LP relaxation -> homes' MILPs (bound, modes) -> the fixed-mode schedule.

    ``model`` is ``problem``'s (:func:`~policies.schedule_model.build_model` with meter binaries
    and no others). The schedule is dropped (``x`` None) if it charges and discharges a battery in
    one interval.
    """
    prices = p2p_balance_duals(model)
    homes = home_subproblems(problem, prices, budget)
    x, objective, _ = fixed_mode_schedule(model, homes.modes, budget)
    if simultaneous_cells(x, problem.num_intervals * problem.num_households).size:
        x, objective = None, np.inf
    return LagrangianRound(homes.bound, x, objective, prices)


@dataclass(frozen=True)
class DualAscent:
    """The Lagrangian bound maximised over the P2P prices (see :func:`maximize_dual`)."""

    bound: float  # the best bound found: a valid lower bound on the community model's objective
    prices_usd_per_kwh: np.ndarray  # (T,) where it was found
    bounds: tuple[float, ...]  # the bound at every evaluated price vector, in order
    promise: float  # how much more the cutting-plane model still promised within its box at the end


def maximize_dual(
    problem: ScheduleProblem, prices0: np.ndarray, evaluations: int = 20, box_usd_per_kwh: float = 0.005,
    rel_tol: float = 1e-7, budget: SearchBudget = SearchBudget(),
) -> DualAscent:
    """Search for P2P prices with a higher Lagrangian bound than ``prices0``: box-step cutting planes.

    The bound is a concave, piecewise-linear function of the prices. Each evaluation (one MILP per
    home, :func:`home_subproblems` with ``cap_p2p``) gives its value and, from the homes' P2P flows,
    a supergradient; the cutting-plane model they make is maximised within a box around the best
    prices so far (a proximal bundle method). The box grows after a step that raised the bound and
    shrinks after one that did not. Stops after ``evaluations`` or when the model promises less
    than ``rel_tol`` (relative) more within its box. Costs one :func:`home_subproblems` per
    evaluation: meant for checking how good a bound is (``benchmarks/oracle_gap.py``), not for
    every oracle solve.
    """
    t, n = problem.num_intervals, problem.num_households
    master = highspy.Highs()
    master.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    center = np.asarray(prices0, dtype=np.float64).copy()
    none_i, none_v = np.zeros(0, dtype=np.int32), np.zeros(0)
    for j in range(t):  # columns: the prices y_t, then one epigraph variable theta_k per home
        master.addCol(0.0, center[j] - box_usd_per_kwh, center[j] + box_usd_per_kwh, 0, none_i, none_v)
    for _ in range(n):
        master.addCol(-1.0, -inf, inf, 0, none_i, none_v)  # maximise sum theta

    def evaluate(prices: np.ndarray) -> float:
        homes = home_subproblems(problem, prices, budget, cap_p2p=True)
        for k in range(n):  # theta_k <= bound_k + (prices - y) . a_k, a_k the home's P2P flows
            a = homes.p2p_net_kwh[:, k]
            index = np.append(np.arange(t), t + k).astype(np.int32)
            master.addRow(-inf, homes.home_bounds[k] + float(prices @ a), t + 1, index, np.append(a, 1.0))
        return homes.bound

    best = evaluate(center)
    bounds, box, promise = [best], box_usd_per_kwh, np.inf
    while len(bounds) < evaluations:
        master.changeColsBounds(t, np.arange(t, dtype=np.int32), center - box, center + box)
        master.run()
        if master.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise ScheduleError(f"the cutting-plane model did not solve: {master.modelStatusToString(master.getModelStatus())}")
        predicted = -master.getInfo().objective_function_value
        promise = predicted - best
        if promise <= rel_tol * abs(best):
            break
        trial = np.asarray(master.getSolution().col_value)[:t]
        value = evaluate(trial)
        bounds.append(value)
        if value > best + 0.1 * promise:  # a step worth taking: move the box there, widen it
            center, best, box = trial, value, box * 1.5
        else:  # the model was too optimistic this far out: its new cuts stay, the box narrows
            box *= 0.6
    return DualAscent(best, center, tuple(bounds), float(promise))

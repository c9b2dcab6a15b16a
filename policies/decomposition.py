"""The oracle for large communities: one small MILP per home, coordinated by the P2P price.

Why: the only constraint that couples the homes of a week is each interval's P2P balance
``sum r = (1 - loss) sum s``. One model of the whole community grows to millions of columns at
1,000 homes; priced instead (Lagrangian relaxation), the week splits into one exact MILP per home
(336 intervals, a few dozen binaries), which cost the same whatever N is.

How (docs/oracle.md has the argument):

* **Prices from a sample.** At the community's optimum, a kWh received through the pool is worth
  the import price in an interval where the community still imports after the pool (it is
  *short*), and the sellers' break-even ``export / (1 - loss)`` where it still exports (*long*);
  only an interval where pool supply and demand balance takes a price in between. Which regime an
  interval is in is the community's, and a sample of homes spread over it shares it: the prices
  are the P2P duals of a sample's LP relaxation (a model of the exact oracle's size).
* **A proven bound.** For any prices the homes' exact optima sum to a lower bound on the
  community's optimum (weak duality).
* **A schedule.** Each home's battery schedule at those prices is a feasible community schedule
  (the env's pool clears every net position); then each home in turn re-plans against the others'
  fixed positions (:func:`best_response_pass`: block coordinate descent on the community's exact
  cost, each step an exact MILP). Every candidate is replayed through the env, the cheapest kept:
  there is always a schedule, with its exact cost and its gap to the bound.

Every step costs one MILP per home (or the sample's LP), so a week's time grows linearly with N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.schedule_model import RowBlock, ScheduleProblem, SearchBudget, Var, build_model, household_model, solve_model

# Small MILPs: HiGHS's primal heuristics and restarts cost more than they save here (measured:
# a third of the time, the same proven optima; docs/oracle.md).
HOME_MIP_OPTIONS = {
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_zi_round": False,
    "mip_heuristic_run_shifting": False,
}


@dataclass(frozen=True)
class PricedHomes:
    """Every home's optimum at one set of P2P prices."""

    bound: float  # sum of the homes' proven bounds: a lower bound on the community model's objective
    battery_ac_kwh: np.ndarray  # (T, N) each home's schedule, + charges
    net_kwh: np.ndarray  # (T, N) each home's meter position before the pool, + draws


@dataclass(frozen=True)
class WeekDecomposition:
    """What :func:`decompose_week` found: a proven bound and candidate schedules."""

    bound: float  # a lower bound on the model's objective (its constant tp * soc0 left out)
    candidates: tuple[np.ndarray, ...]  # battery schedules (T, N): the homes' at the prices, then each pass's
    received_price_usd_per_kwh: np.ndarray  # (T,) the price of a kWh received the bound was found at


def regime_prices(problem: ScheduleProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(low, high, open)``: each interval's price bracket for a kWh received, and where the pool can trade."""
    keep = 1.0 - problem.params.loss
    low = problem.export_usd_per_kwh / keep  # the sellers' break-even
    high = problem.import_usd_per_kwh.astype(np.float64).copy()
    is_open = (low < high) & (problem.params.mechanism != "none")
    return low, high, is_open


def priced_homes(problem: ScheduleProblem, received_price: np.ndarray, budget: SearchBudget = SearchBudget()) -> PricedHomes:
    """Each home's exact MILP when a kWh from the pool costs ``received_price`` and one sent earns ``(1 - loss)`` of it.

    Each home sends at most its largest net surplus and receives at most its largest net need per
    interval (energy only passed through a home loses the 5 %; some optimal community schedule
    keeps to these caps, so the bound stays valid, as in :func:`policies.lagrangian.home_subproblems`).
    """
    t, n = problem.num_intervals, problem.num_households
    keep = 1.0 - problem.params.loss
    bound = 0.0
    battery, net = np.zeros((t, n)), np.zeros((t, n))
    for k in range(n):
        home, model = household_model(problem, k)
        col_upper = np.asarray(model.lp.col_upper_)
        load, pv = home.load_kwh[:, 0], home.pv_kwh[:, 0]
        need = np.maximum(load - pv + col_upper[model.columns(Var.CHARGE)] + col_upper[model.columns(Var.CURTAILED)], 0.0)
        surplus = np.maximum(pv - load + col_upper[model.columns(Var.DISCHARGE)], 0.0)
        _, home_bound, battery[:, k], net[:, k] = _solve_home(model, home, received_price, keep * received_price, need, surplus, budget)
        bound += home_bound
    return PricedHomes(bound, battery, net)


def _solve_home(model, home: ScheduleProblem, received_cost: np.ndarray, sent_revenue: np.ndarray,
                received_cap: np.ndarray, sent_cap: np.ndarray, budget: SearchBudget) -> tuple[float, float, np.ndarray, np.ndarray]:
    """One home's MILP with its pool flows priced and capped; ``(objective, bound, battery_ac, net)`` ``(T,)``."""
    col = model.columns
    col_upper = np.asarray(model.lp.col_upper_).copy()
    col_upper[col(Var.RECEIVED)] = np.minimum(col_upper[col(Var.RECEIVED)], received_cap)
    col_upper[col(Var.SENT)] = np.minimum(col_upper[col(Var.SENT)], sent_cap)
    model.lp.col_upper_ = col_upper
    cost = np.asarray(model.lp.col_cost_).copy()
    cost[col(Var.RECEIVED)] += received_cost
    cost[col(Var.SENT)] -= sent_revenue
    model.lp.col_cost_ = cost
    x, _, _, bound = solve_model(model, 1e-9, budget, HOME_MIP_OPTIONS)
    b = model.block(x, Var.CHARGE)[:, 0] - model.block(x, Var.DISCHARGE)[:, 0]
    net = home.load_kwh[:, 0] - home.pv_kwh[:, 0] + model.block(x, Var.CURTAILED)[:, 0] + b
    return float(np.dot(model.lp.col_cost_, x)), float(bound), b, net


def best_response_pass(problem: ScheduleProblem, battery_ac_kwh: np.ndarray, net_kwh: np.ndarray,
                       budget: SearchBudget = SearchBudget()) -> tuple[np.ndarray, np.ndarray]:
    """One Gauss-Seidel pass: each home in turn re-plans against the others' fixed meter positions.

    With the others fixed, the community's cost of home ``k``'s net position is what the home's own
    model says once its pool flows are priced by the others' balance: where the others leave the
    pool long by ``E`` kWh, up to ``E`` received costs the sellers' break-even (it would otherwise
    be exported); where they leave it short by ``E``, up to ``E / (1 - loss)`` sent earns
    ``(1 - loss)`` times the import price (it displaces imports); beyond, the grid's prices. Each
    home's MILP is exact, so no step raises the community's cost (block coordinate descent).
    """
    keep = 1.0 - problem.params.loss
    low, high, is_open = regime_prices(problem)
    battery, net = battery_ac_kwh.copy(), net_kwh.copy()
    demand = np.maximum(net, 0.0).sum(axis=1)
    supply = np.maximum(-net, 0.0).sum(axis=1)
    for k in range(problem.num_households):
        demand -= np.maximum(net[:, k], 0.0)  # the others' pool
        supply -= np.maximum(-net[:, k], 0.0)
        excess = keep * supply - demand  # > 0: the others' pool is long
        received_cap = np.where(is_open, np.maximum(excess, 0.0), 0.0)
        sent_cap = np.where(is_open, np.maximum(-excess, 0.0) / keep, 0.0)
        home, model = household_model(problem, k)
        _, _, battery[:, k], net[:, k] = _solve_home(model, home, low, keep * high, received_cap, sent_cap, budget)
        demand += np.maximum(net[:, k], 0.0)
        supply += np.maximum(-net[:, k], 0.0)
    return battery, net


def sample_indices(num_households: int, sample: int) -> np.ndarray:
    """``sample`` homes spread evenly over ``num_households`` (all when there are no more): deterministic."""
    if sample >= num_households:
        return np.arange(num_households)
    return np.unique(np.linspace(0, num_households - 1, sample).round().astype(np.int64))


def sample_prices(problem: ScheduleProblem, sample: int) -> np.ndarray:
    """The price ``(T,)`` of a kWh received: the P2P duals of the LP relaxation of ``sample`` homes.

    The regime of an interval (short, long or balanced) is the community's, which a sample spread
    over the homes shares; a model of the sample is as fast as the exact oracle's at that size.
    The bound is valid for any prices; a sample only makes it less tight (docs/oracle.md measures how much).
    """
    from policies.lagrangian import p2p_balance_duals

    low, high, is_open = regime_prices(problem)
    prices = -p2p_balance_duals(build_model(problem.households(sample_indices(problem.num_households, sample))), solver="ipm")
    return np.where(is_open, np.clip(prices, low, high), high)


def group_best_response_pass(problem: ScheduleProblem, battery_ac_kwh: np.ndarray, net_kwh: np.ndarray, group_size: int = 50,
                             budget: SearchBudget = SearchBudget()) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`best_response_pass`, but groups of ``group_size`` homes re-plan together: their own
    community model (their pool inside), plus the others' fixed pool outside it.

    The group may draw from the others' surplus (``E`` kWh where they are long, at the sellers'
    break-even: it would otherwise be exported) and cover their deficit (where they are short, up
    to ``E / (1 - loss)`` sent, earning ``(1 - loss)`` times the import price). A group's model
    solved worse than its current plan (a budget cut it off) keeps the current plan.
    """
    import highspy

    keep = 1.0 - problem.params.loss
    low, high, is_open = regime_prices(problem)
    battery, net = battery_ac_kwh.copy(), net_kwh.copy()
    n = problem.num_households
    t = problem.num_intervals
    for group in np.array_split(np.arange(n), max(1, int(np.ceil(n / group_size)))):
        others = np.ones(n, dtype=bool)
        others[group] = False
        demand = np.maximum(net[:, others], 0.0).sum(axis=1)
        supply = np.maximum(-net[:, others], 0.0).sum(axis=1)
        excess = keep * supply - demand  # > 0: the others' pool is long
        sub = problem.households(group)
        model = build_model(sub)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if model.num_binaries:
            h.setOptionValue("mip_rel_gap", 1e-6)
            h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        budget.apply(h)
        h.passModel(model.lp)
        rows = np.arange(model.rows(RowBlock.P2P).start, model.rows(RowBlock.P2P).stop, dtype=np.int32)
        inflow_ub = np.where(is_open, np.maximum(excess, 0.0), 0.0)
        outflow_ub = np.where(is_open, np.maximum(-excess, 0.0) / keep, 0.0)
        # row: sum r - keep sum s = inflow - keep outflow, i.e. columns -1 (inflow) and +keep (outflow)
        for cost, upper, coef in ((low, inflow_ub, -1.0), (-keep * high, outflow_ub, keep)):
            h.addCols(t, cost, np.zeros(t), upper, t, np.arange(t, dtype=np.int32), rows, np.full(t, coef))
        h.run()
        status = h.getModelStatus()
        if h.getInfo().primal_solution_status != 2 and status != highspy.HighsModelStatus.kOptimal:
            continue  # no plan found within the budget: keep the current one
        x = np.asarray(h.getSolution().col_value)[: model.lp.num_col_]
        new_b = model.block(x, Var.CHARGE) - model.block(x, Var.DISCHARGE)
        new_net = sub.load_kwh - sub.pv_kwh + model.block(x, Var.CURTAILED) + new_b
        trial_b, trial_net = battery.copy(), net.copy()
        trial_b[:, group], trial_net[:, group] = new_b, new_net
        if community_objective(problem, trial_b, trial_net) < community_objective(problem, battery, net):
            battery, net = trial_b, trial_net
    return battery, net


def decompose_week(problem: ScheduleProblem, sample: int = 150, passes: int = 2, budget: SearchBudget = SearchBudget(),
                   group_size: int = 100) -> WeekDecomposition:
    """Prices from a sample's LP (:func:`sample_prices`), one exact MILP per home at those prices (the
    bound, and a first schedule), then ``passes`` of :func:`best_response_pass` and, with
    ``group_size``, one :func:`group_best_response_pass`. ``candidates``: the first schedule and
    every pass's.
    """
    price = sample_prices(problem, sample)
    homes = priced_homes(problem, price, budget)
    battery, net = homes.battery_ac_kwh, homes.net_kwh
    candidates = [battery]
    for _ in range(passes):
        battery, net = best_response_pass(problem, battery, net, budget)
        candidates.append(battery)
    if group_size:
        battery, net = group_best_response_pass(problem, battery, net, group_size, budget)
        candidates.append(battery)
    return WeekDecomposition(homes.bound, tuple(candidates), price)


def community_objective(problem: ScheduleProblem, battery_ac_kwh: np.ndarray, net_kwh: np.ndarray) -> float:
    """The community model's objective (its constant left out) of homes at these battery schedules and meter positions.

    The pool clears every net position as the env does (all that can be matched is matched); wear
    and the terminal credit of the stored energy follow the battery schedule.
    """
    keep = 1.0 - problem.params.loss
    _, _, is_open = regime_prices(problem)
    demand = np.maximum(net_kwh, 0.0).sum(axis=1)
    supply = np.maximum(-net_kwh, 0.0).sum(axis=1)
    received = np.where(is_open, np.minimum(keep * supply, demand), 0.0)
    grid_import = demand - received
    grid_export = supply - received / keep
    bp = problem.params.battery
    stored = np.where(battery_ac_kwh >= 0, battery_ac_kwh * bp.eta_charge, battery_ac_kwh / bp.eta_discharge).sum(axis=0)
    return float(problem.import_usd_per_kwh @ grid_import - problem.export_usd_per_kwh @ grid_export
                 + bp.degradation_cost_usd_per_kwh * np.abs(battery_ac_kwh).sum()
                 - problem.terminal_price_usd_per_kwh * (problem.soc0_kwh + stored).sum())

"""The Lagrangian bound on the oracle: valid (never above the optimum) and tighter than the LP relaxation."""

import numpy as np
import pytest

from energy_env import core
from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from policies import lagrangian
from policies import schedule_lp as lp
from policies.schedule_lp import solve_schedule
from policies.schedule_model import ScheduleModel, ScheduleProblem, build_model, household_params, solve_model

NEM3 = {"nbt_vintage": 2024, "nbt_calendar_year": 2024}  # 3.90 $/kWh on September weekday evenings


@pytest.fixture(scope="module")
def nem3_days():
    com = build_community(make_config(num_households=6, tariff=NEM3))
    start = int(np.flatnonzero(com.dataset.dates == np.datetime64("2025-09-08"))[0]) * INTERVALS_PER_DAY
    length = 2 * INTERVALS_PER_DAY
    params, data = com.params, com.data
    sl = slice(start, start + length)
    problem = ScheduleProblem(params, data.load_kwh[sl].astype(float), data.pv_kwh[sl].astype(float), data.import_usd_per_kwh[sl],
                              data.export_usd_per_kwh[sl], params.battery.initial_soc_kwh,
                              float(core.terminal_price(params, data, np.array(start + length - 1))))
    return com, start, length, problem


def test_home_params_slices_the_battery(nem3_days):
    com = nem3_days[0]
    one = household_params(com.params, 2)
    assert one.battery.capacity_kwh.shape == (1,) and one.battery.capacity_kwh[0] == com.params.battery.capacity_kwh[2]
    assert one.battery.usable_kwh[0] == com.params.battery.usable_kwh[2]  # derived fields recomputed
    assert one.loss == com.params.loss


def test_bound_lies_between_the_lp_relaxation_and_the_optimum(nem3_days):
    com, start, length, problem = nem3_days
    t, n = problem.num_intervals, problem.num_households
    exact = solve_schedule(com, start, length, mip_rel_gap=1e-9)
    assert exact.status == "Optimal" and exact.num_binaries > 0
    tp_soc0 = problem.terminal_constant_usd
    optimum = exact.lower_bound_usd - tp_soc0  # the raw objective's proven optimum

    relaxed = build_model(problem)
    relaxed.lp.integrality_ = []
    lp_bound = solve_model(ScheduleModel(relaxed.lp, 0, num_intervals=t, num_households=n), 1e-9).bound
    prices = lagrangian.p2p_balance_duals(build_model(problem))
    assert prices.shape == (t,) and np.isfinite(prices).all()
    homes = lagrangian.home_subproblems(problem, prices)
    bound, modes = homes.bound, homes.modes
    assert bound <= optimum + 1e-7 * abs(optimum)  # weak duality: a valid lower bound
    assert bound > lp_bound + 1e-3  # and a strictly better one than the LP relaxation here
    assert bound == pytest.approx(homes.home_bounds.sum(), rel=1e-12) and homes.p2p_net_kwh.shape == (t, n)
    # any prices give a valid bound, e.g. none at all (P2P free of charge between homes)
    assert lagrangian.home_subproblems(problem, np.zeros(t)).bound <= optimum + 1e-7 * abs(optimum)
    # capping each home's P2P flows at its largest net surplus/need keeps the bound valid, and
    # never lowers it (a smaller feasible set per home)
    capped = lagrangian.home_subproblems(problem, prices, cap_p2p=True).bound
    assert bound - 1e-7 * abs(bound) <= capped <= optimum + 1e-7 * abs(optimum)

    # the homes' modes: 0/1 exactly at the binary cells, NaN elsewhere; fixed, they give a schedule
    model = build_model(problem)
    cells = np.zeros(t * n, dtype=bool)
    cells[model.meter_cells] = True
    assert np.isnan(modes.ravel()[~cells]).all() and set(np.unique(modes.ravel()[cells])) <= {0.0, 1.0}
    x, objective, _ = lagrangian.fixed_mode_schedule(model, modes)
    assert objective >= optimum - 1e-7 * abs(optimum)  # a feasible schedule: never below the optimum
    assert np.asarray(model.lp.col_lower_)[-1] == 0.0 and np.asarray(model.lp.col_upper_)[-1] == 1.0  # model restored
    round_ = lagrangian.lagrangian_round(model, problem)
    assert round_.bound == pytest.approx(bound, rel=1e-9) and round_.objective == pytest.approx(objective, rel=1e-9)


def test_fixed_modes_of_the_optimum_give_the_optimum(nem3_days):
    com, start, length, problem = nem3_days
    t, n = problem.num_intervals, problem.num_households
    model = build_model(problem)
    x, _, _, optimum = solve_model(model, 1e-9)
    modes = np.full((t, n), np.nan)
    modes.ravel()[model.meter_cells] = np.round(x[model.first_binary :])
    assert lagrangian.fixed_mode_schedule(model, modes)[1] == pytest.approx(optimum, rel=1e-9)


def test_free_cells_make_a_neighbourhood_that_is_solved_exactly(nem3_days):
    com, start, length, problem = nem3_days
    t, n = problem.num_intervals, problem.num_households
    model = build_model(problem)
    _, _, _, optimum = solve_model(model, 1e-9)
    importing = np.ones((t, n))  # every meter held in import mode: a poor schedule
    poor = lagrangian.fixed_mode_schedule(model, importing)[1]
    assert poor > optimum + 1e-3
    first_day = importing.copy()
    first_day[: t // 2] = np.nan  # the first day's binaries free again
    _, better, bound = lagrangian.fixed_mode_schedule(model, first_day)
    assert optimum - 1e-7 * abs(optimum) <= better < poor and bound == pytest.approx(better, rel=1e-7)
    # every cell free: the community's MILP itself
    assert lagrangian.fixed_mode_schedule(model, np.full((t, n), np.nan))[1] == pytest.approx(optimum, rel=1e-7)


def test_dual_ascent_never_lowers_the_bound_and_stays_valid(nem3_days):
    com, start, length, problem = nem3_days
    t, n = problem.num_intervals, problem.num_households
    optimum = solve_model(build_model(problem), 1e-9).bound
    # start far from good prices (P2P free of charge) so that there is something to climb
    start_prices = np.zeros(t)
    first = lagrangian.home_subproblems(problem, start_prices, cap_p2p=True).bound
    ascent = lagrangian.maximize_dual(problem, start_prices, evaluations=6, box_usd_per_kwh=0.05)
    assert ascent.bounds[0] == pytest.approx(first, rel=1e-12) and len(ascent.bounds) <= 6
    assert ascent.bound == max(ascent.bounds) and ascent.bound > first + 1e-3
    assert ascent.bound <= optimum + 1e-7 * abs(optimum)  # still weak duality
    assert ascent.prices_usd_per_kwh.shape == (t,) and ascent.promise >= 0.0


def test_schedule_reports_where_its_bound_comes_from(nem3_days):
    com, start, length, _ = nem3_days
    s = solve_schedule(com, start, length)
    assert s.bound_method == "highs" and s.mip_gap <= 1e-6  # closed by HiGHS: no Lagrangian needed
    # the bound includes the tie-break costs (1e-6 $/kWh of throughput and curtailment); the cost does not
    tie_breaks = lp.TIE_BREAK_THROUGHPUT_USD_PER_KWH * (np.abs(s.battery_ac_kwh).sum() + s.curtailed_kwh.sum())
    assert s.lower_bound_usd <= s.community_cost_usd + tie_breaks + 1e-9


def test_a_stopped_search_is_completed_by_the_lagrangian_round(nem3_days, monkeypatch):
    """As when HiGHS stops at its time limit with a poor schedule and a loose bound (simulated: all
    meters held in import mode, and the bound lowered by $10)."""
    com, start, length, problem = nem3_days
    exact = solve_schedule(com, start, length)
    real_solve = lp.solve_model
    n = com.num_households

    def stopped_early(model, gap, budget, options=None):  # the first solve: the community's MILP
        monkeypatch.setattr(lp, "solve_model", real_solve)  # every later solve is real
        _, _, _, bound = real_solve(model, gap, budget, options)
        poor, _, _ = lagrangian.fixed_mode_schedule(model, np.ones((length, n)))  # every meter importing
        return poor, "Time limit reached", 0.5, bound - 10.0

    monkeypatch.setattr(lp, "solve_model", stopped_early)
    s = solve_schedule(com, start, length)
    assert lp.solve_model is real_solve
    assert s.bound_method == "lagrangian" and s.schedule_method == "lagrangian" and s.status == "Time limit reached"
    assert exact.lower_bound_usd - 10.0 < s.lower_bound_usd <= exact.lower_bound_usd + 1e-7 * abs(exact.lower_bound_usd)
    assert exact.community_cost_usd - 1e-6 <= s.community_cost_usd < exact.community_cost_usd + 0.05 * abs(exact.community_cost_usd)
    assert 0.0 <= s.mip_gap < 0.5
    assert solve_schedule(com, start, length, lagrangian_bound=False).bound_method == "highs"

    # the Lagrangian schedule is the env's physics: replaying it reproduces its cost
    from policies.optimum import OraclePolicy
    from energy_env.rollout import rollout

    oracle = OraclePolicy()
    oracle.schedules, oracle._starts = [s], np.array([start])
    out = rollout(com, oracle.act, np.array([start]), length)
    assert out["cost_usd"].sum() == pytest.approx(s.community_cost_usd, rel=1e-6)


def test_household_model_frees_only_the_p2p_rows():
    from policies.schedule_model import RowBlock, build_model, household_model
    from policies.schedule_lp import episode_problem

    com = build_community(make_config(num_households=3))
    problem = episode_problem(com, 48 * 10, 48)
    home, model = household_model(problem, 1)
    assert home.num_households == 1
    plain = build_model(home)
    rows = model.rows(RowBlock.P2P)
    lower, upper = np.asarray(model.lp.row_lower_), np.asarray(model.lp.row_upper_)
    assert np.isneginf(lower[rows]).all() and np.isposinf(upper[rows]).all()
    others = np.setdiff1d(np.arange(len(lower)), np.arange(len(lower))[rows])
    np.testing.assert_array_equal(lower[others], np.asarray(plain.lp.row_lower_)[others])
    np.testing.assert_array_equal(upper[others], np.asarray(plain.lp.row_upper_)[others])

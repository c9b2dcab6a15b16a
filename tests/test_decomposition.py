"""The oracle for large communities: a valid bound, a feasible schedule replayed through the env, a reported gap."""

import numpy as np
import pytest

from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from energy_env.data.synthetic import generate_synthetic
from energy_env.rollout import rollout
from policies import decomposition as dec
from policies.executors import map_tasks
from policies.optimum import OraclePolicy
from policies.schedule_lp import episode_problem, solve_schedule

DAYS = INTERVALS_PER_DAY  # one day: the exact optimum to compare with takes a second


@pytest.fixture(scope="module")
def fifty():
    """50 homes, a September day (NEM 3 evenings: binaries) and a January day (an LP)."""
    com = build_community(make_config(num_households=50), dataset=generate_synthetic(50, 2025, 4, num_days=273))
    sept = int(np.flatnonzero(com.dataset.dates == np.datetime64("2025-09-08"))[0]) * INTERVALS_PER_DAY
    return com, [10 * INTERVALS_PER_DAY, sept]


def test_bound_is_valid_and_the_schedule_replays_to_its_cost(fifty):
    com, starts = fifty
    exact = OraclePolicy(method="exact", time_limit_s=60)
    exact.plan(com, np.array(starts), DAYS)
    oracle = OraclePolicy(method="decomposition", sample_households=20, group_households=25, time_limit_s=20)
    schedules = oracle.plan(com, np.array(starts), DAYS)
    out = rollout(com, oracle.act, np.array(starts), DAYS)
    np.testing.assert_allclose(out["cost_usd"].sum(axis=(0, 2)), [s.community_cost_usd for s in schedules], rtol=1e-9)
    assert out["action_clipped_kwh"].max() < 1e-6 and (out["constraint_violation_kwh"] == 0).all()
    for d, e in zip(schedules, exact.schedules):
        assert d.bound_method == d.schedule_method == "decomposition" and d.status == "Decomposed"
        optimum_bound, optimum = e.lower_bound_usd, e.community_cost_usd
        assert d.lower_bound_usd <= optimum + 1e-6 * abs(optimum)  # weak duality
        assert d.community_cost_usd >= optimum_bound - 1e-6 * abs(optimum_bound)  # a feasible schedule
        assert d.mip_gap == pytest.approx(max(d.community_cost_usd - d.lower_bound_usd, 0.0) / abs(d.community_cost_usd))
        saved = com.data.baseline_cost_usd[d.start : d.start + DAYS].sum() - d.lower_bound_usd
        assert d.community_cost_usd - d.lower_bound_usd < 0.02 * saved  # within 2 % of the savings at this size


def test_any_prices_give_a_valid_bound(fifty):
    com, starts = fifty
    problem = episode_problem(com, starts[1], DAYS)
    optimum = solve_schedule(com, starts[1], DAYS, time_limit_s=60).lower_bound_usd - problem.terminal_constant_usd
    low, high, _ = dec.regime_prices(problem)
    for price in (low, high, 0.5 * (low + high)):
        assert dec.priced_homes(problem, price).bound <= optimum + 1e-6 * abs(optimum)


def test_best_responses_never_raise_the_communitys_cost(fifty):
    com, starts = fifty
    problem = episode_problem(com, starts[0], DAYS)
    low, _, _ = dec.regime_prices(problem)
    homes = dec.priced_homes(problem, low)  # poor prices: room to improve
    before = dec.community_objective(problem, homes.battery_ac_kwh, homes.net_kwh)
    b, n = dec.best_response_pass(problem, homes.battery_ac_kwh, homes.net_kwh)
    after = dec.community_objective(problem, b, n)
    b2, n2 = dec.group_best_response_pass(problem, b, n, group_size=25)
    assert dec.community_objective(problem, b2, n2) <= after + 1e-9 <= before + 1e-9
    assert after < before


def test_a_community_above_the_exact_size_is_decomposed_and_an_exact_failure_falls_back(fifty, monkeypatch):
    import policies.optimum as optimum

    com, starts = fifty
    assert OraclePolicy(exact_max_households=49).method_for(50) == "decomposition"
    assert OraclePolicy().method_for(50) == "exact"

    def no_schedule(*args, **kwargs):
        raise optimum.ScheduleError("HiGHS found no optimal schedule: model status 'Time limit reached'")

    monkeypatch.setattr(optimum, "solve_schedule", no_schedule)
    schedules = OraclePolicy(method="exact", sample_households=10, passes=1, group_households=0).plan(com, np.array(starts[:1]), DAYS)
    assert schedules[0].bound_method == "decomposition"  # never nothing where a feasible schedule exists


def test_sample_homes_are_spread_and_deterministic():
    np.testing.assert_array_equal(dec.sample_indices(10, 20), np.arange(10))
    idx = dec.sample_indices(1000, 150)
    assert len(idx) == 150 and idx[0] == 0 and idx[-1] == 999 and (np.diff(idx) > 0).all()
    np.testing.assert_array_equal(idx, dec.sample_indices(1000, 150))


def test_tasks_give_the_same_results_in_processes_and_inline():
    assert map_tasks(abs, [-3, 2, -1], workers=2) == map_tasks(abs, [-3, 2, -1], workers=1) == [3, 2, 1]
    with pytest.raises(ValueError, match="unknown engine"):
        map_tasks(abs, [1], engine="dask")


def test_tasks_run_as_ray_tasks(fifty):
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # else map_tasks starts Ray on every core
    try:
        assert map_tasks(abs, [-3, 2, -1], engine="ray") == [3, 2, 1]
        com, starts = fifty
        kwargs = dict(method="decomposition", sample_households=10, passes=1, group_households=0)
        on_ray = OraclePolicy(engine="ray", **kwargs).plan(com, np.array(starts[:1]), DAYS)
        here = OraclePolicy(**kwargs).plan(com, np.array(starts[:1]), DAYS)
        assert on_ray[0].community_cost_usd == pytest.approx(here[0].community_cost_usd, rel=1e-9)
    finally:
        ray.shutdown()

"""The perfect-foresight LP/MILP and MPC: hand-solved cases, the replay identity, NEM 3 evenings."""

import numpy as np
import pandas as pd
import pytest

from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from energy_env.data.dataset import Dataset
from energy_env.rollout import rollout
from policies.mpc import MPCPolicy, forecast_window
from policies.optimum import OraclePolicy, ScheduleError, solve_schedule
from policies.schedule_lp import episode_problem, solve_problem
from policies.simple import IdlePolicy, SimpleRulePolicy

TOL = 1e-9
ETA = np.sqrt(0.9)
WINTER_OFFPEAK, WINTER_PEAK = 0.46312, 0.49312  # E-TOU-C 2025-01-01
NEM3 = {"nbt_vintage": 2024, "nbt_calendar_year": 2024}  # 3.90 $/kWh on September weekday evenings


def one_day(load, pv, date="2025-03-03"):
    """A hand-made data set of one day (a winter Monday by default), zeros where not given."""
    load, pv = np.asarray(load, dtype=float), np.asarray(pv, dtype=float)
    n = load.shape[1]
    return Dataset(
        name="hand-made", timestamps=pd.date_range(date, periods=INTERVALS_PER_DAY, freq="30min"),
        load_kwh=load, pv_kwh=pv, household_ids=tuple(f"h{i}" for i in range(n)), pv_capacity_kw=np.full(n, 5.0),
    )


def hand_community(load, pv, **cfg):
    ds = one_day(load, pv)
    flat = {"export": "flat", "flat_export_usd_per_kwh": 0.04, "terminal_price_usd_per_kwh": 0.1}
    cfg["tariff"] = {**flat, **cfg.get("tariff", {})}
    return build_community(make_config(num_households=ds.num_households, **cfg), dataset=ds)


def replay(community, starts, length):
    """Oracle schedules and the env's rollout of them."""
    oracle = OraclePolicy()
    oracle.plan(community, starts, length)
    return oracle, rollout(community, oracle.act, starts, length)


def assert_replay_identity(oracle, out):
    env_cost = out["cost_usd"].sum()
    assert env_cost == pytest.approx(oracle.total_cost_usd(), rel=1e-6, abs=1e-9)
    per_episode = out["cost_usd"].sum(axis=(0, 2))
    np.testing.assert_allclose(per_episode, [s.community_cost_usd for s in oracle.schedules], rtol=1e-6, atol=1e-9)
    assert out["action_clipped_kwh"].max() < 1e-6  # the env applied what the oracle planned
    assert not out["action_out_of_box"].any()


def assert_env_invariants(community, out):
    bp, p = community.params.battery, community.params
    lhs = out["load_kwh"] - (out["pv_kwh"] - out["pv_curtailed_kwh"]) + out["battery_ac_kwh"]
    rhs = out["grid_import_kwh"] - out["grid_export_kwh"] + out["p2p_bought_kwh"] - out["p2p_sold_kwh"]
    np.testing.assert_allclose(lhs, rhs, atol=TOL, rtol=0)
    assert (lhs <= p.import_limit_kwh + TOL).all() and (lhs >= -p.export_limit_kwh - TOL).all()
    assert (out["soc_kwh"] >= bp.soc_min_kwh - TOL).all() and (out["soc_kwh"] <= bp.soc_max_kwh + TOL).all()
    assert (out["constraint_violation_kwh"] == 0).all() and not out["action_out_of_box"].any()
    for f in ("grid_import_kwh", "grid_export_kwh", "p2p_bought_kwh", "p2p_sold_kwh", "pv_curtailed_kwh"):
        assert (out[f] >= -TOL).all(), f
    if not bp.charge_from_grid:
        assert (out["battery_ac_kwh"] <= np.maximum(out["pv_kwh"] - out["load_kwh"], 0) + TOL).all()


def day_index(community, date):
    return int(np.flatnonzero(community.dataset.dates == pd.Timestamp(date))[0])


# ------------------------------------------------------------------------------------------------
# (a) hand-solved cases


def test_one_home_two_intervals_charges_the_surplus_and_covers_the_peak():
    """15:30 (off-peak): 2 kWh PV surplus; 16:00 (peak): 2 kWh load. The battery starts empty.

    Storing the surplus (worth 0.9 * 0.49312 at the peak) beats exporting it at 0.04: charge 2,
    discharge all 2 * eta * eta = 1.8, import the remaining 0.2 at the peak price; the battery
    ends empty, so the terminal settlement is 0.
    """
    load, pv = np.zeros((48, 1)), np.zeros((48, 1))
    pv[31, 0], load[32, 0] = 2.0, 2.0
    com = hand_community(load, pv, battery={"initial_soc_fraction": 0.1})
    s = solve_schedule(com, 31, 2)
    assert s.status == "Optimal" and s.num_binaries == 0
    np.testing.assert_allclose(s.battery_ac_kwh[:, 0], [2.0, -1.8], atol=1e-7)
    np.testing.assert_allclose(s.grid_import_kwh[:, 0], [0.0, 0.2], atol=1e-7)
    np.testing.assert_allclose(s.grid_export_kwh[:, 0], [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(s.soc_kwh[:, 0], [1.35 + 2 * ETA, 1.35], atol=1e-7)
    assert s.community_cost_usd == pytest.approx(0.2 * WINTER_PEAK, abs=1e-7)
    oracle, out = replay(com, np.array([31]), 2)
    assert_replay_identity(oracle, out)


def test_one_home_keeps_what_it_does_not_need_at_the_terminal_price():
    """Same, with 1.5 kWh of load: the surplus is still stored (0.1 * eta > 0.04) and what is
    left after covering the load is credited at the terminal price 0.1."""
    load, pv = np.zeros((48, 1)), np.zeros((48, 1))
    pv[31, 0], load[32, 0] = 2.0, 1.5
    com = hand_community(load, pv, battery={"initial_soc_fraction": 0.1})
    s = solve_schedule(com, 31, 2)
    np.testing.assert_allclose(s.battery_ac_kwh[:, 0], [2.0, -1.5], atol=1e-7)
    assert s.community_cost_usd == pytest.approx(-0.1 * (2 * ETA - 1.5 / ETA), abs=1e-7)
    assert_replay_identity(*replay(com, np.array([31]), 2))


def test_seller_and_buyer_share_at_five_percent_loss():
    """12:00: a 3 kWh seller and a 2 kWh buyer; 12:30: a 1 kWh seller and a 2 kWh buyer. No batteries.

    12:00: the buyer receives 2 (the seller sends 2 / 0.95) and the seller exports the rest at 0.04.
    12:30: the buyer receives 0.95 and imports 1.05 at the off-peak price.
    """
    load, pv = np.zeros((48, 2)), np.zeros((48, 2))
    pv[24, 0], load[24, 1] = 3.0, 2.0
    pv[25, 0], load[25, 1] = 1.0, 2.0
    com = hand_community(load, pv, battery={"capacity_kwh": 0.0})
    s = solve_schedule(com, 24, 2)
    expected = -(3.0 - 2.0 / 0.95) * 0.04 + 1.05 * WINTER_OFFPEAK
    assert s.community_cost_usd == pytest.approx(expected, abs=1e-9)
    np.testing.assert_allclose(s.p2p_received_kwh.sum(1), [2.0, 0.95], atol=1e-9)
    np.testing.assert_allclose(s.p2p_sent_kwh.sum(1), [2.0 / 0.95, 1.0], atol=1e-9)
    assert_replay_identity(*replay(com, np.array([24]), 2))
    # without a market the community pays the grid for everything
    none = hand_community(load, pv, battery={"capacity_kwh": 0.0}, market={"mechanism": "none"})
    s_none = solve_schedule(none, 24, 2)
    assert s_none.community_cost_usd == pytest.approx(-4.0 * 0.04 + 4.0 * WINTER_OFFPEAK, abs=1e-9)


def test_infeasible_start_names_the_status():
    com = hand_community(np.zeros((48, 1)), np.zeros((48, 1)))
    with pytest.raises(ScheduleError, match="Infeasible"):
        solve_problem(episode_problem(com, 0, 4, soc0_kwh=np.array([20.0])), 0)  # above the 12.15 kWh ceiling


# ------------------------------------------------------------------------------------------------
# (b) + (d) the replay identity on the default communities, and the oracle beats the rules


@pytest.fixture(scope="module")
def default_days(community):
    starts = np.array([day_index(community, "2025-01-15"), day_index(community, "2025-07-16")]) * INTERVALS_PER_DAY
    return starts, 2 * INTERVALS_PER_DAY


@pytest.mark.parametrize("fixture", ["community", "grid_charging_community", "limited_community"])
def test_replay_identity_and_oracle_is_a_lower_bound(request, fixture, default_days):
    com = request.getfixturevalue(fixture)
    starts, length = default_days
    oracle, out = replay(com, starts, length)
    assert all(s.status == "Optimal" for s in oracle.schedules)
    assert_replay_identity(oracle, out)
    assert_env_invariants(com, out)
    if com.params.battery.degradation_cost_usd_per_kwh > 0:
        assert out["degradation_usd"].sum() > 0
    oracle_cost = out["cost_usd"].sum(axis=(0, 2))
    for policy in (SimpleRulePolicy(), IdlePolicy()):
        other = rollout(com, policy.act, starts, length)["cost_usd"].sum(axis=(0, 2))
        assert (oracle_cost <= other + 1e-6).all(), (policy.name, oracle_cost, other)


# ------------------------------------------------------------------------------------------------
# (c) NEM 3 evenings: export credit above the import price


def test_nem3_evening_needs_the_meter_binaries():
    com = build_community(make_config(tariff=NEM3))
    start = day_index(com, "2025-09-09") * INTERVALS_PER_DAY  # a Tuesday
    sl = slice(start, start + INTERVALS_PER_DAY)
    exp, imp = com.data.export_usd_per_kwh[sl], com.data.import_usd_per_kwh[sl]
    assert exp.max() == pytest.approx(3.90338) and (exp > imp).sum() >= 2

    exact = solve_schedule(com, start, INTERVALS_PER_DAY)
    fake = solve_schedule(com, start, INTERVALS_PER_DAY, meter_binaries=False)
    assert exact.status == "Optimal" and exact.num_binaries > 0 and fake.num_binaries == 0
    # the LP alone imports and exports at one meter to pocket Ps - Pb
    assert fake.community_cost_usd < exact.community_cost_usd - 0.1
    assert (np.minimum(fake.grid_import_kwh, fake.grid_export_kwh) > 1e-3).any()
    assert (np.minimum(exact.grid_import_kwh, exact.grid_export_kwh) <= 1e-9).all()
    assert (np.minimum(exact.p2p_sent_kwh, exact.p2p_received_kwh)[exp > imp] == 0).all()

    oracle, out = replay(com, np.array([start]), INTERVALS_PER_DAY)
    assert oracle.schedules[0].community_cost_usd == pytest.approx(exact.community_cost_usd, rel=1e-9)
    assert_replay_identity(oracle, out)
    assert_env_invariants(com, out)
    simple = rollout(com, SimpleRulePolicy().act, np.array([start]), INTERVALS_PER_DAY)
    assert out["cost_usd"].sum() <= simple["cost_usd"].sum() + 1e-6


# ------------------------------------------------------------------------------------------------
# (e) MPC


def test_mpc_with_perfect_forecasts_keeps_the_invariants_and_beats_the_rule():
    com = build_community(make_config(forecast={"provider": "perfect", "horizon": 12}))
    starts = np.array([day_index(com, "2025-07-16")]) * INTERVALS_PER_DAY
    mpc = MPCPolicy(horizon_intervals=12)
    out = rollout(com, mpc.act, starts, INTERVALS_PER_DAY)
    assert_env_invariants(com, out)
    assert mpc.num_solves == INTERVALS_PER_DAY
    simple = rollout(com, SimpleRulePolicy().act, starts, INTERVALS_PER_DAY)
    assert out["cost_usd"].sum() <= simple["cost_usd"].sum() + 1e-6
    oracle, _ = replay(com, starts, INTERVALS_PER_DAY)
    assert oracle.total_cost_usd() <= out["cost_usd"].sum() + 1e-6


def test_mpc_window_extends_forecasts_with_seasonal_persistence(community):
    t = 100 * INTERVALS_PER_DAY + 10
    data, h = community.data, community.data.load_fc_kwh.shape[2]
    load, pv = forecast_window(community, t, 12)
    np.testing.assert_array_equal(load[0], data.load_kwh[t])
    np.testing.assert_allclose(load[1 : 1 + h], data.load_fc_kwh[t].T.astype(float))
    np.testing.assert_allclose(pv[1 + h :], data.pv_kwh[t + 1 + h - INTERVALS_PER_DAY : t + 12 - INTERVALS_PER_DAY])
    # the window never runs past the episode's end
    state_end = t + 5
    mpc = MPCPolicy(horizon_intervals=12)
    from energy_env import core

    state = core.reset_state(community.params, community.data, np.array([t]), 5)
    assert int(state.end[0]) == state_end
    a = mpc.act(None, state, community)
    assert a.shape == (1, community.num_households) and np.all(np.abs(a) <= 1)


def test_mpc_day_ahead_window_takes_the_mean_of_the_last_seven_days(community):
    data, h = community.data, community.data.load_fc_kwh.shape[2]
    t = 100 * INTERVALS_PER_DAY + 10
    load, pv = forecast_window(community, t, 48, source="seasonal_mean", history_days=7)
    np.testing.assert_array_equal(load[0], data.load_kwh[t])
    for k in (1, h, 30, 47):  # the provider is not used  # hand-computed: the same clock time on each of the 7 days before
        expected = np.mean([data.pv_kwh[t + k - d * INTERVALS_PER_DAY] for d in range(1, 8)], axis=0)
        np.testing.assert_allclose(pv[k], expected)
        expected = np.mean([data.load_kwh[t + k - d * INTERVALS_PER_DAY] for d in range(1, 8)], axis=0)
        np.testing.assert_allclose(load[k], np.minimum(expected, pv[k] + community.params.import_limit_kwh))
    # two days into the data set: only the days it has; on the first day the provider's last forecast
    t = 2 * INTERVALS_PER_DAY
    _, pv = forecast_window(community, t, 48, source="seasonal_mean")
    k = 30
    np.testing.assert_allclose(pv[k], (data.pv_kwh[t + k - INTERVALS_PER_DAY] + data.pv_kwh[t + k - 2 * INTERVALS_PER_DAY]) / 2)
    _, pv = forecast_window(community, 0, 48, source="seasonal_mean")
    np.testing.assert_allclose(pv[1:], np.repeat(data.pv_fc_kwh[0, :, -1][None], 47, axis=0))
    # with one day of history, past the provider's horizon: seasonal persistence, as source="provider"
    np.testing.assert_array_equal(forecast_window(community, 5000, 40, "seasonal_mean", 1)[1][1 + h :],
                                  forecast_window(community, 5000, 40)[1][1 + h :])


def test_mpc_day_ahead_is_registered_and_checks_its_arguments(community):
    from energy_env import core
    from policies.registry import make_policy

    mpc = make_policy("mpc_day_ahead")
    assert (mpc.name, mpc.horizon_intervals, mpc.source, mpc.history_days) == ("mpc_day_ahead", 48, "seasonal_mean", 7)
    with pytest.raises(ValueError, match="forecast source"):
        MPCPolicy(source="tomorrow")
    with pytest.raises(ValueError, match="history_days"):
        MPCPolicy(history_days=0)
    with pytest.raises(ValueError, match="forecast source"):
        forecast_window(community, 100, 12, source="tomorrow")
    state = core.reset_state(community.params, community.data, np.array([200 * INTERVALS_PER_DAY + 20]), 48)
    a = MPCPolicy(horizon_intervals=48, source="seasonal_mean").act(None, state, community)
    assert a.shape == (1, community.num_households) and np.all(np.abs(a) <= 1)


def test_charge_xor_discharge_fallback_adds_binaries(community, monkeypatch):
    """If a solution ever charged and discharged in one cell, the cells get binaries and it is re-solved."""
    from policies import schedule_lp

    calls = []
    real = schedule_lp.simultaneous_cells

    def flag_first_cells(x, tn):
        calls.append(tn)
        return np.arange(5) if len(calls) == 1 else real(x, tn)

    monkeypatch.setattr(schedule_lp, "simultaneous_cells", flag_first_cells)
    start = 100 * INTERVALS_PER_DAY + 20
    s = solve_schedule(community, start, 12)
    monkeypatch.setattr(schedule_lp, "simultaneous_cells", real)
    plain = solve_schedule(community, start, 12)
    assert s.num_binaries == plain.num_binaries + 5
    assert s.community_cost_usd == pytest.approx(plain.community_cost_usd, abs=1e-6)


def test_oracle_solves_episodes_in_worker_processes_alike():
    community = build_community(make_config(num_households=3, episode_length=INTERVALS_PER_DAY))
    starts = np.array([0, 30, 60]) * INTERVALS_PER_DAY
    one = OraclePolicy().plan(community, starts, INTERVALS_PER_DAY)
    two = OraclePolicy(workers=2).plan(community, starts, INTERVALS_PER_DAY)
    for a, b in zip(one, two):
        assert a.community_cost_usd == b.community_cost_usd
        np.testing.assert_array_equal(a.battery_ac_kwh, b.battery_ac_kwh)


def test_deterministic_oracle_ignores_the_clock():
    """A node limit instead of a wall-clock cap: the same schedule whatever the time budget or load."""
    from policies.registry import make_oracle
    from policies.settings import OracleSettings

    com = build_community(make_config(num_households=6))
    start = day_index(com, "2025-09-23") * INTERVALS_PER_DAY  # NEM 3 evenings: a MILP
    schedules = []
    for seconds in (0.001, 1000.0):  # the time limit is ignored in this mode
        oracle = make_oracle(OracleSettings(mode="deterministic", node_limit=2, time_limit_s=seconds, workers=1))
        assert oracle.budget.deterministic and oracle.settings_record(6) == {"mode": "deterministic", "mip_rel_gap": 1e-6, "node_limit": 2, "method": "exact"}
        schedules.append(oracle.plan(com, np.array([start]), 3 * INTERVALS_PER_DAY)[0])
    a, b = schedules
    assert a.status == "Solution limit reached" or a.bound_method == "lagrangian"  # the node limit did bind
    assert a.community_cost_usd == b.community_cost_usd and a.lower_bound_usd == b.lower_bound_usd
    np.testing.assert_array_equal(a.battery_ac_kwh, b.battery_ac_kwh)
    timed = make_oracle(OracleSettings(time_limit_s=5.0))
    assert not timed.budget.deterministic and timed.settings_record(6) == {"mode": "time", "mip_rel_gap": 1e-6, "time_limit_s": 5.0, "method": "exact"}


def test_solver_budget_settings_are_checked():
    from policies.schedule_lp import SearchBudget
    from policies.settings import OracleSettings
    from pydantic import ValidationError

    for bad in ({"mode": "fast"}, {"time_limit_s": 0}, {"time_limit_s": float("inf")}, {"node_limit": 0}, {"mip_rel_gap": 1.0}, {"workers": "2"}):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            OracleSettings(**bad)
    with pytest.raises(ValueError, match="node_limit"):
        SearchBudget(node_limit=0)
    with pytest.raises(ValueError, match="time_limit_s"):
        SearchBudget(time_limit_s=float("nan"))


def test_mpc_in_worker_processes_applies_the_same_setpoints(community):
    """The closed loop run in two processes replays exactly what the online loop does."""
    starts = np.array([day_index(community, "2025-03-03"), day_index(community, "2025-08-20")]) * INTERVALS_PER_DAY
    online = rollout(community, MPCPolicy().act, starts, 12)
    planned = MPCPolicy(workers=2)
    planned.plan(community, starts, 12)
    assert planned.num_solves == 24
    replayed = rollout(community, planned.act, starts, 12)
    np.testing.assert_array_equal(replayed["battery_ac_kwh"], online["battery_ac_kwh"])
    np.testing.assert_array_equal(replayed["cost_usd"], online["cost_usd"])


def test_mpc_day_ahead_in_worker_processes_plans_with_its_own_window():
    com = build_community(make_config(num_households=3))
    starts = np.array([40, 120]) * INTERVALS_PER_DAY + 14  # 7:00, before the PV surplus
    online = rollout(com, MPCPolicy(48, source="seasonal_mean").act, starts, 12)
    planned = MPCPolicy(48, source="seasonal_mean", workers=2)
    planned.plan(com, starts, 12)
    np.testing.assert_array_equal(rollout(com, planned.act, starts, 12)["battery_ac_kwh"], online["battery_ac_kwh"])
    default = rollout(com, MPCPolicy(48).act, starts, 12)
    assert not np.array_equal(default["battery_ac_kwh"], online["battery_ac_kwh"])  # the fill reached the plan


def test_mpc_closed_loop_and_setpoints_at_match_the_online_controller():
    from policies.optimum import setpoints_from_ac_kwh

    com = build_community(make_config(num_households=3))
    starts = np.array([40, 120]) * INTERVALS_PER_DAY + 14
    online = rollout(com, MPCPolicy(48, source="seasonal_mean").act, starts, 6)
    for workers in (1, 2):
        np.testing.assert_array_equal(MPCPolicy(48, source="seasonal_mean", workers=workers).closed_loop(com, starts, 6),
                                      online["battery_ac_kwh"])
    # labels at states of the online run (step 3 of each episode: the state after step 2)
    soc, end = online["soc_kwh"][2], starts + 6
    labels = MPCPolicy(48, source="seasonal_mean", workers=2).setpoints_at(com, starts + 3, end, soc)
    np.testing.assert_allclose(labels, setpoints_from_ac_kwh(online["battery_ac_kwh"][3], com.params.battery.max_ac_kwh), atol=1e-9)
    with pytest.raises(ValueError, match=r"soc_kwh \(2, 2\)"):
        MPCPolicy().setpoints_at(com, starts, end, soc[:, :2])
    with pytest.raises(ValueError, match="end > t"):
        MPCPolicy().setpoints_at(com, starts, starts, soc)


def test_solve_problem_is_solve_schedule_on_an_episodes_problem():
    com = build_community(make_config(num_households=2))
    start = 48 * 100
    direct = solve_schedule(com, start, 12)
    via = solve_problem(episode_problem(com, start, 12), start)
    assert via.community_cost_usd == direct.community_cost_usd and via.start == start
    np.testing.assert_array_equal(via.battery_ac_kwh, direct.battery_ac_kwh)
    # MPC's use: its own load (here doubled) and state of energy replace the data set's
    doubled = solve_problem(episode_problem(com, start, 12, load_kwh=2 * com.data.load_kwh[start:start + 12],
                                            soc0_kwh=com.params.battery.soc_min_kwh), start)
    assert doubled.community_cost_usd > direct.community_cost_usd

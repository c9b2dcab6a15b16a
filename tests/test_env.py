"""The PettingZoo env: official API tests, spaces, options, infos and bad input."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import energy_env
from energy_env.core import observation_size
from energy_env.env import INFO_FIELDS


def test_parallel_api():
    parallel_api_test(energy_env.parallel_env(), num_cycles=1000)


def test_parallel_seed():
    parallel_seed_test(lambda: energy_env.parallel_env(num_households=4), num_cycles=200)


def test_aec_api():
    api_test(energy_env.env(num_households=3), num_cycles=200)


def test_spaces_are_cached_and_documented():
    env = energy_env.parallel_env()
    assert env.observation_space("household_0") is env.observation_space("household_9")
    assert env.action_space("household_0") is env.action_space("household_3")
    assert env.observation_space("household_0").shape == (observation_size(6),)
    assert sum(w for _, w in env.observation_fields) == observation_size(6)
    assert env.possible_agents == [f"household_{i}" for i in range(10)]


def test_overrides_name_config_keys():
    env = energy_env.parallel_env(num_households=25, episode_length=96)
    obs, _ = env.reset(seed=1)
    assert len(obs) == 25
    steps = 0
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps == 96
    with pytest.raises(energy_env.ConfigError, match="num_households"):
        energy_env.parallel_env(num_households=-1)


def test_reset_options_choose_the_day():
    env = energy_env.parallel_env()
    _, info = env.reset(options={"day": 0, "split": "test"})
    ts = str(env.data.dataset.timestamps[info["household_0"]["interval"]])
    assert ts.startswith("2025-01-25 00:00")  # the first test day: Jan 31 - 6
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"day": 10_000, "split": "test"})
    with pytest.raises(ValueError, match="unknown split"):
        env.reset(options={"split": "validation"})
    with pytest.warns(UserWarning, match="unknown reset option"):
        env.reset(options={"date": 3})


def test_seeded_reset_draws_train_days():
    env = energy_env.parallel_env()
    test_days = set(env.data.dataset.split_days("test").tolist())
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert info["household_0"]["interval"] // 48 not in test_days


def test_train_whole_split_draws_only_weeks_of_train_days():
    env = energy_env.parallel_env(episode_length=336)
    test = env.data.dataset.test_day_mask()
    starts = {env.reset(seed=seed)[1]["household_0"]["interval"] // 48 for seed in range(200)}
    assert any(test[d:d + 7].any() for d in starts)  # "train" lets a week run on into test days
    for seed in range(200):
        _, info = env.reset(seed=seed, options={"split": "train_whole"})
        day = info["household_0"]["interval"] // 48
        assert not test[day:day + 7].any()
    with pytest.raises(ValueError, match="no window of"):
        energy_env.parallel_env(episode_length=30 * 48).reset(options={"split": "train_whole"})


def test_infos_carry_the_balance_and_signals():
    env = energy_env.parallel_env()
    env.reset(seed=0, options={"day": 150})
    _, rewards, _, _, infos = env.step({a: np.array([0.5], np.float32) for a in env.agents})
    for a in env.possible_agents:
        info = infos[a]
        for f in INFO_FIELDS:
            assert f in info
        lhs = info["load_kwh"] - (info["pv_kwh"] - info["pv_curtailed_kwh"]) + info["battery_ac_kwh"]
        rhs = info["grid_import_kwh"] - info["grid_export_kwh"] + info["p2p_bought_kwh"] - info["p2p_sold_kwh"]
        assert lhs == pytest.approx(rhs, abs=1e-9)
        assert rewards[a] == pytest.approx(-info["cost_usd"])
        assert 0 <= info["profitability_score"] <= 100
        assert info["power_need_signal"] in (0.0, 1.0)  # 1 GREEN, 0 RED


def test_savings_reward_variant():
    env = energy_env.parallel_env(reward={"kind": "savings"})
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({a: np.zeros(1) for a in env.agents})
    for a in env.agents:
        assert rewards[a] == pytest.approx(infos[a]["baseline_cost_usd"] - infos[a]["cost_usd"])


def test_bad_actions():
    env = energy_env.parallel_env(num_households=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="no action for agent"):
        env.step({"household_0": np.zeros(1)})
    with pytest.raises(ValueError, match="must be finite"):
        env.step({a: np.array([np.nan]) for a in env.agents})
    with pytest.raises(ValueError, match="single setpoint"):
        env.step({a: np.zeros(2) for a in env.agents})
    with pytest.raises(ValueError, match="unknown agent"):
        env.step({**{a: np.zeros(1) for a in env.agents}, "household_9": np.zeros(1)})


def test_step_before_reset():
    with pytest.raises(RuntimeError, match="before reset"):
        energy_env.parallel_env(num_households=2).step({})


def test_state_is_global():
    env = energy_env.parallel_env(num_households=4)
    obs, _ = env.reset(seed=0)
    s = env.state()
    assert s.shape == env.state_space.shape
    np.testing.assert_array_equal(s[: observation_size(6)], obs["household_0"])


def test_observations_stay_within_the_data_derived_bounds():
    env = energy_env.parallel_env(num_households=5, episode_length=48 * 3, battery={"capacity_kwh": [13.5, 0, 5, 13.5, 20]})
    space = env.observation_space("household_0")
    assert np.isfinite(space.low).all() and np.isfinite(space.high).all()
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        while env.agents:
            for o in obs.values():
                assert space.contains(o)
            obs, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})

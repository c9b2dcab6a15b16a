"""The double auction in the env: spaces, observations, infos, truthful bids, the oracle, learning with bids."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from energy_env import core
from energy_env.community import build_community
from energy_env.config import make_config
from energy_env.env import WattshareParallelEnv, make_community
from energy_env.episodes import WEEK, test_week_starts
from energy_env.rollout import rollout
from policies.learned import LearnedPolicy
from policies.optimum import OraclePolicy
from policies.registry import make_policy

AUCTION = {"mechanism": "double_auction"}


def auction_env(**kw):
    return WattshareParallelEnv(num_households=5, market=AUCTION, **kw)


def test_pettingzoo_api_and_seed_tests_pass_in_auction_mode():
    parallel_api_test(auction_env(), num_cycles=100)
    parallel_seed_test(auction_env)


def test_spaces_and_observation_fields():
    env = auction_env()
    pool = WattshareParallelEnv(num_households=5)
    assert env.action_space("household_0").shape == (2,) and pool.action_space("household_0").shape == (1,)
    names = [n for n, _ in env.observation_fields]
    assert names[:-1] == [n for n, _ in pool.observation_fields] and names[-1] == "last_p2p_volume_kwh"
    assert env.observation_space("household_0").shape[0] == pool.observation_space("household_0").shape[0] + 1


def test_observation_reports_last_volume_and_price_and_infos_each_order():
    env = auction_env()
    env.reset(seed=0, options={"day": 150})
    lay = core.layout_of(env.params)
    rng = np.random.default_rng(0)
    traded = 0
    for _ in range(40):
        actions = {a: np.array([rng.uniform(-1, 1), rng.uniform(-1, 1)], np.float32) for a in env.agents}
        obs, _, _, _, infos = env.step(actions)
        volume = sum(i["p2p_bought_kwh"] for i in infos.values())
        price = infos["household_0"]["market_price_usd_per_kwh"]
        assert obs["household_0"][lay.at("last_p2p_volume_kwh")] == pytest.approx(volume, rel=1e-6, abs=1e-7)
        assert obs["household_3"][lay.at("last_market_price_usd_per_kwh")] == pytest.approx(price, rel=1e-6)
        for agent, info in infos.items():
            assert {"limit_usd_per_kwh", "cleared_share", "surplus_usd"} <= set(info)
            assert 0.0 <= info["cleared_share"] <= 1.0 + 1e-12
            assert info["surplus_usd"] >= -1e-12  # individually rational: no order trades worse than its limit
            if info["p2p_bought_kwh"] > 0:
                assert info["limit_usd_per_kwh"] >= price - 1e-12
            if info["p2p_sold_kwh"] > 0:
                assert info["limit_usd_per_kwh"] <= price + 1e-12
        traded += volume > 0
    assert traded > 0


def test_bad_auction_actions_are_rejected():
    env = auction_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="must be \\(setpoint, price action\\)"):
        env.step({a: np.array([0.0]) for a in env.agents})
    mixed = {a: (np.array([0.1, 1.0]) if i % 2 else [[0.1, 1.0]]) for i, a in enumerate(env.agents)}  # shapes (2,) and (1, 2)
    env.step(mixed)
    com = make_community(num_households=3)
    state = core.reset_state(com.params, com.data, np.array([0]), 10)
    with pytest.raises(ValueError, match="price actions need market.mechanism double_auction"):
        core.transition(state, np.zeros((1, 3, 2)), com.params, com.data)
    auc = make_community(num_households=3, market=AUCTION)
    with pytest.raises(ValueError, match=r"is nan"):
        core.transition(state, np.array([[[0.0, 0.0], [0.0, np.nan], [0.0, 0.0]]]), auc.params, auc.data)


def test_out_of_box_price_actions_are_clipped_and_counted():
    auc = make_community(num_households=3, market=AUCTION)
    state = core.reset_state(auc.params, auc.data, np.array([0]), 10)
    _, result = core.transition(state, np.array([[[0.0, 1.0], [0.0, 3.0], [0.0, 1.0]]]), auc.params, auc.data)
    np.testing.assert_array_equal(result.action_out_of_box[0], [False, True, False])


def test_setpoints_alone_bid_truthfully():
    com = make_community(num_households=6, market=AUCTION, episode_length=WEEK)
    starts = test_week_starts(com.dataset)[:2]
    rule = make_policy("rule_based")
    plain = rollout(com, rule.act, starts, WEEK, observations=False)
    truthful = rollout(com, lambda o, s, c: np.stack([rule.act(o, s, c), np.ones(s.soc_kwh.shape)], -1), starts, WEEK, observations=False)
    np.testing.assert_array_equal(plain["cost_usd"], truthful["cost_usd"])


def test_truthful_auction_equals_the_mid_market_pool():
    # All truthful orders tie: the pool's volumes and pro-rata split, at the mid-market price.
    auction = make_community(num_households=6, market=AUCTION, episode_length=WEEK)
    pool = make_community(num_households=6, market={"mechanism": "mid_market"}, episode_length=WEEK)
    starts = test_week_starts(auction.dataset)[:2]
    rule = make_policy("rule_based")
    a = rollout(auction, rule.act, starts, WEEK, observations=False)
    b = rollout(pool, rule.act, starts, WEEK, observations=False)
    for name in ("cost_usd", "p2p_bought_kwh", "p2p_sold_kwh", "grid_import_kwh", "market_price_usd_per_kwh"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_the_oracle_is_the_pools_optimum():
    # Community cost depends on the flows only (P2P payments are transfers); the efficient
    # outcome of the auction, truthful orders, has the pool's flows, so its optimum is the pool's.
    auction = make_community(num_households=3, market=AUCTION, episode_length=WEEK)
    pool = make_community(num_households=3, episode_length=WEEK)
    starts = test_week_starts(pool.dataset)[:1]
    oracle = OraclePolicy(time_limit_s=30)
    schedules = oracle.plan(pool, starts, WEEK)
    in_auction = rollout(auction, oracle.act, starts, WEEK, observations=False)["cost_usd"].sum()
    assert in_auction == pytest.approx(schedules[0].community_cost_usd, rel=1e-9)
    again = OraclePolicy(time_limit_s=30).plan(auction, starts, WEEK)[0]
    assert again.community_cost_usd == pytest.approx(schedules[0].community_cost_usd, rel=1e-6)


def test_pool_mode_results_are_unchanged():
    # Pinned at the commit before the auction: rule-based, default community, first test week.
    com = make_community(num_households=10, episode_length=WEEK)
    traj = rollout(com, make_policy("rule_based").act, test_week_starts(com.dataset)[:1], WEEK)
    assert core.observation_size(com.params.horizon) == traj["observation"].shape[-1] == 49
    assert float(traj["cost_usd"].sum()) == pytest.approx(POOL_WEEK_COST_USD, abs=1e-9)


POOL_WEEK_COST_USD = 420.2030364451988  # commit 11b0b3d, before the auction existed


@pytest.fixture(scope="module")
def bidders(tmp_path_factory):
    from train.ppo import train_shared
    from train.settings import PPOSettings

    out = tmp_path_factory.mktemp("bids")
    com = build_community(make_config(num_households=3, reward={"kind": "savings"}, market=AUCTION))
    settings = PPOSettings(total_timesteps=6_000, scenarios=4, batch_size=192, n_epochs=2, eval_every=10**9)
    return com, train_shared(com, settings, out, evaluate=False), out


def test_shared_ppo_trains_with_bids_and_round_trips(bidders):
    com, policy, out = bidders
    loaded = LearnedPolicy.load(out, com)
    obs = np.zeros((2, 3, core.observation_size(com.params.horizon, auction=True)), np.float32)
    actions = loaded.act(obs, None, com)
    assert actions.shape == (2, 3, 2) and np.all(np.abs(actions) <= 1.0)
    np.testing.assert_array_equal(actions, policy.act(obs, None, com))
    with pytest.raises(Exception, match="observation layout"):
        LearnedPolicy.load(out, make_community(num_households=3))  # a pool env: other layout and action space


def test_federated_policies_train_with_bids(tmp_path):
    from federated.policies import PolicyFederation
    from train.independent import train_independent
    from train.settings import PPOSettings

    com = build_community(make_config(num_households=2, reward={"kind": "savings"}, market=AUCTION))
    settings = PPOSettings(mode="federated", total_timesteps=2 * 2 * 48 * 2, scenarios=2, batch_size=96, n_epochs=1, eval_every=10**9)
    hook = PolicyFederation(every=1, steps_per_update=2 * 48)
    policy = train_independent(com, settings, tmp_path, evaluate=False, after_update=hook, label="federated")
    assert hook.round == 2 and hook.strategy.left_out == []
    assert policy.act(np.zeros((1, 2, core.observation_size(com.params.horizon, True)), np.float32), None, com).shape == (1, 2, 2)


def test_benchmark_runs_bidders_beside_truthful_baselines(bidders, tmp_path):
    from train.benchmark import run_benchmark

    com, _, out = bidders
    runs = run_benchmark(com.config, ["pge_baseline", "rule_based", LearnedPolicy.load(out, com)], tmp_path, max_weeks=1, plots=False,
                         progress=False, community=com)
    assert list(runs) == ["pge_baseline", "rule_based", "ppo_shared"] and not runs.failed
    assert (tmp_path / "results_ppo_shared.json").exists()

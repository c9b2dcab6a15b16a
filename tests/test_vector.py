"""The vectorised envs (SB3 VecEnv, gymnasium VectorEnv) against the PettingZoo reference env."""

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import energy_env
from energy_env.env import INFO_FIELDS
from energy_env.vector import WattshareVecEnv, WattshareVectorEnv

N, B, LENGTH = 4, 3, 6  # short episodes so that several end (and auto-reset) within a test


def reference_trajectory(seed, actions, **overrides):
    """The PettingZoo env run on ``actions`` (``(steps, N)``), reset with ``seed`` then plain ``reset()``."""
    env = energy_env.parallel_env(**overrides)
    obs, _ = env.reset(seed=seed)
    out = []
    for a in actions:
        o, r, term, trunc, _ = env.step({ag: np.array([a[i]], np.float32) for i, ag in enumerate(env.possible_agents)})
        row = (np.stack([o[ag] for ag in env.possible_agents]), np.array([r[ag] for ag in env.possible_agents]), term["household_0"])
        if not env.agents:
            obs, _ = env.reset()
            row += (np.stack([obs[ag] for ag in env.possible_agents]),)
        out.append(row)
    return out


@pytest.fixture(scope="module")
def actions():
    return np.random.default_rng(7).uniform(-1.3, 1.3, (2 * LENGTH + 2, B, N)).astype(np.float32)


def test_sb3_vecenv_replays_the_pettingzoo_env(actions):
    venv = WattshareVecEnv(num_scenarios=B, num_households=N, episode_length=LENGTH)
    venv.seed(11)
    venv.reset()
    refs = [reference_trajectory(11 + b * N, actions[:, b], num_households=N, episode_length=LENGTH) for b in range(B)]
    for k, a in enumerate(actions):
        obs, rewards, dones, infos = venv.step(a.reshape(-1, 1))
        for b in range(B):
            ref = refs[b][k]
            rows = slice(b * N, (b + 1) * N)
            np.testing.assert_array_equal(rewards[rows], ref[1].astype(np.float32))
            assert dones[rows].tolist() == [ref[2]] * N
            if ref[2]:  # episode end: the terminal observation, then the reset one
                terminal = np.stack([infos[i]["terminal_observation"] for i in range(b * N, (b + 1) * N)])
                np.testing.assert_array_equal(terminal, ref[0])
                assert infos[b * N]["TimeLimit.truncated"] is False
                np.testing.assert_array_equal(obs[rows], ref[3])
            else:
                np.testing.assert_array_equal(obs[rows], ref[0])
    assert obs.dtype == np.float32 and obs.shape == (B * N, venv.observation_space.shape[0])


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_gymnasium_vector_env_replays_the_pettingzoo_env(actions, mode):
    venv = WattshareVectorEnv(num_scenarios=B, num_households=N, episode_length=LENGTH, autoreset_mode=mode)
    assert venv.metadata["autoreset_mode"] == mode
    venv.reset(seed=3)
    refs = [reference_trajectory(3 + b * N, actions[:, b], num_households=N, episode_length=LENGTH) for b in range(B)]
    for k, a in enumerate(actions):
        obs, rewards, term, trunc, infos = venv.step(a.reshape(-1, 1))
        assert not trunc.any()
        for b in range(B):
            ref, rows = refs[b][k], slice(b * N, (b + 1) * N)
            np.testing.assert_array_equal(rewards[rows], ref[1])
            assert term[rows].tolist() == [ref[2]] * N
            if ref[2] and mode == AutoresetMode.SAME_STEP:
                np.testing.assert_array_equal(np.stack(infos["final_obs"][rows]), ref[0])
                assert infos["_final_obs"][rows].all()
                np.testing.assert_array_equal(obs[rows], ref[3])
            else:
                np.testing.assert_array_equal(obs[rows], ref[0])
        if term.any() and mode == AutoresetMode.NEXT_STEP:
            # the next step resets: its actions are ignored, rewards are 0, the reset observation comes back
            obs, rewards, term, trunc, infos = venv.step(np.full((B * N, 1), 9.0))
            assert not term.any() and (rewards == 0).all()
            for b in range(B):
                np.testing.assert_array_equal(obs[b * N : (b + 1) * N], refs[b][k][3])


def test_seeds_make_runs_repeatable_and_scenarios_differ():
    def run(seed):
        venv = WattshareVectorEnv(num_scenarios=4, num_households=N, episode_length=LENGTH)
        obs, _ = venv.reset(seed=seed)
        return obs
    np.testing.assert_array_equal(run(5), run(5))
    starts = run(5).reshape(4, N, -1)[:, 0, 4]  # a load forecast differs between scenarios' days
    assert len(set(starts.tolist())) > 1


def test_reset_options_per_scenario():
    venv = WattshareVectorEnv(num_scenarios=2, num_households=N, episode_length=LENGTH)
    obs, _ = venv.reset(options={"start_interval": [0, 48 * 10]})
    state = venv.engine.state
    assert state.t.tolist() == [0, 480]
    venv.reset(options={"day": [0, 1], "split": "test"})
    days = venv.community.dataset.split_days("test")
    assert (venv.engine.state.t // 48).tolist() == days[:2].tolist()
    with pytest.raises(ValueError, match="2 scenarios"):
        venv.reset(options={"day": [0, 1, 2]})


def test_sb3_set_options_and_info_fields():
    venv = WattshareVecEnv(num_scenarios=2, num_households=N, episode_length=LENGTH, info_fields="all")
    venv.set_options({"day": 3, "split": "test"})
    venv.reset()
    day = venv.community.dataset.split_days("test")[3]
    assert (venv.engine.state.t == day * 48).all()
    _, rewards, _, infos = venv.step(np.zeros((2 * N, 1)))
    assert len(infos) == 2 * N
    for f in INFO_FIELDS:
        assert f in infos[0]
    assert infos[0]["cost_usd"] == pytest.approx(-rewards[0], rel=1e-6)


def test_gymnasium_infos_and_spaces():
    venv = WattshareVectorEnv(num_scenarios=2, num_households=N, info_fields=["cost_usd", "sdr"])
    assert venv.observation_space.shape == (2 * N, venv.single_observation_space.shape[0])
    assert venv.action_space.shape == (2 * N, 1)
    venv.reset(seed=0)
    _, rewards, _, _, infos = venv.step(venv.action_space.sample())
    np.testing.assert_allclose(infos["cost_usd"], -rewards)
    assert infos["sdr"].shape == (2 * N,) and infos["_sdr"].all()
    with pytest.raises(ValueError, match="unknown info field"):
        WattshareVectorEnv(num_households=N, info_fields=["nope"])
    with pytest.raises(ValueError, match="expected 8 actions"):
        venv.step(np.zeros(3))


def test_shares_the_community_arrays():
    """Precomputed arrays are shared, never copied, across envs and scenarios."""
    a = WattshareVecEnv(num_scenarios=2, num_households=N)
    b = WattshareVectorEnv(num_scenarios=5, community=a.community)
    assert b.engine.data is a.engine.data
    b.reset(seed=0)
    assert np.shares_memory(b.community.data.load_fc_kwh, b.community.data.load_fc_kwh)
    assert not b.community.data.load_kwh.flags.writeable


def test_sb3_ppo_trains_on_the_vecenv():
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    venv = VecMonitor(WattshareVecEnv(num_scenarios=2, num_households=N, episode_length=LENGTH))
    model = PPO("MlpPolicy", venv, n_steps=2 * LENGTH, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=2 * 2 * N * 2 * LENGTH)
    assert len(model.ep_info_buffer) > 0  # episodes ended and were recorded through terminal infos


def test_engine_resets_only_the_scenarios_asked():
    venv = WattshareVecEnv(num_scenarios=3, num_households=N, episode_length=LENGTH)
    venv.seed(0)
    venv.reset()
    venv.step(np.ones((3 * N, 1)))
    engine = venv.engine
    before = engine.state
    engine.reset_scenarios(np.array([False, True, False]))
    after = engine.state
    assert after.t.tolist() == [before.t[0], after.start[1], before.t[2]]
    np.testing.assert_array_equal(after.soc_kwh[[0, 2]], before.soc_kwh[[0, 2]])
    np.testing.assert_array_equal(after.soc_kwh[1], engine.params.battery.initial_soc_kwh)
    np.testing.assert_array_equal(engine.obs[1], energy_env.core.observe(after, engine.params, engine.data)[1])


def test_vecenv_train_whole_split_never_reaches_a_test_day():
    venv = WattshareVecEnv(64, num_households=2, episode_length=336, split="train_whole")
    venv.seed(0)
    venv.reset()
    test = venv.community.dataset.test_day_mask()
    days = (venv.engine.state.start // 48).tolist()
    assert len(days) == 64 and not any(test[d:d + 7].any() for d in days)
    with pytest.raises(ValueError, match="unknown split"):
        WattshareVecEnv(1, num_households=2, split="validation")

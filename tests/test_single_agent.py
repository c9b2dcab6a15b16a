"""Single-agent gymnasium views pass check_env and match the PettingZoo env."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import energy_env
from energy_env.single_agent import CentralizedEnv, SharedPolicyEnv


@pytest.mark.parametrize("cls", [CentralizedEnv, SharedPolicyEnv])
def test_check_env(cls):
    check_env(cls(num_households=3), skip_render_check=True)


@pytest.mark.parametrize("cls", [CentralizedEnv, SharedPolicyEnv])
def test_same_trajectory_as_pettingzoo(cls):
    single, par = cls(num_households=4), energy_env.parallel_env(num_households=4)
    obs_s, _ = single.reset(seed=5)
    obs_p, _ = par.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(48):
        a = rng.uniform(-1, 1, 4).astype(np.float32)
        obs_s, r_s, term, trunc, _ = single.step(a)
        obs_p, r_p, *_ = par.step({f"household_{i}": a[i : i + 1] for i in range(4)})
        np.testing.assert_array_equal(np.asarray(obs_s).reshape(4, -1), np.stack([obs_p[f"household_{i}"] for i in range(4)]))
        assert r_s == pytest.approx(sum(r_p.values()))
    assert term and not trunc

"""Per-home observation scaling: energies over each home's typical load, the rest untouched."""

import json

import numpy as np
import pytest

from energy_env import core, layout
from energy_env.community import build_community
from energy_env.config import INTERVALS_PER_DAY, make_config
from policies.learned import LearnedPolicy
from policies.observation_scale import ENERGY_FIELDS, ObservationScaler, energy_columns, scale_observation, typical_load_kwh
from train.ppo import PPOSettings, train_shared


def test_typical_load_is_the_train_days_mean(community):
    ds = community.dataset
    train = np.repeat(~ds.test_day_mask(), INTERVALS_PER_DAY)
    np.testing.assert_allclose(typical_load_kwh(community), ds.load_kwh[train].mean(axis=0))
    assert not np.allclose(typical_load_kwh(community), ds.load_kwh.mean(axis=0))  # test days left out


@pytest.mark.parametrize("blocks, auction", [(0, False), (8, False), (4, True)])
def test_only_energy_fields_are_divided(blocks, auction):
    horizon = 6
    lay = layout.observation_layout(horizon, auction, blocks)
    obs = np.random.default_rng(0).uniform(1, 2, (2, 3, lay.size)).astype(np.float32)
    typical = np.array([0.5, 1.0, 4.0])
    out = scale_observation(obs, horizon, typical, blocks, auction)
    cols = energy_columns(horizon, blocks, auction)
    present = [f for f in ENERGY_FIELDS if f in dict(lay.fields())]
    assert len(present) == len(ENERGY_FIELDS) - (0 if blocks else 2)
    assert len(cols) == sum(lay.slice(f).stop - lay.slice(f).start for f in present)
    np.testing.assert_allclose(out[..., cols], obs[..., cols] / typical[:, None].astype(np.float32))
    rest = np.setdiff1d(np.arange(lay.size), cols)
    np.testing.assert_array_equal(out[..., rest], obs[..., rest])
    assert out is not obs and ObservationScaler("absolute")(obs, None) is obs
    with pytest.raises(ValueError, match="needs the community"):
        ObservationScaler("per_home")(obs, None)
    with pytest.raises(ValueError, match="unknown observation scale"):
        ObservationScaler("relative")


def test_a_home_twice_as_large_observes_the_same():
    """Load, PV and battery doubled: the per-home-scaled energies are the same vector."""
    small = build_community(make_config(num_households=2))
    ds = small.dataset
    import dataclasses

    big_ds = dataclasses.replace(ds, load_kwh=ds.load_kwh * 2, pv_kwh=ds.pv_kwh * 2)
    big = build_community(make_config(num_households=2, battery={"capacity_kwh": 27.0, "max_power_kw": 10.0},
                                      grid={"import_limit_kwh": 20.0, "export_limit_kwh": 8.0}), dataset=big_ds)
    states = [core.reset_state(c.params, c.data, np.array([48 * 40 + 20]), 48) for c in (small, big)]
    seen = [ObservationScaler("per_home")(core.observe(s, c.params, c.data), c) for s, c in zip(states, (small, big))]
    cols = energy_columns(small.params.horizon)
    np.testing.assert_allclose(seen[0][..., cols], seen[1][..., cols], rtol=1e-5)


def test_per_home_checkpoint_round_trip_and_transfer(tmp_path):
    community = build_community(make_config(num_households=3, reward={"kind": "savings"}))
    settings = PPOSettings(total_timesteps=2_000, scenarios=2, batch_size=96, n_epochs=1, eval_every=10**9, observation_scale="per_home")
    policy = train_shared(community, settings, tmp_path, evaluate=False)
    assert json.loads((tmp_path / "meta.json").read_text())["observation_scale"] == "per_home"
    loaded = LearnedPolicy.load(tmp_path, community)
    obs = core.observe(core.reset_state(community.params, community.data, np.array([100, 900]), 48), community.params, community.data)
    np.testing.assert_array_equal(loaded.act(obs, None, community), policy.act(obs, None, community))
    raw = loaded.normalizers[0](obs.reshape(-1, obs.shape[-1]))
    assert not np.allclose(loaded.act(obs, None, community).reshape(-1), loaded.models[0].policy.predict(raw, deterministic=True)[0].reshape(-1))
    other = build_community(make_config(num_households=5, seed=3))  # other homes, another size
    other_obs = core.observe(core.reset_state(other.params, other.data, np.array([100]), 48), other.params, other.data)
    assert np.isfinite(LearnedPolicy.load(tmp_path, other).act(other_obs, None, other)).all()


def test_per_home_needs_the_shared_core_loop():
    with pytest.raises(ValueError, match="per_home needs mode 'shared'"):
        PPOSettings(mode="independent", observation_scale="per_home")

"""PPO training: a short run beats a random policy; checkpoints round-trip; bad checkpoints fail clearly."""

import json

import numpy as np
import pytest
import torch

from energy_env.community import build_community
from energy_env.config import make_config
from policies.learned import CheckpointError, LearnedPolicy
from train.ppo import PPOSettings, TestWeekEvaluator, make_vec_env, resume_model, train_shared

SMALL = dict(num_households=3, reward={"kind": "savings"})


class RandomPolicy:
    name = "random"

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def act(self, obs, state, community):
        return self.rng.uniform(-1, 1, state.soc_kwh.shape)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo")
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(total_timesteps=30_000, scenarios=8, batch_size=512, n_epochs=5, eval_every=10**9, seed=0)
    policy = train_shared(community, settings, out, evaluate=False)
    return community, policy, out


def test_short_ppo_beats_random(trained):
    community, policy, _ = trained
    evaluator = TestWeekEvaluator(community, max_weeks=2)
    assert evaluator.cost_usd(policy) < evaluator.cost_usd(RandomPolicy())


def test_checkpoint_round_trip_and_deterministic_evaluation(trained):
    community, policy, out = trained
    loaded = LearnedPolicy.load(out, community)
    evaluator = TestWeekEvaluator(community, max_weeks=1)
    assert evaluator.cost_usd(loaded) == evaluator.cost_usd(policy) == evaluator.cost_usd(loaded)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["mode"] == "shared" and meta["household_steps"] >= 30_000


def test_checkpoint_for_another_observation_layout(trained):
    _, _, out = trained
    other = build_community(make_config(num_households=3, forecast={"horizon": 4}))
    with pytest.raises(CheckpointError, match="another observation layout"):
        LearnedPolicy.load(out, other)


def test_missing_and_corrupt_checkpoints(tmp_path, trained):
    community, _, out = trained
    with pytest.raises(CheckpointError, match="no meta.json"):
        LearnedPolicy.load(tmp_path, community)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        LearnedPolicy.load(tmp_path, community)
    (tmp_path / "meta.json").write_text((out / "meta.json").read_text())
    (tmp_path / "obs_rms.npz").write_bytes((out / "obs_rms.npz").read_bytes())
    with pytest.raises(CheckpointError, match=r"policy.pt: missing"):
        LearnedPolicy.load(tmp_path, community)
    (tmp_path / "policy.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"policy.pt: not a readable weights file"):
        LearnedPolicy.load(tmp_path, community)


def test_resume_continues_the_run(tmp_path):
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(total_timesteps=4_000, scenarios=4, batch_size=192, n_epochs=1, eval_every=10**9)
    first = train_shared(community, settings, tmp_path, evaluate=False).models[0]
    # the rebuilt model is the saved one: weights, Adam's moments, step count, both normalisers
    venv = make_vec_env(community, settings.scenarios, settings.seed)
    model, done = resume_model(tmp_path, venv, settings, community)
    assert done == 4_000 and model.num_timesteps == 4_000
    for key, value in first.policy.state_dict().items():
        assert torch.equal(model.policy.state_dict()[key], value), key
    saved, restored = first.policy.optimizer.state_dict(), model.policy.optimizer.state_dict()
    assert saved["state"].keys() == restored["state"].keys() and len(saved["state"]) > 0
    for k in saved["state"]:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(saved["state"][k][name], restored["state"][k][name]), (k, name)
    stats = np.load(tmp_path / "obs_rms.npz", allow_pickle=False)
    np.testing.assert_array_equal(venv.obs_rms.mean, stats["mean"][0])
    assert venv.obs_rms.count == stats["count"][0] > 4_000 and venv.ret_rms.count == stats["return_count"][0] > 4_000
    venv.close()

    settings = settings.replace(total_timesteps=8_000)
    train_shared(community, settings, tmp_path, evaluate=False, resume=True)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["household_steps"] == 8_000
    assert np.load(tmp_path / "obs_rms.npz")["count"][0] > stats["count"][0] + 3_000  # kept counting, not restarted


def test_resume_refuses_other_settings(tmp_path):
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(total_timesteps=500, scenarios=2, batch_size=96, n_epochs=1, eval_every=10**9)
    train_shared(community, settings, tmp_path, evaluate=False)
    venv = make_vec_env(community, settings.scenarios, settings.seed)
    with pytest.raises(CheckpointError, match=r"meta.json: network .* differs from the settings"):
        resume_model(tmp_path, venv, settings.replace(net_arch=[32]), community)
    with pytest.raises(CheckpointError, match=r"meta.json: trained with residual base None, resuming with 'rule_based'"):
        resume_model(tmp_path, venv, settings.replace(residual_base="rule_based"), community)
    (tmp_path / "optimizer.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match=r"optimizer.pt: not a readable optimizer state file"):
        resume_model(tmp_path, venv, settings, community)
    venv.close()


def test_curve_has_one_row_per_evaluation_of_the_trained_weights(tmp_path, monkeypatch):
    """Evaluations fall between updates, so the last row is the saved checkpoint's score, once."""
    import csv

    import train.ppo as ppo
    from energy_env import core

    class Probe:  # scores a policy by its actions on fixed observations: any weight change shows
        baseline_usd = 1.0

        def __init__(self, community, max_weeks=None):
            self.community = community
            self.state = core.reset_state(community.params, community.data, np.array([0, 4800, 9600]), 48)
            self.obs = core.observe(self.state, community.params, community.data)

        def cost_usd(self, policy):
            return float(1000 * np.abs(policy.act(self.obs, self.state, self.community)).sum())

        def oracle_share(self, cost):
            return None

    monkeypatch.setattr(ppo, "TestWeekEvaluator", Probe)
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(total_timesteps=4 * 48 * 4 * 3, scenarios=4, batch_size=192, n_epochs=1, eval_every=2 * 48 * 4 * 3)
    train_shared(community, settings, tmp_path, evaluate=True)
    rows = list(csv.DictReader((tmp_path / "curve.csv").open()))
    assert [int(r["household_steps"]) for r in rows] == [1152, 2304]
    final = Probe(community).cost_usd(LearnedPolicy.load(tmp_path, community))
    assert float(rows[-1]["test_cost_usd"]) == round(final, 2)


def test_default_outputs_differ_per_variant_and_data_set():
    from train.checkpoints import default_output

    a = build_community(make_config(num_households=3))
    b = build_community(make_config(num_households=4))
    outs = {default_output(a, "shared"), default_output(a, "shared", "rule_based"), default_output(a, "independent"),
            default_output(a, "federated"), default_output(b, "shared")}
    assert len(outs) == 5
    assert default_output(a, "shared", "rule_based").name == "ppo_shared_residual_rule_based"


def test_episode_split_reaches_the_vecenv_and_needs_the_core():
    community = build_community(make_config(num_households=2, episode_length=336))
    venv = make_vec_env(community, 8, 0, split="train_whole")
    inner = venv
    while not hasattr(inner, "engine"):  # below VecNormalize
        inner = inner.venv
    assert inner.engine.split == "train_whole"
    venv.reset()
    test = community.dataset.test_day_mask()
    assert not any(test[d:d + 7].any() for d in (inner.engine.state.start // 48).tolist())
    venv.close()
    with pytest.raises(ValueError, match="needs vec 'core'"):
        PPOSettings(episode_split="train_whole", vec="supersuit")

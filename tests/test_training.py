"""PPO training: a short run beats a random policy; checkpoints round-trip; bad checkpoints fail clearly."""

import json

import numpy as np
import pytest

from energy_env.community import build_community
from energy_env.config import make_config
from policies.learned import CheckpointError, LearnedPolicy
from train.ppo import PPOSettings, TestWeekEvaluator, train_shared

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
    (tmp_path / "policy.zip").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="policy.zip: cannot load"):
        LearnedPolicy.load(tmp_path, community)


def test_resume_continues_the_run(tmp_path):
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(total_timesteps=4_000, scenarios=4, batch_size=192, n_epochs=1, eval_every=10**9)
    train_shared(community, settings, tmp_path, evaluate=False)
    settings.total_timesteps = 8_000
    train_shared(community, settings, tmp_path, evaluate=False, resume=True)
    assert json.loads((tmp_path / "meta.json").read_text())["household_steps"] == 8_000

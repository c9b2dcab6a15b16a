"""Policy checkpoints: exact round trips, no code runs from a file, every bad file is a CheckpointError naming it."""

import base64
import json
import pickle
import re
import shutil
import zipfile

import numpy as np
import pytest
import torch

from energy_env.community import build_community
from energy_env.config import make_config
from policies.checkpoint import env_action_space
from policies.learned import CheckpointError, LearnedPolicy
from train.benchmark import distinct_names, run_benchmark
from train.cli import main
from train.independent import train_independent
from train.ppo import PPOSettings, train_shared

TINY = PPOSettings(total_timesteps=2_000, scenarios=2, batch_size=96, n_epochs=1, eval_every=10**9)
SMALL = dict(num_households=3, reward={"kind": "savings"})


class Payload:
    """Unpickling this writes a marker file: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    out = tmp_path_factory.mktemp("shared")
    community = build_community(make_config(**SMALL))
    return community, train_shared(community, TINY, out, evaluate=False), out


@pytest.fixture(scope="module")
def independent(tmp_path_factory):
    out = tmp_path_factory.mktemp("independent")
    community = build_community(make_config(num_households=2, reward={"kind": "savings"}))
    settings = PPOSettings(total_timesteps=2 * 2 * 48 * 2, scenarios=2, batch_size=48, n_epochs=1, eval_every=10**9)
    return community, train_independent(community, settings, out, evaluate=False), out


def _obs(policy_or_meta_size, homes, seed=0):
    return np.random.default_rng(seed).normal(0, 3, (5, homes, policy_or_meta_size)).astype(np.float32)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _edit_meta(folder, **changes):
    meta = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if value is KeyError:
            del meta[key]
        else:
            meta[key] = value
    (folder / "meta.json").write_text(json.dumps(meta))


def _raises(folder, file, match, community=None, **kw):
    """Loading ``folder`` raises CheckpointError whose message names ``file`` and matches ``match``."""
    with pytest.raises(CheckpointError) as err:
        LearnedPolicy.load(folder, community, **kw)
    assert str(folder / file) in str(err.value), str(err.value)
    assert re.search(match, str(err.value)), str(err.value)
    return err.value


# --- round trips ---------------------------------------------------------------------------------


def test_shared_round_trip_acts_identically(shared):
    community, policy, out = shared
    assert sorted(p.name for p in out.glob("*.pt")) == ["optimizer.pt", "policy.pt"] and not list(out.glob("*.zip"))
    loaded = LearnedPolicy.load(out, community)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["name"] == loaded.name == policy.name == "ppo_shared" and meta["mode"] == "shared"
    assert meta["format"] == "wattshare-policy" and meta["format_version"] == 1 and meta["package_version"]
    assert meta["network"]["net_arch"] == [64, 64] and meta["network"]["activation"] == "Tanh"
    assert meta["observation_size"] == sum(w for _, w in meta["observation_layout"])
    assert meta["action_space"] == {"shape": [1], "low": [-1.0], "high": [1.0]}
    obs = _obs(meta["observation_size"], 3)
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))
    assert not np.allclose(loaded.act(obs), loaded.act(obs)[0, 0])  # a real network, not a constant


def test_residual_round_trip_keeps_the_name_and_base(tmp_path):
    community = build_community(make_config(**SMALL))
    settings = PPOSettings(total_timesteps=500, scenarios=2, batch_size=96, n_epochs=1, eval_every=10**9, residual_base="rule_based")
    policy = train_shared(community, settings, tmp_path, evaluate=False)
    loaded = LearnedPolicy.load(tmp_path, community)
    assert json.loads((tmp_path / "meta.json").read_text())["name"] == loaded.name == "ppo_shared_residual_rule_based"
    assert loaded.residual_base == "rule_based" and loaded.base is not None
    from energy_env.rollout import rollout

    starts = np.array([0, 48 * 30])
    a = rollout(community, policy.act, starts, 48)["cost_usd"]
    b = rollout(community, loaded.act, starts, 48)["cost_usd"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("label", ["independent", "federated"])
def test_per_home_round_trip(tmp_path, label):
    community = build_community(make_config(num_households=2, reward={"kind": "savings"}))
    settings = PPOSettings(total_timesteps=2 * 2 * 48 * 2, scenarios=2, batch_size=48, n_epochs=1, eval_every=10**9)
    policy = train_independent(community, settings, tmp_path, evaluate=False, label=label)
    assert {p.name for p in tmp_path.glob("*.pt")} == {"policy_0.pt", "policy_1.pt", "optimizer_0.pt", "optimizer_1.pt"}
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["name"] == f"ppo_{label}" and meta["mode"] == label
    loaded = LearnedPolicy.load(tmp_path, community)
    assert loaded.name == f"ppo_{label}" and loaded.mode == label and len(loaded.models) == 2
    obs = _obs(meta["observation_size"], 2)
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))


def test_independent_refuses_a_residual_base(tmp_path):
    community = build_community(make_config(num_households=2))
    settings = PPOSettings(total_timesteps=200, scenarios=2, residual_base="rule_based")
    with pytest.raises(ValueError, match="residual learning .* needs the shared mode"):
        train_independent(community, settings, tmp_path, evaluate=False)


def test_env_action_space_is_the_envs():
    from energy_env.env import WattshareParallelEnv

    env = WattshareParallelEnv(num_households=2)
    assert env.action_space(env.possible_agents[0]) == env_action_space()


# --- no code runs from a file --------------------------------------------------------------------


def test_payload_is_live(tmp_path):
    """The payload below really runs when unpickled, so its absence in the tests that follow means something."""
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "pwned"


def _legacy_folder(shared, folder, zip_writer):
    _, policy, out = shared
    folder.mkdir()
    meta = json.loads((out / "meta.json").read_text())
    old = {k: meta[k] for k in ("mode", "num_households", "observation_layout", "residual_base", "residual_scale", "household_steps")}
    old["name"] = "policy.zip"  # what the old writer stored for every shared checkpoint
    (folder / "meta.json").write_text(json.dumps(old))
    shutil.copy(out / "obs_rms.npz", folder / "obs_rms.npz")
    zip_writer(folder / "policy.zip")
    return folder


def test_legacy_zip_with_a_pickle_payload_needs_the_trust_flag(tmp_path, shared):
    community = shared[0]
    marker = tmp_path / "marker"

    def crafted(path):
        data = {"observation_space": {":type:": "<class 'gymnasium.spaces.box.Box'>",
                                      ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode()}}
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("data", json.dumps(data))

    folder = _legacy_folder(shared, tmp_path / "legacy", crafted)
    err = _raises(folder, "", r"legacy Stable-Baselines3 checkpoint .* can run arbitrary code.*trust_pickle=True .*--trust-pickled-checkpoints", community)
    assert not marker.exists()
    code = main(["benchmark", "--households", "3", "--policies", "rule_based", "--checkpoints", str(folder), "--weeks", "1",
                 "--no-plots", "--output", str(tmp_path / "bench")])
    assert code == 2 and not marker.exists() and "trust" in str(err)
    # the flag is what stands between the file and its code: with it, the pickle runs
    with pytest.raises(CheckpointError, match=r"policy.zip: cannot load the legacy PPO model"):
        LearnedPolicy.load(folder, community, trust_pickle=True)
    assert marker.read_text() == "pwned"


def test_trusted_legacy_zip_loads_with_its_policy_name(tmp_path, shared):
    community, policy, _ = shared
    folder = _legacy_folder(shared, tmp_path / "legacy", lambda path: policy.models[0].save(path))
    _raises(folder, "", "trust_pickle=True", community)
    loaded = LearnedPolicy.load(folder, community, trust_pickle=True)
    assert loaded.name == "ppo_shared"  # not the old writer's "policy.zip"
    obs = _obs(loaded.normalizers[0].mean.shape[0], 3)
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))
    out = tmp_path / "bench"
    assert main(["benchmark", "--households", "3", "--policies", "rule_based", "--checkpoints", str(folder), "--weeks", "1",
                 "--no-plots", "--trust-pickled-checkpoints", "--output", str(out)]) == 0
    assert (out / "results_ppo_shared.json").exists()


def test_weights_file_with_a_pickle_payload_is_refused(tmp_path, shared):
    community, _, out = shared
    marker = tmp_path / "marker"
    folder = _copy(out, tmp_path / "ckpt")
    torch.save(Payload(marker), folder / "policy.pt")
    _raises(folder, "policy.pt", r"not a readable weights file .*weights_only=True.*UnpicklingError", community)
    assert not marker.exists()
    torch.save({"mlp_extractor.policy_net.0.weight": Payload(marker)}, folder / "policy.pt")  # hidden inside a state dict
    _raises(folder, "policy.pt", r"weights_only=True", community)
    assert not marker.exists()


# --- every bad file names itself -----------------------------------------------------------------


def test_checkpoint_of_another_env(shared, independent):
    _, _, out = shared
    other_horizon = build_community(make_config(num_households=3, forecast={"horizon": 4}))
    _raises(out, "meta.json", r"another observation layout \(\d+ fields of 49 values vs the env's \d+ of \d+", other_horizon)
    community, _, per_home = independent
    _raises(per_home, "meta.json", r"independent policies for 2 homes \(one network each\), the community has 3", build_community(make_config(num_households=3)))
    LearnedPolicy.load(out, build_community(make_config(num_households=5)))  # one shared network fits any community size


def _savez(path, **arrays):
    with open(path, "wb") as f:  # np.savez on a path adds ".npz" only when missing: write in place either way
        np.savez(f, **arrays)


@pytest.mark.parametrize("write, match", [
    (lambda p: p.write_bytes(b""), r"corrupt \(EOFError"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not really"), r"corrupt"),
    (lambda p: p.unlink(), r"missing"),
    (lambda p: _savez(p, mean=np.zeros((1, 7)), var=np.ones((1, 7))), r"mean has shape \(1, 7\), expected \(1, 49\)"),
    (lambda p: _savez(p, mean=np.zeros((1, 49))), r"no array 'var'"),
    (lambda p: _savez(p, mean=np.zeros((1, 49)), var=np.full((1, 49), np.nan)), r"var holds 49 non-finite values"),
    (lambda p: _savez(p, mean=np.zeros((1, 49)), var=-np.ones((1, 49))), r"var has negative values"),
    (lambda p: _savez(p, mean=np.array([[Payload("/nonexistent/x")]], dtype=object), var=np.ones((1, 49))), r"corrupt \(ValueError: Object arrays"),
])
def test_bad_normaliser(tmp_path, shared, write, match):
    community, _, out = shared
    folder = _copy(out, tmp_path / "ckpt")
    write(folder / "obs_rms.npz")
    _raises(folder, "obs_rms.npz", match, community)


@pytest.mark.parametrize("changes, match", [
    ({"network": KeyError}, r"missing key 'network'"),
    ({"num_households": "3"}, r"num_households is '3' \(str\), expected a int"),
    ({"mode": "central"}, r"mode 'central', expected one of"),
    ({"observation_size": 50}, r"observation_size 50 but the observation_layout adds up to 49"),
    ({"observation_layout": [["soc_fraction", "1"]]}, r"observation_layout\[0\] is \['soc_fraction', '1'\]"),
    ({"residual_scale": None}, r"residual_scale is None .* expected a finite number"),
    ({"residual_base": "os.system"}, r"residual_base must be null or one of"),
    ({"name": "../../etc/passwd"}, r"name '../../etc/passwd' must match"),
    ({"format": "sb3"}, r"not a wattshare policy checkpoint \(format 'sb3'"),
    ({"format_version": 2}, r"format_version 2; this code reads version 1"),
    ({"action_space": {"shape": [1], "low": [0.0], "high": [1.0]}}, r"action space Box\(0.0, 1.0, \(1,\), float32\), the env's is Box\(-1.0, 1.0"),
    ({"action_space": {"shape": [1], "low": ["-1"], "high": [1.0]}}, r"action_space.low \['-1'\], expected 1 finite numbers"),
])
def test_edited_meta(tmp_path, shared, changes, match):
    community, _, out = shared
    folder = _copy(out, tmp_path / "ckpt")
    _edit_meta(folder, **changes)
    _raises(folder, "meta.json", match, community)


@pytest.mark.parametrize("network, match", [
    ({"net_arch": [10**6]}, r"network.net_arch \[1000000\], expected up to 8 widths in 1..1024"),
    ({"activation": "os.system"}, r"network.activation 'os.system', expected one of"),
    ({"log_std_init": "-1"}, r"network.log_std_init '-1', expected a finite number"),
    ({"net_arch": [32, 32]}, r"policy.pt: mlp_extractor.policy_net.0.weight is torch.float32 \(64, 49\), the network meta.json describes needs torch.float32 \(32, 49\)"),
    ({"net_arch": {"pi": [64, 64], "vf": [32]}}, r"policy.pt: parameters do not match the network meta.json describes \(missing \[\], unexpected \['mlp_extractor.value_net.2.bias'"),
])
def test_edited_network(tmp_path, shared, network, match):
    community, _, out = shared
    folder = _copy(out, tmp_path / "ckpt")
    meta = json.loads((folder / "meta.json").read_text())
    _edit_meta(folder, network={**meta["network"], **network})
    _raises(folder, "policy.pt" if "policy.pt" in match else "meta.json", match, community)


def test_non_finite_meta_and_weights(tmp_path, shared):
    community, _, out = shared
    folder = _copy(out, tmp_path / "ckpt")
    text = (out / "meta.json").read_text()
    (folder / "meta.json").write_text(text.replace('"residual_scale": 0.5', '"residual_scale": NaN'))
    _raises(folder, "meta.json", r"corrupt \(non-finite number NaN", community)
    (folder / "meta.json").write_text(text.replace('"log_std_init": -1.0', '"log_std_init": 1e999'))  # parses as inf
    _raises(folder, "meta.json", r"network.log_std_init inf, expected a finite number", community)
    (folder / "meta.json").write_text('["a list"]')
    _raises(folder, "meta.json", r"corrupt \(a JSON list, expected an object\)", community)
    (folder / "meta.json").write_text(text)
    state = torch.load(out / "policy.pt", weights_only=True)
    state["log_std"] = torch.full_like(state["log_std"], float("inf"))
    torch.save(state, folder / "policy.pt")
    _raises(folder, "policy.pt", r"log_std holds non-finite values", community)


def test_weights_of_the_wrong_shape(tmp_path, shared):
    community, _, out = shared
    folder = _copy(out, tmp_path / "ckpt")
    state = torch.load(out / "policy.pt", weights_only=True)
    state["action_net.weight"] = torch.zeros(2, 64)
    torch.save(state, folder / "policy.pt")
    _raises(folder, "policy.pt", r"action_net.weight is torch.float32 \(2, 64\), the network meta.json describes needs torch.float32 \(1, 64\)", community)
    del state["action_net.weight"]
    torch.save(state, folder / "policy.pt")
    _raises(folder, "policy.pt", r"missing \['action_net.weight'\]", community)
    torch.save([1, 2, 3], folder / "policy.pt")
    _raises(folder, "policy.pt", r"not a state dict \(a list", community)


# --- the benchmark keeps one row per checkpoint ---------------------------------------------------


def test_two_checkpoints_of_the_same_name_keep_a_row_each(tmp_path, shared):
    _, _, out = shared
    a, b = _copy(out, tmp_path / "A"), _copy(out, tmp_path / "B")
    bench = tmp_path / "bench"
    assert main(["benchmark", "--households", "3", "--policies", "rule_based", "--checkpoints", str(a), str(b),
                 "--weeks", "1", "--no-plots", "--output", str(bench)]) == 0
    table = (bench / "benchmark.md").read_text()
    assert "| ppo_shared@A |" in table and "| ppo_shared@B |" in table
    docs = {p.name: json.loads(p.read_text()) for p in bench.glob("results_*.json")}
    assert set(docs) == {"results_rule_based.json", "results_ppo_shared@A.json", "results_ppo_shared@B.json"}
    assert docs["results_ppo_shared@A.json"]["policy"] == "ppo_shared@A"


def test_distinct_names(tmp_path, shared):
    community, policy, out = shared
    (tmp_path / "x").mkdir()
    first, second = LearnedPolicy.load(out, community), LearnedPolicy.load(_copy(out, tmp_path / "x" / out.name), community)
    folder = out.resolve().name
    assert distinct_names([first, second, first]) == [f"ppo_shared@{folder}", f"ppo_shared@{folder}-2", f"ppo_shared@{folder}-3"]
    assert distinct_names([first, policy]) == [f"ppo_shared@{folder}", "ppo_shared"]  # the in-memory one keeps its name
    with pytest.raises(ValueError, match="two policies are named 'ppo_shared'"):
        distinct_names([policy, policy])
    with pytest.raises(ValueError, match="two policies are named 'rule_based'"):
        run_benchmark(make_config(num_households=3), ["rule_based", "rule_based"], tmp_path / "b", max_weeks=1, plots=False, progress=False)


# --- transfer: a shared checkpoint acts on other homes ---------------------------------------


def _acts_on(policy, community):
    from energy_env.rollout import rollout

    starts = np.array([48 * 30])
    out = rollout(community, policy.act, starts, 96)
    assert np.isfinite(out["cost_usd"]).all() and out["cost_usd"].shape == (96, 1, community.num_households)
    assert (out["action_out_of_box"] == 0).all() and (out["constraint_violation_kwh"] == 0).all()


def test_shared_checkpoint_acts_on_another_community_of_another_size(shared):
    """Trained on 3 synthetic homes; acts unchanged on 7 others (another seed, year, mixed batteries)."""
    _, _, out = shared
    other = build_community(make_config(num_households=7, seed=5, data={"year": 2024},
                                        battery={"capacity_kwh": [13.5, 5.0, 0.0, 20.0, 13.5, 10.0, 13.5]}))
    _acts_on(LearnedPolicy.load(out, other), other)


def test_shared_checkpoint_acts_on_measured_homes(shared):
    from tests.conftest import require_shared

    path = require_shared()
    _, _, out = shared
    citylearn = build_community(make_config(num_households=5, data={"source": "citylearn", "path": str(path)}))
    _acts_on(LearnedPolicy.load(out, citylearn), citylearn)

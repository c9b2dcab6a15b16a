"""Federated averaging on Flower: the screen, the averaging numerics, privacy, DP, both paths.

Toy ClientApps (a 3-number model) check the numerics by hand; the forecasters' ClientApp runs on
the two-month hand-made data set of the forecasting tests with a tiny LSTM.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from federated.forecast_runs import central_forecasters, global_forecasters, personalised_forecasters, run_fedavg
from federated.forecasters import client_app, home_data, register_dataset, settings_from_run_config
from federated.local_grid import FIRST_NODE_ID, LocalGrid
from federated.records import load_shared, reply_problem, state_to_record
from federated.strategy import FedSettings, make_strategy
from forecasting.provider import predict
from tests.test_forecasting import daily_dataset

TINY = {"hidden-size": 4, "window": 8, "batch-size": 256, "learning-rate": 0.01, "rounds": 2, "local-epochs": 1}

# --- a toy federation: client i adds (i + 1) to every weight, reports (i + 1) samples --------------

BAD = {}  # node index -> what that client does wrong


def toy_app() -> ClientApp:
    app = ClientApp()

    @app.train()
    def train(msg: Message, context) -> Message:
        i = int(context.node_config["partition-id"])
        w = msg.content["arrays"]["w"].numpy() + (i + 1)
        fault = BAD.get(i)
        if fault == "raise":
            raise RuntimeError("battery controller offline")
        arrays = {"w": Array(w)}
        if fault == "nan":
            arrays = {"w": Array(w * np.nan)}
        elif fault == "inf":
            arrays = {"w": Array(np.full_like(w, np.inf))}
        elif fault == "shape":
            arrays = {"w": Array(np.zeros(5, dtype=np.float32))}
        elif fault == "keys":
            arrays = {"v": Array(w)}
        content = RecordDict({"metrics": MetricRecord({"num-examples": i + 1, "unit-weight": 1.0, "loss": float(i)})})
        if fault != "empty":
            content["arrays"] = ArrayRecord(arrays)
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context) -> Message:
        w = msg.content["arrays"]["w"].numpy()
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1, "unit-weight": 1.0, "val-loss": float(abs(w).sum())})}), reply_to=msg)

    return app


def run_toy(n: int, rounds: int, drop=None, settings: FedSettings | None = None):
    grid = LocalGrid(toy_app(), [{"partition-id": i} for i in range(n)], drop=drop)
    strategy = make_strategy(settings or FedSettings(rounds=rounds), n, select_metric="val-loss")
    start = ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32))})
    result = strategy.start(grid=grid, initial_arrays=start, num_rounds=rounds)
    return result, strategy, grid


@pytest.fixture(autouse=True)
def _clear_faults():
    BAD.clear()
    yield
    BAD.clear()


def test_fedavg_weights_updates_by_sample_count():
    result, strategy, _ = run_toy(3, 2)
    # round 1: (1*1 + 2*2 + 3*3) / 6 = 14/6; round 2 adds the same again
    np.testing.assert_allclose(result.arrays["w"].numpy(), np.full(3, 28 / 6), rtol=1e-6)
    assert strategy.left_out == []
    assert set(strategy.train_metrics[2]) == {FIRST_NODE_ID, FIRST_NODE_ID + 1, FIRST_NODE_ID + 2}


@pytest.mark.parametrize("fault, reason", [
    ("nan", "NaN or inf"), ("inf", "NaN or inf"), ("shape", "wrong shape"), ("keys", "wrong parameters"),
    ("empty", "sent no weights"), ("raise", "battery controller offline"),
])
def test_bad_client_is_left_out_and_round_completes(fault, reason, caplog):
    BAD[1] = fault
    with caplog.at_level(logging.WARNING, logger="wattshare.federated"):
        result, strategy, _ = run_toy(3, 1)
    # the average of clients 0 and 2 only: (1*1 + 3*3) / 4
    np.testing.assert_allclose(result.arrays["w"].numpy(), np.full(3, 10 / 4), rtol=1e-6)
    assert [(e["node_id"], e["stage"]) for e in strategy.left_out] == [(FIRST_NODE_ID + 1, "train")]
    assert reason in strategy.left_out[0]["reason"]
    assert reason in caplog.text


def test_dropout_is_left_out_with_reason():
    result, strategy, grid = run_toy(3, 1, drop=lambda node, msg: node == FIRST_NODE_ID and msg.metadata.message_type == "train")
    np.testing.assert_allclose(result.arrays["w"].numpy(), np.full(3, (2 * 2 + 3 * 3) / 5), rtol=1e-6)
    assert strategy.left_out == [{"round": 1, "node_id": FIRST_NODE_ID, "stage": "train", "reason": "no reply (dropped out)"}]


def test_every_client_failing_keeps_the_global_weights():
    BAD.update({0: "nan", 1: "raise", 2: "shape"})
    result, strategy, _ = run_toy(3, 1)
    assert len(result.arrays) == 0  # Flower's Result: no aggregate this round
    assert len(strategy.left_out) == 3


def test_best_round_is_kept():
    _, strategy, _ = run_toy(2, 3)  # |w| grows every round, so round 1 is best
    assert strategy.best_round == 1
    np.testing.assert_allclose(strategy.best_arrays["w"].numpy(), np.full(3, 5 / 3), rtol=1e-6)


def test_reply_problem_accepts_a_good_reply():
    expected = ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))})
    grid = LocalGrid(toy_app(), [{"partition-id": 0}])
    msg = grid.create_message(RecordDict({"arrays": expected}), "train", FIRST_NODE_ID, "")
    msg.metadata.__dict__["_message_id"] = "m1"
    good = Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
                               "metrics": MetricRecord({"num-examples": 4})}), reply_to=msg)
    assert reply_problem(good, expected) is None
    no_weight = Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
                                    "metrics": MetricRecord({"loss": 1.0})}), reply_to=msg)
    assert "num-examples" in reply_problem(no_weight, expected)
    error = Message(Error(code=300, reason="boom"), reply_to=msg)
    assert reply_problem(error, expected) == "client error: boom"


def test_dp_clips_adds_noise_and_reports_the_budget():
    settings = FedSettings(rounds=3, dp_noise_multiplier=1.0, dp_clipping_norm=0.5)
    result, strategy, _ = run_toy(3, 3, settings=settings)
    w = result.arrays["w"].numpy()
    assert not np.allclose(w, w[0])  # independent noise per weight
    spent = strategy.privacy_spent()
    assert spent.num_releases == 3 and math.isfinite(spent.epsilon) and spent.epsilon > 0
    # more noise, same rounds: a smaller epsilon
    _, quieter, _ = run_toy(3, 3, settings=FedSettings(rounds=3, dp_noise_multiplier=3.0, dp_clipping_norm=0.5))
    assert quieter.privacy_spent().epsilon < spent.epsilon


def test_dp_round_with_a_dropout_releases_nothing():
    settings = FedSettings(rounds=1, dp_noise_multiplier=1.0)
    result, strategy, _ = run_toy(3, 1, drop=lambda node, msg: node == FIRST_NODE_ID, settings=settings)
    assert len(result.arrays) == 0 and strategy.privacy_spent().num_releases == 0


def test_settings_from_run_config_names_bad_keys():
    with pytest.raises(ValueError, match="unknown run-config keys.*'round'"):
        settings_from_run_config({"round": 3})
    with pytest.raises(ValueError, match="run-config 'rounds': Input should be a valid integer"):
        settings_from_run_config({"rounds": "3"})
    cfg, fed = settings_from_run_config({"hidden-size": 4, "local-epochs": 2, "learning-rate": 1})
    assert cfg.hidden_size == 4 and cfg.max_epochs == 2 and fed.local_epochs == 2 and cfg.learning_rate == 1.0


def test_load_shared_refuses_foreign_weights():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="'weight' have shape"):
        load_shared(model, ArrayRecord({"weight": Array(np.zeros((4, 4), dtype=np.float32))}))
    with pytest.raises(ValueError, match="'head.weight', which the model does not have"):
        load_shared(model, ArrayRecord({"head.weight": Array(np.zeros(2, dtype=np.float32))}))
    record = state_to_record(model.state_dict(), personal_prefixes=["bias"])
    assert list(record) == ["weight"]


# --- the forecasters' ClientApp -----------------------------------------------------------------


@pytest.fixture(scope="module")
def homes():
    return daily_dataset(days=59, homes=3)


def test_forecaster_messages_carry_only_weights_and_scalars(homes):
    register_dataset("fl-test", homes)
    cfg, fed = settings_from_run_config(TINY)
    grid = LocalGrid(client_app, [{"partition-id": i, "dataset-key": "fl-test"} for i in range(3)], TINY)
    strategy = make_strategy(fed, 3)
    from federated.forecasters import initial_arrays

    strategy.start(grid=grid, initial_arrays=initial_arrays(cfg), num_rounds=1, train_config=ConfigRecord())
    param_shapes = {k: v.shape for k, v in initial_arrays(cfg).items()}
    assert len(grid.replies) == 6  # 3 train + 3 evaluate
    assert strategy.left_out == [] and strategy.adjusted == []  # honest homes pass the robust screens untouched
    for reply in grid.replies:
        assert not reply.has_error()
        content = reply.content
        assert len(content.config_records) == 0
        for record in content.array_records.values():
            assert {k: v.shape for k, v in record.items()} == param_shapes  # the model's weights, nothing else
        for record in content.metric_records.values():
            assert all(isinstance(v, (int, float)) for v in record.values())


def test_forecaster_fedavg_round_trip(homes):
    run = run_fedavg(homes, TINY)
    assert [r["clients"] for r in run.rounds] == [3, 3] and run.left_out == []
    assert run.best_round in (1, 2) and np.isfinite(run.rounds[-1]["val_loss"])
    trained = global_forecasters(run, homes)
    load, pv = predict(trained, homes, 6)
    assert load.shape[1:] == (3, 6) and np.isfinite(load).all() and (pv >= 0).all()
    # personalisation never ends worse than the global model on a home's own validation days
    personal = personalised_forecasters(run, homes, epochs=2)
    from federated.forecasters import validation_loss

    for i in range(3):
        home = home_data(homes.select([i]), run.config)
        assert validation_loss(personal.models[i], home, run.config) <= validation_loss(trained.models[i], home, run.config) + 1e-7
    central = central_forecasters(homes, run.config)
    assert all(m is central.models[0] or m.state_dict().keys() == central.models[0].state_dict().keys() for m in central.models)


def test_forecaster_fedavg_survives_a_dropout(homes):
    run = run_fedavg(homes, {**TINY, "rounds": 1}, drop=lambda node, msg: node == FIRST_NODE_ID + 2)
    assert run.rounds[0]["clients"] == 2
    assert {e["reason"] for e in run.left_out} == {"no reply (dropped out)"}


def test_forecaster_fedavg_with_dp_reports_epsilon(homes):
    run = run_fedavg(homes, {**TINY, "dp-noise-multiplier": 1.0, "dp-clipping-norm": 0.5})
    assert run.epsilon is not None and run.epsilon > 0 and run.delta == 1e-5


# --- the deployment path: flwr run against a real SuperLink and SuperNodes --------------------------


def test_flwr_run_matches_in_process_path(tmp_path):
    """2 rounds, 3 households: ``flwr run`` on a SuperLink + 3 SuperNodes gives the in-process weights."""
    pytest.importorskip("flwr")
    from energy_env.config import load_config
    from energy_env.data import load_dataset
    from federated.local_deployment import LocalDeployment, _alive

    run_config = {**TINY, "batch-size": 2048}
    deployment = LocalDeployment(3, tmp_path / "deploy", node_config={"households": 3})
    (tmp_path / "deploy").mkdir()
    with deployment:
        summary = deployment.run(run_config, tmp_path / "out", timeout_s=400)
        pids = [p.pid for p in deployment.processes]
    assert not any(_alive(pid) for pid in pids), "a Flower process outlived the deployment"
    remote = np.load(tmp_path / "out" / "global_final.npz")
    cfg = load_config(None, num_households=3)
    local = run_fedavg(load_dataset(cfg.data, 3, cfg.seed), run_config)
    assert set(remote.files) == set(local.final_state)
    for key, value in local.final_state.items():
        np.testing.assert_allclose(remote[key], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    info = json.loads(summary.read_text())
    assert info["clients_per_round"] == {"1": 3, "2": 3} and info["left_out"] == []


# --- policies: FedAvg every K PPO updates -------------------------------------------------------


@pytest.mark.parametrize("personal, share_normalizers", [("none", True), ("head", False)])
def test_policy_fedavg_every_update(tmp_path, personal, share_normalizers):
    from energy_env.community import build_community
    from energy_env.config import make_config
    from federated.policies import PolicyFederation
    from train.independent import train_independent
    from train.ppo import PPOSettings

    community = build_community(make_config(num_households=3, reward={"kind": "savings"}))
    settings = PPOSettings(total_timesteps=2 * 4 * 48 * 3, scenarios=4, batch_size=96, n_epochs=2, eval_every=10**9)
    hook = PolicyFederation(every=1, personal=personal, steps_per_update=4 * 48, share_normalizers=share_normalizers,
                            settings=FedSettings(server_learning_rate=2.0))
    policy = train_independent(community, settings, tmp_path, evaluate=False, after_update=hook, label="federated")
    assert hook.round == 2 and hook.strategy.left_out == [] and policy.name == "ppo_federated"
    assert hook.strategy.adjusted == [] and hook.strategy.expected_samples == 4 * 48  # the server knows the steps
    means = [n.mean for n in policy.normalizers]
    assert all(np.array_equal(means[0], m) for m in means[1:]) == share_normalizers
    states = [m.policy.state_dict() for m in policy.models]
    for key in states[0]:
        same = all(torch.equal(states[0][key], s[key]) for s in states[1:])
        personal_layer = key.startswith(("action_net.", "value_net.", "log_std"))
        assert same == (personal == "none" or not personal_layer), key


def test_policy_federation_rejects_bad_settings():
    from federated.policies import PolicyFederation

    with pytest.raises(ValueError, match="every must be >= 1"):
        PolicyFederation(every=0)
    with pytest.raises(ValueError, match="personal must be one of"):
        PolicyFederation(every=1, personal="tail")


# --- the online mode ----------------------------------------------------------------------------


def test_online_mode_rounds_every_three_hours(homes):
    from federated.online import OnlineSettings, run_online

    run = run_fedavg(homes, {**TINY, "rounds": 1})
    result = run_online(homes, run.global_state, run.config, start=40 * 48, length=48, settings=OnlineSettings(steps=3))
    assert result.rounds == 48 // 6 and result.left_out == []
    assert np.isfinite(result.online_mape_pct) and np.isfinite(result.frozen_mape_pct)
    assert result.online_mape_pct != result.frozen_mape_pct  # the model did change


def test_worker_processes_give_the_same_weights(homes):
    one = run_fedavg(homes, TINY)
    two = run_fedavg(homes, TINY, workers=2)
    for key, value in one.final_state.items():
        assert torch.equal(value, two.final_state[key]), key


def test_federated_forecasters_cli(tmp_path, capsys):
    from train.cli import main

    code = main(["federated-forecasters", "--households", "2", "--rounds", "1", "--finetune-epochs", "1", "--no-references",
                 "--workers", "1", "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "pooled load MAPE %: fedavg" in out and "overhead" in out
    assert len(list(tmp_path.rglob("lstm_fedavg_personal.pt"))) == 1
    assert main(["federated-forecasters", "--rounds", "0"]) == 2
    assert "rounds and local_epochs must be >= 1" in capsys.readouterr().err


def test_server_learning_rate_scales_the_averaged_update():
    result, _, _ = run_toy(3, 1, settings=FedSettings(rounds=1, server_learning_rate=2.0))
    np.testing.assert_allclose(result.arrays["w"].numpy(), np.full(3, 2 * 14 / 6), rtol=1e-6)  # FedAvgM, no momentum
    with pytest.raises(ValueError, match="differential privacy needs plain FedAvg"):
        FedSettings(dp_noise_multiplier=1.0, server_momentum=0.9)


def test_round_learning_rate_decays_to_a_tenth():
    from federated.forecasters import round_learning_rate

    cfg = {"learning-rate": 0.01, "rounds": 5}
    rates = [round_learning_rate(cfg, r) for r in range(1, 6)]
    assert rates[0] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert round_learning_rate({**cfg, "lr-decay": False}, 5) == 0.01


def test_flower_app_config_holds_the_sections_defaults():
    """flower_app/pyproject.toml's run config is the federated and forecasting sections' defaults."""
    import tomllib
    from pathlib import Path

    from federated.forecasters import APP_KEYS, RUN_CONFIG_DEFAULTS

    app = Path(__file__).resolve().parents[1] / "federated" / "flower_app" / "pyproject.toml"
    config = tomllib.loads(app.read_text())["tool"]["flwr"]["app"]["config"]
    assert set(config) == set(RUN_CONFIG_DEFAULTS)
    assert {k: v for k, v in config.items() if k not in APP_KEYS} == {k: v for k, v in RUN_CONFIG_DEFAULTS.items() if k not in APP_KEYS}


def test_client_sampling_is_deterministic_by_seed(homes):
    """FedAvg asks a seeded sample of the homes each round (at scale: 50 of 1,000)."""
    sampled = {**TINY, "fraction-train": 0.34, "fraction-evaluate": 0.34, "rounds": 3}
    a, b = run_fedavg(homes, sampled), run_fedavg(homes, sampled)
    c = run_fedavg(homes, {**sampled, "seed": 7})
    assert [r["clients"] for r in a.rounds] == [1, 1, 1]
    for key, value in a.final_state.items():
        assert torch.equal(value, b.final_state[key]), key
    assert any(not torch.equal(v, c.final_state[k]) for k, v in a.final_state.items())  # another seed, another sample

"""Federated averaging under finite poison: the norm screen, the weight cap, Flower's robust aggregators.

Each test builds one round's Flower Messages by hand (a 6-number model) and calls the strategy's
``aggregate_train``, as the server loop would.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from federated.forecasters import settings_from_run_config
from federated.local_grid import FIRST_NODE_ID, LocalGrid
from federated.records import far_above, lower_median, update_norms
from federated.strategy import FedSettings, ScreenedStrategy, make_strategy

D = 6
START = ArrayRecord({"w": Array(np.zeros(D, dtype=np.float32)), "b": Array(np.ones(2, dtype=np.float32))})


def honest(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``n`` honest clients' weights: the start plus a small update, different per client."""
    rng = np.random.default_rng(seed)
    return [{k: (v.numpy() + rng.normal(0, 0.1, v.numpy().shape)).astype(np.float32) for k, v in START.items()} for _ in range(n)]


def one_round(strategy: ScreenedStrategy, weights: list[dict[str, np.ndarray]], claims: list[float], stage: str = "train"):
    """Send START to every client, and return one reply per client i: ``weights[i]`` claiming ``claims[i]`` samples."""
    n = len(weights)
    grid = LocalGrid(ClientApp(), [{"partition-id": i} for i in range(n)])
    configure = strategy.configure_train if stage == "train" else strategy.configure_evaluate
    replies = []
    for k, msg in enumerate(configure(1, START, ConfigRecord(), grid)):
        msg.metadata.__dict__["_message_id"] = f"m{k}"
        i = msg.metadata.dst_node_id - FIRST_NODE_ID
        content = RecordDict({"metrics": MetricRecord({"num-examples": claims[i], "unit-weight": 1.0, "loss": float(i)})})
        if stage == "train":
            content["arrays"] = ArrayRecord({key: Array(np.asarray(v)) for key, v in weights[i].items()})
        reply = Message(content, reply_to=msg)
        reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
        replies.append(reply)
    return replies


def honest_range(weights: list[dict[str, np.ndarray]], key: str) -> tuple[np.ndarray, np.ndarray]:
    stack = np.stack([w[key] for w in weights])
    return stack.min(axis=0), stack.max(axis=0)


def assert_in_honest_range(arrays: ArrayRecord, weights: list[dict[str, np.ndarray]]) -> None:
    for key in START:
        lo, hi = honest_range(weights, key)
        got = arrays[key].numpy()
        assert np.all(got >= lo - 1e-6) and np.all(got <= hi + 1e-6), (key, got, lo, hi)


# --- the numbers the screens compare ---------------------------------------------------------------


def test_update_norms_are_float64_and_finite_for_1e30():
    records = [ArrayRecord({"w": Array(np.full(D, 3.0, dtype=np.float32)), "b": Array(np.ones(2, dtype=np.float32))}),
               ArrayRecord({"w": Array(np.full(D, 1e30, dtype=np.float32)), "b": Array(np.ones(2, dtype=np.float32))})]
    norms = update_norms(records, START)
    np.testing.assert_allclose(norms, [3.0 * np.sqrt(D), 1e30 * np.sqrt(D)], rtol=1e-6)
    assert norms.dtype == np.float64 and np.isfinite(norms).all()


def test_lower_median_takes_the_smaller_middle_value():
    assert lower_median(np.array([5.0])) == 5.0
    assert lower_median(np.array([1e9, 2.0])) == 2.0  # one inflated value of two cannot raise it
    assert lower_median(np.array([3.0, 1.0, 2.0])) == 2.0
    assert lower_median(np.array([4.0, 1.0, 3.0, 2.0])) == 2.0
    with pytest.raises(ValueError, match="no values"):
        lower_median(np.array([]))


def test_far_above_needs_two_values_and_a_scale():
    flags, ref = far_above(np.array([1.0, 2.0, 50.0]), 10.0)
    assert flags.tolist() == [False, False, True] and ref == 2.0
    assert far_above(np.array([1e30]), 10.0)[0].tolist() == [False]  # nothing to compare one value with
    assert far_above(np.array([0.0, 0.0, 5.0]), 10.0)[0].tolist() == [False, False, False]  # median 0: no scale


# --- the norm screen ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5])
def test_hostile_1e30_weights_are_left_out(n, caplog):
    """One attacker sending 1e30 among honest clients: left out with its norm and the median; the model stays in range."""
    weights = honest(n - 1) + [{k: np.full(v.numpy().shape, 1e30, dtype=np.float32) for k, v in START.items()}]
    strategy = make_strategy(FedSettings(), n)
    with caplog.at_level(logging.WARNING, logger="wattshare.federated"):
        arrays, _ = strategy.aggregate_train(1, one_round(strategy, weights, [100] * n))
    assert_in_honest_range(arrays, weights[:-1])
    assert [(e["node_id"], e["stage"]) for e in strategy.left_out] == [(FIRST_NODE_ID + n - 1, "train")]
    entry = strategy.left_out[0]
    assert "update norm" in entry["reason"] and "30 x the round's median" in entry["reason"]
    assert entry["update_norm"] > 1e30 and 0 < entry["median_norm"] < 1
    assert "left out: update norm" in caplog.text


def test_one_reply_is_never_compared():
    """A lone reply has nothing to be screened against (documented): it is the whole average."""
    weights = [{k: np.full(v.numpy().shape, 1e3, dtype=np.float32) for k, v in START.items()}]
    strategy = make_strategy(FedSettings(), 1)
    arrays, _ = strategy.aggregate_train(1, one_round(strategy, weights, [1]))
    assert strategy.left_out == [] and np.all(arrays["w"].numpy() == 1e3)


def test_norm_screen_off_lets_the_attacker_in():
    weights = honest(4) + [{k: np.full(v.numpy().shape, 1e30, dtype=np.float32) for k, v in START.items()}]
    strategy = make_strategy(FedSettings(norm_screen_factor=None), 5)
    arrays, _ = strategy.aggregate_train(1, one_round(strategy, weights, [100] * 5))
    assert strategy.left_out == [] and arrays["w"].numpy().min() > 1e28  # what the screen prevents


# --- the weight cap -------------------------------------------------------------------------------


def aligned(n: int, seed: int = 1) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """``n`` honest clients stepping the same way by 1, 2, .. n small steps (plus noise), and an
    attacker stepping 1.5 x as far as the farthest: inside the norm screen, outside the honest range."""
    rng = np.random.default_rng(seed)
    step = {k: rng.uniform(0.05, 0.15, v.numpy().shape) for k, v in START.items()}

    def at(scale: float, noise: float) -> dict[str, np.ndarray]:
        return {k: (v.numpy() + scale * step[k] + rng.normal(0, noise, step[k].shape)).astype(np.float32) for k, v in START.items()}

    return [at(i + 1, 0.002) for i in range(n)], at(1.5 * n, 0.0)


@pytest.mark.parametrize("expected", [None, 100.0])
def test_hostile_sample_claim_is_capped(expected, caplog):
    """One client claiming 1e9 samples is counted as the expected count; the model stays in the honest range."""
    good, attacker = aligned(4)
    weights = good + [attacker]
    strategy = make_strategy(FedSettings(expected_samples=expected), 5)
    with caplog.at_level(logging.WARNING, logger="wattshare.federated"):
        arrays, _ = strategy.aggregate_train(1, one_round(strategy, weights, [100, 100, 100, 100, 10**9]))
    assert strategy.left_out == []
    assert_in_honest_range(arrays, good)
    assert [(e["node_id"], e["stage"], e["claimed"], e["counted"]) for e in strategy.adjusted] == [(FIRST_NODE_ID + 4, "train", 1e9, 100.0)]
    assert ("expected" if expected else "median claim") in strategy.adjusted[0]["reason"]
    assert "weight capped" in caplog.text
    assert strategy.train_metrics[1][FIRST_NODE_ID + 4]["num-examples"] == 100  # what the average used
    # the same round uncapped: the attacker takes the model out of the honest range
    uncapped = make_strategy(FedSettings(max_weight_factor=None), 5)
    arrays, _ = uncapped.aggregate_train(1, one_round(uncapped, weights, [100, 100, 100, 100, 10**9]))
    assert np.any(arrays["w"].numpy() > honest_range(good, "w")[1] + 1e-3)


def test_two_clients_cap_against_the_smaller_claim():
    good, attacker = aligned(1)
    strategy = make_strategy(FedSettings(), 2)
    strategy.aggregate_train(1, one_round(strategy, good + [attacker], [50, 10**9]))
    assert [(e["claimed"], e["counted"]) for e in strategy.adjusted] == [(1e9, 50.0)]


def test_evaluation_weights_are_capped_too():
    strategy = make_strategy(FedSettings(), 3)
    strategy.aggregate_evaluate(1, one_round(strategy, [{}] * 3, [10, 12, 10**9], stage="evaluate"))
    assert [(e["stage"], e["counted"]) for e in strategy.adjusted] == [("evaluate", 12.0)]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # Flower's clipping norm of the 1e30 update
def test_dp_sets_every_weight_to_one_and_skips_the_norm_screen():
    """Under DP a unit weight other than 1 would stop Flower's accountant: it is set to 1 and logged."""
    weights = honest(2) + [{k: np.full(v.numpy().shape, 1e30, dtype=np.float32) for k, v in START.items()}]
    strategy = make_strategy(FedSettings(dp_noise_multiplier=1.0, dp_clipping_norm=0.5), 3)
    replies = one_round(strategy, weights, [1, 1, 1])
    next(iter(replies[0].content.metric_records.values()))["unit-weight"] = 5.0
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None and strategy.privacy_spent().num_releases == 1
    assert strategy.left_out == []  # DP clipping bounds the 1e30 update instead
    assert np.isfinite(arrays["w"].numpy()).all() and np.abs(arrays["w"].numpy()).max() < 10
    assert [(e["claimed"], e["counted"]) for e in strategy.adjusted] == [(5.0, 1.0)]


# --- honest rounds: exactly FedAvg -------------------------------------------------------------------


def test_honest_rounds_equal_plain_fedavg():
    weights = honest(5, seed=3)
    claims = [100, 110, 120, 130, 260]  # homes' sample counts differ, within the default cap of 3 x the median
    strategy = make_strategy(FedSettings(), 5)
    replies = one_round(strategy, weights, claims)
    plain = FedAvg(weighted_by_key="num-examples")
    expected, _ = plain.aggregate_train(1, copy.deepcopy(replies))
    arrays, _ = strategy.aggregate_train(1, replies)
    assert strategy.left_out == [] and strategy.adjusted == []
    for key in START:
        np.testing.assert_array_equal(arrays[key].numpy(), expected[key].numpy())


# --- Flower's robust aggregators ------------------------------------------------------------------------


@pytest.mark.parametrize("aggregation, n", [("fedmedian", 5), ("fedtrimmedavg", 5), ("krum", 5), ("multikrum", 5), ("bulyan", 7)])
def test_robust_aggregators_resist_one_attacker(aggregation, n):
    """With the screens off, the aggregator alone keeps one attacker (far weights, 1e9 samples) out of the model."""
    good = honest(n - 1, seed=4)
    attacker = {k: v + 50.0 for k, v in good[0].items()}
    settings = FedSettings(aggregation=aggregation, norm_screen_factor=None, max_weight_factor=None)
    strategy = make_strategy(settings, n)
    arrays, _ = strategy.aggregate_train(1, one_round(strategy, good + [attacker], [100] * (n - 1) + [10**9]))
    assert_in_honest_range(arrays, good)
    assert type(strategy.inner).__name__.lower() == aggregation
    plain = make_strategy(FedSettings(norm_screen_factor=None, max_weight_factor=None), n)  # the same attack on FedAvg
    arrays, _ = plain.aggregate_train(1, one_round(plain, good + [attacker], [100] * (n - 1) + [10**9]))
    assert np.all(arrays["w"].numpy() > 49)


def test_aggregation_from_run_config():
    _, fed = settings_from_run_config({"aggregation": "fedtrimmedavg", "trim-fraction": 0.25, "norm-screen-factor": 0,
                                       "max-weight-factor": 0, "expected-samples": 500})
    assert (fed.aggregation, fed.trim_fraction, fed.norm_screen_factor, fed.max_weight_factor, fed.expected_samples) == \
        ("fedtrimmedavg", 0.25, None, None, 500.0)
    assert make_strategy(fed, 4).inner.beta == 0.25
    _, default = settings_from_run_config({})
    assert default == FedSettings()


# --- invalid settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, setting", [
    ({"aggregation": "fedmean"}, "aggregation"),
    ({"trim_fraction": 0.5}, "trim_fraction"),
    ({"norm_screen_factor": 0.5}, "norm_screen_factor"),
    ({"max_weight_factor": 0.9}, "max_weight_factor"),
    ({"expected_samples": 0.0}, "expected_samples"),
    ({"assumed_malicious": -1}, "assumed_malicious"),
    ({"aggregation": "fedmedian", "dp_noise_multiplier": 1.0}, "aggregation 'fedavg'"),
    ({"aggregation": "fedmedian", "server_learning_rate": 2.0}, "server_learning_rate"),
])
def test_invalid_settings_name_the_setting(kwargs, setting):
    with pytest.raises(ValueError, match=setting):
        FedSettings(**kwargs)


@pytest.mark.parametrize("kwargs, clients, setting", [
    ({"aggregation": "fedtrimmedavg"}, 3, "trim_fraction 0.2 cuts no client of the 3"),
    ({"aggregation": "bulyan"}, 5, "'bulyan' with assumed_malicious 1 needs >= 7"),
    ({"aggregation": "krum", "assumed_malicious": 1}, 4, "'krum' with assumed_malicious 1 needs >= 5"),
    ({"aggregation": "multikrum", "multikrum_select": 5}, 5, "multikrum_select 5"),
])
def test_aggregator_that_cannot_work_with_the_clients_is_refused(kwargs, clients, setting):
    with pytest.raises(ValueError, match=setting):
        make_strategy(FedSettings(**kwargs), clients)


def test_run_config_names_a_bad_aggregation():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        settings_from_run_config({"aggregation": "median"})
    with pytest.raises(ValueError, match="run-config 'trim-fraction': Input should be a valid number"):
        settings_from_run_config({"trim-fraction": "0.2"})


def test_cli_refuses_an_aggregator_before_training(capsys):
    from train.cli import main

    code = main(["federated-forecasters", "--households", "2", "--aggregation", "fedtrimmedavg", "--no-references"])
    assert code == 2 and "trim_fraction 0.2 cuts no client of the 2" in capsys.readouterr().err

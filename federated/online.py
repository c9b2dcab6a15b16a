"""Online federated forecasting, as the seed's deployed system ran it.

During a simulated period the nodes keep learning: every ``aggregation_interval`` intervals
(default 6 = 3 hours) each node fine-tunes the current global model for a few gradient steps on
the windows it has seen complete by then (its own recent days), the server averages the weights
(the same screened Flower FedAvg), and the new global model makes every forecast until the next
round. Each round's federated evaluation scores exactly those forecasts (origins ``now`` to
``now + aggregation_interval - 1``), which no model has seen the answers to.

:func:`run_online` returns the load MAPE of the online model over the period and, for the same
forecasts, of the model it started from kept frozen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from energy_env.data import Dataset
from federated.forecast_runs import flower_log_level
from federated.forecasters import HomeData, home_data, node_home, register_dataset
from federated.local_grid import LocalGrid
from federated.records import UNIT_WEIGHT_KEY, WEIGHT_KEY, load_shared, state_to_record
from federated.strategy import FedSettings, make_strategy
from forecasting.metrics import MAPE_FLOOR_KWH
from forecasting.model import ForecasterConfig, LSTMForecaster


@dataclass(frozen=True)
class OnlineSettings:
    """How nodes learn during the period.

    Attributes:
        aggregation_interval: intervals between FedAvg rounds (6 = every 3 hours, as the seed).
        steps: Adam steps per node per round.
        batch_size: windows per step, drawn from the node's last ``recent_days`` days.
        recent_days: how far back a node's fine-tuning reaches.
        learning_rate: Adam's step size (fresh optimiser each round, as a FedAvg client).
    """

    aggregation_interval: int = 6
    steps: int = 2
    batch_size: int = 64
    recent_days: int = 14
    learning_rate: float = 1e-3


_HOMES: dict[tuple, tuple[HomeData, Dataset]] = {}
_CONFIGS: dict[str, ForecasterConfig] = {}

online_client = ClientApp()


def _home(context: Context) -> tuple[HomeData, ForecasterConfig, Dataset]:
    cfg = _CONFIGS[str(context.node_config["config-key"])]
    key = (context.node_id, str(context.node_config["config-key"]))
    if key not in _HOMES:
        home = node_home(context.node_config)
        _HOMES[key] = (home_data(home, cfg), home)
    data, home = _HOMES[key]
    return data, cfg, home


@online_client.train()
def fine_tune_recent(msg: Message, context: Context) -> Message:
    """A few Adam steps of the global model on windows whose targets are all in the past."""
    data, cfg, _ = _home(context)
    conf = msg.content["config"]
    now, steps, batch = int(conf["now"]), int(conf["steps"]), int(conf["batch-size"])
    lo = max(cfg.window - 1, now - int(conf["recent-days"]) * 48)
    origins = np.arange(lo, now - cfg.horizon + 1)  # targets t+1..t+H all <= now
    model = LSTMForecaster(cfg)
    load_shared(model, msg.content["arrays"])
    rng = np.random.default_rng((cfg.seed, int(context.node_config["partition-id"]), now))
    opt = torch.optim.Adam(model.parameters(), lr=float(conf["learning-rate"]))
    model.train()
    for _ in range(steps if len(origins) else 0):
        o = rng.choice(origins, size=min(batch, len(origins)), replace=False)
        x = torch.from_numpy(data.padded[o[:, None] + np.arange(cfg.window), 0])
        y = torch.from_numpy(data.targets[o[:, None] + np.arange(1, cfg.horizon + 1), 0])
        opt.zero_grad(set_to_none=True)
        (model(x) - y).abs().mean().backward()
        opt.step()
    metrics = MetricRecord({WEIGHT_KEY: max(int(len(origins)), 1), UNIT_WEIGHT_KEY: 1.0})
    return Message(RecordDict({"arrays": state_to_record(model.state_dict()), "metrics": metrics}), reply_to=msg)


@online_client.evaluate()
def score_next_forecasts(msg: Message, context: Context) -> Message:
    """Load APE sum and count of the forecasts this model makes before the next round."""
    data, cfg, home = _home(context)
    conf = msg.content["config"]
    now, span = int(conf["now"]), int(conf["aggregation-interval"])
    model = LSTMForecaster(cfg)
    load_shared(model, msg.content["arrays"])
    ape, count = _load_ape(model, data, cfg, home, now, span)
    return Message(RecordDict({"metrics": MetricRecord({WEIGHT_KEY: 1, UNIT_WEIGHT_KEY: 1.0, "ape-sum": ape, "count": count})}), reply_to=msg)


def _load_ape(model: LSTMForecaster, data: HomeData, cfg: ForecasterConfig, home: Dataset, now: int, span: int) -> tuple[float, int]:
    """Sum of load APEs (points at or above the MAPE floor) of origins now .. now+span-1, and their count."""
    t_len = home.num_intervals
    origins = np.arange(now, min(now + span, t_len - cfg.horizon))
    if len(origins) == 0:
        return 0.0, 0
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(data.padded[origins[:, None] + np.arange(cfg.window), 0])
        load = model(x)[:, :, 0].numpy() * data.scaling.load_kwh[0]
    load = np.maximum(load, 0.0)
    actual = home.load_kwh[origins[:, None] + np.arange(1, cfg.horizon + 1), 0]
    valid = actual >= MAPE_FLOOR_KWH
    return float((np.abs(load - actual) / np.maximum(actual, MAPE_FLOOR_KWH))[valid].sum()), int(valid.sum())


@dataclass
class OnlineResult:
    """Load MAPE (%) over the period: online FedAvg and the frozen starting model; rounds run."""

    online_mape_pct: float
    frozen_mape_pct: float
    rounds: int
    left_out: list


def run_online(
    dataset: Dataset, start_state: Mapping[str, torch.Tensor], cfg: ForecasterConfig, start: int, length: int,
    settings: OnlineSettings = OnlineSettings(), fed: FedSettings = FedSettings(),
) -> OnlineResult:
    """Online FedAvg from interval ``start`` for ``length`` intervals, starting from ``start_state``."""
    n = dataset.num_households
    key = f"online:{dataset.name}:{id(dataset)}"
    register_dataset(key, dataset)
    _CONFIGS[key] = cfg
    grid = LocalGrid(online_client, [{"partition-id": i, "dataset-key": key, "config-key": key} for i in range(n)])
    strategy = make_strategy(fed, n)
    arrays = state_to_record(dict(start_state))
    frozen = LSTMForecaster(cfg)
    frozen.load_state_dict(dict(start_state))
    homes = [_home(grid.contexts[node]) for node in grid.contexts]
    span = settings.aggregation_interval
    online_ape = online_count = frozen_ape = frozen_count = 0.0
    rounds = 0
    with flower_log_level(logging.WARNING):
        for now in range(start, start + length, span):
            rounds += 1
            conf = ConfigRecord({"now": now, "steps": settings.steps, "batch-size": settings.batch_size,
                                 "recent-days": settings.recent_days, "learning-rate": settings.learning_rate,
                                 "aggregation-interval": span})
            replies = grid.send_and_receive(strategy.configure_train(rounds, arrays, conf, grid))
            new, _ = strategy.aggregate_train(rounds, replies)
            arrays = new if new is not None else arrays
            evals = grid.send_and_receive(strategy.configure_evaluate(rounds, arrays, conf, grid))
            strategy.aggregate_evaluate(rounds, evals)
            for metrics in strategy.evaluate_metrics[rounds].values():
                online_ape += float(metrics["ape-sum"])
                online_count += int(metrics["count"])
            for data, c, home in homes:
                a, k = _load_ape(frozen, data, c, home, now, span)
                frozen_ape, frozen_count = frozen_ape + a, frozen_count + k
    return OnlineResult(100 * online_ape / max(online_count, 1), 100 * frozen_ape / max(frozen_count, 1), rounds, strategy.left_out)

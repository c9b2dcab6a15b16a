"""The in-process federated path for forecasters, and the four-way comparison of the issue.

:func:`run_fedavg` runs Flower's strategy loop (``Strategy.start``) over a
:class:`~federated.local_grid.LocalGrid` of the households' ``ClientApp``: the default on one
machine, and the same numerics as ``flwr run`` (a test runs both). :func:`compare_forecasters`
trains and scores, on the test days:

* ``local``: each home's LSTM on its own data only (``wattshare train-forecasters``);
* ``fedavg``: the global FedAvg model (the round with the lowest federated validation loss);
* ``fedavg_personal``: that global model fine-tuned by each home on its own days;
* ``central``: one model of the same shape trained on all homes' data pooled (the upper
  reference: what FedAvg would reach if data could be shared).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm
import pandas as pd
import torch
from flwr.app import ConfigRecord

from energy_env.data import Dataset
from federated.forecasters import (
    HomeData,
    client_app,
    fine_tune_job,
    home_data,
    initial_arrays,
    register_dataset,
    settings_from_run_config,
)
from federated.local_grid import DropFn, LocalGrid
from federated.records import record_to_state
from federated.strategy import make_strategy
from forecasting import data as fdata
from forecasting.evaluate import evaluate
from forecasting.metrics import summary
from forecasting.model import ForecasterConfig, LSTMForecaster, TrainedForecasters
from forecasting.train import TrainingJob, run_jobs, train_forecasters, train_job


@contextlib.contextmanager
def flower_log_level(level: int) -> Iterator[None]:
    """Temporarily set the level of Flower's logger (its per-round INFO lines are many)."""
    logger = logging.getLogger("flwr")
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


@dataclass
class FedRun:
    """What an in-process federated run produced.

    Attributes:
        config: the forecaster settings the clients trained with.
        global_state: weights of the selected global model (lowest federated validation loss).
        best_round: its round.
        final_state: weights after the last round.
        rounds: per round: aggregated train/validation loss and time.
        left_out: replies left out, with reasons (see :class:`~federated.strategy.ScreenedStrategy`).
        epsilon: differential-privacy epsilon spent at ``delta`` (None without DP).
        delta: the delta of ``epsilon``.
        wall_seconds: the whole run.
        client_seconds: time the clients spent training and evaluating (the work itself).
    """

    config: ForecasterConfig
    global_state: dict[str, torch.Tensor]
    best_round: int
    final_state: dict[str, torch.Tensor] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)
    left_out: list[dict] = field(default_factory=list)
    epsilon: float | None = None
    delta: float | None = None
    wall_seconds: float = 0.0
    client_seconds: float = 0.0
    workers: int = 1

    @property
    def overhead_fraction(self) -> float:
        """Time outside the clients' own work (messages, copies, averaging), as a share of that work.

        Exact with one worker; with several it assumes the clients' work split evenly over them.
        """
        work = self.client_seconds / self.workers
        return (self.wall_seconds - work) / max(work, 1e-9)


def run_fedavg(
    dataset: Dataset, run_config: Mapping[str, object] | None = None, drop: DropFn | None = None, verbose: bool = False,
    workers: int = 1, progress: bool = False,
) -> FedRun:
    """FedAvg of per-home LSTMs over the homes of ``dataset``, in this process (see the module doc).

    ``run_config`` takes the keys of :data:`~federated.forecasters.RUN_CONFIG_DEFAULTS`.
    ``drop(node_id, message)`` simulates households that do not answer. ``workers > 1`` trains
    that many households at once in worker processes (same results: each client is seeded by
    home and round). ``progress``: a bar over the rounds.
    """
    run_config = dict(run_config or {})
    cfg, fed = settings_from_run_config(run_config)
    n = dataset.num_households
    key = f"{dataset.name}:{id(dataset)}"
    register_dataset(key, dataset)
    grid = LocalGrid(client_app, [{"partition-id": i, "dataset-key": key} for i in range(n)], run_config, drop=drop,
                     workers=min(workers, n), app_ref="federated.forecasters:client_app",
                     initializer=register_dataset, initargs=(key, dataset))
    strategy = make_strategy(fed, n, select_metric="val-loss")
    np.random.seed(fed.seed)  # Flower's DP noise draws from numpy's global generator
    import random  # noqa: PLC0415

    random.seed(fed.seed)  # and its client sampling from Python's
    t0 = time.perf_counter()
    bar = tqdm(total=fed.rounds, desc="FedAvg", unit="round", disable=not progress)
    strategy.on_round = lambda r: bar.update(1)
    with flower_log_level(logging.INFO if verbose else logging.WARNING):
        result = strategy.start(grid=grid, initial_arrays=initial_arrays(cfg), num_rounds=fed.rounds,
                                train_config=ConfigRecord(), evaluate_config=ConfigRecord())
    bar.close()
    wall = time.perf_counter() - t0
    grid.close()
    rounds, client_seconds = [], 0.0
    for r in range(1, fed.rounds + 1):
        train_m = strategy.train_metrics.get(r, {})
        eval_m = strategy.evaluate_metrics.get(r, {})
        client_seconds += sum(float(m["train-seconds"]) for m in train_m.values())
        client_seconds += sum(float(m["eval-seconds"]) for m in eval_m.values())
        agg = result.evaluate_metrics_clientapp.get(r)
        rounds.append({
            "round": r,
            "clients": len(train_m),
            "val_loss": float(agg["val-loss"]) if agg is not None else float("nan"),
            "update_norm_median": float(np.median([float(m["update-norm"]) for m in train_m.values()])) if train_m else float("nan"),
        })
    best = strategy.best_arrays if strategy.best_arrays is not None else result.arrays
    spent = strategy.privacy_spent()
    return FedRun(cfg, record_to_state(best), strategy.best_round, record_to_state(result.arrays), rounds, strategy.left_out,
                  spent.epsilon if spent else None, spent.delta if spent else None, wall, client_seconds,
                  max(1, min(workers, n)))


def replicated_forecasters(cfg: ForecasterConfig, dataset: Dataset, states: list[Mapping[str, torch.Tensor]]) -> TrainedForecasters:
    """A per-home forecaster set (the form every provider and the benchmark read)."""
    labels = fdata.day_labels(dataset, cfg.validation_days_per_month)
    scaling = fdata.fit_scaling(dataset, np.flatnonzero(labels != fdata.TEST))  # per home: what each node computed
    models = []
    for state in states:
        model = LSTMForecaster(cfg)
        model.load_state_dict(dict(state))
        models.append(model.eval())
    return TrainedForecasters(cfg.replace(kind="per_home"), tuple(dataset.household_ids), scaling, models, [], dataset.name)


def global_forecasters(run: FedRun, dataset: Dataset) -> TrainedForecasters:
    """The FedAvg global model as every home's forecaster."""
    return replicated_forecasters(run.config, dataset, [run.global_state] * dataset.num_households)


def personalised_forecasters(run: FedRun, dataset: Dataset, epochs: int = 10, workers: int = 1) -> TrainedForecasters:
    """Each home fine-tunes the global model on its own days (early-stopped); no weights travel.

    ``workers`` homes fine-tune at once (spawned processes), as they would on their own devices.
    """
    jobs = [fine_tune_job(run.global_state, home_data(dataset.select([i]), run.config), run.config, epochs, (run.config.seed, i))
            for i in range(dataset.num_households)]
    results = run_jobs(jobs, max(1, min(workers, len(jobs))), progress=False, desc="fine-tune")
    return replicated_forecasters(run.config, dataset, [state for state, _ in results])


def central_forecasters(dataset: Dataset, cfg: ForecasterConfig) -> TrainedForecasters:
    """One model of the FedAvg shape trained on every home's windows pooled (early-stopped)."""
    labels = fdata.day_labels(dataset, cfg.validation_days_per_month)
    fit = fdata.origins_for(labels, fdata.FIT, cfg.window, cfg.horizon, strict_inputs=True)
    val = fdata.origins_for(labels, fdata.VALIDATION, cfg.window, cfg.horizon, strict_inputs=True)
    scaling = fdata.fit_scaling(dataset, np.flatnonzero(labels != fdata.TEST))
    padded = fdata.pad_history(fdata.build_features(dataset, scaling, cfg.weather), cfg.window)
    state, _ = train_job(TrainingJob(cfg, padded, fdata.build_targets(dataset, scaling), fit, val, 0, (cfg.seed, 1)))
    return replicated_forecasters(cfg, dataset, [state] * dataset.num_households)


def compare_forecasters(
    dataset: Dataset, run_config: Mapping[str, object] | None = None, finetune_epochs: int = 10,
    central_epochs: int = 30, workers: int = 2, references: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, FedRun, dict[str, float], dict[str, TrainedForecasters]]:
    """Local-only, FedAvg, FedAvg + fine-tuning and central models on the test days.

    Returns ``(table, per_home_mape, run, seconds, trained)``: the metrics table of
    :func:`forecasting.evaluate.evaluate` (baselines included), load MAPE per household and model,
    the federated run, the training seconds and the trained forecasters of each model. ``references=False`` skips the
    local-only and central models (e.g. to measure DP settings). ``workers`` homes train at once.
    """
    cfg, _ = settings_from_run_config(dict(run_config or {}))
    seconds: dict[str, float] = {}
    trained: dict[str, TrainedForecasters] = {}
    if references:
        t0 = time.perf_counter()
        trained["local"] = train_forecasters(dataset, cfg.replace(max_epochs=ForecasterConfig().max_epochs), workers=workers, progress=False)
        seconds["local"] = time.perf_counter() - t0
    run = run_fedavg(dataset, run_config, workers=workers)
    seconds["fedavg"] = run.wall_seconds
    t0 = time.perf_counter()
    trained["fedavg"] = global_forecasters(run, dataset)
    trained["fedavg_personal"] = personalised_forecasters(run, dataset, finetune_epochs, workers=workers)
    seconds["fedavg_personal"] = run.wall_seconds + time.perf_counter() - t0
    if references:
        t0 = time.perf_counter()
        trained["central"] = central_forecasters(dataset, cfg.replace(max_epochs=central_epochs))
        seconds["central"] = time.perf_counter() - t0
    table = evaluate(dataset, trained)
    per_home = table[(table["step"] == "all") & (table["household"] != "all")]
    per_home = per_home.pivot(index="household", columns="model", values="load_mape_pct").loc[list(dataset.household_ids)]
    return table, per_home, run, seconds, trained


def pooled_mape(table: pd.DataFrame) -> pd.Series:
    """Load MAPE over all homes and steps, per model."""
    return summary(table, "load_mape_pct")["all"]


__all__ = [
    "FedRun",
    "HomeData",
    "central_forecasters",
    "compare_forecasters",
    "global_forecasters",
    "personalised_forecasters",
    "pooled_mape",
    "run_fedavg",
]

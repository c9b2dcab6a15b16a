"""Federated LSTM forecasters: each household trains on its own days, the server averages weights.

The household side is :data:`client_app`, a Flower ``ClientApp``: given the global weights it
trains ``local-epochs`` epochs on its own train days (the same windows, scaling and loss as
``wattshare train-forecasters``) and sends back its weights and scalar metrics. It evaluates the
global model on its own validation days. Its data never leaves it: a node loads only its own home
(``node_config``), scales it by its own statistics, and replies with arrays and numbers.

The server side is :func:`federated.server_app.app` under ``flwr run``, or :func:`run_fedavg`
in-process (a :class:`~federated.local_grid.LocalGrid`); both use :func:`make_strategy` and keep
the round whose global model had the lowest validation loss (a scalar the clients report).

Settings travel as Flower run config (``[tool.flwr.app.config]`` of ``federated/flower_app``):
see :data:`RUN_CONFIG_DEFAULTS`. Node config: ``partition-id`` (which home of the data set),
optional ``config`` (an env YAML naming the data source) and ``households``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import ValidationError
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from energy_env.data import Dataset
from federated.records import UNIT_WEIGHT_KEY, WEIGHT_KEY, load_shared, state_to_record
from federated.strategy import FedSettings
from forecasting import data as fdata
from forecasting.model import ForecasterConfig, LSTMForecaster
from forecasting.train import TrainingJob, train_job

# Flower's run config is flat and dash-keyed; each key sets fields of the run configuration's
# sections (FedSettings: the ``federated`` section, ForecasterConfig: ``forecasting``). Its
# defaults are those sections' defaults, never copied by hand (a test compares flower_app's).
RUN_CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "rounds": ("federated.rounds",),
    "local-epochs": ("federated.local_epochs", "forecasting.max_epochs"),  # epochs per home and round
    "fraction-train": ("federated.fraction_train",),
    "fraction-evaluate": ("federated.fraction_evaluate",),
    "hidden-size": ("forecasting.hidden_size",),
    "window": ("forecasting.window",),
    "batch-size": ("forecasting.batch_size",),
    "learning-rate": ("forecasting.learning_rate",),
    "lr-decay": ("federated.lr_decay",),
    "weather": ("forecasting.weather",),
    "seed": ("federated.seed", "forecasting.seed"),
    "dp-noise-multiplier": ("federated.dp_noise_multiplier",),
    "dp-clipping-norm": ("federated.dp_clipping_norm",),
    "dp-delta": ("federated.dp_delta",),
    "aggregation": ("federated.aggregation",),
    "trim-fraction": ("federated.trim_fraction",),
    "assumed-malicious": ("federated.assumed_malicious",),
    "multikrum-select": ("federated.multikrum_select",),
    "norm-screen-factor": ("federated.norm_screen_factor",),  # 0: off (Flower's config has no null)
    "max-weight-factor": ("federated.max_weight_factor",),
    "expected-samples": ("federated.expected_samples",),  # 0: unknown
}
_SECTIONS = {"federated": FedSettings, "forecasting": ForecasterConfig}
# Keys of the app rather than settings: clients the server waits for (0: as many as the data
# set has homes, in-process), and where the ServerApp writes ("" = not saved).
APP_KEYS: dict[str, object] = {"households": 0, "output-dir": ""}


def _default(target: str) -> object:
    section, name = target.split(".")
    value = _SECTIONS[section].model_fields[name].default
    return 0.0 if value is None else value  # the off / unknown of an optional number


RUN_CONFIG_DEFAULTS: dict[str, object] = {**APP_KEYS, **{key: _default(t[0]) for key, t in RUN_CONFIG_FIELDS.items()}}


def run_config_from_sections(forecasting: ForecasterConfig, federated: FedSettings) -> dict[str, object]:
    """The Flower run config of a run configuration's ``forecasting`` and ``federated`` sections."""
    sections = {"forecasting": forecasting, "federated": federated}
    out: dict[str, object] = {}
    for key, targets in RUN_CONFIG_FIELDS.items():
        section, name = targets[0].split(".")
        value = getattr(sections[section], name)
        out[key] = 0.0 if value is None else value
    return out


def settings_from_run_config(run_config: Mapping[str, object]) -> tuple[ForecasterConfig, FedSettings]:
    """The forecaster and federation settings of a run config (defaults for missing keys).

    Raises ValueError naming the key for an unknown key or a bad value (the sections' own checks).
    """
    unknown = set(run_config) - set(RUN_CONFIG_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown run-config keys {sorted(unknown)}; known: {sorted(RUN_CONFIG_DEFAULTS)}")
    values: dict[str, dict[str, object]] = {"federated": {}, "forecasting": {"kind": "per_home", "max_epochs": 1}}
    origin: dict[tuple[str, str], str] = {}
    for key, value in run_config.items():
        for target in RUN_CONFIG_FIELDS.get(key, ()):
            section, name = target.split(".")
            optional = _SECTIONS[section].model_fields[name].default is None or key in ("norm-screen-factor", "max-weight-factor")
            values[section][name] = None if optional and value in (0, 0.0) and not isinstance(value, bool) else value
            origin[(section, name)] = key
    try:
        return ForecasterConfig(**values["forecasting"]), FedSettings(**values["federated"])
    except ValidationError as err:
        first = err.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a check across fields names its fields itself
            raise ValueError(f"run-config: {message}") from None
        section = "forecasting" if err.title == "ForecasterConfig" else "federated"
        key = origin.get((section, str(first["loc"][0])), f"{section}.{first['loc'][0]}")
        raise ValueError(f"run-config {key!r}: {message} (got {first.get('input')!r})") from None


@dataclass(frozen=True)
class HomeData:
    """One household's training material, built from its own data only."""

    household_id: str
    padded: np.ndarray  # (T + W - 1, 1, F)
    targets: np.ndarray  # (T, 1, 2)
    fit_origins: np.ndarray
    val_origins: np.ndarray
    scaling: fdata.Scaling


def home_data(home: Dataset, cfg: ForecasterConfig) -> HomeData:
    """The windows of a one-home data set, split and scaled exactly as in ``train-forecasters``."""
    if home.num_households != 1:
        raise ValueError(f"home_data takes a one-home data set, got {home.num_households} homes")
    labels = fdata.day_labels(home, cfg.validation_days_per_month)
    fit = fdata.origins_for(labels, fdata.FIT, cfg.window, cfg.horizon, strict_inputs=True)
    val = fdata.origins_for(labels, fdata.VALIDATION, cfg.window, cfg.horizon, strict_inputs=True)
    if len(fit) == 0 or len(val) == 0:
        raise ValueError(f"{home.household_ids[0]}: too few train days ({len(fit)} training, {len(val)} validation windows)")
    scaling = fdata.fit_scaling(home, np.flatnonzero(labels != fdata.TEST))
    padded = fdata.pad_history(fdata.build_features(home, scaling, cfg.weather), cfg.window)
    return HomeData(home.household_ids[0], padded, fdata.build_targets(home, scaling), fit, val, scaling)


# --- where a node's data comes from -----------------------------------------------------------

_REGISTERED: dict[str, Dataset] = {}  # in-process runs hand their data set over by key


def register_dataset(key: str, dataset: Dataset) -> None:
    """Make ``dataset`` loadable by nodes whose node config has ``dataset-key = key`` (in-process)."""
    _REGISTERED[key] = dataset


def node_home(node_config: Mapping[str, object]) -> Dataset:
    """The one home this node owns (see the module doc for the keys)."""
    if "partition-id" not in node_config:
        raise ValueError("node config needs 'partition-id' (which home of the data set this node is)")
    index = int(node_config["partition-id"])
    key = node_config.get("dataset-key")
    if key is not None:
        if key not in _REGISTERED:
            raise ValueError(f"node config 'dataset-key' {key!r} is not registered in this process")
        dataset = _REGISTERED[str(key)]
    else:
        from energy_env.config import load_config  # noqa: PLC0415 - only deployed nodes read configs
        from energy_env.data import load_dataset  # noqa: PLC0415

        overrides = {"num_households": int(node_config["households"])} if "households" in node_config else {}
        env_cfg = load_config(node_config.get("config") or None, **overrides)
        dataset = load_dataset(env_cfg.data, env_cfg.households_to_load, env_cfg.seed, env_cfg.database)
    if not 0 <= index < dataset.num_households:
        raise ValueError(f"node config 'partition-id' {index} is outside the data set's {dataset.num_households} homes")
    return dataset.select([index])


def _cached_home(context: Context, cfg: ForecasterConfig) -> HomeData:
    # A node builds its windows once per process, not once per round.
    key = (context.node_id, cfg.window, cfg.weather, tuple(sorted(context.node_config.items())))
    if key not in _HOME_CACHE:
        _HOME_CACHE[key] = home_data(node_home(context.node_config), cfg)
    return _HOME_CACHE[key]


_HOME_CACHE: dict[tuple, HomeData] = {}


# --- the household's ClientApp ------------------------------------------------------------------

client_app = ClientApp()


def _received_model(msg: Message, context: Context) -> tuple[ForecasterConfig, HomeData, LSTMForecaster]:
    """This node's settings, its home's windows, and the global model the message carries."""
    cfg, _ = settings_from_run_config(context.run_config)
    home = _cached_home(context, cfg)
    model = LSTMForecaster(cfg)
    load_shared(model, msg.content["arrays"])
    return cfg, home, model


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received global model ``local-epochs`` epochs on this home's train days."""
    cfg, home, model = _received_model(msg, context)
    server_round = int(msg.content["config"].get("server-round", 0))
    cfg = cfg.replace(learning_rate=round_learning_rate(context.run_config, server_round))
    # Seeded by home and round, not by node id (random in a deployment): runs are repeatable.
    seed = (cfg.seed, int(context.node_config["partition-id"]), server_round)
    job = TrainingJob(cfg, home.padded, home.targets, home.fit_origins, home.val_origins, 0, seed,
                      init_state=model.state_dict(), keep_best=False)
    t0 = time.perf_counter()
    start = {k: v.clone() for k, v in job.init_state.items()}
    state, history = train_job(job)
    # The size of this home's step (what DP clipping bounds): pick dp-clipping-norm from it.
    update_norm = float(torch.sqrt(sum(((state[k] - start[k]) ** 2).sum() for k in start)))
    metrics = MetricRecord({
        "update-norm": update_norm,
        WEIGHT_KEY: int(len(home.fit_origins)),
        UNIT_WEIGHT_KEY: 1.0,
        "val-loss": float(history["best_val_loss"]),
        "train-seconds": time.perf_counter() - t0,
    })
    return Message(RecordDict({"arrays": state_to_record(state), "metrics": metrics}), reply_to=msg)


def round_learning_rate(run_config: Mapping[str, object], server_round: int) -> float:
    """The clients' learning rate in ``server_round`` (1-based): constant, or cosine-decayed to a tenth."""
    lr = float(run_config.get("learning-rate", RUN_CONFIG_DEFAULTS["learning-rate"]))
    if not run_config.get("lr-decay", RUN_CONFIG_DEFAULTS["lr-decay"]):
        return lr
    rounds = int(run_config.get("rounds", RUN_CONFIG_DEFAULTS["rounds"]))
    progress = min(max(server_round - 1, 0) / max(rounds - 1, 1), 1.0)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@client_app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Validation loss of the received global model on this home's validation days."""
    cfg, home, model = _received_model(msg, context)
    t0 = time.perf_counter()
    loss = validation_loss(model, home, cfg)
    metrics = MetricRecord({WEIGHT_KEY: int(len(home.val_origins)), UNIT_WEIGHT_KEY: 1.0, "val-loss": loss,
                            "eval-seconds": time.perf_counter() - t0})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


def validation_loss(model: LSTMForecaster, home: HomeData, cfg: ForecasterConfig) -> float:
    """Mean L1 (or MSE) loss of ``model`` on the home's validation windows, scaled units."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.eval()
        x = torch.from_numpy(home.padded[home.val_origins[:, None] + np.arange(cfg.window), 0])
        y = torch.from_numpy(home.targets[home.val_origins[:, None] + np.arange(1, cfg.horizon + 1), 0])
        with torch.no_grad():
            err = model(x) - y
        return float(err.abs().mean() if cfg.loss == "l1" else (err * err).mean())
    finally:
        torch.set_num_threads(threads)


def initial_arrays(cfg: ForecasterConfig) -> ArrayRecord:
    """The global model of round 0: a fresh model seeded by ``cfg.seed`` (the same on every server)."""
    torch.manual_seed(cfg.seed)
    return state_to_record(LSTMForecaster(cfg).state_dict())


def fine_tune_job(
    global_state: Mapping[str, torch.Tensor], home: HomeData, cfg: ForecasterConfig, epochs: int, seed: tuple[int, ...]
) -> TrainingJob:
    """Personalisation: a node trains the global model on its own days, early-stopped on its validation days.

    Starts from the global weights and keeps them when no epoch improves its validation loss.
    Run it with :func:`forecasting.train.train_job` (or many with ``run_jobs``).
    """
    return TrainingJob(cfg.replace(max_epochs=epochs), home.padded, home.targets, home.fit_origins, home.val_origins, 0,
                       seed, init_state={k: v.clone() for k, v in global_state.items()}, keep_best=True)

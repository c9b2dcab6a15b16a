"""Federated averaging of the households' PPO policies, every K updates, through Flower.

Each household's policy learns from its own experience (:mod:`train.independent`). Every
``every`` PPO updates, :class:`PolicyFederation` (the ``after_update`` hook of
:func:`train.independent.train_independent`) runs one federated round: the server's Flower
strategy (:func:`~federated.strategy.make_strategy`: FedAvg, optionally DP, screened) asks every
household's ``ClientApp`` for its weights through a :class:`~federated.local_grid.LocalGrid`,
averages them weighted by the household-steps behind them, and every household loads the average.

``personal="head"`` keeps each household's output layers (action mean, value head and action
std) at home: only the shared feature layers are averaged. ``"none"`` averages everything.

The input and reward normalisers are part of the model: a network averaged across homes only
means something if every home scales its inputs alike. With ``share_normalizers`` (default) each
home also sends its running observation mean and second moment and its return variance, which
are averaged like the weights (by household-steps), and every home then scales with the pooled
statistics, as parameter sharing does with its one normaliser. These are aggregates over
thousands of steps, not data; ``share_normalizers=False`` keeps them at home.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from federated.forecast_runs import flower_log_level
from federated.local_grid import LocalGrid
from federated.records import UNIT_WEIGHT_KEY, WEIGHT_KEY, load_shared, state_to_record
from federated.strategy import FedSettings, make_strategy

# SB3 MlpPolicy parameter names of the output layers (the "personal head").
PERSONAL_LAYERS = {"none": (), "head": ("action_net.", "value_net.", "log_std")}

_FEDERATIONS: dict[str, "PolicyFederation"] = {}  # in-process: a node finds its live model here

policy_client = ClientApp()


@policy_client.train()
def send_policy(msg: Message, context: Context) -> Message:
    """Reply with this household's current policy weights (its shared layers) and step count."""
    federation = _FEDERATIONS[str(context.node_config["federation-key"])]
    i = int(context.node_config["partition-id"])
    state = dict(federation.models[i].policy.state_dict())
    if federation.share_normalizers:
        state.update(_normalizer_arrays(federation.obs_rms[i], federation.ret_rms[i]))
    arrays = state_to_record(state, federation.personal_prefixes)
    metrics = MetricRecord({WEIGHT_KEY: int(federation.steps_since_round), UNIT_WEIGHT_KEY: 1.0})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


NORMALIZER_KEYS = ("norm.obs_mean", "norm.obs_second_moment", "norm.return_var")


def _normalizer_arrays(obs_rms, ret_rms) -> dict[str, np.ndarray]:
    # Means and second moments average correctly across homes; variances alone would not.
    return {
        "norm.obs_mean": obs_rms.mean.astype(np.float64),
        "norm.obs_second_moment": (obs_rms.var + obs_rms.mean**2).astype(np.float64),
        "norm.return_var": np.atleast_1d(ret_rms.var).astype(np.float64),
    }


def _load_normalizers(arrays: ArrayRecord, obs_rms, ret_rms) -> None:
    mean = arrays["norm.obs_mean"].numpy()
    obs_rms.mean = mean.copy()
    obs_rms.var = np.maximum(arrays["norm.obs_second_moment"].numpy() - mean**2, 0.0)
    ret_rms.var = float(arrays["norm.return_var"].numpy()[0])


class PolicyFederation:
    """``after_update`` hook: a FedAvg round of the households' policies every ``every`` updates.

    Args:
        every: PPO updates between rounds (K).
        personal: ``"none"`` (average all layers) or ``"head"`` (keep output layers at home).
        settings: the strategy's settings (``rounds`` is ignored: one round per call).
        steps_per_update: household-steps behind one update of one household (FedAvg weight).
    """

    def __init__(
        self, every: int, personal: str = "none", settings: FedSettings = FedSettings(), steps_per_update: int = 1,
        share_normalizers: bool = True,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1 update, got {every}")
        if personal not in PERSONAL_LAYERS:
            raise ValueError(f"personal must be one of {sorted(PERSONAL_LAYERS)}, got {personal!r}")
        self.every, self.personal, self.settings = every, personal, settings
        self.personal_prefixes = PERSONAL_LAYERS[personal]
        self.steps_per_update = steps_per_update
        self.share_normalizers = share_normalizers
        self.steps_since_round = 0
        self.models: Sequence = []
        self.obs_rms: Sequence = []
        self.ret_rms: Sequence = []
        self.grid: LocalGrid | None = None
        self.strategy = None
        self.round = 0
        self.global_arrays = ArrayRecord()

    def _setup(self, models: Sequence) -> None:
        key = f"policies-{id(self)}"
        _FEDERATIONS[key] = self
        n = len(models)
        self.grid = LocalGrid(policy_client, [{"partition-id": i, "federation-key": key} for i in range(n)])
        self.strategy = make_strategy(self.settings, n)
        state = dict(models[0].policy.state_dict())
        if self.share_normalizers:
            state.update(_normalizer_arrays(self.obs_rms[0], self.ret_rms[0]))
        self.global_arrays = state_to_record(state, self.personal_prefixes)

    def __call__(self, update: int, models: Sequence, obs_rms: Sequence, ret_rms: Sequence) -> None:
        """Called after every PPO update; federates on every ``every``-th."""
        self.models, self.obs_rms, self.ret_rms = models, obs_rms, ret_rms
        self.steps_since_round += self.steps_per_update
        if (update + 1) % self.every:
            return
        if self.grid is None:
            self._setup(models)
        self.round += 1
        if self.settings.expected_samples is None:  # the server knows the household-steps behind every update
            self.strategy.expected_samples = float(self.steps_since_round)
        with flower_log_level(logging.WARNING):
            messages = self.strategy.configure_train(self.round, self.global_arrays, ConfigRecord(), self.grid)
            replies = self.grid.send_and_receive(messages)
            arrays, _ = self.strategy.aggregate_train(self.round, replies)
        self.steps_since_round = 0
        if arrays is None:  # nothing usable came back: everyone keeps training on its own
            return
        self.global_arrays = arrays
        weights = ArrayRecord({k: v for k, v in arrays.items() if k not in NORMALIZER_KEYS})
        for i, model in enumerate(models):  # the broadcast: each household loads the new global weights
            load_shared(model.policy, weights)
            if self.share_normalizers:
                _load_normalizers(arrays, obs_rms[i], ret_rms[i])

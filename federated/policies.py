"""Federated averaging of the households' PPO policies, every K updates, through Flower.

Each household's policy learns from its own experience (:mod:`train.independent`). Every
``every`` PPO updates, :class:`PolicyFederation` (the ``after_update`` hook of
:func:`train.independent.train_independent`) runs one federated round: the server's Flower
strategy (:func:`~federated.strategy.make_strategy`: FedAvg, optionally DP, screened) asks every
household's ``ClientApp`` for its weights through a :class:`~federated.local_grid.LocalGrid`,
averages them weighted by the household-steps behind them, and every household loads the average.

``personal="head"`` keeps each household's output layers (action mean, value head and action
std) at home: only the shared feature layers are averaged. ``"none"`` averages everything.
Observation normalisers are statistics of a home's own data: they are never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

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
    state = federation.models[i].policy.state_dict()
    arrays = state_to_record(state, federation.personal_prefixes)
    metrics = MetricRecord({WEIGHT_KEY: int(federation.steps_since_round), UNIT_WEIGHT_KEY: 1.0})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


class PolicyFederation:
    """``after_update`` hook: a FedAvg round of the households' policies every ``every`` updates.

    Args:
        every: PPO updates between rounds (K).
        personal: ``"none"`` (average all layers) or ``"head"`` (keep output layers at home).
        settings: the strategy's settings (``rounds`` is ignored: one round per call).
        steps_per_update: household-steps behind one update of one household (FedAvg weight).
    """

    def __init__(self, every: int, personal: str = "none", settings: FedSettings = FedSettings(), steps_per_update: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1 update, got {every}")
        if personal not in PERSONAL_LAYERS:
            raise ValueError(f"personal must be one of {sorted(PERSONAL_LAYERS)}, got {personal!r}")
        self.every, self.personal, self.settings = every, personal, settings
        self.personal_prefixes = PERSONAL_LAYERS[personal]
        self.steps_per_update = steps_per_update
        self.steps_since_round = 0
        self.models: Sequence = []
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
        self.global_arrays = state_to_record(models[0].policy.state_dict(), self.personal_prefixes)

    def __call__(self, update: int, models: Sequence, normalizers: Sequence) -> None:
        """Called after every PPO update; federates on every ``every``-th."""
        self.models = models
        self.steps_since_round += self.steps_per_update
        if (update + 1) % self.every:
            return
        if self.grid is None:
            self._setup(models)
        self.round += 1
        with flower_log_level(logging.WARNING):
            messages = self.strategy.configure_train(self.round, self.global_arrays, ConfigRecord(), self.grid)
            replies = self.grid.send_and_receive(messages)
            arrays, _ = self.strategy.aggregate_train(self.round, replies)
        self.steps_since_round = 0
        if arrays is None:  # nothing usable came back: everyone keeps training on its own
            return
        self.global_arrays = arrays
        for model in models:  # the broadcast: each household loads the new global weights
            load_shared(model.policy, arrays)

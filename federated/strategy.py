"""The server's strategy: Flower's FedAvg, optionally under Flower's central differential privacy,
behind a screen that leaves out bad client replies with a logged reason.

Both paths (``flwr run`` and the in-process :class:`~federated.local_grid.LocalGrid`) call the same
:func:`make_strategy`, so their averaging is Flower's own ``aggregate_arrayrecords``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, FedAvgM, Strategy
from flwr.supercore.privacy_accounting import NeighboringRelation, PrivacyConfig, PrivacySpent, SamplingMethod

from federated.records import UNIT_WEIGHT_KEY, WEIGHT_KEY, metrics_problem, reply_problem

log = logging.getLogger("wattshare.federated")


@dataclass(frozen=True)
class FedSettings:
    """How the server federates.

    Attributes:
        rounds: federated rounds R.
        local_epochs: epochs each household trains on its own data per round (E).
        fraction_train: share of households asked to train each round (1.0: all).
        dp_noise_multiplier: 0 (default) for plain FedAvg; > 0 clips every client's update to
            ``dp_clipping_norm`` (L2) and adds Gaussian noise of std ``multiplier * norm / clients``
            to the average (Flower's server-side fixed clipping), and tracks the privacy budget.
            Under DP every client weighs the same (sample-count weights would leak, and the
            accountant requires equal weights).
        dp_clipping_norm: L2 bound of one client's update (the change of its weights in a round).
        dp_delta: the delta at which the spent epsilon is reported.
        server_learning_rate, server_momentum: 1.0 and 0.0 (default) are plain FedAvg; other
            values apply the averaged update with that step and momentum (Flower's FedAvgM,
            Hsu et al. 2019). Not combinable with DP (Flower's accountant needs plain FedAvg).
        seed: seeds client sampling and the DP noise.
    """

    rounds: int = 10
    local_epochs: int = 1
    fraction_train: float = 1.0
    dp_noise_multiplier: float = 0.0
    dp_clipping_norm: float = 1.0
    dp_delta: float = 1e-5
    server_learning_rate: float = 1.0
    server_momentum: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.local_epochs < 1:
            raise ValueError(f"rounds and local_epochs must be >= 1, got {self.rounds} and {self.local_epochs}")
        if not 0.0 < self.fraction_train <= 1.0:
            raise ValueError(f"fraction_train must be in (0, 1], got {self.fraction_train}")
        if self.dp_noise_multiplier < 0 or self.dp_clipping_norm <= 0 or not 0 < self.dp_delta < 1:
            raise ValueError("dp_noise_multiplier must be >= 0, dp_clipping_norm > 0 and dp_delta in (0, 1)")
        if self.server_learning_rate <= 0 or not 0 <= self.server_momentum < 1:
            raise ValueError("server_learning_rate must be > 0 and server_momentum in [0, 1)")
        if self.private and (self.server_learning_rate != 1.0 or self.server_momentum != 0.0):
            raise ValueError("differential privacy needs plain FedAvg (server_learning_rate 1, server_momentum 0)")

    @property
    def private(self) -> bool:
        """True when differential privacy is on."""
        return self.dp_noise_multiplier > 0


class ScreenedStrategy(Strategy):
    """Wraps a strategy; before it aggregates, leaves out replies that cannot be averaged.

    A household that sends an error, no weights, other keys or shapes, NaN/inf or no usable sample
    count, or that does not answer at all, is left out of that round with its reason logged (and
    kept in :attr:`left_out`); the round completes with the others. Every accepted reply's metrics
    are kept per node in :attr:`train_metrics` / :attr:`evaluate_metrics` (scalars only).

    With ``select_metric`` (e.g. ``"val-loss"``) it also keeps the global weights of the round
    whose clients' weighted average of that metric was lowest (:attr:`best_arrays`,
    :attr:`best_round`): early stopping, federated. (Under DP, these evaluation scalars are not
    covered by the privacy accountant, as in Flower.)
    """

    def __init__(self, inner: Strategy, weight_key: str = WEIGHT_KEY, select_metric: str | None = None) -> None:
        self.inner = inner
        self.weight_key = weight_key
        self.select_metric = select_metric
        self.best_arrays: ArrayRecord | None = None
        self.best_round = 0
        self.best_value = float("inf")
        self._evaluated: dict[int, ArrayRecord] = {}
        self.left_out: list[dict] = []  # {"round", "node_id", "stage", "reason"}
        self.train_metrics: dict[int, dict[int, MetricRecord]] = {}
        self.evaluate_metrics: dict[int, dict[int, MetricRecord]] = {}
        self._sent: dict[tuple[int, str], list[int]] = {}
        self._arrays: ArrayRecord = ArrayRecord()

    def summary(self) -> None:
        """Flower's summary of the wrapped strategy."""
        self.inner.summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """The wrapped strategy's training messages; remembers what was sent to whom."""
        self._arrays = arrays
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        self._sent[(server_round, "train")] = [m.metadata.dst_node_id for m in messages]
        return messages

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """The wrapped strategy's evaluation messages."""
        messages = list(self.inner.configure_evaluate(server_round, arrays, config, grid))
        self._evaluated[server_round] = arrays
        self._sent[(server_round, "evaluate")] = [m.metadata.dst_node_id for m in messages]
        return messages

    def _leave_out(self, server_round: int, node_id: int, stage: str, reason: str) -> None:
        self.left_out.append({"round": server_round, "node_id": node_id, "stage": stage, "reason": reason})
        log.warning("round %d: %s reply of node %d left out: %s", server_round, stage, node_id, reason)

    def _screen(self, server_round: int, replies: Iterable[Message], stage: str) -> list[Message]:
        replies = list(replies)
        answered = {m.metadata.src_node_id for m in replies}
        for node_id in self._sent.pop((server_round, stage), []):
            if node_id not in answered:
                self._leave_out(server_round, node_id, stage, "no reply (dropped out)")
        kept = []
        for reply in replies:
            if stage == "train":
                problem = reply_problem(reply, self._arrays, self.weight_key)
            else:
                problem = metrics_problem(reply, self.weight_key)
            if problem is None:
                kept.append(reply)
            else:
                self._leave_out(server_round, reply.metadata.src_node_id, stage, problem)
        return kept

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Screen, then let the wrapped strategy average; no usable reply keeps the old weights."""
        kept = self._screen(server_round, replies, "train")
        self.train_metrics[server_round] = {m.metadata.src_node_id: _metrics(m) for m in kept}
        if not kept:
            log.warning("round %d: no usable training reply; the global weights stay as they were", server_round)
            return None, None
        return self.inner.aggregate_train(server_round, kept)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """Screen, keep every node's metrics, then the wrapped strategy's weighted average."""
        kept = self._screen(server_round, replies, "evaluate")
        self.evaluate_metrics[server_round] = {m.metadata.src_node_id: _metrics(m) for m in kept}
        aggregated = self.inner.aggregate_evaluate(server_round, kept) if kept else None
        arrays = self._evaluated.pop(server_round, None)
        if self.select_metric and aggregated is not None and self.select_metric in aggregated:
            value = float(aggregated[self.select_metric])
            if value < self.best_value:
                self.best_value, self.best_round, self.best_arrays = value, server_round, arrays
        return aggregated

    def privacy_spent(self) -> PrivacySpent | None:
        """The differential-privacy budget spent so far (None without DP)."""
        spent = getattr(self.inner, "privacy_spent", None)
        return spent() if spent else None


def _metrics(reply: Message) -> MetricRecord:
    return next(iter(reply.content.metric_records.values()))


def make_strategy(settings: FedSettings, num_clients: int, select_metric: str | None = None) -> ScreenedStrategy:
    """FedAvg over ``num_clients`` households (weighted by sample count), or its DP variant, screened.

    Every client must be connected before a round starts (``min_available_nodes``), so a
    deployment waits for its SuperNodes instead of starting with whoever came first.
    """
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")
    sampled = max(1, int(num_clients * settings.fraction_train))
    weight_key = UNIT_WEIGHT_KEY if settings.private else WEIGHT_KEY
    common = {
        "fraction_train": settings.fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": sampled,
        "min_evaluate_nodes": num_clients,
        "min_available_nodes": num_clients,
        "weighted_by_key": weight_key,
    }
    if settings.server_learning_rate != 1.0 or settings.server_momentum != 0.0:
        fedavgm = FedAvgM(server_learning_rate=settings.server_learning_rate, server_momentum=settings.server_momentum, **common)
        return ScreenedStrategy(fedavgm, weight_key, select_metric)
    fedavg = FedAvg(**common)
    if not settings.private:
        return ScreenedStrategy(fedavg, weight_key, select_metric)
    from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant  # noqa: PLC0415 - needs flwr[dp]

    accountant = RdpAccountant(
        PrivacyConfig(
            target_delta=settings.dp_delta,
            population_size=num_clients,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )
    dp = DifferentialPrivacyServerSideFixedClipping(
        fedavg, settings.dp_noise_multiplier, settings.dp_clipping_norm, sampled, accountant=accountant
    )
    return ScreenedStrategy(dp, weight_key, select_metric)

"""The server's strategy: Flower's FedAvg (or FedAvgM, a robust aggregator such as FedMedian, or
FedAvg under Flower's central differential privacy) behind a screen that leaves out bad client
replies with a logged reason.

The screen, per round, before Flower aggregates: replies that cannot be averaged at all
(:func:`~federated.records.reply_problem`); updates whose L2 norm is far above the round's
others (``norm_screen_factor``); sample counts far above what the server expects
(``max_weight_factor``), counted as the expected count. Honest rounds pass untouched, so the
default FedAvg result is exactly Flower's.

Both paths (``flwr run`` and the in-process :class:`~federated.local_grid.LocalGrid`) call the same
:func:`make_strategy`, so their averaging is Flower's own ``aggregate_arrayrecords``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    Bulyan,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedTrimmedAvg,
    Krum,
    MultiKrum,
    Strategy,
)
from flwr.supercore.privacy_accounting import NeighboringRelation, PrivacyConfig, PrivacySpent, SamplingMethod

from federated.records import (
    UNIT_WEIGHT_KEY,
    WEIGHT_KEY,
    claimed_weights,
    far_above,
    lower_median,
    metrics_problem,
    reply_problem,
    update_norms,
)

from federated.settings import AGGREGATIONS, FedSettings  # noqa: F401 (re-exported)

log = logging.getLogger("wattshare.federated")

class ScreenedStrategy(Strategy):
    """Wraps a strategy; before it aggregates, leaves out replies that cannot be averaged.

    A household that sends an error, no weights, other keys or shapes, NaN/inf or no usable sample
    count, or that does not answer at all, is left out of that round with its reason logged (and
    kept in :attr:`left_out`); the round completes with the others. Every accepted reply's metrics
    are kept per node in :attr:`train_metrics` / :attr:`evaluate_metrics` (scalars only).

    Finite poison, compared against the round's other replies (the *lower median*, the
    (n-1)//2-th smallest value: with two replies the smaller, so that one client cannot raise the
    reference by inflating its own number; a single reply is never compared):

    * ``norm_screen_factor``: a training reply whose update norm is more than this factor times
      the lower median update norm is left out (reason, its norm and the median in
      :attr:`left_out`). Nothing is screened when the lower median is 0.
    * ``max_weight_factor``: a reply (training or evaluation) claiming more than this factor times
      the expected sample count (``expected_samples`` for training, else the lower median claim)
      is counted as that expected count; kept, and logged in :attr:`adjusted`. With
      ``unit_weights`` (DP) every weight must be exactly 1 and any other is set to 1.
    ``expected_samples`` may be changed between rounds (the policy federation sets it each round).

    With ``select_metric`` (e.g. ``"val-loss"``) it also keeps the global weights of the round
    whose clients' weighted average of that metric was lowest (:attr:`best_arrays`,
    :attr:`best_round`): early stopping, federated. (Under DP, these evaluation scalars are not
    covered by the privacy accountant, as in Flower.)
    """

    def __init__(
        self, inner: Strategy, weight_key: str = WEIGHT_KEY, select_metric: str | None = None, *,
        norm_screen_factor: float | None = None, max_weight_factor: float | None = None,
        expected_samples: float | None = None, unit_weights: bool = False,
    ) -> None:
        self.inner = inner
        self.weight_key = weight_key
        self.select_metric = select_metric
        self.norm_screen_factor = norm_screen_factor
        self.max_weight_factor = max_weight_factor
        self.on_round: Callable[[int], None] | None = None  # called as each round's training replies arrive (progress)
        self.expected_samples = expected_samples
        self.unit_weights = unit_weights
        self.best_arrays: ArrayRecord | None = None
        self.best_round = 0
        self.best_value = float("inf")
        self._evaluated: dict[int, ArrayRecord] = {}
        self.left_out: list[dict] = []  # {"round", "node_id", "stage", "reason"} (+ "update_norm", "median_norm")
        self.adjusted: list[dict] = []  # {"round", "node_id", "stage", "reason", "claimed", "counted"}
        self.train_metrics: dict[int, dict[int, MetricRecord]] = {}
        self.evaluate_metrics: dict[int, dict[int, MetricRecord]] = {}
        self._sent: dict[tuple[int, str], list[int]] = {}
        self._arrays: ArrayRecord = ArrayRecord()

    def summary(self) -> None:
        """Flower's summary of the wrapped strategy, and the screens."""
        self.inner.summary()
        log.info("screens: norm factor %s, weight cap factor %s, expected samples %s, unit weights %s",
                 self.norm_screen_factor, self.max_weight_factor, self.expected_samples, self.unit_weights)

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

    def _leave_out(self, server_round: int, node_id: int, stage: str, reason: str, **numbers: float) -> None:
        self.left_out.append({"round": server_round, "node_id": node_id, "stage": stage, "reason": reason, **numbers})
        log.warning("round %d: %s reply of node %d left out: %s", server_round, stage, node_id, reason)

    def _screen_norms(self, server_round: int, replies: list[Message]) -> list[Message]:
        """Leave out training replies whose update is far larger than the round's others'."""
        if not self.norm_screen_factor or len(replies) < 2:
            return replies
        records = [next(iter(m.content.array_records.values())) for m in replies]
        norms = update_norms(records, self._arrays)
        far, median = far_above(norms, self.norm_screen_factor)
        for reply, norm in zip([r for r, f in zip(replies, far) if f], norms[far]):
            self._leave_out(server_round, reply.metadata.src_node_id, "train",
                            f"update norm {norm:.4g} is more than {self.norm_screen_factor:g} x the round's median "
                            f"update norm {median:.4g}", update_norm=float(norm), median_norm=median)
        return [r for r, f in zip(replies, far) if not f]

    def _cap_weights(self, server_round: int, replies: list[Message], stage: str) -> None:
        """Count a reply claiming far more samples than expected as the expected count (in place)."""
        if not replies:
            return
        claims = claimed_weights(replies, self.weight_key)
        if self.unit_weights:  # DP: Flower's accountant needs every weight equal
            over, counted = claims != 1.0, 1.0
            why = "under differential privacy every client weighs 1"
        elif not self.max_weight_factor:
            return
        elif stage == "train" and self.expected_samples:
            counted = float(self.expected_samples)
            over = claims > self.max_weight_factor * counted
            why = f"more than {self.max_weight_factor:g} x the {counted:.6g} expected"
        elif len(replies) >= 2:
            counted = lower_median(claims)
            over = claims > self.max_weight_factor * counted
            why = f"more than {self.max_weight_factor:g} x the round's median claim {counted:.6g}"
        else:
            return  # one reply's weight does not matter: it is the whole average
        for reply, claim in zip([r for r, o in zip(replies, over) if o], claims[over]):
            metrics = _metrics(reply)
            original = metrics[self.weight_key]
            metrics[self.weight_key] = int(counted) if isinstance(original, int) and counted.is_integer() else counted
            node_id = reply.metadata.src_node_id
            reason = f"claimed {self.weight_key!r} {claim:.6g}, {why}: counted as {counted:.6g}"
            self.adjusted.append({"round": server_round, "node_id": node_id, "stage": stage, "reason": reason,
                                  "claimed": float(claim), "counted": counted})
            log.warning("round %d: %s reply of node %d weight capped: %s", server_round, stage, node_id, reason)

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
        kept = self._screen_norms(server_round, self._screen(server_round, replies, "train"))
        self._cap_weights(server_round, kept, "train")
        self.train_metrics[server_round] = {m.metadata.src_node_id: _metrics(m) for m in kept}
        if self.on_round is not None:
            self.on_round(server_round)
        if not kept:
            log.warning("round %d: no usable training reply; the global weights stay as they were", server_round)
            return None, None
        return self.inner.aggregate_train(server_round, kept)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """Screen, keep every node's metrics, then the wrapped strategy's weighted average."""
        kept = self._screen(server_round, replies, "evaluate")
        self._cap_weights(server_round, kept, "evaluate")
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
    """Flower's aggregator of ``settings.aggregation`` over ``num_clients`` households, screened.

    FedAvg weighs by sample count (FedAvgM with a server step or momentum; DP fixed clipping with
    ``dp_noise_multiplier``). Every client must be connected before a round starts
    (``min_available_nodes``), so a deployment waits for its SuperNodes instead of starting with
    whoever came first. Raises ValueError naming the setting where the aggregator cannot work
    with the clients sampled per round.
    """
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")
    sampled = max(1, int(num_clients * settings.fraction_train))
    weight_key = UNIT_WEIGHT_KEY if settings.private else WEIGHT_KEY
    common = {
        "fraction_train": settings.fraction_train,
        "fraction_evaluate": settings.fraction_evaluate,
        "min_train_nodes": sampled,
        "min_evaluate_nodes": max(1, int(num_clients * settings.fraction_evaluate)),
        "min_available_nodes": num_clients,
        "weighted_by_key": weight_key,
    }
    screens = {"norm_screen_factor": None if settings.private else settings.norm_screen_factor,
               "max_weight_factor": settings.max_weight_factor, "expected_samples": settings.expected_samples,
               "unit_weights": settings.private}

    def screened(inner: Strategy) -> ScreenedStrategy:
        return ScreenedStrategy(inner, weight_key, select_metric, **screens)

    if settings.aggregation != "fedavg":
        return screened(_robust_aggregator(settings, sampled, common))
    if settings.server_learning_rate != 1.0 or settings.server_momentum != 0.0:
        return screened(FedAvgM(server_learning_rate=settings.server_learning_rate, server_momentum=settings.server_momentum, **common))
    fedavg = FedAvg(**common)
    if not settings.private:
        return screened(fedavg)
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
    return screened(dp)


def _robust_aggregator(settings: FedSettings, sampled: int, common: dict) -> Strategy:
    """Flower's FedMedian / FedTrimmedAvg / Krum / MultiKrum / Bulyan, checked against ``sampled``."""
    f = settings.assumed_malicious
    if settings.aggregation == "fedmedian":
        return FedMedian(**common)
    if settings.aggregation == "fedtrimmedavg":
        if int(settings.trim_fraction * sampled) < 1:
            raise ValueError(f"trim_fraction {settings.trim_fraction:g} cuts no client of the {sampled} sampled per round; "
                             f"use at least {1 / sampled:.3g}")
        return FedTrimmedAvg(beta=settings.trim_fraction, **common)
    if settings.aggregation == "bulyan":
        if sampled < 4 * f + 3:
            raise ValueError(f"aggregation 'bulyan' with assumed_malicious {f} needs >= {4 * f + 3} clients per round, got {sampled}")
        return Bulyan(num_malicious_nodes=f, **common)
    if sampled < 2 * f + 3:  # Krum's guarantee needs n > 2f + 2
        raise ValueError(f"aggregation {settings.aggregation!r} with assumed_malicious {f} needs >= {2 * f + 3} clients per round, "
                         f"got {sampled}")
    if settings.aggregation == "krum":
        return Krum(num_malicious_nodes=f, **common)
    select = settings.multikrum_select or sampled - f
    if select > sampled - f:
        raise ValueError(f"multikrum_select {select} is more than the {sampled} clients per round minus assumed_malicious {f}")
    return MultiKrum(num_malicious_nodes=f, num_nodes_to_select=select, **common)

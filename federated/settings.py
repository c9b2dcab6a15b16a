"""The ``federated`` section of a run configuration: how the server federates.

Kept apart from the strategy (Flower) so that reading a configuration imports no Flower.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from energy_env.config import Int, StrictModel

# Flower 1.42's aggregators (flwr.serverapp.strategy), by the name FedSettings.aggregation takes.
AGGREGATIONS = ("fedavg", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan")


class FedSettings(StrictModel):
    """How the server federates (the ``federated`` section of a run configuration).

    Attributes:
        rounds: federated rounds R.
        local_epochs: epochs each household trains on its own data per round (E).
        fraction_train: share of households asked to train each round (1.0: all); sampled by
            ``seed``, so the same seed samples the same homes.
        fraction_evaluate: share asked to score the global model each round (1.0: all).
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
        aggregation: how the server combines the kept updates, one of :data:`AGGREGATIONS`:
            ``"fedavg"`` (default: sample-weighted mean), or Flower's robust aggregators, which
            ignore sample counts: ``"fedmedian"`` (coordinate-wise median), ``"fedtrimmedavg"``
            (coordinate-wise mean after cutting ``trim_fraction`` of the clients from each tail),
            ``"krum"`` / ``"multikrum"`` (the update(s) closest to their neighbours, assuming
            ``assumed_malicious`` attackers; MultiKrum averages ``multikrum_select`` of them,
            0: all but ``assumed_malicious``), ``"bulyan"`` (MultiKrum selection, then a trimmed
            coordinate-wise mean; needs >= 4 ``assumed_malicious`` + 3 replies a round).
        trim_fraction: FedTrimmedAvg's share cut from each tail, in [0, 0.5); must cut at least
            one of the clients sampled per round.
        assumed_malicious, multikrum_select: the f and m of Krum, MultiKrum and Bulyan.
        norm_screen_factor: leave out a training reply whose update norm (its weights minus the
            global weights sent, L2 over the federated arrays) is more than this times the round's
            lower median update norm (needs >= 2 replies; see :class:`ScreenedStrategy`).
            None or 0 disables. Not applied under DP, whose clipping already bounds every update.
        max_weight_factor: a reply claiming more than this times the expected sample count is
            counted as the expected count (logged in :attr:`ScreenedStrategy.adjusted`). The
            expected count is ``expected_samples`` (training) or else the round's lower median
            claim. None or 0 disables. Under DP every weight must be 1 and is set to 1.
        expected_samples: samples the server expects behind one client's training update (None:
            unknown, the round's lower median claim stands in).
        lr_decay: the forecasters' clients decay their learning rate (cosine, to a tenth) over the
            rounds, so that late rounds take small local steps and the clients drift apart less.
        finetune_epochs: personalisation: at most this many epochs of each home's fine-tuning on
            its own days after FedAvg (early-stopped on its own validation days).
    """


    rounds: Int = 20
    local_epochs: Int = 1
    fraction_train: float = 1.0
    fraction_evaluate: float = 1.0
    dp_noise_multiplier: float = 0.0
    dp_clipping_norm: float = 1.0
    dp_delta: float = 1e-5
    server_learning_rate: float = 1.0
    server_momentum: float = 0.0
    seed: Int = Field(0, ge=0)
    aggregation: str = "fedavg"
    trim_fraction: float = 0.2
    assumed_malicious: Int = 1
    multikrum_select: Int = 0
    norm_screen_factor: float | None = 30.0
    max_weight_factor: float | None = 3.0
    expected_samples: float | None = None
    lr_decay: bool = True
    finetune_epochs: Int = Field(10, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "FedSettings":
        if self.rounds < 1 or self.local_epochs < 1:
            raise ValueError(f"rounds and local_epochs must be >= 1, got {self.rounds} and {self.local_epochs}")
        if not 0.0 < self.fraction_evaluate <= 1.0:
            raise ValueError(f"fraction_evaluate must be in (0, 1], got {self.fraction_evaluate}")
        if not 0.0 < self.fraction_train <= 1.0:
            raise ValueError(f"fraction_train must be in (0, 1], got {self.fraction_train}")
        if self.dp_noise_multiplier < 0 or self.dp_clipping_norm <= 0 or not 0 < self.dp_delta < 1:
            raise ValueError("dp_noise_multiplier must be >= 0, dp_clipping_norm > 0 and dp_delta in (0, 1)")
        if self.server_learning_rate <= 0 or not 0 <= self.server_momentum < 1:
            raise ValueError("server_learning_rate must be > 0 and server_momentum in [0, 1)")
        if self.private and (self.server_learning_rate != 1.0 or self.server_momentum != 0.0):
            raise ValueError("differential privacy needs plain FedAvg (server_learning_rate 1, server_momentum 0)")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {list(AGGREGATIONS)}, got {self.aggregation!r}")
        if self.private and self.aggregation != "fedavg":
            raise ValueError(f"differential privacy needs aggregation 'fedavg' (Flower's accountant assumes a mean), got {self.aggregation!r}")
        if (self.server_learning_rate != 1.0 or self.server_momentum != 0.0) and self.aggregation != "fedavg":
            raise ValueError(f"server_learning_rate and server_momentum need aggregation 'fedavg' (Flower's FedAvgM), got {self.aggregation!r}")
        if not 0.0 <= self.trim_fraction < 0.5:
            raise ValueError(f"trim_fraction must be in [0, 0.5), got {self.trim_fraction}")
        if self.assumed_malicious < 0 or self.multikrum_select < 0:
            raise ValueError(f"assumed_malicious and multikrum_select must be >= 0, got {self.assumed_malicious} and {self.multikrum_select}")
        if self.norm_screen_factor and not self.norm_screen_factor > 1:
            raise ValueError(f"norm_screen_factor must be > 1 (or None/0: off), got {self.norm_screen_factor}")
        if self.max_weight_factor and not self.max_weight_factor >= 1:
            raise ValueError(f"max_weight_factor must be >= 1 (or None/0: off), got {self.max_weight_factor}")
        if self.expected_samples is not None and not 0 < self.expected_samples < float("inf"):
            raise ValueError(f"expected_samples must be a finite number > 0 (or None: unknown), got {self.expected_samples}")
        return self

    @property
    def private(self) -> bool:
        """True when differential privacy is on."""
        return self.dp_noise_multiplier > 0

"""The LSTM forecasters: one small LSTM per household, or one shared LSTM with a home embedding.

Both are :class:`LSTMForecaster`: a window ``(B, W, F)`` of scaled features in, the next ``H``
intervals of scaled load and PV ``(B, H, 2)`` out.

* ``per_home``: N independent models, trained one after the other (N small ``nn.LSTM``: grouped
  weights stepped by batched matmuls were no faster; docs/forecasting.md).
* ``shared``: one model for all homes; a learned home embedding tells it which home it reads.

:class:`HouseholdForecaster` wraps one home's forecaster with its scaling for export (ONNX).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from forecasting.config import MODEL_KINDS, ForecasterConfig  # noqa: F401 (re-exported: checkpoints name it here)
from forecasting.data import NUM_FEATURES, Scaling


class LSTMForecaster(nn.Module):
    """An LSTM over the input window and a linear head to ``H`` steps of scaled load and PV.

    With ``num_homes > 0`` it is the shared model: a learned embedding of the home joins every
    input step and the head. The head also reads the last input step directly (today's value and
    time of day): that skip path lets the model start from persistence instead of rediscovering it.
    """

    def __init__(self, cfg: ForecasterConfig, num_features: int = NUM_FEATURES, num_homes: int = 0) -> None:
        super().__init__()
        self.horizon, self.residual = cfg.horizon, cfg.residual
        emb = cfg.embedding_size if num_homes > 0 else 0
        self.embedding = nn.Embedding(num_homes, emb) if num_homes > 0 else None
        self.lstm = nn.LSTM(num_features + emb, cfg.hidden_size, batch_first=True)
        self.head = nn.Linear(cfg.hidden_size + num_features + emb, 2 * cfg.horizon)

    def forward(self, x: torch.Tensor, home: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, W, F)`` scaled features, ``home (B,)`` indices (shared model) -> ``(B, H, 2)``."""
        b, w, _ = x.shape
        if self.embedding is not None:
            if home is None:
                raise ValueError("the shared model needs the home index of every window")
            e = self.embedding(home)  # (B, E)
            seq = torch.cat([x, e[:, None, :].expand(b, w, e.shape[1])], dim=2)
            last = torch.cat([x[:, -1], e], dim=1)
        else:
            seq, last = x, x[:, -1]
        out, _ = self.lstm(seq)
        y = self.head(torch.cat([out[:, -1], last], dim=1)).view(b, 2, self.horizon).transpose(1, 2)
        if self.residual:
            y = y + x[:, -1:, :2]  # (B, 1, 2): the last interval's scaled load and PV
        return y


def build_models(num_households: int, cfg: ForecasterConfig) -> list[LSTMForecaster]:
    """Fresh (unseeded) models: one per home (``per_home``) or a single shared one (``shared``)."""
    if cfg.kind == "per_home":
        return [LSTMForecaster(cfg) for _ in range(num_households)]
    return [LSTMForecaster(cfg, num_homes=num_households)]


class HouseholdForecaster(nn.Module):
    """One home's forecaster as a self-contained module: what an edge device runs.

    Input ``(B, W, F)`` features with columns 0 and 1 (load, PV) in kWh, the rest as
    :func:`forecasting.data.build_features` makes them; output ``(B, H, 2)`` forecasts of load and
    PV in kWh, clipped at 0. The home's scaling (and, for the shared model, its index) is built in.
    """

    def __init__(self, model: LSTMForecaster, home: int, load_scale_kwh: float, pv_scale_kwh: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("home", torch.tensor([home], dtype=torch.long))
        self.register_buffer("scale_kwh", torch.tensor([load_scale_kwh, pv_scale_kwh], dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, W, F)`` (load, PV in kWh) -> ``(B, H, 2)`` kWh."""
        scaled = torch.cat([features[:, :, :2] / self.scale_kwh, features[:, :, 2:]], dim=2)
        home = self.home.expand(features.shape[0]) if self.model.embedding is not None else None
        return torch.clamp(self.model(scaled, home) * self.scale_kwh, min=0.0)


@dataclass
class TrainedForecasters:
    """A trained forecaster set: what a checkpoint holds.

    Attributes:
        config: shapes and training settings.
        household_ids: the homes, in model order (``models[i]`` is home ``i`` for ``per_home``).
        scaling: per-home divisors of load and PV (kWh), fitted on train days.
        models: N models (``per_home``) or one (``shared``), in eval mode.
        history: per model: epochs run, best epoch, best validation loss, wall and CPU seconds.
        dataset_name: where the data came from (informational).
    """

    config: ForecasterConfig
    household_ids: tuple[str, ...]
    scaling: Scaling
    models: list[LSTMForecaster]
    history: list[dict] = field(default_factory=list)
    dataset_name: str = ""

"""The LSTM forecast provider: the env's observations and the coordinator's price from the LSTMs.

The forecasts of a whole data set are computed once, in batch (all origins of a home in chunks,
no gradient), and the env only indexes the resulting ``(T, N, H)`` arrays: no torch call happens
inside ``step()``. ``build_data`` also derives the coordinator's expected price from the one-step
forecasts of these arrays, so the price signal uses the nodes' LSTM forecasts too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from energy_env.data.dataset import Dataset
from forecasting import data as fdata
from forecasting.checkpoint import CheckpointError, default_checkpoint_path, load_checkpoint
from forecasting.model import TrainedForecasters

CHUNK_ORIGINS = 4096  # windows per forward pass: bounds memory (~4096 x 48 x 12 floats)


def _home_index(trained: TrainedForecasters, dataset: Dataset) -> list[int]:
    """For each home of ``dataset``, its index in the checkpoint (homes are matched by id)."""
    where = {h: i for i, h in enumerate(trained.household_ids)}
    missing = [h for h in dataset.household_ids if h not in where]
    if missing:
        raise CheckpointError(
            f"the forecasters were trained for {len(trained.household_ids)} homes {list(trained.household_ids)[:5]}..., "
            f"not for {missing[:5]} of {dataset.name}: run `wattshare train-forecasters` for this data set"
        )
    return [where[h] for h in dataset.household_ids]


def predict(trained: TrainedForecasters, dataset: Dataset, horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(load_fc_kwh, pv_fc_kwh)``, each ``(T, N, horizon)`` float32, for every origin of ``dataset``.

    ``fc[t, i, k]`` forecasts interval ``t+1+k`` from the window ``t-W+1 .. t`` (the first
    ``W-1`` origins see the first interval repeated before the data starts). Forecasts are clipped
    at 0 kWh.
    """
    cfg = trained.config
    horizon = cfg.horizon if horizon is None else horizon
    if horizon > cfg.horizon:
        raise ValueError(f"the forecasters predict {cfg.horizon} intervals ahead; {horizon} were asked for")
    homes = _home_index(trained, dataset)
    # Scale with the checkpoint's statistics (fitted on its train days), in dataset home order.
    scaling = fdata.Scaling(trained.scaling.load_kwh[homes], trained.scaling.pv_kwh[homes])
    padded = fdata.pad_history(fdata.build_features(dataset, scaling, cfg.weather), cfg.window)
    t_len, n = dataset.load_kwh.shape
    out = np.empty((t_len, n, horizon, 2), dtype=np.float32)
    steps = np.arange(cfg.window)
    with torch.no_grad():
        for col, home in enumerate(homes):
            model = trained.models[0] if cfg.kind == "shared" else trained.models[home]
            model.eval()
            for lo in range(0, t_len, CHUNK_ORIGINS):
                origins = np.arange(lo, min(lo + CHUNK_ORIGINS, t_len))
                x = torch.from_numpy(padded[origins[:, None] + steps, col])
                h = torch.full((len(origins),), home, dtype=torch.long) if cfg.kind == "shared" else None
                out[lo : lo + len(origins), col] = model(x, h)[:, :horizon].numpy()
    scale = np.stack([scaling.load_kwh, scaling.pv_kwh], axis=1)[None, :, None, :]  # (1, N, 1, 2)
    out = np.maximum(out * scale, 0.0)
    return np.ascontiguousarray(out[..., 0]), np.ascontiguousarray(out[..., 1])


class LSTMForecast:
    """Forecast provider backed by a saved checkpoint (see ``wattshare train-forecasters``).

    Args:
        checkpoint: the checkpoint file; None = the default for each data set,
            ``data/checkpoints/forecasters/<data set>/lstm_per_home.pt``.
        trained: forecasters already in memory (then no file is read).

    The checkpoint loads on first use; the forecasts of the last data set asked for are kept
    (matched by identity: data sets are immutable), so building several envs on one data set
    runs the models once.
    """

    name = "lstm"

    def __init__(self, checkpoint: str | Path | None = None, trained: TrainedForecasters | None = None) -> None:
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._trained = trained
        self._loaded_from: Path | None = None
        self._cached: tuple[Dataset, int, tuple[np.ndarray, np.ndarray]] | None = None

    def trained_for(self, dataset: Dataset) -> TrainedForecasters:
        """The forecasters to use on ``dataset``, loaded from the checkpoint when first needed."""
        if self._trained is not None and self._loaded_from is None:
            return self._trained  # given in memory
        path = self.checkpoint or default_checkpoint_path(dataset)
        if self._trained is None or self._loaded_from != path:
            if not path.exists():
                raise CheckpointError(
                    f"{path}: no forecaster checkpoint for {dataset.name}; train one with "
                    f"`wattshare train-forecasters` (see docs/forecasting.md)"
                )
            self._trained, self._loaded_from = load_checkpoint(path), path
        return self._trained

    def forecast(self, dataset: Dataset, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """``(load_fc_kwh, pv_fc_kwh)``, each ``(T, N, horizon)``, read-only."""
        if self._cached is None or self._cached[0] is not dataset or self._cached[1] != horizon:
            load_fc, pv_fc = predict(self.trained_for(dataset), dataset, horizon)
            load_fc.setflags(write=False)
            pv_fc.setflags(write=False)
            self._cached = (dataset, horizon, (load_fc, pv_fc))  # one data set at a time: the arrays are large
        return self._cached[2]


def make_lstm_provider(checkpoint: str | None = None) -> LSTMForecast:
    """``forecast.provider: lstm`` (registered with the env as an entry point; torch loads here)."""
    return LSTMForecast(checkpoint)

"""ONNX export of one household's forecaster, for an edge device (a home gateway or inverter).

Each home gets its own file: the input is the window ``(batch, W, F)`` of features with load and
PV in kWh (the home's scaling is inside the graph), the output ``(batch, H, 2)`` forecasts of load
and PV in kWh. The graph uses ONNX's native ``LSTM`` operator (opset 17), which every runtime
accelerates. :func:`run_onnx` runs a file through onnxruntime, for the parity test.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from energy_env.data.dataset import Dataset
from forecasting import data as fdata
from forecasting.model import HouseholdForecaster, TrainedForecasters

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "features", "forecast_kwh"


def household_forecaster(trained: TrainedForecasters, home: int | str) -> HouseholdForecaster:
    """Home ``home`` (index or id) of ``trained`` as a self-contained module taking kWh features."""
    i = trained.household_ids.index(home) if isinstance(home, str) else int(home)
    if not 0 <= i < len(trained.household_ids):
        raise IndexError(f"home {home} is out of range: the forecasters cover {len(trained.household_ids)} homes")
    model = trained.models[0] if trained.config.kind == "shared" else trained.models[i]
    scale_load, scale_pv = float(trained.scaling.load_kwh[i]), float(trained.scaling.pv_kwh[i])
    return HouseholdForecaster(model, i, scale_load, scale_pv).eval()


def edge_features(trained: TrainedForecasters, dataset: Dataset, origins: np.ndarray, home: int) -> np.ndarray:
    """``(B, W, F)`` float32 inputs of ``origins`` for one home, load and PV in kWh (as a device measures them)."""
    ones = np.ones(dataset.num_households, dtype=np.float32)
    feats = fdata.build_features(dataset, fdata.Scaling(ones, ones), trained.config.weather)
    window = trained.config.window
    padded = fdata.pad_history(feats, window)
    return np.ascontiguousarray(padded[np.asarray(origins)[:, None] + np.arange(window), home])


def export_onnx(trained: TrainedForecasters, home: int | str, path: str | Path) -> Path:
    """Write home ``home``'s forecaster to ``path`` as ONNX; the batch dimension is dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = household_forecaster(trained, home)
    example = torch.zeros(1, trained.config.window, fdata.NUM_FEATURES)
    with warnings.catch_warnings():
        # The TorchScript-based exporter (dynamo=False) is deprecated but exports nn.LSTM as ONNX's
        # native LSTM op in about a second; the dynamo exporter takes ~20x longer for this model.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # nn.LSTM's shape checks, traced as constants
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def run_onnx(path: str | Path, features: np.ndarray) -> np.ndarray:
    """Forecasts ``(B, H, 2)`` kWh of an exported file through onnxruntime (CPU)."""
    import onnxruntime as ort  # noqa: PLC0415 - optional at import time: only export users need it

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(features, dtype=np.float32)})[0]

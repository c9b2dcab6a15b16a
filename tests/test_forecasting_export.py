"""ONNX export parity, the train/evaluate commands, and the forecasters on the real CityLearn homes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting import data as fdata
from forecasting.model import ForecasterConfig
from forecasting.onnx_export import edge_features, export_onnx, household_forecaster, run_onnx
from forecasting.provider import predict
from forecasting.train import train_forecasters
from train.cli import main as wattshare
from conftest import require_shared
from test_forecasting import daily_dataset

H = 6


@pytest.fixture(scope="module")
def ds():
    return daily_dataset()


@pytest.fixture(scope="module", params=["per_home", "shared"])
def trained(request, ds):
    torch.set_num_threads(1)
    cfg = ForecasterConfig(kind=request.param, hidden_size=8, embedding_size=2, max_epochs=1)
    return train_forecasters(ds, cfg, workers=1, progress=False)


def test_household_module_matches_the_batch_forecasts(ds, trained):
    """The module an edge device runs gives the provider's forecasts for its home."""
    origins = np.array([0, 100, 1500, ds.num_intervals - 1])
    load_fc, pv_fc = predict(trained, ds, H)
    for home in range(ds.num_households):
        module = household_forecaster(trained, ds.household_ids[home])
        with torch.no_grad():
            out = module(torch.from_numpy(edge_features(trained, ds, origins, home))).numpy()
        np.testing.assert_allclose(out[..., 0], load_fc[origins, home], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[..., 1], pv_fc[origins, home], rtol=1e-5, atol=1e-6)


def test_onnx_parity_with_pytorch(ds, trained, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is needed for the ONNX parity test")
    pytest.importorskip("onnx", reason="onnx is needed to export")
    home = 1
    path = export_onnx(trained, home, tmp_path / "home.onnx")
    origins = np.arange(200, 1700, 7)  # a batch size other than the export example's (dynamic axis)
    x = edge_features(trained, ds, origins, home)
    with torch.no_grad():
        expected = household_forecaster(trained, home)(torch.from_numpy(x)).numpy()
    got = run_onnx(path, x)
    assert got.shape == (len(origins), H, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_train_and_evaluate_commands(tmp_path, capsys):
    out = tmp_path / "ckpt"
    args = ["--households", "2", "--epochs", "1", "--hidden-size", "4", "--window", "8", "--workers", "1",
            "--no-progress", "--output", str(out)]
    assert wattshare(["train-forecasters", *args]) == 0
    text = capsys.readouterr().out
    assert "lstm_per_home: load MAPE" in text and "seasonal_mean" in text
    folder = next(out.iterdir())
    assert (folder / "lstm_per_home.pt").is_file() and (folder / "metrics.csv").is_file()
    assert (folder / "run_config.yaml").is_file()
    assert wattshare(["evaluate-forecasters", "--households", "2", "--output", str(out)]) == 0
    assert "load_mape_pct by horizon step" in capsys.readouterr().out
    assert wattshare(["evaluate-forecasters", "--households", "2", "--output", str(tmp_path / "empty")]) == 2
    assert "no checkpoints" in capsys.readouterr().err


def test_citylearn_homes_split_and_scale():
    """On the real homes: training windows avoid test days and scaling is fitted on train days only."""
    from energy_env.data import load_citylearn

    ds = load_citylearn(str(require_shared()), [1, 2])
    labels = fdata.day_labels(ds, 3)
    fit = fdata.origins_for(labels, fdata.FIT, 48, H, strict_inputs=True)
    assert len(fit) > 8000 and len(fdata.scored_origins(ds, H)) > 3500
    scaling = fdata.fit_scaling(ds, np.flatnonzero(labels != fdata.TEST))
    np.testing.assert_allclose(scaling.load_kwh, ds.load_kwh[fdata.day_rows(ds.split_days("train"))].mean(0), rtol=1e-5)


def test_worker_processes_give_the_same_weights(ds):
    """Per-home models are seeded by (seed, home): two worker processes train what one does inline."""
    cfg = ForecasterConfig(hidden_size=4, max_epochs=1, batch_size=512)
    inline = train_forecasters(ds, cfg, workers=1, progress=False)
    pooled = train_forecasters(ds, cfg, workers=2, progress=False)
    for a, b in zip(inline.models, pooled.models):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), key

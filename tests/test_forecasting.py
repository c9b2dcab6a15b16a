"""The household forecasters: windows without look-ahead, baselines, metrics, training, checkpoints.

Models here are tiny (hidden size 8, a few epochs) on a two-month hand-made data set with a clear
daily pattern, so the whole file runs in well under a minute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset
from forecasting import data as fdata
from forecasting.baselines import SeasonalMeanForecast, baseline_providers, seasonal_mean
from forecasting.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from forecasting.metrics import MAPE_FLOOR_KWH, metrics_table
from forecasting.model import ForecasterConfig
from forecasting.provider import LSTMForecast, predict
from forecasting.train import train_forecasters

H = 6
TINY = ForecasterConfig(hidden_size=8, max_epochs=6, patience=6, batch_size=128, learning_rate=1e-2, weather=True)


def daily_dataset(days: int = 59, homes: int = 2, seed: int = 0, name: str = "daily") -> Dataset:
    """Jan-Feb 2025 of homes whose load is a clear daily cycle plus noise, PV a bell curve."""
    rng = np.random.default_rng(seed)
    t = days * INTERVALS_PER_DAY
    ts = pd.date_range("2025-01-01", periods=t, freq="30min")
    phase = 2 * np.pi * (np.arange(t) % INTERVALS_PER_DAY) / INTERVALS_PER_DAY
    shape = 1.0 + 0.8 * np.sin(phase - 2.0) + 0.3 * np.sin(2 * phase)
    load = 0.5 * np.maximum(shape, 0.1)[:, None] * (1 + 0.3 * np.arange(homes))[None, :]
    load = load * rng.lognormal(0.0, 0.1, size=(t, homes))
    sun = np.maximum(np.sin(phase - np.pi / 2), 0.0)  # daylight 06:00-18:00
    pv = 1.5 * sun[:, None] * rng.uniform(0.6, 1.0, size=(days, 1)).repeat(INTERVALS_PER_DAY, axis=0)
    pv = np.repeat(pv, homes, axis=1)
    return Dataset(
        name=name,
        timestamps=ts,
        load_kwh=load,
        pv_kwh=pv,
        household_ids=tuple(f"home_{i}" for i in range(homes)),
        pv_capacity_kw=np.full(homes, 4.0),
        temperature_c=15 + 5 * np.sin(phase),
        irradiance_w_per_m2=800 * sun,
    )


def perturbed_after(ds: Dataset, t: int) -> Dataset:
    """``ds`` with every value after interval ``t`` changed (load, PV and weather)."""
    load, pv = ds.load_kwh.copy(), ds.pv_kwh.copy()
    temp, irr = ds.temperature_c.copy(), ds.irradiance_w_per_m2.copy()
    load[t + 1 :] = load[t + 1 :] * 3.0 + 1.0
    pv[t + 1 :] = pv[t + 1 :][::-1]
    temp[t + 1 :] += 20.0
    irr[t + 1 :] = 0.0
    return Dataset(ds.name, ds.timestamps, load, pv, ds.household_ids, ds.pv_capacity_kw.copy(), temp, irr)


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return daily_dataset()


@pytest.fixture(scope="module")
def trained(ds):
    torch.set_num_threads(1)
    return train_forecasters(ds, TINY, workers=1, progress=False)


# --- windows and splits --------------------------------------------------------------------------


def test_window_of_origin_t_ends_at_t(ds):
    scaling = fdata.Scaling(np.ones(2, np.float32), np.ones(2, np.float32))
    feats = fdata.build_features(ds, scaling)
    padded = fdata.pad_history(feats, 48)
    origins = np.array([0, 5, 47, 1000])
    win = fdata.gather_windows(padded, origins, 48)
    assert win.shape == (4, 48, 2, fdata.NUM_FEATURES)
    np.testing.assert_array_equal(win[3], feats[1000 - 47 : 1001])  # rows t-W+1 .. t, nothing after
    np.testing.assert_array_equal(win[1, -6:], feats[0:6])
    np.testing.assert_array_equal(win[1, :-6], np.repeat(feats[:1], 42, axis=0))  # padded with the first row
    tgt = fdata.gather_targets(fdata.build_targets(ds, scaling), np.array([1000]), H)
    np.testing.assert_allclose(tgt[0, :, :, 0], ds.load_kwh[1001:1007], rtol=1e-6)


def test_training_origins_avoid_test_days(ds):
    labels = fdata.day_labels(ds, validation_days_per_month=3)
    assert (labels == fdata.TEST).sum() == 14 and (labels == fdata.VALIDATION).sum() == 6
    interval_label = np.repeat(labels, INTERVALS_PER_DAY)
    for label in (fdata.FIT, fdata.VALIDATION):
        origins = fdata.origins_for(labels, label, 48, H, strict_inputs=True)
        span = origins[:, None] + np.arange(-47, H + 1)  # every input and target interval
        assert (interval_label[span] != fdata.TEST).all()
        assert (interval_label[origins[:, None] + np.arange(1, H + 1)] == label).all()
    test = fdata.scored_origins(ds, H)
    assert (interval_label[test[:, None] + np.arange(1, H + 1)] == fdata.TEST).all()
    assert test.max() + H < ds.num_intervals


def test_features_have_calendar_and_weather(ds):
    feats = fdata.build_features(ds, fdata.fit_scaling(ds, ds.split_days("train")))
    assert feats.shape == (ds.num_intervals, 2, fdata.NUM_FEATURES) and feats.dtype == np.float32
    col = {name: i for i, name in enumerate(fdata.FEATURES)}
    np.testing.assert_array_equal(feats[:4, 0, col["second_half_hour"]], [0, 1, 0, 1])
    assert feats[4 * 48, 0, col["is_weekend"]] == 1.0  # 2025-01-05 is a Sunday
    assert np.ptp(feats[:, 0, col["temperature"]]) > 0 and np.ptp(feats[:, 0, col["irradiance"]]) > 0


# --- baselines -----------------------------------------------------------------------------------


def test_seasonal_mean_on_a_ramp():
    """On x[u] = u the mean of the same interval over the last D days is u - 48 (D + 1) / 2."""
    t = 20 * 48
    x = np.arange(t, dtype=np.float64)[:, None]
    fc = seasonal_mean(x, H, days=7)
    origin = 15 * 48 + 10
    for k in range(H):
        u = origin + 1 + k
        assert fc[origin, 0, k] == pytest.approx(u - 48 * 4)
    # Early on, only the days that exist are averaged: 2 days back at most here.
    origin = 2 * 48 + 3
    assert fc[origin, 0, 0] == pytest.approx(np.mean([origin + 1 - 48, origin + 1 - 96]))
    assert fc[0, 0, 0] == 0.0  # no past day at all: the first value stands in


def test_seasonal_mean_with_one_day_is_seasonal_persistence(ds):
    a = SeasonalMeanForecast(days=1).forecast(ds, H)[0]
    b = baseline_providers()["seasonal_persistence"].forecast(ds, H)[0]
    np.testing.assert_allclose(a[48:], b[48:], rtol=1e-6)


@pytest.mark.parametrize("name", ["persistence", "seasonal_persistence", "seasonal_mean"])
def test_baselines_have_no_look_ahead(ds, name):
    t = 1500
    a = baseline_providers()[name].forecast(ds, H)
    b = baseline_providers()[name].forecast(perturbed_after(ds, t), H)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa[: t + 1], fb[: t + 1])


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_on_hand_made_forecasts():
    t = 10
    load = np.full((t, 1), 2.0)
    load[5] = 0.01  # below the MAPE floor: left out of MAPE, kept in WAPE and MAE
    pv = np.zeros((t, 1))
    zeros = np.zeros((t, 1, 2))
    ref, high = np.full((t, 1, 2), 2.1), np.full((t, 1, 2), 2.5)
    table = metrics_table({"ref": (ref, zeros), "high": (high, zeros)}, load, pv, np.array([0, 1, 2]), ("h",), reference="ref")
    pooled = table[(table.household == "all") & (table.step == "all")].set_index("model")
    assert pooled.loc["high", "load_mape_pct"] == pytest.approx(25.0)  # |2.5 - 2| / 2 on every target (1..4)
    assert pooled.loc["high", "load_mae_kwh"] == pytest.approx(0.5)
    assert pooled.loc["high", "load_skill"] == pytest.approx(1 - 0.5 / 0.1)  # 1 - RMSE / RMSE of the reference
    assert pooled.loc["ref", "load_skill"] == pytest.approx(0.0) and pooled.loc["ref", "load_mape_pct"] == pytest.approx(5.0)
    by_home = table[(table.model == "high") & (table.household == "h") & (table.step == "2")]
    assert len(by_home) == 1 and by_home.iloc[0].load_rmse_kwh == pytest.approx(0.5)
    # Origins 2 and 3 target intervals 3, 4 and 4, 5: interval 5 (0.01 kWh) is under the floor.
    table = metrics_table({"ref": (ref - 0.1, zeros)}, load, pv, np.array([2, 3]), ("h",), reference="ref")
    row = table[(table.household == "all") & (table.step == "all")].iloc[0]
    assert 0.01 < MAPE_FLOOR_KWH
    assert row.load_mape_excluded_pct == pytest.approx(25.0) and row.load_mape_pct == 0.0
    assert row.load_wape_pct == pytest.approx(100 * 1.99 / 6.01)


# --- training, determinism, no look-ahead ----------------------------------------------------------


def test_tiny_lstm_beats_persistence_on_a_daily_pattern(ds, trained):
    origins = fdata.scored_origins(ds, H)
    fcs = {name: p.forecast(ds, H) for name, p in baseline_providers().items()}
    fcs["lstm"] = predict(trained, ds, H)
    table = metrics_table(fcs, ds.load_kwh, ds.pv_kwh, origins, ds.household_ids)
    pooled = table[(table.household == "all") & (table.step == "all")].set_index("model")
    assert pooled.loc["lstm", "load_mae_kwh"] < 0.8 * pooled.loc["persistence", "load_mae_kwh"]
    assert pooled.loc["lstm", "pv_mae_kwh"] < pooled.loc["persistence", "pv_mae_kwh"]
    assert all(h["best_epoch"] >= 1 for h in trained.history)


def test_lstm_forecasts_have_no_look_ahead(ds, trained):
    t = 1500
    a = predict(trained, ds, H)
    b = predict(trained, perturbed_after(ds, t), H)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa[: t + 1], fb[: t + 1])
        assert not np.array_equal(fa[t + 1 :], fb[t + 1 :])  # the perturbation is visible after t


def test_training_is_deterministic_and_ignores_test_days(ds):
    cfg = ForecasterConfig(hidden_size=4, max_epochs=1, batch_size=256)
    a = train_forecasters(ds, cfg, workers=1, progress=False)
    b = train_forecasters(ds, cfg, workers=1, progress=False)
    # Changing every test day's data changes nothing in training: it never reads them.
    test_rows = fdata.day_rows(ds.split_days("test"))
    load = ds.load_kwh.copy()
    load[test_rows] *= 5.0
    other = Dataset(ds.name, ds.timestamps, load, ds.pv_kwh.copy(), ds.household_ids, ds.pv_capacity_kw.copy(),
                    ds.temperature_c, ds.irradiance_w_per_m2)
    c = train_forecasters(other, cfg, workers=1, progress=False)
    for other_run in (b, c):
        for ma, mb in zip(a.models, other_run.models):
            for key, value in ma.state_dict().items():
                assert torch.equal(value, mb.state_dict()[key]), key


def test_shared_model_trains_and_forecasts(ds):
    cfg = ForecasterConfig(kind="shared", hidden_size=8, embedding_size=2, max_epochs=2, batch_size=256)
    shared = train_forecasters(ds, cfg, progress=False)
    assert len(shared.models) == 1
    load_fc, pv_fc = predict(shared, ds, H)
    assert load_fc.shape == (ds.num_intervals, 2, H) and (pv_fc >= 0).all()


# --- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_round_trip(ds, trained, tmp_path):
    path = save_checkpoint(trained, tmp_path / "f.pt")
    loaded = load_checkpoint(path)
    assert loaded.household_ids == trained.household_ids and loaded.config == trained.config
    for a, b in zip(predict(trained, ds, H), predict(loaded, ds, H)):
        np.testing.assert_array_equal(a, b)
    torch.load(path, weights_only=True)  # loadable without unpickling any code


def test_corrupt_checkpoint_is_a_clear_error(trained, tmp_path):
    path = save_checkpoint(trained, tmp_path / "f.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable forecaster checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(CheckpointError, match="not a readable forecaster checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_foreign_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "wattshare-forecasters", "payload": pd.Timestamp("2025-01-01")}, path)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a wattshare forecaster checkpoint"):
        load_checkpoint(path)


def test_checkpoint_of_the_wrong_shape(trained, tmp_path):
    path = save_checkpoint(trained, tmp_path / "f.pt")
    doc = torch.load(path, weights_only=True)
    doc["config"]["hidden_size"] = 16  # the weights are for 8
    torch.save(doc, path)
    with pytest.raises(CheckpointError, match=r"lstm.weight_ih_l0 has shape \(32, 12\), expected \(64, 12\)"):
        load_checkpoint(path)
    doc = torch.load(save_checkpoint(trained, tmp_path / "g.pt"), weights_only=True)
    doc["models"] = doc["models"][:1]
    torch.save(doc, path)
    with pytest.raises(CheckpointError, match="needs 2 models, it holds 1"):
        load_checkpoint(path)


# --- the provider in the env ---------------------------------------------------------------------


def test_provider_feeds_observations_and_price_signal(ds, trained):
    from energy_env import market
    from energy_env.community import build_community
    from energy_env.config import make_config

    provider = LSTMForecast(trained=trained)
    cfg = make_config(num_households=2)
    community = build_community(cfg, ds, provider)
    data = community.data
    load_fc, pv_fc = provider.forecast(ds, H)
    assert data.forecast_name == "lstm" and data.load_fc_kwh is load_fc  # computed once, then looked up
    assert not load_fc.flags.writeable
    # The coordinator's expected price for t is the market cleared on the nodes' LSTM forecasts from t-1.
    fc_net = np.concatenate([ds.load_kwh[:1] - ds.pv_kwh[:1], load_fc[:-1, :, 0] - pv_fc[:-1, :, 0]])
    expected = market.clear(fc_net.astype(np.float64), data.import_usd_per_kwh, data.export_usd_per_kwh,
                            cfg.market.mechanism, cfg.market.transmission_loss)
    np.testing.assert_allclose(data.expected_price_usd_per_kwh, expected.price_usd_per_kwh)


def test_provider_errors_name_the_fix(ds, trained, tmp_path):
    with pytest.raises(CheckpointError, match="train-forecasters"):
        LSTMForecast(tmp_path / "none.pt").forecast(ds, H)
    other = daily_dataset(homes=3, name="other")
    other = other.select([2])  # home_2 is not in the checkpoint
    with pytest.raises(CheckpointError, match="home_2"):
        LSTMForecast(trained=trained).forecast(other, H)
    with pytest.raises(ValueError, match="predict 6 intervals ahead; 7"):
        predict(trained, ds, 7)
    # A subset of the trained homes works, matched by id.
    sub = ds.select([1])
    np.testing.assert_array_equal(predict(trained, sub, H)[0][:, 0], predict(trained, ds, H)[0][:, 1])

"""Features, scaling, splits and windows for the forecasters.

Convention (the env's): a forecast made at interval ``t`` (the *origin*) knows everything up to and
including ``t`` and predicts ``t+1 .. t+H``. A model's input for origin ``t`` is the window of
intervals ``t-W+1 .. t``; nothing after ``t`` enters it (tests perturb the data after ``t`` to check).

Arrays are ``(T, N, F)``: interval, household, feature. Windows are gathered per batch by index, so
no ``(origins, W, F)`` copy of the data set is ever held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset

# Per-interval inputs, in order. Load and PV are scaled per home (see Scaling); calendar features
# are exact; weather is the measured value at the interval (past only: no weather forecast is used).
FEATURES = (
    "load",
    "pv",
    "time_of_day_sin",
    "time_of_day_cos",
    "second_half_hour",  # CityLearn is hourly split in halves: this tells the model which half it is in
    "day_of_week_sin",
    "day_of_week_cos",
    "is_weekend",
    "day_of_year_sin",
    "day_of_year_cos",
    "temperature",
    "irradiance",
)
NUM_FEATURES = len(FEATURES)
TEMPERATURE_CENTER_C, TEMPERATURE_SCALE_C = 18.0, 10.0  # fixed, so a checkpoint needs no weather stats
IRRADIANCE_SCALE_W_PER_M2 = 1000.0
SCALE_FLOOR_KWH = 1e-3  # a home with no PV (or no load) keeps a finite scale


@dataclass(frozen=True)
class Scaling:
    """Per-home divisors that bring load and PV to about 1, fitted on train days only.

    ``load_kwh``: mean train-day load of each home; ``pv_kwh``: the 99th percentile of its
    train-day PV (max would let one spike set the scale). Both ``(N,)``.
    """

    load_kwh: np.ndarray
    pv_kwh: np.ndarray


def fit_scaling(dataset: Dataset, train_days: np.ndarray) -> Scaling:
    """Scaling from the given days only (pass the train days: the test days stay unseen)."""
    rows = day_rows(train_days)
    load = dataset.load_kwh[rows]
    pv = dataset.pv_kwh[rows]
    return Scaling(
        load_kwh=np.maximum(load.mean(axis=0), SCALE_FLOOR_KWH).astype(np.float32),
        pv_kwh=np.maximum(np.percentile(pv, 99, axis=0), SCALE_FLOOR_KWH).astype(np.float32),
    )


def day_rows(days: np.ndarray) -> np.ndarray:
    """Interval indices of the given day indices."""
    days = np.asarray(days, dtype=np.int64)
    return (days[:, None] * INTERVALS_PER_DAY + np.arange(INTERVALS_PER_DAY)).reshape(-1)


def calendar_features(dataset: Dataset) -> np.ndarray:
    """``(T, 8)`` float32 time features (columns 2..9 of :data:`FEATURES`)."""
    ts = dataset.timestamps
    minutes = (ts.hour * 60 + ts.minute).to_numpy()
    tod = minutes / (24 * 60)
    dow = ts.day_of_week.to_numpy() / 7.0
    doy = (ts.day_of_year.to_numpy() - 1) / 365.25
    two_pi = 2 * np.pi
    cols = [
        np.sin(two_pi * tod),
        np.cos(two_pi * tod),
        (ts.minute.to_numpy() >= 30).astype(np.float64),
        np.sin(two_pi * dow),
        np.cos(two_pi * dow),
        (ts.day_of_week.to_numpy() >= 5).astype(np.float64),
        np.sin(two_pi * doy),
        np.cos(two_pi * doy),
    ]
    return np.stack(cols, axis=1).astype(np.float32)


def build_features(dataset: Dataset, scaling: Scaling, weather: bool = True) -> np.ndarray:
    """``(T, N, F)`` float32 model inputs of every interval (see :data:`FEATURES`).

    Weather columns are 0 where the data set has no weather or ``weather`` is False (the feature
    vector keeps its width either way, so checkpoints and ONNX files have one input shape).
    """
    t_len, n = dataset.load_kwh.shape
    out = np.empty((t_len, n, NUM_FEATURES), dtype=np.float32)
    out[:, :, 0] = dataset.load_kwh / scaling.load_kwh
    out[:, :, 1] = dataset.pv_kwh / scaling.pv_kwh
    out[:, :, 2:10] = calendar_features(dataset)[:, None, :]
    temp = dataset.temperature_c if weather else None
    irr = dataset.irradiance_w_per_m2 if weather else None
    out[:, :, 10] = 0.0 if temp is None else ((temp - TEMPERATURE_CENTER_C) / TEMPERATURE_SCALE_C)[:, None]
    out[:, :, 11] = 0.0 if irr is None else (irr / IRRADIANCE_SCALE_W_PER_M2)[:, None]
    return out


def build_targets(dataset: Dataset, scaling: Scaling) -> np.ndarray:
    """``(T, N, 2)`` float32 scaled load and PV (the values the model learns to forecast)."""
    return np.stack([dataset.load_kwh / scaling.load_kwh, dataset.pv_kwh / scaling.pv_kwh], axis=2).astype(np.float32)


# --- splits ------------------------------------------------------------------------------------

FIT, VALIDATION, TEST = 0, 1, 2


def day_labels(dataset: Dataset, validation_days_per_month: int) -> np.ndarray:
    """``(num_days,)`` FIT, VALIDATION or TEST for every day.

    Test days are the env's (the last 7 of each month). Validation days, for early stopping, are the
    last ``validation_days_per_month`` train days of each month: spread over the year, so the
    validation loss sees every season, and never test days.
    """
    labels = np.where(dataset.test_day_mask(), TEST, FIT).astype(np.int8)
    if validation_days_per_month <= 0:
        return labels
    months = dataset.dates.to_period("M").to_numpy()
    for month in np.unique(months):
        train_days = np.flatnonzero((months == month) & (labels == FIT))
        if len(train_days) > validation_days_per_month:  # a month cut short keeps its few days for fitting
            labels[train_days[-validation_days_per_month:]] = VALIDATION
    return labels


def origins_for(labels: np.ndarray, label: int, window: int, horizon: int, strict_inputs: bool) -> np.ndarray:
    """Origins ``t`` whose targets ``t+1 .. t+horizon`` all fall on days labelled ``label``.

    With ``strict_inputs`` the input window ``t-window+1 .. t`` must also avoid test days and lie
    inside the data (for fitting and validation: no test interval ever enters training). Without
    it (evaluation on test days) the window may reach back into train days and is edge-padded at
    the very start, exactly as the provider does at run time.
    """
    interval_label = np.repeat(labels, INTERVALS_PER_DAY)
    t_len = len(interval_label)
    t = np.arange(t_len)
    ok = t + horizon < t_len
    is_label = (interval_label == label).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(is_label)])
    hi = np.minimum(t + horizon + 1, t_len)
    ok &= csum[hi] - csum[np.minimum(t + 1, t_len)] == horizon  # all targets carry the label
    if strict_inputs:
        not_test = (interval_label != TEST).astype(np.int64)
        csum_nt = np.concatenate([[0], np.cumsum(not_test)])
        lo = t - window + 1
        ok &= lo >= 0
        ok &= csum_nt[t + 1] - csum_nt[np.maximum(lo, 0)] == window
    return np.flatnonzero(ok)


def scored_origins(dataset: Dataset, horizon: int) -> np.ndarray:
    """Origins whose ``horizon`` targets all lie on test days: where every model is scored."""
    labels = np.where(dataset.test_day_mask(), TEST, FIT).astype(np.int8)
    return origins_for(labels, TEST, 1, horizon, strict_inputs=False)


# --- windows -----------------------------------------------------------------------------------


def pad_history(features: np.ndarray, window: int) -> np.ndarray:
    """Prepend ``window - 1`` copies of the first interval so every origin has a full window.

    Origin ``t`` of the data then reads rows ``t .. t+window-1`` of the padded array.
    """
    return np.concatenate([np.repeat(features[:1], window - 1, axis=0), features], axis=0)


def gather_windows(padded: np.ndarray, origins: np.ndarray, window: int) -> np.ndarray:
    """``(B, window, N, F)``: the input windows of ``origins`` from :func:`pad_history` output."""
    return padded[origins[:, None] + np.arange(window)]


def gather_targets(targets: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """``(B, horizon, N, 2)``: the values of ``t+1 .. t+horizon`` for each origin ``t``."""
    return targets[origins[:, None] + np.arange(1, horizon + 1)]

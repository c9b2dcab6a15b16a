"""Forecast accuracy: MAPE, WAPE, MAE and RMSE, and skill against seasonal persistence.

Definitions (all over the scored origins, households and horizon steps of a slice):

* ``load_mape_pct`` = 100 * mean(|f - y| / y) over the intervals whose actual load ``y`` is at least
  :data:`MAPE_FLOOR_KWH` (0.05 kWh per 30 minutes, a 0.1 kW average draw). Some CityLearn homes
  read ~0 at night (up to 20% of intervals for Building 7), where a percentage error is
  meaningless and would swamp the mean; ``load_mape_excluded_pct`` reports the share left out.
  This is the seed's metric; read it beside WAPE.
* ``load_wape_pct`` = 100 * sum|f - y| / sum y over every interval (no floor): the error per kWh consumed.
* ``*_mae_kwh``, ``*_rmse_kwh``: mean absolute and root mean square error, kWh per interval.
* ``*_skill`` = 1 - RMSE / RMSE of seasonal persistence on the same slice (0 = no better than
  yesterday, 1 = perfect, negative = worse).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAPE_FLOOR_KWH = 0.05
METRIC_COLUMNS = (
    "load_mape_pct",
    "load_wape_pct",
    "load_mae_kwh",
    "load_rmse_kwh",
    "load_skill",
    "pv_mae_kwh",
    "pv_rmse_kwh",
    "pv_skill",
    "load_mape_excluded_pct",
)


def future_actuals(x: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """``(B, N, horizon)``: the actual values of ``t+1 .. t+horizon`` for each origin ``t``."""
    return np.moveaxis(x[origins[:, None] + np.arange(1, horizon + 1)], 1, 2)


def _reduce(abs_err: np.ndarray, sq_err: np.ndarray, actual: np.ndarray, axes: tuple[int, ...]) -> dict[str, np.ndarray]:
    valid = actual >= MAPE_FLOOR_KWH
    ape = np.where(valid, abs_err / np.maximum(actual, MAPE_FLOOR_KWH), 0.0)
    n_valid = valid.sum(axis=axes)
    count = np.prod([actual.shape[a] for a in axes])
    return {
        "mape_pct": 100.0 * ape.sum(axis=axes) / np.maximum(n_valid, 1),
        "wape_pct": 100.0 * abs_err.sum(axis=axes) / np.maximum(actual.sum(axis=axes), 1e-12),
        "mae_kwh": abs_err.mean(axis=axes),
        "rmse_kwh": np.sqrt(sq_err.mean(axis=axes)),
        "excluded_pct": 100.0 * (1.0 - n_valid / count),
    }


def _slices(fc: np.ndarray, actual: np.ndarray) -> dict[tuple[str, str], dict[str, float]]:
    """Metrics of every (household, step) slice, with ``"all"`` for pooled households/steps.

    ``fc`` and ``actual`` are ``(B, N, H)`` float64.
    """
    abs_err = np.abs(fc - actual)
    sq_err = (fc - actual) ** 2
    out: dict[tuple[str, str], dict[str, float]] = {}
    groupings = {
        ("home", "step"): (0,),
        ("home", "all"): (0, 2),
        ("all", "step"): (0, 1),
        ("all", "all"): (0, 1, 2),
    }
    for (home_key, step_key), axes in groupings.items():
        red = _reduce(abs_err, sq_err, actual, axes)
        shape = red["mae_kwh"].shape
        for idx in np.ndindex(*shape) if shape else [()]:
            home = str(idx[0]) if home_key == "home" else "all"
            step = str(idx[-1] + 1) if step_key == "step" else "all"
            out[(home, step)] = {k: float(v[idx]) for k, v in red.items()}
    return out


def metrics_table(
    forecasts: dict[str, tuple[np.ndarray, np.ndarray]],
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    origins: np.ndarray,
    household_ids: tuple[str, ...],
    reference: str = "seasonal_persistence",
) -> pd.DataFrame:
    """One row per (model, household, step): the metrics of :data:`METRIC_COLUMNS`.

    Args:
        forecasts: model name -> ``(load_fc_kwh, pv_fc_kwh)``, each ``(T, N, H)`` as providers return.
        load_kwh, pv_kwh: ``(T, N)`` actual values.
        origins: the origins scored (e.g. :func:`forecasting.data.scored_origins`).
        household_ids: names for the household column (``"all"`` pools every home).
        reference: the model whose RMSE the skill columns compare with (must be in ``forecasts``).

    Returns:
        A long table with columns ``model, household, step`` (``"all"`` or ``"1" .. "H"``) and the
        metric columns.
    """
    if reference not in forecasts:
        raise ValueError(f"reference model {reference!r} is not among the forecasts {sorted(forecasts)}")
    horizon = next(iter(forecasts.values()))[0].shape[2]
    actual = {
        "load": future_actuals(load_kwh, origins, horizon).astype(np.float64),
        "pv": future_actuals(pv_kwh, origins, horizon).astype(np.float64),
    }
    per_model: dict[str, dict[str, dict]] = {}
    for name, (load_fc, pv_fc) in forecasts.items():
        per_model[name] = {
            "load": _slices(np.asarray(load_fc[origins], dtype=np.float64), actual["load"]),
            "pv": _slices(np.asarray(pv_fc[origins], dtype=np.float64), actual["pv"]),
        }
    rows = []
    ref = per_model[reference]
    for name, res in per_model.items():
        for key, load_m in res["load"].items():
            pv_m = res["pv"][key]
            home = key[0] if key[0] == "all" else household_ids[int(key[0])]
            rows.append(
                {
                    "model": name,
                    "household": home,
                    "step": key[1],
                    "load_mape_pct": load_m["mape_pct"],
                    "load_wape_pct": load_m["wape_pct"],
                    "load_mae_kwh": load_m["mae_kwh"],
                    "load_rmse_kwh": load_m["rmse_kwh"],
                    "load_skill": _skill(load_m["rmse_kwh"], ref["load"][key]["rmse_kwh"]),
                    "pv_mae_kwh": pv_m["mae_kwh"],
                    "pv_rmse_kwh": pv_m["rmse_kwh"],
                    "pv_skill": _skill(pv_m["rmse_kwh"], ref["pv"][key]["rmse_kwh"]),
                    "load_mape_excluded_pct": load_m["excluded_pct"],
                }
            )
    return pd.DataFrame(rows, columns=["model", "household", "step", *METRIC_COLUMNS])


def _skill(rmse: float, rmse_ref: float) -> float:
    return float("nan") if rmse_ref == 0 else 1.0 - rmse / rmse_ref


def summary(table: pd.DataFrame, metric: str = "load_mape_pct") -> pd.DataFrame:
    """``metric`` of every model (rows) by horizon step (columns ``1 .. H`` and ``all``), all homes pooled."""
    pooled = table[table["household"] == "all"]
    wide = pooled.pivot(index="model", columns="step", values=metric)
    steps = sorted((c for c in wide.columns if c != "all"), key=int)
    return wide[[*steps, "all"]].loc[list(dict.fromkeys(pooled["model"]))]


def format_table(table: pd.DataFrame) -> str:
    """A plain-text report: pooled metrics per model, then load MAPE and skill by step."""
    pooled = table[(table["household"] == "all") & (table["step"] == "all")].set_index("model")
    lines = ["all homes, all steps:", pooled[list(METRIC_COLUMNS)].to_string(float_format=lambda v: f"{v:.3f}"), ""]
    for metric in ("load_mape_pct", "load_wape_pct", "load_skill", "pv_rmse_kwh", "pv_skill"):
        lines += [f"{metric} by horizon step:", summary(table, metric).to_string(float_format=lambda v: f"{v:.3f}"), ""]
    return "\n".join(lines)

"""Score forecasters on the test days, beside the three baselines, and check the issue's target.

Every model is scored on the same origins: those whose 6 targets all lie on test days (the env's
split). The LSTM's inputs for such an origin may reach back into train days: that is the past.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from energy_env.data.dataset import Dataset
from forecasting.baselines import baseline_providers
from forecasting.data import scored_origins
from forecasting.metrics import metrics_table, summary
from forecasting.model import TrainedForecasters
from forecasting.provider import predict

TARGET_MAPE_REDUCTION = 0.15  # the LSTM's load MAPE must be >= 15% below the best baseline's


def evaluate(
    dataset: Dataset, trained: dict[str, TrainedForecasters], horizon: int = 6
) -> pd.DataFrame:
    """Metrics table (see :func:`forecasting.metrics.metrics_table`) of the baselines and ``trained``.

    ``trained`` maps a model name (e.g. ``"lstm_per_home"``) to its forecasters.
    """
    forecasts = {name: p.forecast(dataset, horizon) for name, p in baseline_providers().items()}
    for name, t in trained.items():
        forecasts[name] = predict(t, dataset, horizon)
    return metrics_table(forecasts, dataset.load_kwh, dataset.pv_kwh, scored_origins(dataset, horizon), dataset.household_ids)


def target_check(table: pd.DataFrame, model: str) -> dict:
    """Does ``model`` cut load MAPE by at least 15% against the best baseline?

    Returns the pooled MAPE of ``model`` and of the best baseline (lowest pooled MAPE over all
    steps), the reduction, whether the target is met, and the same per step against the best
    baseline of each step.
    """
    mape = summary(table, "load_mape_pct")
    baselines = [b for b in baseline_providers() if b in mape.index]
    best = mape.loc[baselines, "all"].idxmin()
    ours = float(mape.loc[model, "all"])
    ref = float(mape.loc[best, "all"])
    steps = [c for c in mape.columns if c != "all"]
    per_step = {
        s: {
            "model_mape_pct": float(mape.loc[model, s]),
            "best_baseline": str(mape.loc[baselines, s].idxmin()),
            "best_baseline_mape_pct": float(mape.loc[baselines, s].min()),
            "reduction": float(1.0 - mape.loc[model, s] / mape.loc[baselines, s].min()),
        }
        for s in steps
    }
    reduction = 1.0 - ours / ref
    return {
        "model": model,
        "model_mape_pct": ours,
        "best_baseline": str(best),
        "best_baseline_mape_pct": ref,
        "reduction": reduction,
        "target_met": bool(reduction >= TARGET_MAPE_REDUCTION - 1e-12),
        "per_step": per_step,
        "steps_met": int(np.sum([v["reduction"] >= TARGET_MAPE_REDUCTION for v in per_step.values()])),
    }


def format_target(check: dict) -> str:
    """One paragraph: the pooled comparison and the per-step reductions."""
    verdict = "MET" if check["target_met"] else "NOT MET"
    steps = ", ".join(f"step {s}: {_lower(v['reduction'])} than {v['best_baseline']}" for s, v in check["per_step"].items())
    return (
        f"{check['model']}: load MAPE {check['model_mape_pct']:.2f}% vs best baseline {check['best_baseline']} "
        f"{check['best_baseline_mape_pct']:.2f}% -> {_lower(check['reduction'])} "
        f"(target >= {TARGET_MAPE_REDUCTION * 100:.0f}%: {verdict}); by step: {steps}"
    )


def _lower(reduction: float) -> str:
    return f"{reduction * 100:.1f}% lower" if reduction >= 0 else f"{-reduction * 100:.1f}% higher"

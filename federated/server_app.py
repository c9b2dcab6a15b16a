"""The Flower ``ServerApp`` of federated forecasting: what the SuperLink runs under ``flwr run``.

It reads the run config (``federated/flower_app/pyproject.toml``, overridable with
``flwr run --run-config``), waits for ``households`` SuperNodes, runs FedAvg (or its DP variant)
for ``rounds`` rounds with :func:`~federated.strategy.make_strategy`, and, when ``output-dir`` is
set, writes ``global_final.npz`` (last round), ``global_best.npz`` (lowest federated validation
loss) and ``summary.json`` (rounds, replies left out and weights capped with their reasons,
privacy budget) there.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from federated.forecasters import initial_arrays, settings_from_run_config
from federated.strategy import make_strategy

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federation described by ``context.run_config``."""
    cfg, fed = settings_from_run_config(context.run_config)
    households = int(context.run_config.get("households", 0))
    if households < 1:
        raise ValueError("run-config 'households' must be the number of SuperNodes to wait for (>= 1)")
    random.seed(fed.seed)
    np.random.seed(fed.seed)
    strategy = make_strategy(fed, households, select_metric="val-loss")
    result = strategy.start(grid=grid, initial_arrays=initial_arrays(cfg), num_rounds=fed.rounds,
                            train_config=ConfigRecord(), evaluate_config=ConfigRecord())
    out = str(context.run_config.get("output-dir", ""))
    if out:
        save_run(Path(out), result.arrays, strategy)


def save_arrays(path: Path, arrays: ArrayRecord) -> None:
    """An ArrayRecord as a ``.npz`` (one entry per parameter)."""
    np.savez(path, **{k: v.numpy() for k, v in arrays.items()})


def save_run(out: Path, final: ArrayRecord, strategy) -> None:
    """Final and best global weights plus a JSON summary of the run."""
    out.mkdir(parents=True, exist_ok=True)
    save_arrays(out / "global_final.npz", final)
    save_arrays(out / "global_best.npz", strategy.best_arrays if strategy.best_arrays is not None else final)
    spent = strategy.privacy_spent()
    summary = {
        "best_round": strategy.best_round,
        "best_val_loss": strategy.best_value,
        "left_out": strategy.left_out,
        "adjusted": strategy.adjusted,
        "epsilon": spent.epsilon if spent else None,
        "delta": spent.delta if spent else None,
        "clients_per_round": {r: len(m) for r, m in strategy.train_metrics.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

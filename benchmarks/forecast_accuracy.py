"""Forecast accuracy of the LSTMs against the three baselines, and their training time.

    .venv/bin/python benchmarks/forecast_accuracy.py                 # CityLearn 2022 (10 homes) + synthetic default
    .venv/bin/python benchmarks/forecast_accuracy.py --homes all     # every kept CityLearn home (14)
    .venv/bin/python benchmarks/forecast_accuracy.py --kinds per_home --skip-synthetic

For each data set: trains the per-home and the shared LSTM on the train days (timed: wall and CPU
seconds), scores them and the baselines on the test days, and prints the metrics table (MAPE, WAPE,
MAE, RMSE, skill against seasonal persistence, by horizon step), load MAPE per home, and whether
the LSTM's load MAPE is at least 15% below the best baseline's. The CityLearn part skips with a
message where ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_env.data import generate_synthetic, load_citylearn  # noqa: E402
from energy_env.data.dataset import Dataset  # noqa: E402
from forecasting.evaluate import evaluate, format_target, target_check  # noqa: E402
from forecasting.metrics import format_table  # noqa: E402
from forecasting.model import ForecasterConfig  # noqa: E402
from forecasting.train import train_forecasters  # noqa: E402

CITYLEARN = Path(__file__).resolve().parents[1].parent / "shared/data/citylearn_2022"
TARGET_TRAIN_SECONDS = 300.0  # 10 homes, one year, 2 CPU cores


def run(dataset: Dataset, kinds: list[str], cfg: ForecasterConfig, workers: int | None) -> dict:
    """Train every kind, score on test days, print the report; returns the figures."""
    print(f"\n=== {dataset.name}: {dataset.num_households} homes, {dataset.num_days} days "
          f"({len(dataset.split_days('train'))} train, {len(dataset.split_days('test'))} test) ===")
    trained, timing = {}, {}
    for kind in kinds:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        t = train_forecasters(dataset, cfg.replace(kind=kind), workers=workers, progress=True)
        wall = time.perf_counter() - wall0
        # CPU seconds of the models (in worker processes too) plus this process's own share.
        cpu = sum(h["cpu_seconds"] for h in t.history) + (time.process_time() - cpu0 if kind == "shared" else 0.0)
        timing[kind] = {"wall_seconds": wall, "model_cpu_seconds": cpu,
                        "epochs": [int(h["epochs"]) for h in t.history]}
        trained[f"lstm_{kind}"] = t
        print(f"{kind}: trained in {wall:.1f} s wall, {cpu:.1f} s CPU in the models; epochs run {timing[kind]['epochs']}")
    table = evaluate(dataset, trained)
    print(format_table(table))
    per_home = table[(table["step"] == "all") & (table["household"] != "all")]
    print("load_mape_pct per household:")
    print(per_home.pivot(index="household", columns="model", values="load_mape_pct")
          .loc[list(dataset.household_ids)].to_string(float_format=lambda v: f"{v:.2f}"))
    checks = {name: target_check(table, name) for name in trained}
    for check in checks.values():
        print(format_target(check))
    return {"dataset": dataset.name, "timing": timing, "targets": checks,
            "pooled": table[(table["household"] == "all")].to_dict(orient="records")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None,
                        help="a run YAML: score its homes (its forecasting section as the settings) instead of CityLearn and synthetic")
    parser.add_argument("--homes", default="10", help="CityLearn homes: a number (the first N kept) or 'all'")
    parser.add_argument("--kinds", default="per_home,shared", help="comma-separated: per_home, shared")
    parser.add_argument("--workers", type=int, default=None, help="processes for per-home models (default 2)")
    parser.add_argument("--epochs", type=int, default=ForecasterConfig().max_epochs)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-citylearn", action="store_true")
    parser.add_argument("--output", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    cfg = ForecasterConfig().replace(max_epochs=args.epochs)
    print(f"CPU cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (other processes slow the wall time)")
    results = []
    if args.config:
        from energy_env.data import load_dataset
        from train.run_config import load_run_config

        run_cfg = load_run_config(args.config)
        env = run_cfg.env
        ds = load_dataset(env.data, env.households_to_load, env.seed, env.database)
        results.append(run(ds, kinds, run_cfg.forecasting.replace(max_epochs=args.epochs), args.workers))
        args.skip_citylearn = args.skip_synthetic = True
    if not args.skip_citylearn:
        if CITYLEARN.exists():
            ds = load_citylearn(str(CITYLEARN))
            if args.homes != "all":
                ds = ds.select(list(range(min(int(args.homes), ds.num_households))))
            results.append(run(ds, kinds, cfg, args.workers))
        else:
            print(f"CityLearn 2022 skipped: {CITYLEARN} not found (../shared/data sits beside the checkout)")
    if not args.skip_synthetic:
        results.append(run(generate_synthetic(10, 2025, 0), kinds, cfg, args.workers))
    for r in results:
        if "per_home" in r["timing"]:
            wall = r["timing"]["per_home"]["wall_seconds"]
            print(f"{r['dataset']}: per-home training {wall:.0f} s wall (target < {TARGET_TRAIN_SECONDS:.0f} s for 10 homes)")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

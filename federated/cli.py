"""``wattshare federated-forecasters``: FedAvg of the households' LSTMs, compared and saved.

Read top to bottom:

1. Load the data set (the same flags as ``train-forecasters``).
2. Train and score on the test days: local-only, FedAvg (global), FedAvg + local fine-tuning,
   and a central model on pooled data (:func:`federated.forecast_runs.compare_forecasters`);
   or with ``--deploy``, run FedAvg through ``flwr run`` on a SuperLink and one SuperNode per
   home on this machine (the deployment path) and score its global model.
3. Optionally run the online mode over the first ``--online-weeks`` test weeks.
4. Print the tables (pooled and per-home load MAPE, time, federated overhead, DP epsilon) and save
   the federated forecasters as checkpoints next to ``train-forecasters``' ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from energy_env.config import ConfigError
from energy_env.data import DataError


def main(argv: list[str] | None = None) -> int:
    """``wattshare federated-forecasters``."""
    from federated.forecasters import RUN_CONFIG_DEFAULTS
    from federated.strategy import AGGREGATIONS
    from forecasting.train import _data_arguments

    parser = argparse.ArgumentParser(prog="wattshare federated-forecasters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_arguments(parser)
    parser.add_argument("--rounds", type=int, default=30, help="FedAvg rounds R")
    parser.add_argument("--local-epochs", type=int, default=1, help="epochs per home per round E")
    parser.add_argument("--finetune-epochs", type=int, default=10, help="personalisation: max epochs of local fine-tuning")
    parser.add_argument("--dp-noise", type=float, default=0.0, help="DP noise multiplier (0: no DP)")
    parser.add_argument("--dp-clip", type=float, default=1.0, help="DP clipping norm of one home's update")
    parser.add_argument("--seed", type=int, default=int(RUN_CONFIG_DEFAULTS["seed"]))
    parser.add_argument("--aggregation", choices=list(AGGREGATIONS), default=RUN_CONFIG_DEFAULTS["aggregation"],
                        help="how the server combines the homes' weights (fedavg; robust: fedmedian, fedtrimmedavg, krum, "
                             "multikrum, bulyan; docs/federated.md)")
    parser.add_argument("--trim-fraction", type=float, default=RUN_CONFIG_DEFAULTS["trim-fraction"],
                        help="fedtrimmedavg: share of homes cut from each tail, per weight")
    parser.add_argument("--assumed-malicious", type=int, default=RUN_CONFIG_DEFAULTS["assumed-malicious"],
                        help="krum, multikrum, bulyan: attackers to tolerate (f)")
    parser.add_argument("--norm-screen-factor", type=float, default=RUN_CONFIG_DEFAULTS["norm-screen-factor"],
                        help="leave out an update whose L2 norm is above this x the round's median (0: off)")
    parser.add_argument("--max-weight-factor", type=float, default=RUN_CONFIG_DEFAULTS["max-weight-factor"],
                        help="count a home claiming more than this x the round's median sample count as the median (0: off)")
    parser.add_argument("--online-weeks", type=int, default=0, help="also run the online mode over the first K test weeks")
    parser.add_argument("--deploy", action="store_true", help="run FedAvg through flwr run on a local SuperLink + SuperNodes")
    parser.add_argument("--no-references", action="store_true", help="skip the local-only and central models")
    parser.add_argument("--workers", type=int, default=2, help="homes training at once (processes)")
    args = parser.parse_args(argv)
    try:
        torch.set_num_threads(args.threads)
        return _run(args)
    except (ConfigError, DataError, ValueError, RuntimeError) as err:
        print(f"wattshare federated-forecasters: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from federated.forecast_runs import compare_forecasters, pooled_mape
    from federated.forecasters import settings_from_run_config
    from federated.strategy import make_strategy
    from forecasting.checkpoint import default_checkpoint_path, save_checkpoint
    from forecasting.metrics import format_table
    from forecasting.train import _load_dataset

    run_config = {"rounds": args.rounds, "local-epochs": args.local_epochs, "seed": args.seed,
                  "dp-noise-multiplier": args.dp_noise, "dp-clipping-norm": args.dp_clip, "aggregation": args.aggregation,
                  "trim-fraction": args.trim_fraction, "assumed-malicious": args.assumed_malicious,
                  "norm-screen-factor": args.norm_screen_factor, "max-weight-factor": args.max_weight_factor}
    _, fed = settings_from_run_config(run_config)  # bad flag values fail here, before any data is read
    dataset = _load_dataset(args)
    make_strategy(fed, dataset.num_households)  # and an aggregator that cannot work with these homes, before training
    print(f"{dataset.name}: {dataset.num_households} homes; FedAvg R={args.rounds} rounds x E={args.local_epochs} local epochs"
          + (f", DP noise {args.dp_noise} clip {args.dp_clip}" if args.dp_noise else "")
          + (f", aggregation {args.aggregation}" if args.aggregation != "fedavg" else ""))
    if args.deploy:
        return _deployed(args, dataset, run_config)
    table, per_home, run, seconds, trained = compare_forecasters(dataset, run_config, args.finetune_epochs, workers=args.workers,
                                                        references=not args.no_references)
    print(format_table(table))
    print("load MAPE % per household:")
    print(per_home.to_string(float_format=lambda v: f"{v:.2f}"))
    mape = pooled_mape(table)
    models = [m for m in ("local", "fedavg", "fedavg_personal", "central") if m in mape.index]
    print("\npooled load MAPE %: " + ", ".join(f"{m} {mape[m]:.2f}" for m in models))
    for m in ("fedavg", "fedavg_personal") if not args.no_references else ():
        print(f"{m}: {100 * (mape[m] / mape['central'] - 1):+.1f}% vs central, {100 * (mape[m] / mape['local'] - 1):+.1f}% vs local-only; "
              f"better than local-only for {int((per_home[m] < per_home['local']).sum())} of {len(per_home)} homes")
    print("training seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    print(f"federated run ({run.workers} worker processes): {run.wall_seconds:.1f} s; clients' own work {run.client_seconds:.1f} s "
          f"(summed over homes); overhead {100 * run.overhead_fraction:.2f}% (best round {run.best_round}, "
          f"{len(run.left_out)} replies left out)")
    norms = [r["update_norm_median"] for r in run.rounds]
    print(f"median L2 norm of a home's update: round 1 {norms[0]:.3f}, last round {norms[-1]:.3f}")
    if run.epsilon is not None:
        print(f"differential privacy: epsilon {run.epsilon:.2f} at delta {run.delta:g} after {len(run.rounds)} rounds")
    folder = default_checkpoint_path(dataset, root=args.output_dir).parent
    suffix = f"_dp{args.dp_noise:g}" if args.dp_noise else ""
    for name in ("fedavg", "fedavg_personal"):
        print(f"saved {save_checkpoint(trained[name], folder / f'lstm_{name}{suffix}.pt')}")
    if args.online_weeks:
        _online(dataset, run, args.online_weeks)
    return 0


def _online(dataset, run, weeks: int) -> None:
    from energy_env.episodes import WEEK, test_week_starts
    from federated.online import run_online

    starts = test_week_starts(dataset)[:weeks]
    t0 = time.perf_counter()
    online, frozen, rounds = [], [], 0
    for s in starts:
        res = run_online(dataset, run.global_state, run.config, int(s), WEEK)
        online.append(res.online_mape_pct)
        frozen.append(res.frozen_mape_pct)
        rounds += res.rounds
    print(f"online mode (FedAvg every 3 h, {rounds} rounds over {len(starts)} test weeks, {time.perf_counter() - t0:.0f} s): "
          f"load MAPE {np.mean(online):.2f}% vs {np.mean(frozen):.2f}% for the frozen global model")


def _deployed(args: argparse.Namespace, dataset, run_config: dict) -> int:
    from federated.forecast_runs import _replicated
    from federated.forecasters import settings_from_run_config
    from federated.local_deployment import LocalDeployment
    from forecasting.evaluate import evaluate
    from forecasting.metrics import format_table

    node_config: dict[str, object] = {"households": dataset.num_households}
    if args.config:
        node_config["config"] = str(Path(args.config).resolve())
    if args.data_path:
        raise ValueError("--deploy reads the data through --config (a YAML naming the source), not --data-path")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with LocalDeployment(dataset.num_households, Path(tmp), node_config) as deployment:
            deployment.run(run_config, Path(tmp) / "out", timeout_s=3600)
        seconds = time.perf_counter() - t0
        best = np.load(Path(tmp) / "out" / "global_best.npz")
        state = {k: torch.from_numpy(best[k]) for k in best.files}
    cfg, _ = settings_from_run_config(run_config)
    table = evaluate(dataset, {"fedavg_flwr": _replicated(cfg, dataset, [state] * dataset.num_households)})
    print(format_table(table))
    print(f"flwr run on a local SuperLink + {dataset.num_households} SuperNodes: {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

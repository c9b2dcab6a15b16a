"""``wattshare federated-forecasters``: FedAvg of the households' LSTMs, compared and saved.

Read top to bottom:

1. Load the homes the config selects (the same as every other command's).
2. Train and score on the test days: local-only, FedAvg (global), FedAvg + local fine-tuning,
   and a central model on pooled data (:func:`federated.forecast_runs.compare_forecasters`);
   or with ``--deploy``, run FedAvg through ``flwr run`` on a SuperLink and one SuperNode per
   home on this machine (the deployment path) and score its global model.
3. Optionally run the online mode over the first ``--online-weeks`` test weeks.
4. Print the tables (pooled and per-home load MAPE, time, federated overhead, DP epsilon) and save
   the federated forecasters as checkpoints next to ``train-forecasters``' ones.

Settings: the run configuration's ``forecasting`` and ``federated`` sections; flags override keys.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from federated.settings import AGGREGATIONS
from train.flags import add_config_flags, add_output_flag, run_config_from_args
from train.forecasters_cli import load_homes
from train.run_config import RunConfig


def build_parser() -> argparse.ArgumentParser:
    """The shared flags, then the federated and forecasting keys this command sets."""
    from forecasting.checkpoint import DEFAULT_CHECKPOINT_DIR

    parser = argparse.ArgumentParser(prog="wattshare federated-forecasters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--all-homes", action="store_true", help="num_households: null (every home the source holds)")
    add_output_flag(parser, str(DEFAULT_CHECKPOINT_DIR), "checkpoints go to OUTPUT/<data set>/")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    f = parser.add_argument_group("federation (override the config's federated section)")
    f.add_argument("--rounds", type=int, default=None, help="federated.rounds: FedAvg rounds R")
    f.add_argument("--local-epochs", type=int, default=None, help="federated.local_epochs: epochs per home per round E")
    f.add_argument("--finetune-epochs", type=int, default=None, help="federated.finetune_epochs: personalisation, max epochs of local fine-tuning")
    f.add_argument("--dp-noise", type=float, default=None, help="federated.dp_noise_multiplier (0: no DP)")
    f.add_argument("--dp-clip", type=float, default=None, help="federated.dp_clipping_norm of one home's update")
    f.add_argument("--seed", type=int, default=None, help="federated.seed and forecasting.seed")
    f.add_argument("--aggregation", choices=list(AGGREGATIONS), default=None,
                   help="federated.aggregation: fedavg; robust: fedmedian, fedtrimmedavg, krum, multikrum, bulyan (docs/federated.md)")
    f.add_argument("--trim-fraction", type=float, default=None, help="federated.trim_fraction: fedtrimmedavg's share cut from each tail")
    f.add_argument("--assumed-malicious", type=int, default=None, help="federated.assumed_malicious: krum, multikrum, bulyan's f")
    f.add_argument("--norm-screen-factor", type=float, default=None,
                   help="federated.norm_screen_factor: leave out an update above this x the round's median norm (0: off)")
    f.add_argument("--max-weight-factor", type=float, default=None,
                   help="federated.max_weight_factor: count a claim above this x the median as the median (0: off)")
    parser.add_argument("--online-weeks", type=int, default=0, help="also run the online mode over the first K test weeks")
    parser.add_argument("--deploy", action="store_true", help="run FedAvg through flwr run on a local SuperLink + SuperNodes")
    parser.add_argument("--no-references", action="store_true", help="skip the local-only and central models")
    parser.add_argument("--workers", type=int, default=2, help="homes training at once (processes)")
    return parser


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration these flags describe."""
    off = lambda v: None if v == 0 else v  # noqa: E731 - 0 switches a screen off
    federated = {"rounds": args.rounds, "local_epochs": args.local_epochs, "finetune_epochs": args.finetune_epochs,
                 "dp_noise_multiplier": args.dp_noise, "dp_clipping_norm": args.dp_clip, "seed": args.seed,
                 "aggregation": args.aggregation, "trim_fraction": args.trim_fraction, "assumed_malicious": args.assumed_malicious}
    run = run_config_from_args(args, federated=federated, forecasting={"seed": args.seed})
    screens = {name: off(value) for name, value in (("norm_screen_factor", args.norm_screen_factor), ("max_weight_factor", args.max_weight_factor))
               if value is not None}
    return run.replace(federated=run.federated.replace(**screens)) if screens else run


def main(argv: list[str] | None = None) -> int:
    """``wattshare federated-forecasters``."""
    from federated.forecast_runs import compare_forecasters, pooled_mape
    from federated.forecasters import run_config_from_sections
    from federated.strategy import make_strategy
    from forecasting.checkpoint import default_checkpoint_path, save_checkpoint
    from forecasting.metrics import format_table

    args = build_parser().parse_args(argv)
    run = run_config(args)  # bad settings fail here, before any data is read
    torch.set_num_threads(args.threads)
    fed = run.federated
    flower_config = run_config_from_sections(run.forecasting, fed)
    dataset = load_homes(args, run)
    make_strategy(fed, dataset.num_households)  # and an aggregator that cannot work with these homes, before training
    print(f"{dataset.name}: {dataset.num_households} homes; FedAvg R={fed.rounds} rounds x E={fed.local_epochs} local epochs"
          + (f", DP noise {fed.dp_noise_multiplier} clip {fed.dp_clipping_norm}" if fed.private else "")
          + (f", aggregation {fed.aggregation}" if fed.aggregation != "fedavg" else ""))
    if args.deploy:
        return _deployed(args, dataset, flower_config)
    table, per_home, fedrun, seconds, trained = compare_forecasters(dataset, flower_config, fed.finetune_epochs, workers=args.workers,
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
    print(f"federated run ({fedrun.workers} worker processes): {fedrun.wall_seconds:.1f} s; clients' own work {fedrun.client_seconds:.1f} s "
          f"(summed over homes); overhead {100 * fedrun.overhead_fraction:.2f}% (best round {fedrun.best_round}, "
          f"{len(fedrun.left_out)} replies left out)")
    norms = [r["update_norm_median"] for r in fedrun.rounds]
    print(f"median L2 norm of a home's update: round 1 {norms[0]:.3f}, last round {norms[-1]:.3f}")
    if fedrun.epsilon is not None:
        print(f"differential privacy: epsilon {fedrun.epsilon:.2f} at delta {fedrun.delta:g} after {len(fedrun.rounds)} rounds")
    folder = default_checkpoint_path(dataset, root=args.output).parent
    suffix = f"_dp{fed.dp_noise_multiplier:g}" if fed.private else ""
    for name in ("fedavg", "fedavg_personal"):
        print(f"saved {save_checkpoint(trained[name], folder / f'lstm_{name}{suffix}.pt')}")
    if args.online_weeks:
        _online(dataset, fedrun, args.online_weeks)
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
    from federated.forecast_runs import replicated_forecasters
    from federated.forecasters import settings_from_run_config
    from federated.local_deployment import LocalDeployment
    from forecasting.evaluate import evaluate
    from forecasting.metrics import format_table

    node_config: dict[str, object] = {"households": dataset.num_households}
    if args.config:
        node_config["config"] = str(Path(args.config).resolve())
    if args.data_path or args.source or args.citylearn:
        raise ValueError("--deploy reads the data through --config (a YAML naming the source), not the data flags")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with LocalDeployment(dataset.num_households, Path(tmp), node_config) as deployment:
            deployment.run(run_config, Path(tmp) / "out", timeout_s=3600)
        seconds = time.perf_counter() - t0
        best = np.load(Path(tmp) / "out" / "global_best.npz")
        state = {k: torch.from_numpy(best[k]) for k in best.files}
    cfg, _ = settings_from_run_config(run_config)
    table = evaluate(dataset, {"fedavg_flwr": replicated_forecasters(cfg, dataset, [state] * dataset.num_households)})
    print(format_table(table))
    print(f"flwr run on a local SuperLink + {dataset.num_households} SuperNodes: {seconds:.0f} s")
    return 0


"""``wattshare train-forecasters`` and ``wattshare evaluate-forecasters``.

``train-forecasters``: load the homes the config selects, train their LSTMs (the run
configuration's ``forecasting`` section; flags override keys), save the checkpoint under
``--output/<data set>/``, score the test days beside the baselines and write the metrics table.
``evaluate-forecasters``: score saved checkpoints on the same homes.

    wattshare train-forecasters                                   # the default 10 synthetic homes
    wattshare train-forecasters --config config/citylearn_2022.yaml --kind both
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from energy_env.data import Dataset, load_dataset
from forecasting.checkpoint import DEFAULT_CHECKPOINT_DIR, CheckpointError, default_checkpoint_path, load_checkpoint, save_checkpoint
from forecasting.train import forecast_report, train_forecasters
from train.flags import add_config_flags, add_output_flag, announce_data, run_config_from_args
from train.run_config import RunConfig


def _parser(prog: str, doc: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--all-homes", action="store_true", help="num_households: null (every home the source holds)")
    add_output_flag(parser, str(DEFAULT_CHECKPOINT_DIR), "checkpoints go to OUTPUT/<data set>/")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    return parser


def load_homes(args: argparse.Namespace, run: RunConfig) -> Dataset:
    """The homes the config and flags select (the same as every other command's)."""
    env = run.env
    num = None if args.all_homes else env.households_to_load
    dataset = load_dataset(env.data, num, env.seed, env.database)
    announce_data(dataset)
    return dataset


def main(argv: list[str] | None = None) -> int:
    """Train, save checkpoints, write and print the metrics table."""
    parser = _parser("wattshare train-forecasters", __doc__)
    f = parser.add_argument_group("forecasters (override the config's forecasting section)")
    f.add_argument("--kind", choices=["per_home", "shared", "both"], default=None, help="forecasting.kind (both: one run of each)")
    f.add_argument("--epochs", type=int, default=None, help="forecasting.max_epochs (early stopping may end sooner)")
    f.add_argument("--hidden-size", type=int, default=None, help="forecasting.hidden_size")
    f.add_argument("--window", type=int, default=None, help="forecasting.window: input intervals (48 = 24 h)")
    f.add_argument("--seed", type=int, default=None, help="forecasting.seed")
    f.add_argument("--weather", action=argparse.BooleanOptionalAction, default=None,
                   help="forecasting.weather: feed the measured temperature and irradiance (docs/forecasting.md)")
    f.add_argument("--workers", type=int, default=None, help="processes for per-home models (default 2)")
    f.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    both = args.kind == "both"
    forecasting = {"kind": None if both else args.kind, "max_epochs": args.epochs, "hidden_size": args.hidden_size,
                   "window": args.window, "seed": args.seed, "weather": args.weather}
    run = run_config_from_args(args, forecasting=forecasting)
    torch.set_num_threads(args.threads)
    dataset = load_homes(args, run)
    out_dir = default_checkpoint_path(dataset, root=args.output).parent
    kinds = ["per_home", "shared"] if both else [run.forecasting.kind]
    trained = {}
    for kind in kinds:
        cfg = run.forecasting.replace(kind=kind)
        t0 = time.perf_counter()
        trained[f"lstm_{kind}"] = train_forecasters(dataset, cfg, workers=args.workers, progress=not args.no_progress)
        path = save_checkpoint(trained[f"lstm_{kind}"], default_checkpoint_path(dataset, kind, args.output))
        print(f"trained {kind} forecasters of {dataset.num_households} homes in {time.perf_counter() - t0:.1f} s -> {path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run_config.yaml").write_text(run.to_yaml())
    print(forecast_report(dataset, trained, out_dir))
    print(f"metrics table: {out_dir / 'metrics.csv'}")
    return 0


def evaluate_main(argv: list[str] | None = None) -> int:
    """Score saved checkpoints on the test days beside the baselines."""
    parser = _parser("wattshare evaluate-forecasters", evaluate_main.__doc__)
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="checkpoint file (repeatable); default: every lstm_*.pt under OUTPUT/<data set>/")
    args = parser.parse_args(argv)
    run = run_config_from_args(args)
    torch.set_num_threads(args.threads)
    dataset = load_homes(args, run)
    folder = default_checkpoint_path(dataset, root=args.output).parent
    paths = [Path(p) for p in args.checkpoint] if args.checkpoint else sorted(folder.glob("lstm_*.pt"))
    if not paths:
        raise CheckpointError(f"{folder}: no checkpoints (lstm_*.pt); run `wattshare train-forecasters` first")
    trained = {p.stem: load_checkpoint(p) for p in paths}
    print(forecast_report(dataset, trained, None))
    return 0

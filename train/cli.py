"""The ``wattshare`` command line: one home for every command, their shared flags in :mod:`train.flags`.

``wattshare run``: the main job (train/pipeline.py): federated LSTM forecasters, PPO policies,
and the benchmark of every policy on the test weeks of the default community (10 synthetic
homes); writes ``data/output/simulation_results.json``, the table, the plots and the
``run_config.yaml`` it ran with.
``wattshare benchmark``: policies on the test weeks against plain PG&E pricing.
``wattshare train-policies`` (train/policies_cli.py), ``train-forecasters`` and
``evaluate-forecasters`` (train/forecasters_cli.py), ``federated-forecasters``
(train/federated_cli.py), ``import`` (train/import_data.py).

Every command reads one run configuration (``--config``, train/run_config.py) and the same
flags for the same keys: ``--source postgres --table consumption``, ``--data-path homes.parquet``,
``--pricing caiso_indexed --wholesale ../shared/data/caiso/caiso_2024_dlap_hourly_lmp.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from energy_env.config import ConfigError
from energy_env.data.dataset import DataError
from energy_env.data.redact import redact
from train.flags import add_config_flags, add_oracle_flags, add_output_flag, announce_data, run_config_from_args
from train.run_config import QUICK, with_sections


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: forecasters, policies and the benchmark on the test weeks (train/pipeline.py)."""
    from train.pipeline import run_pipeline

    run = run_config_from_args(args)
    if args.quick:
        run = with_sections(run, QUICK)
    doc = run_pipeline(run, args.output, quick=args.quick)
    table = (Path(args.output) / "benchmark" / "benchmark.md").read_text()
    print(table)
    agg = doc["aggregate_metrics"]
    print(
        f"{doc['policy']}: community bill ${agg['community_baseline_usd']:.2f} on plain PG&E -> ${agg['community_cost_usd']:.2f} "
        f"({agg['community_savings_percent']}% saved), avg household saving {agg['avg_household_savings_percent']}%, "
        f"P2P traded {agg['total_energy_traded_kwh']:.1f} kWh"
    )
    print(f"stage times (s): {doc['timings_seconds']}")
    print(f"wrote {args.output}/simulation_results.json, {args.output}/run_config.yaml, {args.output}/benchmark/ (table, JSON, plots)")
    if doc.get("failed_policies"):
        print(f"FAILED: {', '.join(doc['failed_policies'])} (errors above and in {args.output}/benchmark/results_<name>.json)")
        return 1
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run policies on the test weeks and write JSON, a markdown table and plots; 1 when a policy failed (the others are written)."""
    from energy_env.community import build_community
    from energy_env.episodes import WEEK
    from policies.registry import make_policy
    from train.benchmark import run_benchmark

    t0 = time.perf_counter()
    run = run_config_from_args(args, benchmark={"policies": args.policies, "weeks": args.weeks, "plots": False if args.no_plots else None})
    community = build_community(run.env.model_copy(update={"episode_length": WEEK}))
    announce_data(community.dataset)
    policies: list = [make_policy(name, oracle=run.oracle) if name == "oracle" else name for name in run.benchmark.policies]
    if args.checkpoints:
        from policies.learned import LearnedPolicy

        # Checkpoints of the same name keep a row each (name@folder: train/benchmark.py distinct_names).
        policies += [LearnedPolicy.load(path, community, trust_pickle=args.trust_pickled_checkpoints) for path in args.checkpoints]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.yaml").write_text(run.to_yaml())
    runs = run_benchmark(None, policies, out, max_weeks=run.benchmark.weeks, plots=run.benchmark.plots, community=community,
                         resume=args.resume)
    print((out / "benchmark.md").read_text())
    reused = f", {len(runs.reused)} read from earlier results" if runs.reused else ""
    summary = f"{len(runs)} policies in {time.perf_counter() - t0:.1f} s{reused}; results in {out}/"
    if runs.failed:  # every finished policy is written; exit 1 names the rest (see results_<name>.json)
        print(f"{summary}; FAILED: {', '.join(runs.failed)} (errors above and in their results files)")
        return 1
    print(summary)
    return 0


DELEGATED = (  # commands whose modules parse their own arguments: (name, module[:function], help)
    ("train-policies", "train.policies_cli", "PPO battery policies (shared, independent or federated)"),
    ("train-forecasters", "train.forecasters_cli", "LSTM forecasters of every home (checkpoint + metrics table)"),
    ("evaluate-forecasters", "train.forecasters_cli:evaluate_main", "forecast metrics of saved checkpoints vs the baselines"),
    ("federated-forecasters", "train.federated_cli", "FedAvg of the homes' LSTMs on Flower vs local-only and central training"),
    ("import", "train.import_data", "load a data set into PostgreSQL or Supabase"),
)


def build_parser() -> argparse.ArgumentParser:
    """``wattshare`` and its subcommands."""
    parser = argparse.ArgumentParser(prog="wattshare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the main job on the embedded default data")
    add_config_flags(run)
    run.add_argument("--quick", action="store_true", help="a one-minute smoke version (tiny budgets, one test week)")
    add_output_flag(run, "data/output", "folder for simulation_results.json, run_config.yaml, the benchmark and checkpoints")
    add_oracle_flags(run)
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("benchmark", help="policies on the test weeks against plain PG&E pricing")
    add_config_flags(bench)
    bench.add_argument("--policies", nargs="+", default=None, help="benchmark.policies (default: pge_baseline rule_based mpc oracle)")
    bench.add_argument("--checkpoints", nargs="*", default=[], help="trained policy folders (wattshare train-policies) to add")
    bench.add_argument("--trust-pickled-checkpoints", action="store_true",
                       help="also load old-format checkpoints (SB3 policy.zip), whose pickled contents can run code: only files you trust")
    bench.add_argument("--weeks", type=int, default=None, help="benchmark.weeks: only the first K test weeks")
    bench.add_argument("--no-plots", action="store_true", help="benchmark.plots: false")
    bench.add_argument("--resume", action="store_true",
                       help="reuse the output folder's results_<policy>.json made with the same inputs (run_key); run the rest")
    add_output_flag(bench, "data/output/benchmark", "folder for the results JSON, the table and the plots")
    add_oracle_flags(bench)
    bench.set_defaults(func=cmd_benchmark)

    for name, target, text in DELEGATED:
        p = sub.add_parser(name, help=text, add_help=False)
        p.set_defaults(func=_delegate(target), delegated=True)
    return parser


def _delegate(module: str):
    """Subcommands whose modules parse their own arguments (``main(argv)``)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        name, _, func = module.partition(":")
        return getattr(importlib.import_module(name), func or "main")(args.rest)

    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wattshare``; a config, data or value error exits 2 with its message (secrets redacted)."""
    args, rest = build_parser().parse_known_args(argv)
    if rest and not getattr(args, "delegated", False):
        build_parser().parse_args(argv)  # unknown options of a built-in command: argparse's error
    args.rest = rest
    try:
        return args.func(args)
    except (ConfigError, DataError, ValueError) as err:  # CheckpointError is a ValueError
        print(f"wattshare {args.command}: error: {redact(str(err))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

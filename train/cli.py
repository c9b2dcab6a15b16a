"""The ``wattshare`` command line.

``wattshare run``: the main job (train/pipeline.py): LSTM forecasters, a PPO policy, and the
benchmark of every policy on the test weeks of the default community (10 synthetic homes);
writes ``data/output/simulation_results.json``, the table and the plots.
``wattshare benchmark``: policies on the test weeks against plain PG&E pricing.
``wattshare import``: load a data set into PostgreSQL or Supabase (``train/import_data.py``).

``run`` and ``benchmark`` take the data source and the pricing from the config, or from flags:
``--source postgres --table consumption``, ``--source file --data-path homes.parquet``,
``--pricing caiso_indexed --wholesale ../shared/data/caiso/caiso_2024_dlap_hourly_lmp.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from energy_env.config import ConfigError, load_config
from energy_env.data.dataset import DataError


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: forecasters, policies and the benchmark on the test weeks (train/pipeline.py)."""
    from train.pipeline import run_pipeline

    cfg = _config_for(args)
    doc = run_pipeline(cfg, args.output, quick=args.quick, oracle=_oracle_settings(args))
    table = (Path(args.output) / "benchmark" / "benchmark.md").read_text()
    print(table)
    agg = doc["aggregate_metrics"]
    print(
        f"{doc['policy']}: community bill ${agg['community_baseline_usd']:.2f} on plain PG&E -> ${agg['community_cost_usd']:.2f} "
        f"({agg['community_savings_percent']}% saved), avg household saving {agg['avg_household_savings_percent']}%, "
        f"P2P traded {agg['total_energy_traded_kwh']:.1f} kWh"
    )
    print(f"stage times (s): {doc['timings_seconds']}")
    print(f"wrote {args.output}/simulation_results.json, {args.output}/benchmark/ (table, JSON, plots)")
    return 0


def _config_for(args: argparse.Namespace, **overrides):
    if args.households is not None:
        overrides["num_households"] = args.households
    if getattr(args, "citylearn", None):
        overrides["data"] = {"source": "citylearn", "path": args.citylearn, "include_faulty": args.include_faulty}
        if args.households is None:
            overrides["num_households"] = _citylearn_size(args.citylearn, args.include_faulty)
    for flag, key in (("source", "data.source"), ("data_path", "data.path"), ("table", "data.table"),
                      ("gap_fill", "data.gap_fill"), ("pricing", "tariff.import_pricing"),
                      ("wholesale", "tariff.wholesale.path"), ("wholesale_align", "tariff.wholesale.align")):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    cfg = load_config(args.config, **overrides)
    if cfg.data.source in ("file", "postgres", "supabase") and "num_households" not in overrides:
        # like --citylearn: the community is every home the source holds, unless --households says otherwise
        cfg = load_config(args.config, **overrides, num_households=_external_size(cfg))
    return cfg


def _external_size(cfg) -> int:
    """Homes an external source holds (or lists in data.households): the default community size there."""
    from energy_env.data.sources import ExternalDataOptions, open_source

    options = ExternalDataOptions.from_config(cfg.data, cfg.database)
    if options.households:
        return len(options.households)
    found = open_source(options).list_households(options.table, options.window)
    if not found:
        raise DataError(f"data.source {cfg.data.source!r}: table {options.table!r} has no households ({options.window.describe()})")
    return len(found)


def _oracle_settings(args: argparse.Namespace):
    """The ``oracle`` section of the config file, overridden by the ``--oracle-*`` flags."""
    from train.run_config import load_run_config

    flags = {"mode": args.oracle_mode, "time_limit_s": args.oracle_time_limit, "node_limit": args.oracle_node_limit,
             "mip_rel_gap": args.oracle_gap}
    return load_run_config(args.config, oracle=flags).oracle


def _add_oracle_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the oracle's solver budget (the config's ``oracle`` section; docs/training.md)."""
    g = parser.add_argument_group("the oracle's solver budget (override the config's oracle section)")
    g.add_argument("--oracle-mode", choices=["time", "deterministic"], default=None,
                   help="oracle.mode: time (a wall-clock cap per week) or deterministic (a node cap: the same schedule on any machine)")
    g.add_argument("--oracle-time-limit", type=float, default=None, help="oracle.time_limit_s: seconds of search per week (mode time; default 10)")
    g.add_argument("--oracle-node-limit", type=int, default=None, help="oracle.node_limit: branch-and-bound nodes per MILP (mode deterministic; default 200)")
    g.add_argument("--oracle-gap", type=float, default=None, help="oracle.mip_rel_gap: relative gap at which HiGHS stops (default 1e-6)")


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that override the config's data source and pricing (see docs/data_sources.md)."""
    g = parser.add_argument_group("data source and pricing (override the config)")
    g.add_argument("--source", choices=["synthetic", "citylearn", "file", "postgres", "supabase"], default=None, help="data.source")
    g.add_argument("--data-path", default=None, help="data.path: CityLearn folder or CSV / Parquet file")
    g.add_argument("--table", default=None, help="data.table (postgres / supabase; default consumption)")
    g.add_argument("--gap-fill", choices=["none", "interpolate", "previous", "same_slot"], default=None, help="data.gap_fill")
    g.add_argument("--pricing", choices=["tou_c", "caiso_indexed"], default=None, help="tariff.import_pricing")
    g.add_argument("--wholesale", default=None, help="tariff.wholesale.path: CAISO price file for caiso_indexed")
    g.add_argument("--wholesale-align", choices=["exact", "calendar"], default=None, help="tariff.wholesale.align")


def _citylearn_size(path: str, include_faulty: bool) -> int:
    from energy_env.data import load_citylearn

    return load_citylearn(path, include_faulty=include_faulty).num_households


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run policies on the test weeks and write JSON, a markdown table and plots."""
    from train.benchmark import run_benchmark

    from policies.registry import make_policy

    t0 = time.perf_counter()
    cfg = _config_for(args)
    oracle = _oracle_settings(args)
    policies: list = [make_policy(name, oracle=oracle) if name == "oracle" else name for name in args.policies]
    if args.checkpoints:
        from energy_env.community import build_community
        from policies.learned import LearnedPolicy

        community = build_community(cfg)
        # Checkpoints of the same name keep a row each (name@folder: train/benchmark.py distinct_names).
        policies += [LearnedPolicy.load(path, community, trust_pickle=args.trust_pickled_checkpoints) for path in args.checkpoints]
    runs = run_benchmark(cfg, policies, args.output, max_weeks=args.weeks, plots=not args.no_plots)
    table = (Path(args.output) / "benchmark.md").read_text()
    print(table)
    print(f"{len(runs)} policies in {time.perf_counter() - t0:.1f} s; results in {args.output}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wattshare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the main job on the embedded default data")
    run.add_argument("--config", default=None, help="YAML config (default: built-in defaults = config/config.yaml)")
    run.add_argument("--households", type=int, default=None, help="override num_households")
    run.add_argument("--quick", action="store_true", help="a one-minute smoke version (tiny budgets, one test week)")
    run.add_argument("--output", default="data/output", help="folder for simulation_results.json, the benchmark and checkpoints")
    _add_data_flags(run)
    _add_oracle_flags(run)
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("benchmark", help="policies on the test weeks against plain PG&E pricing")
    bench.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    bench.add_argument("--households", type=int, default=None, help="override num_households")
    bench.add_argument("--citylearn", default=None, help="folder of a CityLearn data set (schema.json, Building_N.csv)")
    bench.add_argument("--include-faulty", action="store_true", help="keep the homes the CityLearn loader flags")
    bench.add_argument("--policies", nargs="+", default=["pge_baseline", "simple_rule", "rule_based", "mpc", "oracle"])
    bench.add_argument("--checkpoints", nargs="*", default=[], help="trained policy folders (wattshare train-policies) to add")
    bench.add_argument("--trust-pickled-checkpoints", action="store_true",
                       help="also load old-format checkpoints (SB3 policy.zip), whose pickled contents can run code: only files you trust")
    bench.add_argument("--weeks", type=int, default=None, help="only the first K test weeks")
    bench.add_argument("--no-plots", action="store_true")
    bench.add_argument("--output", default="data/output/benchmark")
    _add_data_flags(bench)
    _add_oracle_flags(bench)
    bench.set_defaults(func=cmd_benchmark)

    for name, target, text in (
        ("train-policies", "train.ppo", "PPO battery policies (shared, independent or federated)"),
        ("import", "train.import_data", "load a data set into PostgreSQL or Supabase"),
        ("train-forecasters", "forecasting.train", "LSTM forecasters of every home (checkpoint + metrics table)"),
        ("evaluate-forecasters", "forecasting.train:evaluate_main", "forecast metrics of saved checkpoints vs the baselines"),
        ("federated-forecasters", "federated.cli", "FedAvg of the homes' LSTMs on Flower vs local-only and central training"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.set_defaults(func=_delegate(target), delegated=True)
    return parser


def _delegate(module: str):
    """Subcommands whose scripts parse their own arguments (``main(argv)``)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        name, _, func = module.partition(":")
        return getattr(importlib.import_module(name), func or "main")(args.rest)

    return run


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if rest and not getattr(args, "delegated", False):
        build_parser().parse_args(argv)  # unknown options of a built-in command: argparse's error
    args.rest = rest
    try:
        return args.func(args)
    except (ConfigError, DataError, ValueError) as err:
        print(f"wattshare {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The command line's shared flags: each means the same in every ``wattshare`` command.

A flag overrides one key of the run configuration (:mod:`train.run_config`); a flag left out
leaves the config file's value (or the section's default) alone, so defaults live only in the
config models. The data flags pick the homes: every command given the same config and flags
reads the same homes.

=======================  =====================================================================
``--config FILE``        the run YAML (env keys and sections); default: the built-in defaults
``--households N``       ``num_households`` (the first N homes of the source, in file order)
``--source S``           ``data.source``: synthetic, citylearn, file, postgres, supabase
``--data-path P``        ``data.path``; without ``--source``, a folder means citylearn, a file ``file``
``--citylearn FOLDER``   short for ``--source citylearn --data-path FOLDER`` (every kept home)
``--seed N``             the seed of what the command trains or draws (never the data's: that is
                         the config's top-level ``seed``)
``--output DIR``         where the command writes
=======================  =====================================================================
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from train.run_config import RunConfig, load_run_config

SOURCES = ("synthetic", "citylearn", "file", "postgres", "supabase")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--households`` and the data-source and pricing flags."""
    parser.add_argument("--config", default=None, help="run YAML: env keys and sections (default: the built-in defaults)")
    parser.add_argument("--households", type=int, default=None, help="num_households: the first N homes of the source")
    g = parser.add_argument_group("data source and pricing (override the config)")
    g.add_argument("--source", choices=SOURCES, default=None, help="data.source")
    g.add_argument("--data-path", default=None, help="data.path: a CityLearn folder or a CSV / Parquet file")
    g.add_argument("--citylearn", default=None, metavar="FOLDER", help="short for --source citylearn --data-path FOLDER")
    g.add_argument("--include-faulty", action="store_true", default=None, help="data.include_faulty: keep homes a loader flags")
    g.add_argument("--table", default=None, help="data.table (postgres / supabase; default consumption)")
    g.add_argument("--gap-fill", choices=["none", "interpolate", "previous", "same_slot"], default=None, help="data.gap_fill")
    g.add_argument("--pricing", choices=["tou_c", "caiso_indexed"], default=None, help="tariff.import_pricing")
    g.add_argument("--wholesale", default=None, help="tariff.wholesale.path: CAISO price file for caiso_indexed")
    g.add_argument("--wholesale-align", choices=["exact", "calendar"], default=None, help="tariff.wholesale.align")


def add_output_flag(parser: argparse.ArgumentParser, default: str | None, what: str) -> None:
    """``--output DIR``."""
    parser.add_argument("--output", default=default, help=f"{what} (default: {default or 'see the command'})")


def add_oracle_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the oracle's solver budget (the ``oracle`` section; docs/oracle.md)."""
    g = parser.add_argument_group("the oracle's solver budget (override the config's oracle section)")
    g.add_argument("--oracle-mode", choices=["time", "deterministic"], default=None,
                   help="oracle.mode: time (a wall-clock cap per week) or deterministic (a node cap: the same schedule on any machine)")
    g.add_argument("--oracle-time-limit", type=float, default=None, help="oracle.time_limit_s: seconds of search per week (mode time)")
    g.add_argument("--oracle-node-limit", type=int, default=None, help="oracle.node_limit: branch-and-bound nodes per MILP (mode deterministic)")
    g.add_argument("--oracle-gap", type=float, default=None, help="oracle.mip_rel_gap: relative gap at which HiGHS stops")


def env_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The env keys the config and data flags set."""
    out: dict[str, Any] = {}
    if getattr(args, "households", None) is not None:
        out["num_households"] = args.households
    source, path = getattr(args, "source", None), getattr(args, "data_path", None)
    if getattr(args, "citylearn", None):
        source, path = source or "citylearn", args.citylearn
        if getattr(args, "households", None) is None:
            out["num_households"] = None  # every kept home of the folder
    if path is not None and source is None:
        source = "citylearn" if Path(path).expanduser().is_dir() else "file"
    for key, value in (("data.source", source), ("data.path", path), ("data.include_faulty", getattr(args, "include_faulty", None)),
                       ("data.table", getattr(args, "table", None)), ("data.gap_fill", getattr(args, "gap_fill", None)),
                       ("tariff.import_pricing", getattr(args, "pricing", None)),
                       ("tariff.wholesale.path", getattr(args, "wholesale", None)),
                       ("tariff.wholesale.align", getattr(args, "wholesale_align", None))):
        if value is not None:
            out[key] = value
    return out


def oracle_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``oracle`` keys the oracle flags set."""
    return {"mode": getattr(args, "oracle_mode", None), "time_limit_s": getattr(args, "oracle_time_limit", None),
            "node_limit": getattr(args, "oracle_node_limit", None), "mip_rel_gap": getattr(args, "oracle_gap", None)}


def run_config_from_args(args: argparse.Namespace, **sections: dict[str, Any] | None) -> RunConfig:
    """The run configuration: ``--config``, then the shared flags, then ``sections`` (a command's own flags)."""
    sections = dict(sections)
    sections["oracle"] = {**oracle_overrides(args), **(sections.get("oracle") or {})}
    return load_run_config(getattr(args, "config", None), env_overrides(args), **sections)


def announce_data(dataset) -> None:
    """Print, at the start of a command, which homes of which source it runs on (and the load report)."""
    ids = list(dataset.household_ids)
    shown = ", ".join(ids[:8]) + (f", ... ({len(ids)} in all)" if len(ids) > 8 else "")
    print(f"data: {dataset.source}: {len(ids)} homes x {dataset.num_days} days ({shown}); fingerprint {dataset.fingerprint()[:12]}")
    if dataset.load_report is not None:
        print(dataset.load_report.summary())

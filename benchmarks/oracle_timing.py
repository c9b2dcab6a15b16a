"""Perfect-foresight optimum of every test week: solve time, binaries, and cost vs the idle baseline.

    .venv/bin/python benchmarks/oracle_timing.py [--time-limit 120] [--citylearn PATH] [--skip-synthetic]

A test week is the last 7 days of a month, solved as one 336-interval episode (the battery starts
at its configured state and the energy left is settled at the terminal price, as in the env).
Two communities: the default synthetic one (10 homes) and the 17 CityLearn 2022 homes (faulty ones
included); the second is skipped with a message if the data folder is absent. The baseline is
``data.baseline_cost_usd`` summed over the same intervals (idle battery, no P2P market).

Weeks with NBT evenings whose export credit exceeds the import price are MILPs; HiGHS stops at
``--time-limit`` seconds per week if it has not closed the gap, and the row shows the gap left:
to HiGHS's own bound, or to the Lagrangian bound of ``policies/lagrangian.py`` where that is
tighter (column ``bound by``; its seconds are included in ``solve_s``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_env.community import Community, build_community  # noqa: E402
from energy_env.config import make_config  # noqa: E402
from energy_env.episodes import WEEK, test_week_starts  # noqa: E402
from policies.optimum import solve_schedule  # noqa: E402

DEFAULT_CITYLEARN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "citylearn_2022"


def month_test_week_starts(community: Community) -> list[int]:
    """First interval of each month's test week: the benchmark's episodes (energy_env.episodes)."""
    return [int(s) for s in test_week_starts(community.dataset)]


def run(name: str, community: Community, time_limit_s: float) -> None:
    """Solve and print every test week of ``community``."""
    ds, data = community.dataset, community.data
    print(f"\n== {name}: {ds.num_households} homes, {ds.name}, {data.pricing_description}")
    print(f"{'week':<12} {'binaries':>8} {'solve_s':>8} {'status':<18} {'gap':>8} {'bound by':<10} {'oracle_$':>10} {'bound_$':>10} {'idle_$':>10} {'saving':>7}")
    total_s = total_oracle = total_idle = 0.0
    wall = time.perf_counter()
    for start in month_test_week_starts(community):
        s = solve_schedule(community, start, WEEK, time_limit_s=time_limit_s)
        idle = float(data.baseline_cost_usd[start : start + WEEK].sum())
        total_s += s.solve_seconds
        total_oracle += s.community_cost_usd
        total_idle += idle
        saving = (idle - s.community_cost_usd) / abs(idle) if idle else float("nan")
        print(
            f"{ds.timestamps[start]:%Y-%m-%d}   {s.num_binaries:>8d} {s.solve_seconds:>8.2f} {s.status:<18} {s.mip_gap:>8.1e} {s.bound_method:<10} "
            f"{s.community_cost_usd:>10.2f} {s.lower_bound_usd:>10.2f} {idle:>10.2f} {saving:>7.1%}",
            flush=True,
        )
    print(
        f"{'total':<12} {'':>8} {total_s:>8.2f} {'':<18} {'':>8} {'':<10} {total_oracle:>10.2f} {'':>10} {total_idle:>10.2f} "
        f"{(total_idle - total_oracle) / abs(total_idle):>7.1%}   (wall {time.perf_counter() - wall:.1f} s incl. building)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per week for a MILP (default 120)")
    parser.add_argument("--citylearn", type=Path, default=DEFAULT_CITYLEARN)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--config", default=None, help="a run YAML: time its community's test weeks instead of the defaults")
    args = parser.parse_args(argv)
    if args.config:
        from train.run_config import load_run_config

        run(args.config, build_community(load_run_config(args.config).env), args.time_limit)
        return
    if not args.skip_synthetic:
        run("synthetic (default config)", build_community(make_config()), args.time_limit)
    if not (args.citylearn / "schema.json").exists():
        print(f"\nCityLearn data not found at {args.citylearn}: skipped")
        return
    cfg = make_config(num_households=17, data={"source": "citylearn", "path": str(args.citylearn), "include_faulty": True})
    run("CityLearn 2022", build_community(cfg), args.time_limit)


if __name__ == "__main__":
    main()

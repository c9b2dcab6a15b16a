"""What foresight is worth: MPC with perfect forecasts of H intervals, as a share of the oracle's savings.

    .venv/bin/python benchmarks/information.py --config config/citylearn_2022.yaml --horizons 6 48
    .venv/bin/python benchmarks/information.py --horizons 6 12 24 48      # the synthetic default

The oracle knows the whole test week; a controller knows only what it observes. MPC
(:class:`policies.mpc.MPCPolicy`) re-solving the community LP every interval over ``H`` intervals
of *perfect* forecasts (``forecast.provider: perfect``) bounds what a non-anticipative policy
with ``H`` intervals of exact foresight can reach (up to MPC's own myopia at the window's end). A
learned policy between the rule and this bound is limited by what it can know, not only by
how it learns. Each horizon prints one line; its episodes run on every core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="run YAML of the data set (default: the synthetic default)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[6, 12, 24, 48], help="intervals of foresight (1-48)")
    parser.add_argument(
        "--provider", default="perfect",
        help="forecast provider MPC plans on (default perfect; e.g. seasonal_mean: what a real day-ahead forecast is worth)",
    )
    args = parser.parse_args(argv)

    from energy_env.community import build_community
    from policies.mpc import MPCPolicy
    from train.evaluation import TestWeekEvaluator
    from train.run_config import load_run_config

    run = load_run_config(args.config)
    print("| provider | horizon | foresight of | test-week cost $ | share of oracle savings | seconds |\n|---|---:|---|---:|---:|---:|")
    for h in args.horizons:
        env = run.env.model_copy(update={"forecast": run.env.forecast.model_copy(update={"provider": args.provider, "horizon": h})})
        evaluator = TestWeekEvaluator(build_community(env))
        t0 = time.perf_counter()
        cost = evaluator.cost_usd(MPCPolicy(horizon_intervals=h, workers=os.cpu_count() or 1))
        share = evaluator.oracle_share(cost)
        print(f"| {args.provider} | {h} | {h / 2:g} h | {cost:,.2f} | {share:.4f} | {time.perf_counter() - t0:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

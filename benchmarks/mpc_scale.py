"""What one step of ``mpc_day_ahead`` costs at 10, 100 and 1,000 homes.

    .venv/bin/python benchmarks/mpc_scale.py                       # 10, 100, 1000 synthetic homes
    .venv/bin/python benchmarks/mpc_scale.py --households 100 --states 8

The day-ahead MPC solves one community LP over 48 intervals every step. This times that LP
(:meth:`policies.mpc.MPCPolicy.setpoints_at`, in this process) at ``--states`` states spread over
the test weeks' clock times, batteries at their initial state of energy, and prints the seconds
per step and what the 12 test weeks (4,032 steps) would take on one core. It measures the
controller's cost; its savings come from ``wattshare benchmark --policies mpc_day_ahead``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--states", type=int, default=6, help="states timed per size (one LP each)")
    args = parser.parse_args(argv)

    import numpy as np

    from energy_env.community import build_community
    from energy_env.config import make_config
    from energy_env.episodes import WEEK, test_week_starts
    from policies.mpc import MPCPolicy

    print("| homes | states timed | seconds per step (mean, max) | 12 test weeks on one core, h |\n|---:|---:|---:|---:|")
    for n in args.households:
        community = build_community(make_config(num_households=n))
        starts = test_week_starts(community.dataset)
        # states at different clock times and days of the weeks: 7:00 of day 0, 13:30 of day 2, ...
        k = (np.arange(args.states) * (WEEK // args.states) + 14) % WEEK
        t = starts[np.arange(args.states) % len(starts)] + k
        end = t - k + WEEK
        soc = np.broadcast_to(community.params.battery.initial_soc_kwh, (args.states, n))
        mpc = MPCPolicy(48, source="seasonal_mean", history_days=7)
        seconds = []
        for i in range(args.states):
            t0 = time.perf_counter()
            mpc.setpoints_at(community, t[i : i + 1], end[i : i + 1], soc[i : i + 1])
            seconds.append(time.perf_counter() - t0)
        mean = float(np.mean(seconds))
        print(f"| {n:,} | {args.states} | {mean:.2f} ({max(seconds):.2f}) | {mean * 12 * WEEK / 3600:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

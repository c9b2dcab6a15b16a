"""The oracle's two methods on one week: exact and decomposed, their bounds, schedules and times.

    .venv/bin/python benchmarks/oracle_scale.py                          # 50 and 300 homes, January and August
    .venv/bin/python benchmarks/oracle_scale.py --sizes 1000 --weeks 7   # one week of 1,000 homes
    .venv/bin/python benchmarks/oracle_scale.py --config my.yaml         # another community

Prints, per size and test week: the exact method's cost and bound (where ``--exact-max`` allows:
its community model grows with N), the decomposition's bound, schedule cost and time, and the
decomposition's gap as a share of the week's savings (docs/oracle.md's table).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from energy_env.community import build_community
    from energy_env.episodes import WEEK, test_week_starts
    from policies.optimum import OraclePolicy
    from train.run_config import load_run_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 300])
    parser.add_argument("--weeks", type=int, nargs="+", default=[0, 7], help="test weeks (0 = January, 7 = August)")
    parser.add_argument("--config", default=None, help="a run YAML (its oracle section sets the budget)")
    parser.add_argument("--exact-max", type=int, default=150, help="solve exactly up to this many homes")
    args = parser.parse_args(argv)
    run = load_run_config(args.config)
    oracle = run.oracle
    for n in args.sizes:
        com = build_community(run.env.model_copy(update={"num_households": n, "episode_length": WEEK}))
        starts = test_week_starts(com.dataset)
        for w in args.weeks:
            s = int(starts[w])
            saved_from = com.data.baseline_cost_usd[s : s + WEEK].sum()
            line = f"N={n:>5} week {w} ({com.dataset.timestamps[s]:%Y-%m-%d}):"
            if n <= args.exact_max:
                t0 = time.perf_counter()
                exact = OraclePolicy(method="exact", time_limit_s=oracle.time_limit_s)
                e = exact.plan(com, np.array([s]), WEEK)[0]
                line += f" exact {e.community_cost_usd:,.2f} (bound {e.lower_bound_usd:,.2f}, {time.perf_counter() - t0:.1f} s);"
            t0 = time.perf_counter()
            dec = OraclePolicy(method="decomposition", time_limit_s=oracle.time_limit_s, sample_households=oracle.sample_households,
                               passes=oracle.passes, group_households=oracle.group_households)
            d = dec.plan(com, np.array([s]), WEEK)[0]
            gap = d.community_cost_usd - d.lower_bound_usd
            line += (f" decomposition bound {d.lower_bound_usd:,.2f}, schedule {d.community_cost_usd:,.2f}, "
                     f"gap {100 * gap / (saved_from - d.lower_bound_usd):.2f} % of savings ({time.perf_counter() - t0:.1f} s)")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

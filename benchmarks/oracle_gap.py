"""How far from optimal is an oracle week that is not proven optimal? Two checks beyond its own bound.

    .venv/bin/python benchmarks/oracle_gap.py [--citylearn PATH | --synthetic] [--month 9] [--evaluations 20]

For one test week (default: September's, the one week of the 17 CityLearn 2022 homes whose oracle
schedule is not proven optimal; faulty homes included, as in ``oracle_timing.py``):

1. the oracle as the benchmark solves it (HiGHS for 10 s, then a Lagrangian round): cost, proven
   lower bound, gap;
2. better prices? ``policies.lagrangian.maximize_dual`` climbs the Lagrangian bound from the LP
   duals (box-step cutting planes). If it does not move, what is left is the duality gap of
   pricing the P2P balance, which only branching (branch-and-price) can close;
3. a better schedule nearby? Each day's import/export binaries (all homes) are re-solved exactly
   with the other days' held (``policies.lagrangian.fixed_mode_schedule``), then random groups of
   4 homes over the whole week. Each neighbourhood is a MILP HiGHS proves optimal.

Figures are in $ of the week's community cost (the model's objective, tie-break costs of 1e-6 $/kWh
included). ``--synthetic`` checks the default synthetic community (10 homes) instead. Skipped with a
message if the CityLearn folder is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from energy_env import core  # noqa: E402
from energy_env.community import build_community  # noqa: E402
from energy_env.config import INTERVALS_PER_DAY, make_config  # noqa: E402
from oracle_timing import DEFAULT_CITYLEARN, WEEK, month_test_week_starts  # noqa: E402
from policies import lagrangian  # noqa: E402
from policies import schedule_lp as lp  # noqa: E402
from policies.schedule_model import ScheduleProblem, build_model  # noqa: E402
from policies.registry import ORACLE_TIME_LIMIT_S  # noqa: E402

EXPORTING_TOL_KWH = 1e-7


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citylearn", type=Path, default=DEFAULT_CITYLEARN)
    parser.add_argument("--synthetic", action="store_true", help="the default synthetic community instead")
    parser.add_argument("--config", default=None, help="a run YAML: its community instead")
    parser.add_argument("--month", type=int, default=9, help="the test week of this month (default 9)")
    parser.add_argument("--evaluations", type=int, default=20, help="price vectors tried by the dual ascent")
    parser.add_argument("--home-groups", type=int, default=6, help="random groups of 4 homes re-solved")
    args = parser.parse_args(argv)
    if args.config:
        from train.run_config import load_run_config

        community = build_community(load_run_config(args.config).env)
    elif args.synthetic:
        community = build_community(make_config())
    elif not (args.citylearn / "schema.json").exists():
        print(f"CityLearn data not found at {args.citylearn}: skipped")
        return
    else:
        cfg = make_config(num_households=17, data={"source": "citylearn", "path": str(args.citylearn), "include_faulty": True})
        community = build_community(cfg)
    ds, params, data = community.dataset, community.params, community.data
    starts = [s for s in month_test_week_starts(community) if ds.timestamps[s].month == args.month]
    if not starts:
        raise SystemExit(f"no complete test week in month {args.month}")
    start = starts[0]
    sl = slice(start, start + WEEK)
    load, pv = data.load_kwh[sl].astype(float), data.pv_kwh[sl].astype(float)
    imp, exp = data.import_usd_per_kwh[sl].astype(float), data.export_usd_per_kwh[sl].astype(float)
    soc0 = params.battery.initial_soc_kwh.astype(float)
    tp = float(core.terminal_price(params, data, np.array(start + WEEK - 1)))
    week = ScheduleProblem(params, load, pv, imp, exp, soc0, tp)
    constant = week.terminal_constant_usd  # the model's objective leaves out the terminal settlement of soc0
    t, n = load.shape

    print(f"{ds.timestamps[start]:%Y-%m-%d} test week, {n} homes of {ds.name}, {data.pricing_description}")
    wall = time.perf_counter()
    s = lp.solve_schedule(community, start, WEEK, time_limit_s=ORACLE_TIME_LIMIT_S)
    model = build_model(week)
    modes = np.full((t, n), np.nan)
    cells = model.meter_cells
    modes.ravel()[cells] = np.where(s.grid_export_kwh.ravel()[cells] > EXPORTING_TOL_KWH, 0.0, 1.0)
    x, objective, _ = lagrangian.fixed_mode_schedule(model, modes)
    print(f"1. oracle: {s.solve_seconds:.1f} s, {s.num_binaries} binaries, schedule by {s.schedule_method}: "
          f"${objective + constant:.4f}; bound by {s.bound_method}: ${s.lower_bound_usd:.4f}; "
          f"gap ${objective + constant - s.lower_bound_usd:.4f} ({s.mip_gap:.3%} of the model's objective, HiGHS's measure)")

    prices0 = lagrangian.p2p_balance_duals(model)
    t0 = time.perf_counter()
    ascent = lagrangian.maximize_dual(week, prices0, evaluations=args.evaluations)
    steps = " ".join(f"{b + constant:.4f}" for b in ascent.bounds)
    print(f"2. dual ascent from the LP duals, {len(ascent.bounds)} price vectors in {time.perf_counter() - t0:.0f} s "
          f"(homes' P2P capped): bounds {steps}")
    print(f"   best ${ascent.bound + constant:.4f} (start ${ascent.bounds[0] + constant:.4f}); the model promised "
          f"${ascent.promise:.2e} more within its box at the end; gap to the schedule ${objective - ascent.bound:.4f}")

    day = (cells // n) // INTERVALS_PER_DAY
    home = cells % n
    rng = np.random.default_rng(0)
    hoods = [(f"day {d}", day == d) for d in np.unique(day)]
    hoods += [(f"homes {sorted(g.tolist())}", np.isin(home, g)) for g in (rng.choice(n, 4, replace=False) for _ in range(args.home_groups))]
    print("3. neighbourhoods (binaries free there, held elsewhere), each solved to HiGHS's proven optimum:")
    for name, free in hoods:
        trial = modes.copy()
        trial.ravel()[cells[free]] = np.nan
        t0 = time.perf_counter()
        x_n, value, bound = lagrangian.fixed_mode_schedule(model, trial, lp.SearchBudget(time_limit_s=120.0))
        proven = (value - bound) <= 1e-6 * abs(value)
        better = value < objective - 1e-6 * abs(objective)
        print(f"   {name:<24} {int(free.sum()):>3} binaries  ${value + constant:.4f}  "
              f"{'proven' if proven else 'NOT proven'}  {'BETTER' if better else 'no better'}  {time.perf_counter() - t0:.1f} s", flush=True)
        if better:
            objective, modes = value, trial
            modes.ravel()[cells] = np.round(x_n[model.first_binary :])
    print(f"best schedule ${objective + constant:.4f}, best bound ${max(ascent.bound, s.lower_bound_usd - constant) + constant:.4f} "
          f"(wall {time.perf_counter() - wall:.0f} s)")


if __name__ == "__main__":
    main()

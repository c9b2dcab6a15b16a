"""Where a policy gains and loses: each test week's savings against PG&E, policy by policy.

    .venv/bin/python benchmarks/per_week.py --config config/citylearn_2022.yaml \\
        --policies oracle rule_based mpc_day_ahead --checkpoints data/output/generalisation_apg/train/citylearn.apg_s0

Rolls every policy (registered names, then checkpoint folders) over the 12 test weeks of the
configured community and prints one row per week: its first day, the highest export credit of the
week, and each policy's savings against the PG&E baseline in dollars (the oracle's share of them
when the oracle is among the policies). The oracle solves each week (minutes on CityLearn).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="a run YAML (default: the built-in defaults)")
    parser.add_argument("--policies", nargs="*", default=["oracle", "rule_based"], help="registered policy names")
    parser.add_argument("--checkpoints", nargs="*", default=[], help="trained policy folders")
    args = parser.parse_args()

    from energy_env.community import build_community
    from energy_env.episodes import WEEK, test_week_starts
    from energy_env.rollout import rollout
    from policies.learned import LearnedPolicy
    from policies.registry import make_policy
    from train.run_config import load_run_config

    run = load_run_config(args.config)
    community = build_community(run.env.model_copy(update={"episode_length": WEEK}))
    starts = test_week_starts(community.dataset)
    policies = [(name, make_policy(name, oracle=run.oracle) if name == "oracle" else make_policy(name)) for name in args.policies]
    policies += [(folder, LearnedPolicy.load(folder, community)) for folder in args.checkpoints]
    saved, baseline = {}, None
    for name, policy in policies:
        if hasattr(policy, "plan"):
            policy.plan(community, starts, WEEK)
        traj = rollout(community, policy.act, starts, WEEK, observations=False)
        baseline = traj["baseline_cost_usd"].sum(axis=(0, 2))
        saved[name] = baseline - traj["cost_usd"].sum(axis=(0, 2))
    export = community.data.export_usd_per_kwh
    dates = community.dataset.timestamps
    names = list(saved)
    print("| week of | highest export credit $/kWh | PG&E baseline $ | " + " | ".join(f"{n} saved $" for n in names) + " |")
    print("|---|---:|---:|" + "---:|" * len(names))
    oracle = saved.get("oracle")
    for k, s in enumerate(starts):
        cells = [f"{saved[n][k]:.1f}" + (f" ({saved[n][k] / oracle[k]:.3f})" if oracle is not None and n != "oracle" and oracle[k] > 0 else "")
                 for n in names]
        print(f"| {dates[s].date()} | {export[s:s + WEEK].max():.2f} | {baseline[k]:.1f} | " + " | ".join(cells) + " |")
    totals = [f"{saved[n].sum():.1f}" + (f" ({saved[n].sum() / oracle.sum():.3f})" if oracle is not None and n != "oracle" else "") for n in names]
    print(f"| all | {export[np.concatenate([np.arange(s, s + WEEK) for s in starts])].max():.2f} | {baseline.sum():.1f} | " + " | ".join(totals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parameter sharing vs independent vs federated PPO policies, scored on the test weeks.

    .venv/bin/python benchmarks/federated_policies.py --config config/citylearn_2022.yaml --steps 3000000

Trains, with the same household-step budget and seed: one shared policy (all homes' experience),
one policy per home on its own experience (independent), and one per home with a FedAvg round
every K updates (federated, all layers or all but the head). Prints each one's test-week
savings against PG&E, its share of the oracle's savings, its training time and its savings
relative to the shared policy (the issue's target: federated within 5%).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_env.community import build_community  # noqa: E402
from energy_env.config import load_config  # noqa: E402
from federated.policies import PolicyFederation  # noqa: E402
from federated.strategy import FedSettings  # noqa: E402
from train.independent import train_independent  # noqa: E402
from train.ppo import PPOSettings, TestWeekEvaluator, train_shared  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--steps", type=int, default=3_000_000, help="household-steps per policy")
    parser.add_argument("--every", type=int, nargs="+", default=[4], help="FedAvg every K updates (several: one run each)")
    parser.add_argument("--personal", nargs="+", default=["none", "head"], choices=["none", "head"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--local-normalizers", action="store_true", help="federated: keep each home's normalisers at home")
    parser.add_argument("--server-momentum", type=float, default=0.0, help="federated: FedAvgM momentum (0: FedAvg)")
    parser.add_argument("--server-lr", type=float, default=1.0, help="federated: FedAvgM server learning rate (1: FedAvg)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["shared", "independent"])
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()

    cfg = load_config(args.config, reward={"kind": "savings"}, episode_length=336)
    community = build_community(cfg)
    settings = PPOSettings(total_timesteps=args.steps, seed=args.seed)
    evaluator = TestWeekEvaluator(community)
    rows = []

    def score(name: str, policy, seconds: float, extra: str = "") -> None:
        cost = evaluator.cost_usd(policy)
        base = evaluator.baseline_usd
        rows.append({"policy": name, "savings_percent": 100 * (base - cost) / base, "oracle_share": evaluator.oracle_share(cost),
                     "train_seconds": seconds, "note": extra})
        print(f"{name}: {rows[-1]['savings_percent']:.2f}% saved, oracle share {rows[-1]['oracle_share']:.3f}, {seconds:.0f} s {extra}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for sub in ("shared", "independent", *(f"fed_{k}_{p}" for k in args.every for p in args.personal)):
            (tmp / sub).mkdir()
        if "shared" not in args.skip:
            t0 = time.perf_counter()
            policy = train_shared(community, settings, tmp / "shared", evaluate=False)
            score("shared", policy, time.perf_counter() - t0)
        if "independent" not in args.skip:
            t0 = time.perf_counter()
            policy = train_independent(community, settings, tmp / "independent", evaluate=False)
            score("independent", policy, time.perf_counter() - t0)
        for every in args.every:
            for personal in args.personal:
                hook = PolicyFederation(every, personal, FedSettings(seed=args.seed, server_learning_rate=args.server_lr, server_momentum=args.server_momentum), steps_per_update=settings.n_steps * settings.scenarios,
                                        share_normalizers=not args.local_normalizers)
                t0 = time.perf_counter()
                policy = train_independent(community, settings, tmp / f"fed_{every}_{personal}", evaluate=False,
                                           after_update=hook, label="federated")
                norms = "local" if args.local_normalizers else "shared"
                server = f" server lr={args.server_lr} momentum={args.server_momentum}" if args.server_momentum or args.server_lr != 1.0 else ""
                score(f"federated K={every} personal={personal} normalisers={norms}{server}", policy, time.perf_counter() - t0, f"({hook.round} rounds)")

    shared = next((r for r in rows if r["policy"] == "shared"), None)
    print(f"\n{community.dataset.name}, {community.num_households} homes, {args.steps:,} household-steps each, test weeks")
    print("| policy | saved vs PG&E | oracle share | vs shared | train s |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        rel = f"{100 * (r['savings_percent'] / shared['savings_percent'] - 1):+.1f}%" if shared else "n/a"
        print(f"| {r['policy']} | {r['savings_percent']:.2f}% | {r['oracle_share']:.3f} | {rel} | {r['train_seconds']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

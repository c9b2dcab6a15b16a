"""Bidding in the double auction: savings, market efficiency and bid shading of learned and truthful bidders.

    .venv/bin/python benchmarks/auction.py                       # synthetic default, 3 seeds (about 15 min)
    .venv/bin/python benchmarks/auction.py --seeds 0 --steps 1000000   # a quick look
    .venv/bin/python benchmarks/auction.py --resume --variants federated_bids --seeds 0   # add federated bidders
    .venv/bin/python benchmarks/auction.py --trained data/output/auction --config 1000_homes.yaml --no-oracle --output data/output/auction_1000
    .venv/bin/python benchmarks/auction.py --config config/citylearn_2022.yaml --output data/output/auction_citylearn

The community runs with ``market.mechanism: double_auction`` (docs/model.md, "The double
auction"). Policies, scored on the test weeks (never trained on):

* ``rule_based`` and ``oracle``: setpoints only, so their orders are truthful (limit = the home's
  own grid alternative); the oracle's cost is the pool's optimum (the auction's efficient outcome),
  solved with the config's ``oracle`` settings as ``wattshare benchmark`` does;
* ``ppo_bids`` / ``ppo_residual_bids``: shared PPO trained in the auction (``wattshare
  train-policies``), choosing its setpoint and a price action each interval; ``federated_bids``
  (on request): one policy per home, FedAvg (``--mode federated``);
* the same networks with their price action replaced by truthful bids (``... (truthful)``): the
  truthful outcome of the learned batteries, which the learned bids are measured against.

Columns: community savings against plain PG&E, the oracle's share of those savings, the savings
kept against the same policy's truthful outcome, market efficiency (the gains from P2P trade
realised, volume x (import price - export break-even), over the gains the truthful orders of the
same net positions would realise), the traded volume, and the mean shading of the orders placed
(how far limits sit from truthful: a buyer's import price minus its bid, a seller's ask minus its
break-even, in cents/kWh and as a share of the spread between the two grid prices).

Output under ``--output``: ``train/`` (checkpoints), ``rows.jsonl`` (one row per policy and seed,
appended as each finishes; ``--resume`` skips rows already there) and ``auction.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"ppo_bids": [], "ppo_residual_bids": ["--residual", "rule_based"], "federated_bids": ["--mode", "federated"]}


def auction_config(base: Path | None, out: Path) -> Path:
    """The run YAML: ``base`` (or the defaults) with the double auction."""
    doc = yaml.safe_load(base.read_text()) if base else {}
    if base and "data" in doc and "path" in doc["data"]:
        doc["data"]["path"] = str((ROOT / doc["data"]["path"]).resolve())
    doc.setdefault("market", {})["mechanism"] = "double_auction"
    path = out / "auction.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def score(community, act, starts, length) -> dict:
    """Cost, market figures and bid shading of ``act`` over the episodes ``starts``."""
    from energy_env.auction import order_limits, truthful_limits
    from energy_env.rollout import rollout

    params = community.params
    recorded: list[np.ndarray] = []

    def recording(obs, state, com):
        a = np.asarray(act(obs, state, com), dtype=np.float64)
        recorded.append(a if a.ndim == 3 else np.stack([a, np.ones(a.shape)], axis=-1))
        return a

    traj = rollout(community, recording, starts, length, observations=False)
    keep = 1.0 - params.loss
    asked = traj["grid_import_kwh"] + traj["p2p_bought_kwh"]
    offered = traj["grid_export_kwh"] + traj["p2p_sold_kwh"]
    imp, exp = traj["import_price_usd_per_kwh"], traj["export_price_usd_per_kwh"]  # (T, B)
    gain = np.maximum(imp - exp / keep, 0.0)  # per kWh delivered, when trade beats the grid
    volume = traj["p2p_bought_kwh"].sum(-1)
    truthful_volume = np.where(gain > 0, np.minimum(offered.sum(-1) * keep, asked.sum(-1)), 0.0)
    welfare, truthful_welfare = float((volume * gain).sum()), float((truthful_volume * gain).sum())
    actions = np.stack(recorded)  # (T, B, N, 2)
    net = asked - offered
    t, b, n = net.shape
    flat = lambda x: x.reshape(t * b, n)  # noqa: E731
    limits = order_limits(np.clip(flat(actions[..., 1]), -1, 1), flat(net), imp.reshape(-1), exp.reshape(-1), params.loss)
    truthful = truthful_limits(flat(net), imp.reshape(-1), exp.reshape(-1), params.loss)
    has_order = flat(asked + offered) > 1e-9
    spread = np.abs(imp.reshape(-1, 1) - exp.reshape(-1, 1) / keep) * np.ones((1, n))
    shading = np.abs(limits - truthful)[has_order]
    share = shading / np.where(spread[has_order] > 0, spread[has_order], 1.0)
    seller = (flat(net) < 0)[has_order]
    cost, baseline = float(traj["cost_usd"].sum()), float(traj["baseline_cost_usd"].sum())
    return {
        "cost_usd": cost, "baseline_usd": baseline, "savings_percent": 100 * (baseline - cost) / baseline,
        "p2p_volume_kwh": float(volume.sum()), "efficiency": welfare / truthful_welfare if truthful_welfare > 0 else None,
        "shading_cents_per_kwh": 100 * float(shading.mean()) if shading.size else 0.0,
        "shading_share_of_spread": float(share.mean()) if shading.size else 0.0,
        "buyer_shading_share": float(share[~seller].mean()) if (~seller).any() else 0.0,
        "seller_shading_share": float(share[seller].mean()) if seller.any() else 0.0,
    }


def truthful(policy):
    """``policy``'s setpoints with truthful bids."""
    def act(obs, state, com):
        a = policy.act(obs, state, com)
        return a[..., 0] if a.ndim == 3 else a
    return act


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None, help="run YAML of the data set (default: the synthetic default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3_000_000, help="household-steps per training run")
    parser.add_argument("--variants", nargs="+", default=["ppo_bids", "ppo_residual_bids"], choices=list(VARIANTS),
                        help="federated_bids: one PPO per home with FedAvg (train-policies --mode federated; about 4 min per seed)")
    parser.add_argument("--output", type=Path, default=Path("data/output/auction"))
    parser.add_argument("--resume", action="store_true", help="keep rows.jsonl and skip what it holds")
    parser.add_argument("--trained", type=Path, default=None,
                        help="score the checkpoints of another run's output folder (its train/) here instead of training: shared bidders on another community")
    parser.add_argument("--no-oracle", action="store_true", help="leave the oracle out (no oracle share; e.g. 1,000 homes)")
    args = parser.parse_args(argv)

    from energy_env.community import build_community
    from energy_env.episodes import WEEK
    from policies.learned import LearnedPolicy
    from policies.registry import make_policy
    from train.evaluation import TestWeekEvaluator
    from train.run_config import load_run_config

    args.output.mkdir(parents=True, exist_ok=True)
    config = auction_config(args.config, args.output)
    rows_path = args.output / "rows.jsonl"
    done = [json.loads(line) for line in rows_path.read_text().splitlines()] if args.resume and rows_path.exists() else []
    if not args.resume:
        rows_path.write_text("")
    have = {(r["policy"], r["seed"]) for r in done}
    community = build_community(load_run_config(str(config)).env.model_copy(update={"episode_length": WEEK}))
    evaluator = TestWeekEvaluator(community)
    starts = evaluator.starts

    def add(policy: str, seed: int | None, figures: dict) -> None:
        share = None if args.no_oracle else evaluator.oracle_share(figures["cost_usd"])
        row = {"policy": policy, "seed": seed, **figures, "oracle_share": share}
        done.append(row)
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{policy:28s} seed {seed}: savings {row['savings_percent']:.2f}%, oracle share {share}, "
              f"efficiency {row['efficiency']}, shading {row['shading_cents_per_kwh']:.2f} c/kWh", flush=True)

    # The oracle first, with the benchmark's settings (oracle section: 10 s of HiGHS per week by
    # default, episodes on two cores); its cost is every row's reference.
    if not args.no_oracle:
        oracle = make_policy("oracle")
        oracle.plan(community, starts, WEEK)
        oracle_row = score(community, oracle.act, starts, WEEK)
        evaluator.oracle_usd, evaluator.baseline_usd = oracle_row["cost_usd"], oracle_row["baseline_usd"]
        if ("oracle", None) not in have:
            add("oracle", None, oracle_row)
    if ("rule_based", None) not in have:
        add("rule_based", None, score(community, make_policy("rule_based").act, starts, WEEK))
    failed = False
    for variant in args.variants:
        for seed in args.seeds:
            folder = (args.trained or args.output) / "train" / f"{variant}_s{seed}"
            if (variant, seed) in have and (f"{variant} (truthful)", seed) in have:
                continue
            if args.trained is not None and not (folder / "meta.json").exists():
                print(f"FAILED: no checkpoint {folder}", file=sys.stderr)
                failed = True
                continue
            if not (folder / "meta.json").exists():
                cmd = [sys.executable, "-m", "train.cli", "train-policies", "--config", str(config), "--steps", str(args.steps),
                       "--seed", str(seed), "--eval-every", str(args.steps), *VARIANTS[variant], "--output", str(folder)]
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"FAILED {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}", file=sys.stderr)
                    failed = True
                    continue
            policy = LearnedPolicy.load(folder, community)
            add(variant, seed, score(community, policy.act, starts, WEEK))
            add(f"{variant} (truthful)", seed, score(community, truthful(policy), starts, WEEK))
    (args.output / "auction.md").write_text(table(done))
    print(table(done))
    return 1 if failed else 0


def table(rows: list[dict]) -> str:
    """Mean ± sd over seeds per policy, with the savings kept against the same policy's truthful outcome."""
    def spread(values, fmt="{:.3f}"):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        return fmt.format(statistics.mean(values)) + (f" ± {fmt.format(statistics.stdev(values))}" if len(values) > 1 else "")

    by_policy: dict[str, list[dict]] = {}
    for r in rows:
        by_policy.setdefault(r["policy"], []).append(r)
    truthful_savings = {(r["policy"].removesuffix(" (truthful)"), r["seed"]): r["cost_usd"] for r in rows if r["policy"].endswith("(truthful)")}
    out = ["| policy | seeds | savings % | oracle share | savings kept vs truthful | efficiency | P2P kWh | shading c/kWh | shading / spread (buyers, sellers) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, group in by_policy.items():
        kept = []
        for r in group:
            base = truthful_savings.get((name, r["seed"]))
            if base is not None and not name.endswith("(truthful)"):
                kept.append((r["baseline_usd"] - r["cost_usd"]) / (r["baseline_usd"] - base))
        out.append(
            f"| {name} | {len(group)} | {spread([r['savings_percent'] for r in group], '{:.2f}')} | {spread([r['oracle_share'] for r in group])} | "
            f"{spread(kept) if kept else '-'} | {spread([r['efficiency'] for r in group])} | {spread([r['p2p_volume_kwh'] for r in group], '{:.0f}')} | "
            f"{spread([r['shading_cents_per_kwh'] for r in group], '{:.2f}')} | {spread([r['shading_share_of_spread'] for r in group], '{:.2f}')} "
            f"({spread([r.get('buyer_shading_share') for r in group], '{:.2f}')}, {spread([r.get('seller_shading_share') for r in group], '{:.2f}')}) |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())

"""A small hyper-parameter search with a fixed budget, selected on train weeks, confirmed on the test weeks.

    .venv/bin/python benchmarks/hparam_search.py --config config/citylearn_2022.yaml   # about 15 min on 2 cores
    .venv/bin/python benchmarks/hparam_search.py --candidates default lr_1e-3 --final-seeds 0

Every candidate (a set of ``training`` keys, :data:`CANDIDATES`) trains the residual PPO on the
rule (``--method plain``: PPO alone) for the same budget of household-steps and seed, with no
test-week evaluation (``train-policies --no-eval``). Each is scored on **selection weeks**:
every third week of train days (:func:`train.imitation.demonstration_weeks`), the community's
savings against plain PG&E; the test weeks play no part in the choice. The winner is then
trained with ``--final-seeds`` and scored on the test weeks (share of the oracle's savings), next
to the default's seeds.

Output under ``--output``: ``train/<candidate>_s<seed>/``, ``rows.jsonl`` (appended as each run
finishes; ``--resume`` skips runs already there) and ``search.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CANDIDATES: dict[str, dict] = {
    "default": {},
    "lr_1e-3": {"learning_rate": 1e-3},
    "lr_1e-4": {"learning_rate": 1e-4},
    "epochs_10": {"n_epochs": 10},
    "batch_8192": {"batch_size": 8192},
    "clip_0.1": {"clip_range": 0.1},
    "gae_0.9": {"gae_lambda": 0.9},
    "std_-2": {"log_std_init": -2.0},
    "scale_1.0": {"residual_scale": 1.0},
    "scenarios_64": {"scenarios": 64},
}
METHODS = {"residual": ["--residual", "rule_based"], "plain": []}


def candidate_config(base: Path | None, training: dict, path: Path) -> Path:
    """The run YAML of a candidate: ``base`` (or the defaults) with its ``training`` keys."""
    doc = yaml.safe_load(base.read_text()) if base else {}
    if base and "data" in doc and "path" in doc["data"]:
        doc["data"]["path"] = str((ROOT / doc["data"]["path"]).resolve())  # relative to the repository, as in config/
    doc["training"] = {**(doc.get("training") or {}), **training}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--method", choices=list(METHODS), default="residual")
    parser.add_argument("--steps", type=int, default=3_000_000, help="the budget: household-steps per run")
    parser.add_argument("--seed", type=int, default=0, help="the search's seed")
    parser.add_argument("--final-seeds", type=int, nargs="*", default=[0, 1, 2], help="seeds of the winner (and the default) on the test weeks")
    parser.add_argument("--output", type=Path, default=Path("data/output/hparam_search"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    from energy_env.community import build_community
    from energy_env.episodes import WEEK
    from energy_env.rollout import rollout
    from policies.learned import LearnedPolicy
    from policies.registry import make_policy
    from train.evaluation import TestWeekEvaluator
    from train.imitation import demonstration_weeks
    from train.run_config import load_run_config

    out = args.output
    (out / "configs").mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if args.resume and rows_path.exists() else []
    if not args.resume:
        rows_path.write_text("")
    have = {(r["stage"], r["candidate"], r["seed"]) for r in rows}
    community = build_community(load_run_config(str(args.config) if args.config else None).env.model_copy(update={"episode_length": WEEK}))
    selection = demonstration_weeks(community.dataset)[::3]
    evaluator = TestWeekEvaluator(community)

    def selection_savings(act) -> float:
        traj = rollout(community, act, selection, WEEK, observations=False)
        base = float(traj["baseline_cost_usd"].sum())
        return 100 * (base - float(traj["cost_usd"].sum())) / base

    def train(name: str, seed: int) -> Path | None:
        folder = out / "train" / f"{name}_s{seed}"
        if (folder / "meta.json").exists():
            return folder
        cfg = candidate_config(args.config, CANDIDATES[name], out / "configs" / f"{name}.yaml")
        cmd = [sys.executable, "-m", "train.cli", "train-policies", "--config", str(cfg), "--steps", str(args.steps), "--seed", str(seed),
               "--no-eval", *METHODS[args.method], "--output", str(folder)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"FAILED {' '.join(cmd)}\n{proc.stderr[-3000:]}", file=sys.stderr)
            return None
        return folder

    def add(row: dict) -> None:
        rows.append(row)
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    if ("selection", "rule_based", None) not in have:
        add({"stage": "selection", "candidate": "rule_based", "seed": None, "savings_percent": selection_savings(make_policy("rule_based").act)})
    failed = False
    for name in args.candidates:
        if ("selection", name, args.seed) in have:
            continue
        folder = train(name, args.seed)
        if folder is None:
            failed = True
            continue
        add({"stage": "selection", "candidate": name, "seed": args.seed, "savings_percent": selection_savings(LearnedPolicy.load(folder, community).act)})
    scored = [r for r in rows if r["stage"] == "selection" and r["candidate"] in args.candidates and r["seed"] == args.seed]
    winner = max(scored, key=lambda r: r["savings_percent"])["candidate"] if scored else None
    for name in dict.fromkeys([winner, "default"]):
        for seed in args.final_seeds if winner else []:
            if name is None or ("test", name, seed) in have:
                continue
            folder = train(name, seed)
            if folder is None:
                failed = True
                continue
            cost = evaluator.cost_usd(LearnedPolicy.load(folder, community))
            add({"stage": "test", "candidate": name, "seed": seed, "oracle_share": evaluator.oracle_share(cost),
                 "savings_percent": 100 * (evaluator.baseline_usd - cost) / evaluator.baseline_usd})
    text = table(rows, winner)
    (out / "search.md").write_text(text)
    print(text)
    return 1 if failed else 0


def table(rows: list[dict], winner: str | None) -> str:
    """The selection table (train weeks) and the test-week confirmation."""
    out = ["| candidate | training keys | selection-week savings % |", "|---|---|---:|"]
    for r in sorted((r for r in rows if r["stage"] == "selection"), key=lambda r: -r["savings_percent"]):
        keys = json.dumps(CANDIDATES.get(r["candidate"], {})) if r["candidate"] in CANDIDATES else "-"
        mark = " (chosen)" if r["candidate"] == winner else ""
        out.append(f"| {r['candidate']}{mark} | `{keys}` | {r['savings_percent']:.2f} |")
    tests: dict[str, list[float]] = {}
    for r in rows:
        if r["stage"] == "test":
            tests.setdefault(r["candidate"], []).append(r["oracle_share"])
    if tests:
        out += ["", "| candidate | seeds | test-week oracle share |", "|---|---:|---:|"]
        for name, shares in tests.items():
            sd = f" ± {statistics.stdev(shares):.3f}" if len(shares) > 1 else ""
            out.append(f"| {name} | {len(shares)} | {statistics.mean(shares):.3f}{sd} |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())

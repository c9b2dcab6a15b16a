"""Generalisation: policies trained on one data set, tested unchanged on another, over seeds.

    .venv/bin/python benchmarks/generalisation.py                          # 3 seeds, three methods (about 2 h)
    .venv/bin/python benchmarks/generalisation.py --seeds 0 --variants residual --steps 1000000   # a quick look
    .venv/bin/python benchmarks/generalisation.py --resume                 # finish an interrupted run
    .venv/bin/python benchmarks/generalisation.py --variants apg --seeds 2 --skip-tests  # train only, e.g. in a second process

Training sets (``wattshare train-policies``, shared policies, test weeks never used): the
synthetic default (10 homes), the 14 CityLearn 2022 homes, and their first half
(``data.households``: Building_1-7; ``citylearn_b``, Building_8-17, trains the other half's own
reference on request). Each set is trained with every method (``plain``: PPO; ``residual``: PPO
correcting the rule-based controller; ``apg``: analytic policy gradients, ``--algorithm apg``)
and seed; its ``curve.csv`` is the in-domain learning curve (test weeks against household-steps
and wall time).

Test sets (``wattshare benchmark`` with every checkpoint, so the rule, MPC and the oracle are run
once per set): synthetic (scoring the policies trained there and on CityLearn), CityLearn (trained
there and on synthetic), and the second half of the CityLearn homes (trained on the first half and
on synthetic). A checkpoint
acts on a test set of another size and other homes as it is (``LearnedPolicy.load`` checks only
the observation layout, action space and forecasts).

Output under ``--output``: ``train/<set>.<method>_s<seed>/`` (checkpoints), ``test/<set>/`` (the
benchmark's results), ``rows.jsonl`` (one row per policy and test set, appended as each finishes)
and ``generalisation.md`` (the tables: mean and spread over seeds). A failed command is reported
with its output and the script goes on with the rest; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CITYLEARN = ROOT / "config" / "citylearn_2022.yaml"
FIRST_HALF = [f"Building_{k}" for k in (1, 2, 3, 4, 5, 6, 7)]
SECOND_HALF = [f"Building_{k}" for k in (8, 9, 10, 11, 13, 16, 17)]
TRAIN_SETS = ("synthetic", "citylearn", "citylearn_a", "citylearn_b")
# test set: the training sets scored on it (none that trained on any of its homes but itself)
TEST_SETS = {"synthetic": ("synthetic", "citylearn"), "citylearn": ("citylearn", "synthetic"),
             "citylearn_b": ("citylearn_b", "citylearn_a", "synthetic")}
VARIANTS = {"plain": [], "residual": ["--residual", "rule_based"], "apg": ["--algorithm", "apg"],  # *_per_home: --observation-scale per_home
            "plain_per_home": ["--observation-scale", "per_home"],
            "residual_per_home": ["--residual", "rule_based", "--observation-scale", "per_home"]}
METHOD_NAMES = {"plain": "ppo", "residual": "ppo residual on the rule", "apg": "apg (analytic policy gradients)"}
BASELINES = ["pge_baseline", "rule_based", "mpc", "mpc_day_ahead", "oracle"]


def write_configs(out: Path) -> dict[str, Path | None]:
    """The run YAML of each data set (None: the built-in synthetic default)."""
    base = yaml.safe_load(CITYLEARN.read_text())
    base["data"]["path"] = str((ROOT / base["data"]["path"]).resolve())  # the YAMLs live under out/
    paths: dict[str, Path | None] = {"synthetic": None, "citylearn": CITYLEARN}
    for name, ids in (("citylearn_a", FIRST_HALF), ("citylearn_b", SECOND_HALF)):
        doc = {**base, "num_households": len(ids), "data": {**base["data"], "households": ids}}
        paths[name] = out / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(doc, sort_keys=False))
    return paths


def wattshare(args: list[str], log: Path) -> tuple[bool, float]:
    """Run a ``wattshare`` command, its output to ``log``: (succeeded, wall seconds)."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.call([sys.executable, "-m", "train.cli", *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        print(f"FAILED ({code}): wattshare {' '.join(args)}\n" + "\n".join(log.read_text().splitlines()[-15:]), flush=True)
    return code == 0, time.perf_counter() - t0


def config_flag(path: Path | None) -> list[str]:
    return ["--config", str(path)] if path else []


def train_all(args: argparse.Namespace, configs: dict, out: Path) -> tuple[list[Path], bool]:
    """Train every set x method x seed (skipping finished folders under --resume): the checkpoints."""
    folders, ok = [], True
    for seed in args.seeds:
        for variant in args.variants:
            for name in args.train_sets:
                folder = out / "train" / f"{name}.{variant}_s{seed}"  # folder names tell the benchmark's rows apart
                if not (args.resume and (folder / "meta.json").is_file() and (folder / "curve.csv").is_file()):
                    folder.mkdir(parents=True, exist_ok=True)
                    cmd = ["train-policies", *config_flag(configs[name]), "--steps", str(args.steps), "--seed", str(seed),
                           "--eval-every", str(args.eval_every or args.steps), *VARIANTS[variant], *args.train_flags, "--output", str(folder)]
                    if variant.startswith("apg") and args.apg_iterations:
                        cmd[1:1] = ["--iterations", str(args.apg_iterations)]
                    done, wall = wattshare(cmd, folder.parent / f"{folder.name}.log")
                    ok &= done
                    print(f"trained {name} {variant} seed {seed}: {wall:.0f} s" + ("" if done else " FAILED"), flush=True)
                if (folder / "meta.json").is_file():
                    folders.append(folder)
    return folders, ok


def label(folder: Path) -> tuple[str, str, int]:
    """(training set, method, seed) of a checkpoint folder train/<set>.<method>_s<seed>."""
    name, rest = folder.name.split(".", 1)
    method, seed = rest.rsplit("_s", 1)
    return name, method, int(seed)


def row_names(ckpts: list[Path]) -> dict[str, Path]:
    """The benchmark's row name of each checkpoint: its meta.json name, or name@folder when shared."""
    names = [json.loads((f / "meta.json").read_text())["name"] for f in ckpts]
    return {(n if names.count(n) == 1 else f"{n}@{f.name}"): f for n, f in zip(names, ckpts)}


def test_all(args: argparse.Namespace, configs: dict, folders: list[Path], out: Path) -> tuple[list[dict], bool]:
    """Benchmark each test set with the baselines and the checkpoints trained on the sets it scores."""
    rows, ok = [], True
    for test, scored in TEST_SETS.items():
        if test not in args.test_sets:
            continue
        ckpts = [f for f in folders if label(f)[0] in scored]
        folder = out / "test" / test
        if not (args.resume and (folder / "benchmark.json").is_file()):
            folder.mkdir(parents=True, exist_ok=True)
            cmd = ["benchmark", *config_flag(configs[test]), "--policies", *BASELINES, "--no-plots", "--output", str(folder),
                   "--checkpoints", *map(str, ckpts)]
            done, wall = wattshare(cmd, out / "test" / f"{test}.log")
            ok &= done
            print(f"tested on {test}: {wall:.0f} s", flush=True)
        if not (folder / "benchmark.json").is_file():
            continue
        doc = json.loads((folder / "benchmark.json").read_text())
        by_row = row_names(ckpts)
        for name, m in doc["policies"].items():
            row = {"test": test, "policy": name, "saved_percent": m["community_savings_percent"],
                   "oracle_share": m["share_of_oracle_savings"]}
            if name in by_row:
                row.update(zip(("train", "method", "seed"), label(by_row[name])))
            rows.append(row)
    return rows, ok


def spread(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` over seeds (the value alone for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def tables(rows: list[dict]) -> str:
    """Markdown: per test set, the baselines and each (training set, method) over seeds."""
    lines = []
    for test in dict.fromkeys(r["test"] for r in rows):
        lines += [f"\n**Tested on {test}**\n", "| policy | trained on | seeds | saved vs PG&E % | share of oracle savings |", "|---|---|---|---|---|"]
        mine = [r for r in rows if r["test"] == test]
        for r in mine:
            if "train" not in r:
                lines.append(f"| {r['policy']} | - | - | {r['saved_percent']:.2f} | {r['oracle_share']:.3f} |")
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in mine:
            if "train" in r:
                groups.setdefault((r["method"], r["train"]), []).append(r)
        for (method, train), rs in sorted(groups.items()):
            name = METHOD_NAMES[method.removesuffix("_per_home")] + (", per-home scale" if method.endswith("per_home") else "")
            lines.append(f"| {name} | {train} | {len(rs)} | {spread([r['saved_percent'] for r in rs], 2)} | "
                         f"{spread([r['oracle_share'] for r in rs])} |")
    return "\n".join(lines) + "\n"


def curves(folders: list[Path]) -> str:
    """Markdown: each (training set, method)'s in-domain learning curve, mean and spread over seeds."""
    groups: dict[tuple[str, str], list[list[dict]]] = {}
    for f in folders:
        if (f / "curve.csv").is_file():
            name, method, _ = label(f)
            lines = (f / "curve.csv").read_text().splitlines()
            keys = lines[0].split(",")
            groups.setdefault((name, method), []).append([dict(zip(keys, (float(v) if v else None for v in line.split(",")))) for line in lines[1:]])
    out = ["\n**Learning curves** (test weeks of the training set: oracle share, mean ± sd over seeds, at household-steps and "
           "training seconds, evaluations left out)\n",
           "| trained on | method | seeds | " + " | ".join(f"eval {k + 1}" for k in range(max((len(c) for g in groups.values() for c in g), default=0))) + " |"]
    out.append("|---|---|---|" + "---|" * (out[-1].count("|") - 4))
    for (name, method), runs in sorted(groups.items()):
        cells = []
        for k in range(min(len(c) for c in runs)):
            steps = runs[0][k]["household_steps"] / 1e6
            wall = statistics.mean(c[k].get("train_seconds") or c[k]["wall_seconds"] for c in runs)
            cells.append(f"{steps:.1f} M, {wall:.0f} s: {spread([c[k]['oracle_share'] for c in runs])}")
        out.append(f"| {name} | {method} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["plain", "residual", "apg"])
    parser.add_argument("--train-sets", nargs="+", choices=TRAIN_SETS, default=["synthetic", "citylearn", "citylearn_a"],
                        help="citylearn_b: the in-domain reference for the half the citylearn_a policies are tested on")
    parser.add_argument("--test-sets", nargs="+", choices=sorted(TEST_SETS), default=list(TEST_SETS))
    parser.add_argument("--steps", type=int, default=3_000_000, help="household-steps per training run")
    parser.add_argument("--eval-every", type=int, default=1_000_000, help="household-steps between test-week evaluations (the curves)")
    parser.add_argument("--apg-iterations", type=int, default=None, help="apg's gradient steps (training.apg_iterations; --steps is PPO's)")
    parser.add_argument("--train-flags", nargs=argparse.REMAINDER, default=[],
                        help="last: flags added to every train-policies command (e.g. --train-flags --lr-schedule linear)")
    parser.add_argument("--resume", action="store_true", help="keep finished trainings and test sets under --output")
    parser.add_argument("--skip-tests", action="store_true",
                        help="train only (e.g. seeds split over processes), then run again with --resume to benchmark every checkpoint")
    parser.add_argument("--output", type=Path, default=ROOT / "data/output/generalisation")
    args = parser.parse_args()
    if not CITYLEARN.is_file() or not (ROOT / yaml.safe_load(CITYLEARN.read_text())["data"]["path"]).is_dir():
        parser.error("the CityLearn 2022 data are not beside the checkout (../shared/data/citylearn_2022)")
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    configs = write_configs(out)
    folders, trained_ok = train_all(args, configs, out)
    if args.skip_tests:
        return 0 if trained_ok else 1
    rows, tested_ok = test_all(args, configs, folders, out)
    with (out / "rows.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    text = tables(rows) + curves(folders)
    (out / "generalisation.md").write_text(text)
    print(text)
    return 0 if trained_ok and tested_ok else 1


if __name__ == "__main__":
    sys.exit(main())

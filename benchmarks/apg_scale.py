"""Analytic policy gradients at 10, 100 and 1,000 homes: seconds per gradient step and memory.

    .venv/bin/python benchmarks/apg_scale.py                      # N = 10, 100, 1000, 5 iterations each
    .venv/bin/python benchmarks/apg_scale.py --households 1000 --iterations 10

Each size runs in a fresh process (so its peak RSS is its own) on the synthetic default with
``forecast.day_ahead_blocks`` as configured, the batch training uses there (``apg_batch_weeks``,
at most ``apg_max_batch_households`` households: 3 weeks at 100 homes, one week of all 1,000), no
evaluation. It prints one row per size: the normaliser's fit, seconds per gradient step (a week
of every home of the batch rolled out, differentiated and stepped), differentiated
household-steps per second, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(households: int, iterations: int, config: str | None) -> dict:
    """Train ``iterations`` APG steps on ``households`` synthetic homes in this process; the figures."""
    import resource

    import train.apg as apg
    from energy_env.community import build_community
    from train.pipeline import at_scale_recipe
    from train.run_config import load_run_config

    run = load_run_config(config, {"num_households": households})
    run, _ = at_scale_recipe(run, households)
    settings = run.training.replace(algorithm="apg", apg_iterations=iterations)
    community = build_community(run.env.model_copy(update={"episode_length": settings.episode_length}))
    fit = apg.fit_normalizer
    timed = {}

    def timed_fit(*a, **k):
        t0 = time.perf_counter()
        out = fit(*a, **k)
        timed["normalizer_s"] = time.perf_counter() - t0
        return out

    apg.fit_normalizer = timed_fit
    with tempfile.TemporaryDirectory() as tmp:
        apg.train_apg(community, settings, Path(tmp), evaluate=False)
        timing = json.loads((Path(tmp) / "timing.json").read_text())
    per_step = timing["train_seconds"] / iterations
    weeks = apg.batch_weeks(settings, households, 10**6)
    return {"households": households, "batch_weeks": weeks, "day_ahead_blocks": community.params.day_ahead_blocks,
            "normalizer_s": round(timed["normalizer_s"], 1), "seconds_per_iteration": round(per_step, 2),
            "household_steps_per_second": timing["household_steps_per_second"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--config", default=None, help="a run YAML (default: the built-in defaults)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process: one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.households[0], args.iterations, args.config)))
        return 0
    print("| homes | weeks per step | normaliser fit s | s per gradient step | household-steps/s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.households:
        cmd = [sys.executable, __file__, "--one", "--households", str(n), "--iterations", str(args.iterations)]
        cmd += ["--config", args.config] if args.config else []
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {n} | failed: {done.stderr.strip().splitlines()[-1]} |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {n:,} | {r['batch_weeks']} | {r['normalizer_s']} | {r['seconds_per_iteration']} | {r['household_steps_per_second']:,} | {r['peak_rss_mb']:,} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

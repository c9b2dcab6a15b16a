"""The benchmark and the main job at 10, 100 and 1,000 homes: wall time, peak memory, oracle gap.

    .venv/bin/python benchmarks/scale_pipeline.py                        # N = 10, 100, 1,000 (about an hour)
    .venv/bin/python benchmarks/scale_pipeline.py --sizes 100 --skip-run # the 100-home benchmark only
    .venv/bin/python benchmarks/scale_pipeline.py --config my.yaml       # another community's physics

For each size (synthetic default, a year), in fresh subprocesses so that each peak is its own:

* ``wattshare benchmark --households N`` with the five policies (pge_baseline, idle, rule_based,
  mpc, oracle; MPC is left out from ``--mpc-max`` homes on, where its closed loop alone takes
  longer than the rest): each policy's wall time, time per home, and the process's peak memory
  after it; the oracle's proven gap (its cost minus its lower bound, summed over the weeks) as a
  share of the community's savings; and the command's total time and peak;
* ``wattshare run --households N``: each stage's wall time and the peak memory after it, and the
  job's total and peak.

Rows are printed as each command finishes and written to ``--output``/scale.json as they come,
so a late failure loses nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

POLICIES = ["pge_baseline", "idle", "rule_based", "mpc", "oracle"]


def run_command(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """Run a ``wattshare`` command in a subprocess: exit code, wall seconds, peak RSS MB, the last output lines."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "train.cli", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.wait()
    code = os.waitstatus_to_exitcode(status)
    return code, time.perf_counter() - t0, usage.ru_maxrss / 1024, "\n".join(out.strip().splitlines()[-4:])


def benchmark_rows(n: int, out: Path, config: str | None, mpc_max: int, cwd: Path) -> list[dict]:
    policies = [p for p in POLICIES if p != "mpc" or n < mpc_max]
    folder = out / f"benchmark_{n}"
    args = ["benchmark", "--households", str(n), "--policies", *policies, "--no-plots", "--output", str(folder)]
    code, wall, rss, tail = run_command(args + (["--config", config] if config else []), cwd)
    rows = [{"n": n, "command": "benchmark", "what": "total", "wall_s": round(wall, 1), "s_per_home": round(wall / n, 3),
             "peak_rss_mb": round(rss), "exit": code}]
    baseline = None
    for name in policies:
        path = folder / f"results_{name}.json"
        if not path.exists():
            rows.append({"n": n, "command": "benchmark", "what": name, "status": "missing", "exit": code, "tail": tail})
            continue
        doc = json.loads(path.read_text())
        row = {"n": n, "command": "benchmark", "what": name, "status": doc.get("status"), "wall_s": doc.get("wall_seconds"),
               "s_per_home": round(doc.get("wall_seconds", 0.0) / n, 4), "peak_rss_mb": doc.get("peak_rss_mb")}
        agg = doc.get("aggregate_metrics", {})
        baseline = agg.get("community_baseline_usd", baseline)
        row["saved_percent"] = agg.get("community_savings_percent")
        if name == "oracle" and "oracle_bounds" in doc:
            bound = sum(b["lower_bound_usd"] for b in doc["oracle_bounds"])
            cost = sum(b["community_cost_usd"] for b in doc["oracle_bounds"])
            row.update(gap_usd=round(cost - bound, 2), gap_percent_of_savings=round(100 * (cost - bound) / (baseline - bound), 3),
                       method=doc.get("oracle_settings", {}).get("method"))
        rows.append(row)
    return rows


def run_rows(n: int, out: Path, config: str | None, cwd: Path) -> list[dict]:
    folder = out / f"run_{n}"
    code, wall, rss, tail = run_command(["run", "--households", str(n), "--output", str(folder)] + (["--config", config] if config else []), cwd)
    rows = [{"n": n, "command": "run", "what": "total", "wall_s": round(wall, 1), "s_per_home": round(wall / n, 3),
             "peak_rss_mb": round(rss), "exit": code}]
    path = folder / "simulation_results.json"
    if not path.exists():
        rows[0]["tail"] = tail
        return rows
    doc = json.loads(path.read_text())
    for stage in ("forecasters", "policy_training", "benchmark"):
        wall_s = doc["timings_seconds"].get(f"{stage}_s")
        rows.append({"n": n, "command": "run", "what": stage, "wall_s": wall_s, "s_per_home": round(wall_s / n, 3),
                     "peak_rss_mb": doc.get("peak_rss_mb", {}).get(stage)})
    rows.append({"n": n, "command": "run", "what": doc["policy"], "saved_percent": doc["aggregate_metrics"]["community_savings_percent"],
                 "oracle_share": doc["policies"].get(doc["policy"], {}).get("share_of_oracle_savings"), "at_scale": bool(doc.get("at_scale"))})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--config", default=None, help="a run YAML: its physics, tariff and budgets at every size (num_households set here)")
    parser.add_argument("--mpc-max", type=int, default=1000, help="leave MPC out of the benchmark from this many homes on")
    parser.add_argument("--skip-run", action="store_true", help="the benchmarks only")
    parser.add_argument("--skip-benchmark", action="store_true", help="the main job only")
    parser.add_argument("--output", type=Path, default=Path("data/output/scale"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    cwd = Path(__file__).resolve().parents[1]
    rows: list[dict] = []
    for n in args.sizes:
        for name, make in (("benchmark", lambda: benchmark_rows(n, args.output.resolve(), args.config, args.mpc_max, cwd)),
                           ("run", lambda: run_rows(n, args.output.resolve(), args.config, cwd))):
            if getattr(args, f"skip_{name}"):
                continue
            new = make()
            rows += new
            for row in new:
                print(json.dumps(row), flush=True)
            (args.output / "scale.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

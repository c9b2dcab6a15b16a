"""The same 17 CityLearn 2022 homes in CityLearn itself and in wattshare, side by side in one run.

    .venv/bin/python benchmarks/citylearn_compare.py --citylearn-python /tmp/venv-citylearn/bin/python

CityLearn is an optional extra with pins of its own (gymnasium 0.28, numpy 1.x), so it lives in a
virtual environment of its own and runs here as a subprocess:

    python3.11 -m venv /tmp/venv-citylearn && /tmp/venv-citylearn/bin/pip install citylearn

Both read ``../shared/data/citylearn_2022`` (CityLearn's loader cannot download here, so it gets
the ``schema.json`` path). Both step with uniform random actions drawn before the clock starts,
from the first step of the year, in alternating rounds (CityLearn, wattshare, CityLearn, ...), so
that both see the same machine load; the table gives the median of the rounds, in steps per
second of each process's CPU time (a shared machine inflates wall time, not CPU time; the wall
rates are in the JSON). A CityLearn step
is one hour of 17 buildings (battery, PV, loads, its own rewards and KPIs bookkeeping); a
wattshare step is 30 minutes of 17 homes (battery, grid limits, P2P market, tariff, forecasts,
signals and the info dicts). Rates are steps of each simulator's own API per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "citylearn_2022"

CITYLEARN_RUN = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
schema, seconds = sys.argv[1], float(sys.argv[2])
t0 = time.perf_counter()
import citylearn
from citylearn.citylearn import CityLearnEnv
env = CityLearnEnv(schema, central_agent=False)
env.reset()
build = time.perf_counter() - t0
rng = np.random.default_rng(0)
actions = [[rng.uniform(-1, 1, s.shape).tolist() for s in env.action_space] for _ in range(1000)]
steps, t0, c0 = 0, time.perf_counter(), time.process_time()
while time.perf_counter() - t0 < seconds:
    _, _, terminated, truncated, _ = env.step(actions[steps % 1000])
    steps += 1
    if terminated or truncated:
        env.reset()
cpu, elapsed = time.process_time() - c0, time.perf_counter() - t0
print(json.dumps({"version": getattr(citylearn, "__version__", "?"), "buildings": len(env.buildings), "steps": steps,
                  "seconds": cpu, "wall_seconds": elapsed, "build_s": build, "seconds_per_step": env.seconds_per_time_step}))
"""


def citylearn_round(python: str, schema: Path, seconds: float) -> dict:
    proc = subprocess.run([python, "-c", CITYLEARN_RUN, str(schema), str(seconds)], capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"CityLearn run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wattshare_env(data: Path, config: str | None = None):
    """wattshare's env on the 17 CityLearn homes; ``config``: a run YAML for the rest (battery, market, tariff)."""
    from energy_env.env import WattshareParallelEnv
    from train.run_config import load_run_config

    t0 = time.perf_counter()
    base = load_run_config(config).env  # the data are always the CityLearn homes CityLearn steps too
    env = WattshareParallelEnv(base, num_households=17, data={"source": "citylearn", "path": str(data), "include_faulty": True})
    env.reset(options={"start_interval": 0})
    return env, time.perf_counter() - t0


def wattshare_round(env, seconds: float) -> dict:
    """PettingZoo steps from the first interval of the year, episodes of 48 steps back to back."""
    rng = np.random.default_rng(0)
    agents = env.possible_agents
    actions = [{a: rng.uniform(-1, 1, 1).astype(np.float32) for a in agents} for _ in range(1000)]
    total = env.data.load_kwh.shape[0]
    start, steps, t0, c0 = 0, 0, time.perf_counter(), time.process_time()
    env.reset(options={"start_interval": start})
    while time.perf_counter() - t0 < seconds:
        env.step(actions[steps % 1000])
        steps += 1
        if not env.agents:
            start = (start + env.config.episode_length) % (total - env.config.episode_length)
            env.reset(options={"start_interval": start})
    return {"steps": steps, "seconds": time.process_time() - c0, "wall_seconds": time.perf_counter() - t0}


def wattshare_vector_round(env, seconds: float, scenarios: int = 64) -> dict:
    """The SB3 VecEnv on the same 17 homes: ``scenarios`` copies stepped at once."""
    from energy_env.vector import WattshareVecEnv

    venv = WattshareVecEnv(num_scenarios=scenarios, community=env.community)
    venv.seed(0)
    venv.reset()
    acts = np.random.default_rng(0).uniform(-1, 1, (100, scenarios * 17, 1)).astype(np.float32)
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        venv.step(acts[steps % 100])
        steps += 1
    return {"steps": steps * scenarios, "seconds": time.process_time() - c0, "wall_seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citylearn-python", default=os.environ.get("CITYLEARN_PYTHON", sys.executable),
                        help="python of a virtual environment with citylearn installed (default: $CITYLEARN_PYTHON or this one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the CityLearn 2022 folder (schema.json, Building_N.csv)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per round and simulator")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--config", default=None, help="a run YAML for wattshare's side (its data stay the CityLearn homes)")
    args = parser.parse_args()
    schema = args.data / "schema.json"
    if not schema.exists():
        sys.exit(f"no CityLearn data at {args.data} (../shared/data/citylearn_2022 sits beside the checkout)")
    check = subprocess.run([args.citylearn_python, "-c", "import citylearn"], capture_output=True)
    if check.returncode != 0:
        sys.exit(f"citylearn is not importable by {args.citylearn_python}: install it in its own venv (see --help)")

    env, ws_build = wattshare_env(args.data, args.config)
    cl, ws, wv = [], [], []
    for r in range(args.rounds):
        cl.append(citylearn_round(args.citylearn_python, schema, args.seconds))
        ws.append(wattshare_round(env, args.seconds))
        wv.append(wattshare_vector_round(env, args.seconds / 2))
        print(f"round {r + 1}: CityLearn {cl[-1]['steps'] / cl[-1]['seconds']:,.1f} steps/s, "
              f"wattshare PettingZoo {ws[-1]['steps'] / ws[-1]['seconds']:,.0f} steps/s", file=sys.stderr, flush=True)
    cl_rate = float(np.median([x["steps"] / x["seconds"] for x in cl]))
    ws_rate = float(np.median([x["steps"] / x["seconds"] for x in ws]))
    wv_rate = float(np.median([x["steps"] / x["seconds"] for x in wv]))
    rows = [
        ("CityLearn " + cl[0]["version"] + " (CityLearnEnv.step)", cl[0]["buildings"], "1 h", cl[0]["build_s"], cl_rate),
        ("wattshare PettingZoo (parallel_env.step)", 17, "30 min", ws_build, ws_rate),
        ("wattshare SB3 VecEnv, 64 copies (per copy-step)", 17, "30 min", ws_build, wv_rate),
    ]
    print("| simulator | homes | step | build s | env steps/s | ms/step | x CityLearn |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, homes, step, build, rate in rows:
        print(f"| {name} | {homes} | {step} | {build:.2f} | {rate:,.1f} | {1e3 / rate:.3f} | {rate / cl_rate:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"citylearn": cl, "wattshare_pettingzoo": ws, "wattshare_vecenv_64": wv,
                                         "citylearn_steps_per_s": cl_rate, "wattshare_steps_per_s": ws_rate,
                                         "vecenv_copy_steps_per_s": wv_rate, "ratio": ws_rate / cl_rate}, indent=2))


if __name__ == "__main__":
    main()

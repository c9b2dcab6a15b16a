"""Speed and memory at scale: env steps/s, household-steps/s and peak memory per configuration.

    .venv/bin/python benchmarks/scale.py                 # the README table (a few minutes)
    .venv/bin/python benchmarks/scale.py --quick         # shorter runs, fewer rows
    .venv/bin/python benchmarks/scale.py --json out.json
    .venv/bin/python benchmarks/scale.py --auction       # double auction against the pool (issue 18's target)

``batched core (compiled)`` is the numba kernel the envs step with (:mod:`energy_env.kernel`);
``batched core (numpy)`` and ``PettingZoo parallel, numpy core`` run the numpy definition it is
tested against. Each configuration runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its
own. Rows: the PettingZoo API (B = 1, dicts per agent) at N = 10 and 17, the batched core
(``transition`` + ``observe``) at N = 10 ... 10,000 with B scenarios chosen so that a batch holds
a few thousand households (which keeps its arrays in one core's cache: larger batches only add
memory traffic), and the two training envs (SB3 ``VecEnv``, gymnasium ``VectorEnv``).

Timing: actions are drawn before the clock starts; each row runs whole 48-step episodes (reset
included) for ``--seconds``. Rates are per second of the process's CPU time (``process_time``),
which a machine shared with other jobs does not inflate the way it does wall time: the median
over episodes, and the best episode (the code's own speed); ``wall`` is the median in wall time.
One process on one core (numpy's element-wise operations are single-threaded).

Memory: ``data MB`` is the community's arrays (load, PV, baseline costs, forecasts, prices),
built once and shared by every scenario and env; ``step MB`` is the peak that one
``transition`` + ``observe`` allocates (tracemalloc, which sees numba's allocations too), which is
all that grows with B; ``peak RSS``
includes Python, numpy and the data set. Data sets are 28 synthetic days, so that N = 10,000
fits in memory; the data's size is linear in N x days.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAYS = 28
EPISODE = 48

FULL = [
    ("pettingzoo", 10, 1),
    ("pettingzoo", 17, 1),
    ("pettingzoo_numpy", 17, 1),
    ("core", 10, 1),
    ("core", 10, 512),
    ("core", 100, 64),
    ("core", 1000, 1),
    ("core", 1000, 4),
    ("core", 1000, 8),
    ("core", 1000, 32),
    ("core", 10000, 1),
    ("core", 10000, 4),
    ("numpy_core", 1000, 8),
    ("numpy_core", 10000, 1),
    ("sb3_vecenv", 1000, 4),
    ("gym_vector", 1000, 4),
]
# The double auction's cost (market.mechanism double_auction, random bids) beside the pool's (sdr).
AUCTION = [(kind, n, b, m) for kind, n, b in (("pettingzoo", 17, 1), ("core", 100, 64), ("core", 1000, 1), ("core", 1000, 4), ("sb3_vecenv", 1000, 4))
           for m in ("sdr", "double_auction")]
QUICK = [("pettingzoo", 17, 1), ("pettingzoo_numpy", 17, 1), ("core", 100, 64), ("core", 1000, 4), ("core", 10000, 1), ("sb3_vecenv", 1000, 4)]


def community_for(n: int, mechanism: str = "sdr"):
    from energy_env.community import build_community
    from energy_env.config import make_config
    from energy_env.data import generate_synthetic

    return build_community(make_config(num_households=n, market={"mechanism": mechanism}), dataset=generate_synthetic(n, 2025, 0, num_days=DAYS))


def data_bytes(data) -> int:
    """Bytes of the community's arrays, counting shared buffers (views, forecasts) once."""
    seen, total = set(), 0
    for value in vars(data).values():
        arrays = [value] if isinstance(value, np.ndarray) else [getattr(value, k) for k in ("load_kwh", "pv_kwh") if hasattr(value, k)]
        for a in arrays:
            base = a
            while isinstance(base.base, np.ndarray):
                base = base.base
            if id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
    return total


def episode_runner(kind: str, com, n: int, b: int):
    """A function that runs one whole episode of ``kind``, and a function doing one step (for memory)."""
    from energy_env import core

    rng = np.random.default_rng(0)
    width = core.action_width(com.params)  # 2 in the double auction: (setpoint, price action)
    acts = rng.uniform(-1, 1, (EPISODE, b, n) + ((width,) if width > 1 else ()))
    days = com.dataset.split_days("train")
    starts = rng.choice(days[days < DAYS - 1], b) * EPISODE
    if kind == "core":  # the compiled kernel, as the envs step it
        from energy_env.kernel import Stepper

        stepper = Stepper(com.params, com.data, compiled=True)

        def episode():
            state = core.reset_state(com.params, com.data, starts, EPISODE)
            for k in range(EPISODE):
                state = stepper.step(state, acts[k])[0]

        def one_step():
            stepper.step(core.reset_state(com.params, com.data, starts, EPISODE), acts[0])

        return episode, one_step
    if kind == "numpy_core":  # the reference definition, one numpy operation at a time
        params, data = com.params, com.data

        def episode():
            state = core.reset_state(params, data, starts, EPISODE)
            for k in range(EPISODE):
                state, _ = core.transition(state, acts[k], params, data)
                core.observe(state, params, data)

        def one_step():
            state = core.reset_state(params, data, starts, EPISODE)
            core.observe(core.transition(state, acts[0], params, data)[0], params, data)

        return episode, one_step
    if kind in ("pettingzoo", "pettingzoo_numpy"):
        from energy_env.env import WattshareParallelEnv
        from energy_env.kernel import Stepper

        env = WattshareParallelEnv(community=com)
        if kind == "pettingzoo_numpy":
            env._stepper = Stepper(com.params, com.data, compiled=False)
        steps = [{a: acts[k, 0, i].reshape(width).astype(np.float32) for i, a in enumerate(env.possible_agents)} for k in range(EPISODE)]

        def episode():
            env.reset(seed=1)
            for k in range(EPISODE):
                env.step(steps[k])

        def one_step():
            env.reset(seed=1)
            env.step(steps[0])

        return episode, one_step
    if kind in ("sb3_vecenv", "gym_vector"):
        from energy_env.vector import WattshareVecEnv, WattshareVectorEnv

        flat = acts.reshape(EPISODE, b * n, width).astype(np.float32)
        if kind == "sb3_vecenv":
            venv = WattshareVecEnv(num_scenarios=b, community=com)
            venv.seed(0)
            venv.reset()
            step = venv.step
        else:
            venv = WattshareVectorEnv(num_scenarios=b, community=com, autoreset_mode="SameStep")
            venv.reset(seed=0)
            step = venv.step

        def episode():  # 48 steps: one episode, auto-reset included
            for k in range(EPISODE):
                step(flat[k])

        return episode, lambda: step(flat[0])
    raise ValueError(f"unknown kind {kind!r}")


def measure(kind: str, n: int, b: int, seconds: float, mechanism: str = "sdr") -> dict:
    """Run one configuration in this process (called in a subprocess by :func:`main`)."""
    t0 = time.perf_counter()
    com = community_for(n, mechanism)
    build_s = time.perf_counter() - t0
    episode, one_step = episode_runner(kind, com, n, b)
    episode()  # warm-up
    times, walls = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        t0, c0 = time.perf_counter(), time.process_time()
        episode()
        times.append((time.process_time() - c0) / EPISODE)
        walls.append((time.perf_counter() - t0) / EPISODE)
    tracemalloc.start()
    one_step()
    step_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    median, best = float(np.median(times)), float(np.min(times))
    return {
        "api": kind,
        "mechanism": mechanism,
        "households": n,
        "scenarios": b,
        "env_steps_per_s": 1.0 / median,
        "household_steps_per_s": n * b / median,
        "best_env_steps_per_s": 1.0 / best,
        "best_household_steps_per_s": n * b / best,
        "us_per_step": 1e6 * median,
        "wall_household_steps_per_s": n * b / float(np.median(walls)),
        "episodes_timed": len(times),
        "data_mb": data_bytes(com.data) / 2**20,
        "step_mb": step_peak / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "build_s": build_s,
    }


LABELS = {"pettingzoo": "PettingZoo parallel", "pettingzoo_numpy": "PettingZoo parallel, numpy core",
          "core": "batched core (compiled)", "numpy_core": "batched core (numpy)", "sb3_vecenv": "SB3 VecEnv", "gym_vector": "gymnasium VectorEnv"}


def table(rows: list[dict]) -> str:
    out = [
        "| API | market | N | B | env steps/s | household-steps/s | best household-steps/s | wall household-steps/s | data MB | step MB | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {LABELS[r['api']]} | {r.get('mechanism', 'sdr')} | {r['households']:,} | {r['scenarios']} | {r['env_steps_per_s']:,.0f} | "
            f"{r['household_steps_per_s']:,.0f} | {r['best_household_steps_per_s']:,.0f} | {r['wall_household_steps_per_s']:,.0f} | {r['data_mb']:,.1f} | "
            f"{r['step_mb']:,.2f} | {r['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per configuration")
    parser.add_argument("--quick", action="store_true", help="fewer configurations, 2 s each")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--auction", action="store_true", help="the double auction beside the pool, and their ratio")
    parser.add_argument("--one", nargs=4, metavar=("API", "N", "B", "MECHANISM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, n, b, mechanism = args.one[0], int(args.one[1]), int(args.one[2]), args.one[3]
        print(json.dumps(measure(kind, n, b, args.seconds, mechanism)))
        return
    configs, seconds = (QUICK, 2.0) if args.quick else (AUCTION, args.seconds) if args.auction else (FULL, args.seconds)
    rows = []
    for kind, n, b, *mech in configs:
        mechanism = mech[0] if mech else "sdr"
        proc = subprocess.run(
            [sys.executable, __file__, "--one", kind, str(n), str(b), mechanism, "--seconds", str(seconds)],
            capture_output=True, text=True, check=True,
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{LABELS[kind]:20s} {mechanism:14s} N={n:>6,} B={b:>4}: {rows[-1]['household_steps_per_s']:>14,.0f} household-steps/s", file=sys.stderr, flush=True)
    print(table(rows))
    if args.auction:
        print("\n| API | N | B | auction / pool time per step (median CPU) |\n|---|---:|---:|---:|")
        for pool, auction in zip(rows[::2], rows[1::2]):
            print(f"| {LABELS[pool['api']]} | {pool['households']:,} | {pool['scenarios']} | {auction['us_per_step'] / pool['us_per_step']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

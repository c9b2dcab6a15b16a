"""Env speed: PettingZoo steps per second, and the batched core's household-steps per second.

    .venv/bin/python benchmarks/env_speed.py [--seconds 3]

Actions are drawn before timing, so the figures are the env's own cost (step + observation +
infos for PettingZoo; transition + observe for the core).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import energy_env
from energy_env import core
from energy_env.community import build_community
from energy_env.config import make_config


def pettingzoo_rate(n: int, seconds: float) -> float:
    env = energy_env.parallel_env(num_households=n)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (48, n, 1)).astype(np.float32)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.reset(seed=steps)
        for k in range(48):
            env.step({a: acts[k, i] for i, a in enumerate(env.possible_agents)})
        steps += 48
    return steps / (time.perf_counter() - t0)


def core_rate(n: int, b: int, seconds: float) -> float:
    com = build_community(make_config(num_households=n, data={"year": 2025}))
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (48, b, n))
    starts = rng.integers(0, com.dataset.num_days - 1, b) * 48
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        state = core.reset_state(com.params, com.data, starts, 48)
        for k in range(48):
            state, _ = core.transition(state, acts[k], com.params, com.data)
            core.observe(state, com.params, com.data)
        steps += 48
    return steps * b * n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print("| API | households N | scenarios B | env steps/s | household-steps/s |")
    print("|---|---|---|---|---|")
    for n in (10, 17):
        r = pettingzoo_rate(n, args.seconds)
        print(f"| PettingZoo parallel | {n} | 1 | {r:,.0f} | {r * n:,.0f} |")
    for n, b in ((10, 1), (10, 64), (100, 16), (1000, 4)):
        r = core_rate(n, b, args.seconds)
        print(f"| core (transition + observe) | {n} | {b} | {r / (n * b):,.0f} | {r:,.0f} |")


if __name__ == "__main__":
    main()

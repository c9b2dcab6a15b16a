"""Run a policy through the core for B scenarios at once and keep every step's flows."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

import numpy as np

from energy_env import core, kernel
from energy_env.community import Community

ActFn = Callable[[np.ndarray, core.State, Community], np.ndarray]


def rollout(
    community: Community, act: ActFn, starts: np.ndarray, length: int, progress: Any | None = None
) -> dict[str, np.ndarray]:
    """Simulate ``length`` steps from global intervals ``starts`` (``(B,)``) under ``act``.

    Returns every :class:`~energy_env.core.StepResult` field stacked over time, ``(length, B, N)``
    or ``(length, B)``, plus ``"interval"`` ``(length, B)`` (global interval index) and
    ``"observation"`` ``(length, B, N, obs_dim)`` (what the policy saw). ``progress`` (e.g. a
    tqdm bar) gets ``update(1)`` after every step.
    """
    params, data = community.params, community.data
    stepper = kernel.Stepper(params, data)
    state = core.reset_state(params, data, np.asarray(starts), length)
    obs = stepper.observe(state)
    steps: list[core.StepResult] = []
    observations, intervals = [], []
    for _ in range(length):
        observations.append(obs)
        intervals.append(state.t.copy())
        state, result, obs, _ = stepper.step(state, act(obs, state, community))
        steps.append(result)
        if progress is not None:
            progress.update(1)
    out = {f.name: np.stack([getattr(s, f.name) for s in steps]) for f in fields(core.StepResult)}
    out["interval"] = np.stack(intervals)
    out["observation"] = np.stack(observations)
    return out

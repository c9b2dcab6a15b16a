"""Run a policy through the core for B scenarios at once and keep every step's flows."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

import numpy as np

from energy_env import core, kernel
from energy_env.community import Community

ActFn = Callable[[np.ndarray, core.State, Community], np.ndarray]


def rollout(
    community: Community, act: ActFn, starts: np.ndarray, length: int, progress: Any | None = None,
    observations: bool = True,
) -> dict[str, np.ndarray]:
    """Simulate ``length`` steps from global intervals ``starts`` (``(B,)``) under ``act``.

    Returns every :class:`~energy_env.core.StepResult` field stacked over time, ``(length, B, N)``
    or ``(length, B)``, plus ``"interval"`` ``(length, B)`` (global interval index) and, with
    ``observations``, ``"observation"`` ``(length, B, N, obs_dim)`` (what the policy saw; at 1,000
    homes a twelve-week batch's observations are 0.7 GB, so the benchmark leaves them out).
    ``progress`` (e.g. a tqdm bar) gets ``update(1)`` after every step. Outputs are allocated
    once and filled step by step.
    """
    params, data = community.params, community.data
    stepper = kernel.Stepper(params, data)
    state = core.reset_state(params, data, np.asarray(starts), length)
    obs = stepper.observe(state)
    out: dict[str, np.ndarray] = {"interval": np.empty((length, *state.t.shape), dtype=state.t.dtype)}
    if observations:
        out["observation"] = np.empty((length, *obs.shape), dtype=obs.dtype)
    names = [f.name for f in fields(core.StepResult)]
    for k in range(length):
        if observations:
            out["observation"][k] = obs
        out["interval"][k] = state.t
        state, result, obs, _ = stepper.step(state, act(obs, state, community))
        for name in names:
            value = np.asarray(getattr(result, name))
            if k == 0:
                out[name] = np.empty((length, *value.shape), dtype=value.dtype)
            out[name][k] = value
        if progress is not None:
            progress.update(1)
    return out

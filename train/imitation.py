"""Behaviour cloning of an expert: a policy's first guess taken from the oracle's or the MPC's schedule.

Read it top to bottom:

1. :func:`demonstration_weeks`: week-long episodes made only of train days (the test weeks are
   never used).
2. :func:`expert_demonstrations`: the expert's schedule of each week, computed once per data set
   and episode and cached under ``data/cache``, replayed through the env: what every home
   observed at each step and the setpoint the expert chose. Experts: ``oracle``
   (:class:`~policies.optimum.OraclePolicy`, perfect foresight) and ``mpc_day_ahead`` (the MPC on
   24 h of 7-day-mean forecasts, in closed loop: it knows only the past, like the policy). For a
   residual policy the target is the correction the network must output, ``(expert - base) /
   scale``, clipped to the network's [-1, 1]: a correction beyond it is out of reach, and its
   share is reported.
3. :func:`behaviour_clone`: fit the network's mean action to the targets (mean squared error).
4. :func:`learner_demonstrations` (DAgger, ``training.dagger_iterations``): the clone drives the
   env, the MPC labels the states it reaches, and the clone is refitted on all data so far; a
   clone trained only on the expert's own states drifts off them.

The oracle sees the future, so its actions are not a function of what a home observes; the MPC's
are a function of the past, but of more of it than the observation holds. Cloning gives a start
that PPO (:func:`train.ppo.train_shared` with ``pretrain: oracle_bc`` or ``mpc_bc``) then improves
on the env's own reward. docs/training.md has the measured effect.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from energy_env.community import Community, build_community
from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset
from energy_env.episodes import WEEK
from energy_env.rollout import rollout
from policies.optimum import OraclePolicy, setpoints_from_ac_kwh

CACHE = Path("data/cache")


def demonstration_weeks(dataset: Dataset, length: int = WEEK) -> np.ndarray:
    """Start intervals of non-overlapping ``length``-interval episodes of train days only.

    Each run of consecutive train days holds as many whole episodes as fit, from its first day.
    """
    days = dataset.split_days("train")
    if len(days) == 0:
        return np.zeros(0, dtype=np.int64)
    per_episode = -(-length // INTERVALS_PER_DAY)
    breaks = np.flatnonzero(np.diff(days) != 1) + 1
    starts = []
    for run in np.split(days, breaks):
        for k in range(len(run) // per_episode):
            starts.append(int(run[k * per_episode]) * INTERVALS_PER_DAY)
    starts = np.asarray(starts, dtype=np.int64)
    return starts[starts + length <= dataset.num_intervals]


@dataclass
class Demonstrations:
    """What the homes saw and what the oracle did, one row per household-step."""

    observations: np.ndarray  # (M, D) float32, as the env observes (before any normalisation)
    targets: np.ndarray  # (M,) the network's target output: the setpoint, or the residual correction
    episodes: int
    clipped_share: float  # of targets clipped to [-1, 1] (residual corrections out of reach)
    expert_seconds: float  # 0 when the schedules came from the cache


EXPERTS = ("oracle", "mpc_day_ahead")


def expert_demonstrations(
    community: Community, expert: str = "oracle", max_weeks: int | None = None, residual_base: str | None = None,
    residual_scale: float = 0.5, oracle: OraclePolicy | None = None, cache: Path | None = CACHE,
) -> Demonstrations:
    """The ``expert``'s train-week schedules replayed through ``community``'s env (see the module docstring).

    ``max_weeks`` keeps the first K demonstration weeks; ``oracle`` (expert ``oracle`` only)
    defaults to the exact or decomposed oracle on every core with a 60 s budget per week
    (demonstrations need good schedules, not proofs). Raises ``ValueError`` for an unknown expert
    or if the data set has no week of train days.
    """
    if expert not in EXPERTS:
        raise ValueError(f"unknown expert {expert!r}; expected one of {EXPERTS}")
    if oracle is not None and expert != "oracle":
        raise ValueError(f"an oracle was given but the expert is {expert!r}")
    weekly = build_community(community.config.model_copy(update={"episode_length": WEEK}), dataset=community.dataset)
    starts = demonstration_weeks(weekly.dataset)[:max_weeks]
    if len(starts) == 0:
        raise ValueError(f"data set {weekly.dataset.name!r} has no {WEEK // INTERVALS_PER_DAY} consecutive train days to demonstrate on")
    ac_kwh, seconds = _expert_ac_kwh(weekly, starts, expert, oracle, cache)
    max_ac = weekly.params.battery.max_ac_kwh
    base = None
    if residual_base is not None:
        from policies.registry import make_policy

        base = make_policy(residual_base)
    targets: list[np.ndarray] = []

    def act(obs: np.ndarray, state, com: Community) -> np.ndarray:
        setpoint = setpoints_from_ac_kwh(ac_kwh[state.t - state.start, np.arange(len(starts))], max_ac)
        targets.append(setpoint if base is None else (setpoint - base.act(obs, state, com)) / residual_scale)
        return setpoint

    traj = rollout(weekly, act, starts, WEEK)
    raw = np.stack(targets).reshape(-1)  # (T, B, N) like the observations
    clipped = float(np.mean(np.abs(raw) > 1.0 + 1e-9))
    obs = traj["observation"].reshape(-1, traj["observation"].shape[-1]).astype(np.float32)
    return Demonstrations(obs, np.clip(raw, -1.0, 1.0).astype(np.float32), len(starts), clipped, seconds)


def learner_demonstrations(
    community: Community, learner: Any, expert: str = "mpc_day_ahead", max_weeks: int | None = None,
    residual_base: str | None = None, residual_scale: float = 0.5, label_every: int = 4, offset: int = 0,
) -> Demonstrations:
    """DAgger's data: the states ``learner`` visits on the train weeks, labelled with the expert's action there.

    ``learner`` (e.g. a :class:`~policies.learned.LearnedPolicy`) drives the env; at every
    ``label_every``-th interval of each week (from ``offset``) the expert (``mpc_day_ahead``: the
    only expert that can act from any state) solves its LP from the state the learner reached.
    The targets are the expert's setpoints, or the residual corrections as in
    :func:`expert_demonstrations`; observations are the env's, unscaled.
    """
    if expert != "mpc_day_ahead":
        raise ValueError(f"DAgger needs an expert that acts from any state (mpc_day_ahead), got {expert!r}")
    if label_every < 1 or not 0 <= offset < label_every:
        raise ValueError(f"label_every must be >= 1 and 0 <= offset < label_every, got {label_every} and {offset}")
    from policies.registry import make_policy

    weekly = build_community(community.config.model_copy(update={"episode_length": WEEK}), dataset=community.dataset)
    starts = demonstration_weeks(weekly.dataset)[:max_weeks]
    if len(starts) == 0:
        raise ValueError(f"data set {weekly.dataset.name!r} has no {WEEK // INTERVALS_PER_DAY} consecutive train days to demonstrate on")
    base = make_policy(residual_base) if residual_base is not None else None
    seen: dict[str, list[np.ndarray]] = {"obs": [], "t": [], "end": [], "soc": [], "base": []}

    def act(obs: np.ndarray, state, com: Community) -> np.ndarray:
        if (int(state.t[0] - state.start[0]) - offset) % label_every == 0:  # every week is at the same step
            seen["obs"].append(obs.copy())
            seen["t"].append(state.t.copy())
            seen["end"].append(state.end.copy())
            seen["soc"].append(state.soc_kwh.copy())
            if base is not None:
                seen["base"].append(base.act(obs, state, com))
        return learner.act(obs, state, com)

    rollout(weekly, act, starts, WEEK, observations=False)
    t0 = time.perf_counter()
    n = weekly.num_households
    labels = make_policy(expert).setpoints_at(
        weekly, np.concatenate(seen["t"]), np.concatenate(seen["end"]), np.concatenate(seen["soc"]).reshape(-1, n)
    )  # (steps * B, N), in the order of the observations
    seconds = time.perf_counter() - t0
    raw = labels if base is None else (labels - np.concatenate(seen["base"]).reshape(-1, n)) / residual_scale
    raw = raw.reshape(-1)
    obs = np.concatenate(seen["obs"]).reshape(-1, seen["obs"][0].shape[-1]).astype(np.float32)
    clipped = float(np.mean(np.abs(raw) > 1.0 + 1e-9))
    return Demonstrations(obs, np.clip(raw, -1.0, 1.0).astype(np.float32), len(starts), clipped, seconds)


def _expert_ac_kwh(
    community: Community, starts: np.ndarray, expert: str, oracle: OraclePolicy | None, cache: Path | None
) -> tuple[np.ndarray, float]:
    """The expert's AC battery energy ``(WEEK, B, N)`` of each episode, from the cache or solved now."""
    import os

    cfg = community.config.model_dump(mode="json")
    cfg.pop("reward", None)
    ds = community.dataset
    # the default oracle's key is None, as before experts were added: its caches stay valid
    name = (None if oracle is None else oracle.name) if expert == "oracle" else expert
    key_data = [cfg, [ds.name, ds.fingerprint()], starts.tolist(), WEEK, name]
    path = None
    if cache is not None:
        path = cache / f"demonstrations_{hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]}.npz"
        if path.exists():
            expected = (WEEK, len(starts), community.num_households)
            try:
                with np.load(path, allow_pickle=False) as stored:
                    ac_kwh = stored["battery_ac_kwh"]
            except (OSError, ValueError, KeyError) as err:
                raise ValueError(f"{path}: not a readable demonstration cache ({err}); delete it to solve again") from None
            if ac_kwh.shape != expected or not np.isfinite(ac_kwh).all():
                raise ValueError(f"{path}: battery_ac_kwh of shape {ac_kwh.shape} (finite: {bool(np.isfinite(ac_kwh).all())}), "
                                 f"expected finite values of shape {expected}; delete it to solve again")
            return ac_kwh, 0.0
    t0 = time.perf_counter()
    if expert == "oracle":
        oracle = oracle or OraclePolicy(name="oracle", time_limit_s=60.0, mip_rel_gap=1e-4, workers=os.cpu_count() or 1)
        ac_kwh = np.stack([s.battery_ac_kwh for s in oracle.plan(community, starts, WEEK)], axis=1)
    else:
        from policies.registry import make_policy

        ac_kwh = make_policy(expert).closed_loop(community, starts, WEEK)
    seconds = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, battery_ac_kwh=ac_kwh)
    return ac_kwh, seconds


def behaviour_clone(
    policy: ActorCriticPolicy, observations: np.ndarray, targets: np.ndarray, epochs: int = 20, learning_rate: float = 1e-3,
    batch_size: int = 1024, seed: int = 0,
) -> list[float]:
    """Fit ``policy``'s mean action to ``targets`` on (already normalised) ``observations``.

    Minimises the mean squared error of the deterministic action with its own Adam optimiser
    (PPO's optimiser state stays fresh); the value head is left alone. In the double auction the
    targets are setpoints and the price action is left to PPO. Returns each epoch's mean loss.
    """
    if len(observations) != len(targets):
        raise ValueError(f"{len(observations)} observations but {len(targets)} targets")
    x = torch.as_tensor(observations, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32).reshape(len(targets), -1)
    params = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    if policy.share_features_extractor:
        params += list(policy.features_extractor.parameters())
    optimiser = torch.optim.Adam(params, lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            mean = policy.get_distribution(x[idx]).distribution.mean[:, : y.shape[1]]  # the setpoint (auction: not the price)
            loss = torch.mean((mean - y[idx]) ** 2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
    policy.set_training_mode(False)
    return losses

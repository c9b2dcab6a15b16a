"""Policy checkpoints of a training run: the policy of the moment, and where and how it is saved.

The format itself (safe tensors and JSON, checked on load) is :mod:`policies.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3 import PPO

from energy_env.community import Community
from policies import checkpoint
from policies.learned import LearnedPolicy, ObsNormalizer
from train.settings import PPOSettings

DEFAULT_ROOT = Path("data/checkpoints/policies")


def snapshot_policy(models: list[PPO], normalizers: list[ObsNormalizer], mode: str, settings: PPOSettings | None = None) -> LearnedPolicy:
    """The current policies as a deterministic :class:`LearnedPolicy`."""
    residual = settings.residual_base if settings else None
    name = f"ppo_{mode}" + (f"_residual_{residual}" if residual else "")
    return LearnedPolicy(models, normalizers, mode, name=name, residual_base=residual, residual_scale=settings.residual_scale if settings else 0.5,
                         observation_scale=settings.observation_scale if settings else "absolute")


def save_checkpoint(
    out: Path, policy: LearnedPolicy, community: Community, settings: PPOSettings, steps: int,
    running: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``policy`` (its networks, their optimizers, normalisers, ``meta.json``) into ``out``.

    The checkpoint carries ``policy``'s name, mode and residual base, so it loads as the policy
    that was trained. ``running``: statistics for resuming, one row per network (``count`` of
    the observation normaliser, ``return_mean``/``return_var``/``return_count``).
    """
    nets = [m.policy for m in policy.models]
    meta = checkpoint.make_meta(
        name=policy.name, mode=policy.mode, community=community, network=checkpoint.network_spec(nets[0]),
        residual_base=policy.residual_base, residual_scale=policy.residual_scale, household_steps=steps,
        observation_scale=policy.observation_scale, extra={"dataset": community.dataset.name, "data": _trained_on(community), "settings": settings.model_dump(mode="json"), "config": community.config.model_dump(mode="json")},
    )
    arrays = {"mean": np.stack([n.mean for n in policy.normalizers]), "var": np.stack([n.var for n in policy.normalizers]), **(running or {})}
    checkpoint.write_checkpoint(out, meta, nets, arrays)


def default_output(
    community: Community, mode: str, residual_base: str | None = None, root: str | Path = DEFAULT_ROOT, algorithm: str = "ppo",
) -> Path:
    """Where a variant's checkpoint goes by default: one folder per data set and variant, so runs
    of other algorithms, modes, residual bases or data sets never overwrite each other."""
    from forecasting.checkpoint import dataset_slug

    variant = f"{algorithm}_{mode}" + (f"_residual_{residual_base}" if residual_base else "")
    return Path(root) / dataset_slug(community.dataset) / variant


def _trained_on(community: Community) -> dict:
    """Which homes of which source (and the data's fingerprint) a checkpoint was trained on."""
    ds = community.dataset
    return {"source": ds.source, "household_ids": list(ds.household_ids), "fingerprint_sha256": ds.fingerprint()}

"""Trained PPO policies behind the common :class:`~policies.base.Policy` interface.

A checkpoint is a folder written by ``wattshare train-policies``:

* ``meta.json``: mode (``shared``: one policy for every home; ``independent``: one per home),
  the observation layout it was trained on, the community size, training steps and seed;
* ``policy.zip`` (shared) or ``policy_<i>.zip`` (independent): Stable-Baselines3 PPO models;
* ``obs_rms.npz``: the observation normalisation (running mean and variance) per model.

Loading a checkpoint into a community whose observation layout (fields, widths or horizon) or
size differs raises :class:`CheckpointError` naming the difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from energy_env.community import Community
from energy_env.core import State, observation_fields

CLIP_OBS = 10.0  # VecNormalize's default clip of normalised observations


class CheckpointError(ValueError):
    """A policy checkpoint is missing, corrupt, or made for another observation layout."""


@dataclass
class ObsNormalizer:
    """Running mean/variance normalisation, as SB3's VecNormalize applies it."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float = 1e-8

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalised and clipped observations (float32)."""
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -CLIP_OBS, CLIP_OBS).astype(np.float32)


def layout_of(community: Community) -> list[list[Any]]:
    """The observation layout a checkpoint must match: ``[[name, width], ...]``."""
    return [[name, width] for name, width in observation_fields(community.params.horizon)]


def read_meta(path: str | Path) -> dict[str, Any]:
    """``meta.json`` of a checkpoint folder, with a clear error when absent or corrupt."""
    meta_path = Path(path) / "meta.json"
    try:
        return json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not a policy checkpoint (no meta.json)") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{meta_path}: corrupt ({err})") from None


def check_layout(meta: dict[str, Any], community: Community, path: str | Path) -> None:
    """Raise :class:`CheckpointError` if the checkpoint was trained for another observation layout."""
    want = layout_of(community)
    have = meta.get("observation_layout")
    if have != want:
        diff = [f"{h} != {w}" for h, w in zip(have or [], want) if h != w][:3]
        raise CheckpointError(
            f"{path}: trained for another observation layout ({len(have or [])} fields vs the env's {len(want)}; "
            f"first differences: {diff or 'field count'}); retrain or use the config it was trained with"
        )
    if meta["mode"] == "independent" and meta["num_households"] != community.num_households:
        raise CheckpointError(
            f"{path}: independent policies for {meta['num_households']} homes, the community has {community.num_households}"
        )


class LearnedPolicy:
    """PPO policies acting deterministically (the mean action), clipped to [-1, 1]."""

    def __init__(
        self,
        models: list[Any],
        normalizers: list[ObsNormalizer],
        mode: str,
        name: str = "ppo",
        residual_base: str | None = None,
        residual_scale: float = 0.5,
    ) -> None:
        self.models = models
        self.normalizers = normalizers
        self.mode = mode
        self.name = name
        self.residual_scale = residual_scale
        self.base = None
        if residual_base is not None:  # the network corrects this controller's setpoint
            from policies.registry import make_policy

            self.base = make_policy(residual_base)

    @classmethod
    def load(cls, path: str | Path, community: Community | None = None, name: str | None = None) -> "LearnedPolicy":
        """Load a checkpoint folder; with ``community``, check it matches the observation layout."""
        from stable_baselines3 import PPO

        path = Path(path)
        meta = read_meta(path)
        if community is not None:
            check_layout(meta, community, path)
        files = ["policy.zip"] if meta["mode"] == "shared" else [f"policy_{i}.zip" for i in range(meta["num_households"])]
        try:
            stats = np.load(path / "obs_rms.npz")
            normalizers = [ObsNormalizer(stats["mean"][k], stats["var"][k]) for k in range(len(files))]
        except (FileNotFoundError, KeyError, ValueError, OSError) as err:
            raise CheckpointError(f"{path / 'obs_rms.npz'}: missing or corrupt ({err})") from None
        models = []
        for f in files:
            try:
                models.append(PPO.load(path / f, device="cpu"))
            except Exception as err:  # SB3 raises many types for a bad zip; name the file either way
                raise CheckpointError(f"{path / f}: cannot load the PPO model ({type(err).__name__}: {err})") from None
        return cls(models, normalizers, meta["mode"], name or meta.get("name", "ppo"), meta.get("residual_base"), meta.get("residual_scale", 0.5))

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: State | None = None, community: Community | None = None) -> np.ndarray:
        """Setpoints ``(B, N)`` for observations ``(B, N, D)``."""
        b, n, d = obs.shape
        if self.mode == "shared":
            flat = self.normalizers[0](obs.reshape(b * n, d))
            actions = self.models[0].policy.predict(flat, deterministic=True)[0].reshape(b, n)
        else:
            actions = np.empty((b, n))
            for i, (model, norm) in enumerate(zip(self.models, self.normalizers)):  # one small net per home
                actions[:, i] = model.policy.predict(norm(obs[:, i]), deterministic=True)[0].reshape(b)
        if self.base is not None:
            actions = self.base.act(obs, state, community) + self.residual_scale * np.clip(actions, -1.0, 1.0)
        return np.clip(actions, -1.0, 1.0)

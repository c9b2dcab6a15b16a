"""Trained PPO policies behind the common :class:`~policies.base.Policy` interface.

A checkpoint is a folder written by ``wattshare train-policies`` (format: :mod:`policies.checkpoint`):
``meta.json`` (name, mode, observation layout and size, action space, network architecture,
community size, residual base, forecasts, training steps), ``policy.pt`` (mode ``shared``: one
network for every home) or ``policy_<i>.pt`` (``independent`` / ``federated``: one per home),
state dicts of tensors read with ``torch.load(weights_only=True)``, and ``obs_rms.npz``, the
observation normalisation per network (applied after the checkpoint's ``observation_scale``:
:mod:`policies.observation_scale`). Loading runs no code from the files: it rebuilds the
networks from ``meta.json`` and checks every file, and the metadata against the community
(observation layout, action space, number of homes for per-home modes); any problem raises
:class:`CheckpointError` naming the file and the mismatch.

Old checkpoints (SB3 ``policy.zip``, pickled) are refused unless the caller trusts the file:
``LearnedPolicy.load(path, community, trust_pickle=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from energy_env.community import Community
from energy_env.core import State
from policies.checkpoint import (
    CheckpointError,
    action_space_of,
    build_policy,
    check_action_space,
    check_env,
    is_legacy,
    layout_of,
    legacy_refusal,
    load_legacy_zip,
    load_state_dict,
    read_meta,
    read_normalizers,
    validate_meta,
    weights_files,
)
from policies.observation_scale import ObservationScaler

__all__ = ["CLIP_OBS", "CheckpointError", "LearnedPolicy", "LoadedModel", "ObsNormalizer", "layout_of", "read_meta"]

CLIP_OBS = 10.0  # VecNormalize's default clip of normalised observations


@dataclass
class ObsNormalizer:
    """Running mean/variance normalisation, as SB3's VecNormalize applies it."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float = 1e-8

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalised and clipped observations (float32)."""
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -CLIP_OBS, CLIP_OBS).astype(np.float32)


@dataclass
class LoadedModel:
    """A loaded network: what acting needs of a PPO model (its ``policy``), without the training parts."""

    policy: ActorCriticPolicy


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
        observation_scale: str = "absolute",
    ) -> None:
        self.models = models
        self.normalizers = normalizers
        self.mode = mode
        self.name = name
        self.residual_base = residual_base
        self.residual_scale = residual_scale
        self.observation_scale = observation_scale
        self.scaler = ObservationScaler(observation_scale)  # per_home: energies / each home's typical load
        self.source: Path | None = None  # the checkpoint folder it was loaded from
        self.base = None
        if residual_base is not None:  # the network corrects this controller's setpoint
            from policies.registry import make_policy

            self.base = make_policy(residual_base)

    @classmethod
    def load(
        cls, path: str | Path, community: Community | None = None, name: str | None = None, trust_pickle: bool = False,
    ) -> "LearnedPolicy":
        """Load a checkpoint folder; with ``community``, check it was made for that env.

        ``trust_pickle=True`` also loads the old pickled SB3 format, which can run code from the
        file: only for checkpoints whose source you trust.
        """
        path = Path(path)
        raw = read_meta(path)
        if is_legacy(raw):
            if not trust_pickle:
                raise legacy_refusal(path)
            return cls._load_legacy(path, raw, community, name)
        meta = validate_meta(raw, path / "meta.json")
        if community is not None:
            check_env(meta, community, path / "meta.json")
        files = weights_files(meta["mode"], meta["num_households"])
        stats = read_normalizers(path / "obs_rms.npz", len(files), meta["observation_size"])
        models = []
        for f in files:
            net = build_policy(meta["network"], meta["observation_size"], action_space_of(meta))
            net.load_state_dict(load_state_dict(path / f, net.state_dict()))
            models.append(LoadedModel(net))
        normalizers = [ObsNormalizer(m, v) for m, v in zip(stats["mean"], stats["var"])]
        policy = cls(models, normalizers, meta["mode"], name or meta["name"], meta["residual_base"], meta["residual_scale"],
                     meta.get("observation_scale", "absolute"))
        policy.source = path
        return policy

    @classmethod
    def _load_legacy(cls, path: Path, meta: dict[str, Any], community: Community | None, name: str | None) -> "LearnedPolicy":
        # The old format (policy.zip, pickled), reached only under the caller's trust flag.
        from policies.checkpoint import check_common_keys, check_residual

        meta_path = path / "meta.json"
        check_common_keys(meta, meta_path)
        check_residual(meta, meta_path)
        if community is not None:
            check_env(meta, community, meta_path)
        obs_size = sum(w for _, w in meta["observation_layout"])
        files = ["policy.zip"] if meta["mode"] == "shared" else [f"policy_{i}.zip" for i in range(meta["num_households"])]
        stats = read_normalizers(path / "obs_rms.npz", len(files), obs_size)
        models = []
        for f in files:
            if not (path / f).is_file():
                raise CheckpointError(f"{path / f}: missing")
            net = load_legacy_zip(path / f)
            if net.observation_space.shape != (obs_size,):
                raise CheckpointError(f"{path / f}: observations of shape {net.observation_space.shape}, meta.json's layout has {obs_size}")
            check_action_space(net.action_space, path / f)
            models.append(LoadedModel(net))
        base = meta.get("residual_base")
        saved = meta.get("name")  # the old writer stored "policy.zip" here for every shared checkpoint
        default = f"ppo_{meta['mode']}" + (f"_residual_{base}" if base else "")
        label = name or (saved if isinstance(saved, str) and saved and not saved.endswith(".zip") else default)
        policy = cls(models, [ObsNormalizer(m, v) for m, v in zip(stats["mean"], stats["var"])], meta["mode"], label,
                     base, float(meta.get("residual_scale", 0.5)))
        policy.source = path
        return policy

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: State | None = None, community: Community | None = None) -> np.ndarray:
        """Setpoints ``(B, N)`` for observations ``(B, N, D)``; in the double auction ``(B, N, 2)``
        (setpoint, price action). A residual base corrects the setpoint only."""
        b, n, d = obs.shape
        width = int(np.prod(self.models[0].policy.action_space.shape))
        shape = (b, n) if width == 1 else (b, n, width)
        seen = self.scaler(obs, community)  # the controller below (residual base) reads the env's own
        if self.mode == "shared":  # independent / federated: one network per home
            flat = self.normalizers[0](seen.reshape(b * n, d))
            actions = self.models[0].policy.predict(flat, deterministic=True)[0].reshape(shape)
        else:
            actions = np.empty(shape)
            for i, (model, norm) in enumerate(zip(self.models, self.normalizers)):  # one small net per home
                actions[:, i] = model.policy.predict(norm(seen[:, i]), deterministic=True)[0].reshape(shape[:1] + shape[2:])
        if self.base is not None:
            base = self.base.act(obs, state, community)
            if width == 1:
                actions = base + self.residual_scale * np.clip(actions, -1.0, 1.0)
            else:
                actions = actions.copy()
                actions[..., 0] = base + self.residual_scale * np.clip(actions[..., 0], -1.0, 1.0)
        return np.clip(actions, -1.0, 1.0)

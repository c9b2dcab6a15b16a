"""Saving and loading trained forecasters safely.

A checkpoint is one ``torch.save`` file of plain containers, strings, numbers and tensors only, so
it loads with ``torch.load(weights_only=True)``: no pickled code runs. Loading checks the format,
the config, the number of models and every tensor's shape, and raises :class:`CheckpointError`
naming the file and the first problem (a corrupt file, a checkpoint of another shape).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from energy_env.data.dataset import Dataset
from forecasting.data import Scaling
from forecasting.model import ForecasterConfig, TrainedForecasters, build_models

DEFAULT_CHECKPOINT_DIR = Path("data/checkpoints/forecasters")  # relative to the working directory
FORMAT = "wattshare-forecasters"
VERSION = 1


class CheckpointError(ValueError):
    """A forecaster checkpoint is missing, unreadable or does not fit; the message names the file."""


def dataset_slug(dataset: Dataset) -> str:
    """A folder name for a data set's checkpoints: its source's name, its size and, for data read
    from a file, a folder or a database, the start of its fingerprint, so that another selection
    of homes or edited data never shares a folder, e.g. ``synthetic_n10_year2025_seed0`` or
    ``citylearn_2022_n14_3fa2c1d9``."""
    name = dataset.name
    if "/" in name or "\\" in name:  # a path: its last component names it
        name = Path(name).name
    name = re.sub(r"[=\s]+", "", name)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"
    if not slug.startswith("synthetic"):  # the synthetic name already says n, year and seed
        slug = f"{slug}_n{dataset.num_households}_{dataset.fingerprint()[:8]}"
    return slug


def default_checkpoint_path(dataset: Dataset, kind: str = "per_home", root: str | Path = DEFAULT_CHECKPOINT_DIR) -> Path:
    """Where ``wattshare train-forecasters`` saves the ``kind`` model of ``dataset`` by default."""
    return Path(root) / dataset_slug(dataset) / f"lstm_{kind}.pt"


def save_checkpoint(trained: TrainedForecasters, path: str | Path) -> Path:
    """Write ``trained`` to ``path`` (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "config": trained.config.to_dict(),
        "household_ids": list(trained.household_ids),
        "dataset_name": trained.dataset_name,
        "scaling_load_kwh": torch.from_numpy(np.asarray(trained.scaling.load_kwh, dtype=np.float32)),
        "scaling_pv_kwh": torch.from_numpy(np.asarray(trained.scaling.pv_kwh, dtype=np.float32)),
        "models": [m.state_dict() for m in trained.models],
        "history": [{k: float(v) for k, v in h.items()} for h in trained.history],
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(doc, tmp)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half checkpoint under the real name
    return path


def load_checkpoint(path: str | Path) -> TrainedForecasters:
    """Read a checkpoint written by :func:`save_checkpoint`; raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt zip, truncated file, foreign pickle: all mean "not ours"
        raise CheckpointError(f"{path}: not a readable forecaster checkpoint ({type(err).__name__}: {_first_line(err)})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a wattshare forecaster checkpoint (format {_get(doc, 'format')!r})")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {doc.get('version')!r}; this code reads version {VERSION}")
    try:
        cfg = ForecasterConfig.from_dict(dict(doc["config"]))
        homes = tuple(str(h) for h in doc["household_ids"])
        load_scale = doc["scaling_load_kwh"].numpy()
        pv_scale = doc["scaling_pv_kwh"].numpy()
        states = list(doc["models"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path}: malformed checkpoint ({type(err).__name__}: {err})") from None
    n = len(homes)
    if load_scale.shape != (n,) or pv_scale.shape != (n,):
        raise CheckpointError(f"{path}: {n} homes but scaling of shape {load_scale.shape}/{pv_scale.shape}")
    models = build_models(n, cfg)
    if len(states) != len(models):
        raise CheckpointError(f"{path}: a {cfg.kind} checkpoint of {n} homes needs {len(models)} models, it holds {len(states)}")
    for i, (model, state) in enumerate(zip(models, states)):
        expected = model.state_dict()
        if set(state) != set(expected):
            raise CheckpointError(f"{path}: model {i} has parameters {sorted(state)}, expected {sorted(expected)}")
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(expected[key].shape):
                raise CheckpointError(
                    f"{path}: model {i} parameter {key} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(expected[key].shape)} for {cfg.kind} (hidden_size={cfg.hidden_size}, horizon={cfg.horizon})"
                )
        model.load_state_dict(state)
        model.eval()
    history = [dict(h) for h in doc.get("history", [])]
    return TrainedForecasters(cfg, homes, Scaling(load_scale, pv_scale), models, history, str(doc.get("dataset_name", "")))


def _get(doc: object, key: str) -> object:
    return doc.get(key) if isinstance(doc, dict) else type(doc).__name__


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else ""

"""What a benchmark result was made from: its ``run_inputs`` and their hash, the ``run_key``.

``wattshare benchmark --resume`` reuses a ``results_<policy>.json`` only when its run key equals
the one this call would make, i.e. the same:

* data (the data set's content fingerprint, :meth:`energy_env.data.dataset.Dataset.fingerprint`);
* community configuration (``EnvConfig`` as JSON, without ``reward``: the benchmark scores the
  bill, not the training reward), hashed;
* test weeks (their start intervals) and episode length;
* forecast provider (its name);
* policy: its class and name, the oracle's ``settings_record`` (method and solver budget), the
  few settings other policies carry (MPC's horizon, a learned policy's mode and residual base),
  and for a checkpoint its folder and a sha256 of its files (``meta.json``, the weights, the
  normalisers), so retraining into the same folder makes older results stale.

The code's version is not part of the key: after changing a policy's code, run without --resume.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from energy_env.community import Community

# Attributes of a policy that change what it does, where it has them (scalars only).
POLICY_SETTINGS = ("market_mechanism", "horizon_intervals", "mode", "residual_base", "residual_scale")
# A checkpoint's files that decide its actions (Adam's state does not).
CHECKPOINT_FILES = ("meta.json", "policy*.pt", "policy*.zip", "obs_rms.npz")


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def common_inputs(community: Community, starts: np.ndarray, length: int) -> dict[str, Any]:
    """The run inputs every policy of one benchmark shares: data, configuration, test weeks, forecasts."""
    config = community.config.model_dump(mode="json")
    config.pop("reward", None)
    return {
        "data_fingerprint": community.dataset.fingerprint(),
        "config_sha256": _sha256_json(config),
        "test_week_starts": [int(s) for s in np.asarray(starts).reshape(-1)],
        "episode_length": int(length),
        "forecast_provider": community.data.forecast_name,
    }


def checkpoint_digest(folder: str | Path) -> str:
    """sha256 over the names and bytes of a checkpoint folder's ``meta.json``, weights and normalisers."""
    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted({p for pattern in CHECKPOINT_FILES for p in folder.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def policy_inputs(policy: Any, num_households: int) -> dict[str, Any]:
    """What a policy adds to the run inputs: class, name, settings and, for a checkpoint, its files' hash."""
    cls = type(policy)
    record: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}", "name": policy.name}
    settings = getattr(policy, "settings_record", None)
    if callable(settings):
        settings = settings(num_households)
    if settings is not None:
        record["settings"] = settings
    for attr in POLICY_SETTINGS:
        value = getattr(policy, attr, None)
        if isinstance(value, (str, int, float, bool)):
            record[attr] = value
    source = getattr(policy, "source", None)
    if source is not None:
        record["checkpoint"] = {"source": str(Path(source).resolve()), "sha256": checkpoint_digest(source)}
    return record


def run_key(inputs: dict[str, Any]) -> str:
    """sha256 hex of the run inputs (canonical JSON)."""
    return _sha256_json(inputs)


def changed_inputs(recorded: Any, inputs: dict[str, Any]) -> list[str]:
    """The keys of ``inputs`` whose value differs from a results file's ``run_inputs`` ([] when it records none)."""
    if not isinstance(recorded, dict):
        return []
    return [k for k in sorted(set(inputs) | set(recorded)) if recorded.get(k) != inputs.get(k)]

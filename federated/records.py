"""Model weights as Flower records, and the checks a server runs on what a client sends back.

Only :class:`flwr.app.ArrayRecord` (weights) and :class:`flwr.app.MetricRecord` (scalars) ever
leave a household. A personal layer (e.g. a policy's head) stays home: the client sends every
array except those under ``personal_prefixes``, and loads back only what it sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Message

WEIGHT_KEY = "num-examples"  # FedAvg weight: training samples behind an update (Flower's convention)
UNIT_WEIGHT_KEY = "unit-weight"  # 1.0 from every client: equal weights, which DP accounting requires


def shared_keys(state: Mapping[str, object], personal_prefixes: Iterable[str] = ()) -> list[str]:
    """The keys of ``state`` that are federated: all but those starting with a personal prefix."""
    prefixes = tuple(personal_prefixes)
    return [k for k in state if not (prefixes and k.startswith(prefixes))]


def state_to_record(state: Mapping[str, torch.Tensor | np.ndarray], personal_prefixes: Iterable[str] = ()) -> ArrayRecord:
    """The shared part of a state dict as an ArrayRecord (numpy arrays; insertion order kept)."""
    out = {}
    for key in shared_keys(state, personal_prefixes):
        value = state[key]
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        out[key] = Array(np.ascontiguousarray(array))
    return ArrayRecord(out)


def record_to_state(record: ArrayRecord) -> dict[str, torch.Tensor]:
    """An ArrayRecord as a torch state dict (new tensors: the record is left untouched)."""
    return {k: torch.from_numpy(v.numpy().copy()) for k, v in record.items()}


def load_shared(module: torch.nn.Module, record: ArrayRecord) -> None:
    """Load the federated arrays of ``record`` into ``module``; its personal layers stay as they are.

    Raises ValueError naming the key when ``record`` holds a key the module lacks or a wrong shape.
    """
    own = module.state_dict()
    incoming = record_to_state(record)
    for key, value in incoming.items():
        if key not in own:
            raise ValueError(f"federated weights hold {key!r}, which the model does not have")
        if tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(f"federated weights {key!r} have shape {tuple(value.shape)}, the model {tuple(own[key].shape)}")
    module.load_state_dict(incoming, strict=False)


def reply_problem(reply: Message, expected: ArrayRecord, weight_key: str = WEIGHT_KEY) -> str | None:
    """Why a client's training reply cannot enter the average, or None when it can.

    A reply is left out when the client failed (an error reply), sent no weights, sent other keys,
    shapes or dtypes than the global model it was given, sent NaN or inf, or gave no usable weight
    (``weight_key`` missing, not a finite number > 0).
    """
    if reply.has_error():
        return f"client error: {reply.error.reason}"
    content = reply.content
    arrays = list(content.array_records.values())
    if len(arrays) != 1:
        return "sent no weights" if not arrays else f"sent {len(arrays)} weight records instead of 1"
    record = arrays[0]
    missing, extra = set(expected) - set(record), set(record) - set(expected)
    if missing or extra:
        return f"wrong parameters: missing {sorted(missing)}, unexpected {sorted(extra)}"
    for key, ref in expected.items():
        got = record[key]
        if tuple(got.shape) != tuple(ref.shape) or got.dtype != ref.dtype:
            return f"wrong shape for {key!r}: {got.dtype}{tuple(got.shape)} instead of {ref.dtype}{tuple(ref.shape)}"
        if not np.isfinite(got.numpy()).all():
            return f"NaN or inf in {key!r}"
    return metrics_problem(reply, weight_key)


def metrics_problem(reply: Message, weight_key: str = WEIGHT_KEY) -> str | None:
    """Why a reply's metrics cannot be averaged (error, not one MetricRecord, no usable weight), or None."""
    if reply.has_error():
        return f"client error: {reply.error.reason}"
    metrics = list(reply.content.metric_records.values())
    if len(metrics) != 1:
        return f"sent {len(metrics)} metric records instead of 1"
    weight = metrics[0].get(weight_key)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight <= 0:
        return f"no usable {weight_key!r} (got {weight!r})"
    return None

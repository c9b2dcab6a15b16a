"""Model weights as Flower records, and the checks a server runs on what a client sends back.

The checks: :func:`reply_problem` / :func:`metrics_problem` (can a reply be averaged at all?),
and the numbers the robust screens compare across a round (:func:`update_norms`,
:func:`claimed_weights`, :func:`far_above`).

Only :class:`flwr.app.ArrayRecord` (weights) and :class:`flwr.app.MetricRecord` (scalars) ever
leave a household. A personal layer (e.g. a policy's head) stays home: the client sends every
array except those under ``personal_prefixes``, and loads back only what it sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

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


def update_norms(records: Sequence[ArrayRecord], sent: ArrayRecord) -> np.ndarray:
    """L2 norm of each record's update (its arrays minus ``sent``) over the keys of ``sent``.

    In float64, so float32 weights of 1e30 still give a finite norm (and larger ones inf, which
    compares as far above anything). Records must hold ``sent``'s keys (:func:`reply_problem`).
    """
    keys = list(sent)

    def flat(record: ArrayRecord) -> np.ndarray:
        return np.concatenate([record[k].numpy().astype(np.float64).ravel() for k in keys]) if keys else np.zeros(0)

    base = flat(sent)
    rows = np.stack([flat(r) for r in records]) if len(records) else np.zeros((0, base.size))
    with np.errstate(over="ignore"):
        return np.sqrt(np.square(rows - base).sum(axis=1))


def claimed_weights(replies: Sequence[Message], weight_key: str = WEIGHT_KEY) -> np.ndarray:
    """The ``weight_key`` each reply claims (float64; the replies passed :func:`metrics_problem`)."""
    return np.array([float(next(iter(m.content.metric_records.values()))[weight_key]) for m in replies], dtype=np.float64)


def lower_median(values: np.ndarray) -> float:
    """The (n-1)//2-th smallest value: the median for odd n, the smaller middle value for even n.

    With two values it is the smaller one, so one client cannot raise the round's reference by
    inflating its own number (the plain median of two would sit halfway to it).
    """
    if len(values) == 0:
        raise ValueError("lower_median of no values")
    k = (len(values) - 1) // 2
    return float(np.partition(np.asarray(values, dtype=np.float64), k)[k])


def far_above(values: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """Which ``values`` exceed ``factor`` x their :func:`lower_median`, and that median.

    Flags nothing with fewer than 2 values (one has nothing to be compared with) or where the
    lower median is 0 (half the round did not move: no scale to compare against).
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return np.zeros(len(values), dtype=bool), float(values[0]) if len(values) else float("nan")
    reference = lower_median(values)
    if reference <= 0:
        return np.zeros(len(values), dtype=bool), reference
    return values > factor * reference, reference

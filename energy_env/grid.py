"""Per-household grid connection limits on the meter's net position.

The net position ``n = load - (pv - curtailed) + battery_ac`` is what the meter sees (P2P trades
flow through it too). ``n > 0`` draws energy, ``n < 0`` feeds it in. The connection allows
``-export_limit <= n <= import_limit`` in every interval. Limits are per household (``(N,)``
arrays, or scalars that broadcast).
"""

from __future__ import annotations

import numpy as np


def per_household_kwh(value: float | list[float], num_households: int) -> np.ndarray:
    """A config limit (one value, or one per household) as an ``(N,)`` float64 array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] != num_households:
        raise ValueError(f"{arr.shape[0]} per-household values for {num_households} households")
    return np.broadcast_to(arr, (num_households,)).copy()


def unserved_kwh(load_kwh: np.ndarray, pv_kwh: np.ndarray, import_limit_kwh: np.ndarray) -> np.ndarray:
    """Load that no battery action can serve: what exceeds PV plus the import limit (>= 0)."""
    return np.maximum(load_kwh - pv_kwh - import_limit_kwh, 0.0)


def curtailment_kwh(load_kwh: np.ndarray, pv_kwh: np.ndarray, battery_ac_kwh: np.ndarray, export_limit_kwh: float | np.ndarray) -> np.ndarray:
    """PV that must be curtailed to keep the net position above ``-export_limit_kwh``."""
    short = np.asarray(np.subtract(-export_limit_kwh, load_kwh - pv_kwh + battery_ac_kwh))  # every input's shape
    np.maximum(short, 0.0, out=short)
    return np.minimum(short, pv_kwh, out=short)


METER_RESOLUTION_KWH = 1e-10


def net_position_kwh(load_kwh: np.ndarray, pv_kwh: np.ndarray, curtailed_kwh: np.ndarray, battery_ac_kwh: np.ndarray) -> np.ndarray:
    """The meter's net position ``n``: positive draws, negative feeds in.

    Positions below the meter's resolution (1e-10 kWh) read as 0: the float dust left when a
    battery exactly covers the load must not show up as a P2P trade.
    """
    net = np.asarray(load_kwh - (pv_kwh - curtailed_kwh) + battery_ac_kwh)
    net[np.abs(net) < METER_RESOLUTION_KWH] = 0.0
    return net


def limit_violation_kwh(
    net_kwh: np.ndarray, import_limit_kwh: float | np.ndarray, export_limit_kwh: float | np.ndarray, tol: float = 1e-9
) -> np.ndarray:
    """How far each net position lies outside the limits (0 where it is within them)."""
    over = np.maximum(net_kwh - import_limit_kwh, 0.0) + np.maximum(-export_limit_kwh - net_kwh, 0.0)
    return np.where(over > tol, over, 0.0)


def within_limits(
    net_kwh: np.ndarray, import_limit_kwh: float | np.ndarray, export_limit_kwh: float | np.ndarray, tol: float = 1e-9
) -> bool:
    """True when :func:`limit_violation_kwh` is 0 everywhere, from two reductions instead of a pass per term.

    At most one of its two terms is positive for a household, and rounding is monotonic, so the
    largest excess is ``max(net - import_limit)`` or ``max(-export_limit - net)``.
    """
    return bool((net_kwh - import_limit_kwh).max() <= tol and (-export_limit_kwh - net_kwh).max() <= tol)

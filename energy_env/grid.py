"""Per-household grid connection limits on the meter's net position.

The net position ``n = load - (pv - curtailed) + battery_ac`` is what the meter sees (P2P trades
flow through it too). ``n > 0`` draws energy, ``n < 0`` feeds it in. The connection allows
``-export_limit <= n <= import_limit`` in every interval.
"""

from __future__ import annotations

import numpy as np


def curtailment_kwh(load_kwh: np.ndarray, pv_kwh: np.ndarray, battery_ac_kwh: np.ndarray, export_limit_kwh: float) -> np.ndarray:
    """PV that must be curtailed to keep the net position above ``-export_limit_kwh``."""
    raw_net = load_kwh - pv_kwh + battery_ac_kwh
    return np.minimum(np.maximum(-export_limit_kwh - raw_net, 0.0), pv_kwh)


METER_RESOLUTION_KWH = 1e-10


def net_position_kwh(load_kwh: np.ndarray, pv_kwh: np.ndarray, curtailed_kwh: np.ndarray, battery_ac_kwh: np.ndarray) -> np.ndarray:
    """The meter's net position ``n``: positive draws, negative feeds in.

    Positions below the meter's resolution (1e-10 kWh) read as 0: the float dust left when a
    battery exactly covers the load must not show up as a P2P trade.
    """
    net = load_kwh - (pv_kwh - curtailed_kwh) + battery_ac_kwh
    return np.where(np.abs(net) < METER_RESOLUTION_KWH, 0.0, net)


def limit_violation_kwh(net_kwh: np.ndarray, import_limit_kwh: float, export_limit_kwh: float, tol: float = 1e-9) -> np.ndarray:
    """How far each net position lies outside the limits (0 where it is within them)."""
    over = np.maximum(net_kwh - import_limit_kwh, 0.0) + np.maximum(-export_limit_kwh - net_kwh, 0.0)
    return np.where(over > tol, over, 0.0)

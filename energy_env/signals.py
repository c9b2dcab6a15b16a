"""The seed's per-household profitability score (0-100) and GREEN/RED power-need signal.

Four components, each in [0, 1]:

* trading potential ``p = min(1, |load - pv| / ref_kwh)``: how much energy the home has to buy
  or sell this interval, against one interval at the battery's max power (2.5 kWh by default);
* market conditions ``m``: how much better the coordinator's expected internal price is than
  the grid for this home's side, ``(Pb - P)/(Pb - Ps')`` for a buyer and ``(P - Ps')/(Pb - Ps')``
  for a seller, with ``Ps' = Ps / (1 - loss)``; 0 when the market cannot clear (``Ps' >= Pb``);
* battery health ``h = 1 - min(1, cycles per day so far)``, cycles = AC throughput / (2 x usable
  capacity); 1 for a home without a battery;
* capacity utilisation ``c``: the battery's state within its usable band, 0 without a battery.

``score = 100 * (0.4 p + 0.3 m + 0.15 h + 0.15 c)``. The power-need signal is GREEN (1) when the
home can cover its own load this interval from PV and the battery's available energy, RED (0)
when it needs energy from the market or the grid.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = (0.4, 0.3, 0.15, 0.15)


def profitability_score(
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    soc_fraction_usable: np.ndarray,
    cycles_per_day: np.ndarray,
    has_battery: np.ndarray,
    expected_price_usd_per_kwh: np.ndarray,
    import_price_usd_per_kwh: np.ndarray,
    export_price_usd_per_kwh: np.ndarray,
    loss: float,
    ref_kwh: float = 2.5,
) -> np.ndarray:
    """Score in [0, 100] per household (``(..., N)``); prices have the batch shape ``(...)``."""
    net = load_kwh - pv_kwh
    potential = np.minimum(np.abs(net) / ref_kwh, 1.0)
    buy = np.asarray(import_price_usd_per_kwh)[..., None]
    sell = np.asarray(export_price_usd_per_kwh)[..., None] / (1.0 - loss)
    price = np.asarray(expected_price_usd_per_kwh)[..., None]
    spread = buy - sell
    safe_spread = np.where(spread > 0, spread, 1.0)
    gain = np.where(net > 0, buy - price, price - sell) / safe_spread
    market = np.where(spread > 0, np.clip(gain, 0.0, 1.0), 0.0)
    health = np.where(has_battery, 1.0 - np.minimum(cycles_per_day, 1.0), 1.0)
    capacity = np.where(has_battery, soc_fraction_usable, 0.0)
    w = WEIGHTS
    return 100.0 * (w[0] * potential + w[1] * market + w[2] * health + w[3] * capacity)


def power_need_signal(load_kwh: np.ndarray, pv_kwh: np.ndarray, available_discharge_kwh: np.ndarray) -> np.ndarray:
    """1.0 (GREEN) where PV plus available battery energy covers the load, else 0.0 (RED)."""
    return (load_kwh - pv_kwh <= available_discharge_kwh).astype(np.float64)

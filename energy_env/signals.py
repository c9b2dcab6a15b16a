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
    """Score in [0, 100] per household (``(..., N)``); prices have the batch shape ``(...)``.

    ``load_kwh``, ``pv_kwh``, ``soc_fraction_usable`` and ``cycles_per_day`` share one shape.
    """
    as_buyer, as_seller = market_terms(expected_price_usd_per_kwh, import_price_usd_per_kwh, export_price_usd_per_kwh, loss)
    return score_from_market_terms(
        load_kwh, pv_kwh, soc_fraction_usable, cycles_per_day, has_battery, as_buyer[..., None], as_seller[..., None], ref_kwh
    )


def market_terms(
    expected_price_usd_per_kwh: np.ndarray, import_price_usd_per_kwh: np.ndarray, export_price_usd_per_kwh: np.ndarray, loss: float
) -> tuple[np.ndarray, np.ndarray]:
    """The weighted market component ``w1 m`` for a buyer and for a seller, per scenario.

    It depends on a household only through its side, so it is computed per scenario (or once per
    interval of a data set, as the core does) and then picked per household.
    """
    buy = np.asarray(import_price_usd_per_kwh, dtype=np.float64)
    sell = np.asarray(export_price_usd_per_kwh, dtype=np.float64) / (1.0 - loss)
    price = np.asarray(expected_price_usd_per_kwh, dtype=np.float64)
    spread = buy - sell
    tradable = spread > 0
    safe_spread = np.where(tradable, spread, 1.0)
    as_buyer = WEIGHTS[1] * np.where(tradable, np.clip((buy - price) / safe_spread, 0.0, 1.0), 0.0)
    as_seller = WEIGHTS[1] * np.where(tradable, np.clip((price - sell) / safe_spread, 0.0, 1.0), 0.0)
    return as_buyer, as_seller


def score_from_market_terms(
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    soc_fraction_usable: np.ndarray,
    cycles_per_day: np.ndarray,
    has_battery: np.ndarray | bool,
    market_as_buyer: np.ndarray,
    market_as_seller: np.ndarray,
    ref_kwh: float,
) -> np.ndarray:
    """The score from :func:`market_terms` (broadcastable against the households, e.g. ``(B, 1)``)."""
    w = WEIGHTS
    net = load_kwh - pv_kwh
    # score = 100 (w0 p + w1 m + w2 h + w3 c), summed in that order into one array
    score = np.abs(net)
    score /= ref_kwh
    np.minimum(score, 1.0, out=score)
    score *= w[0]
    score += np.where(net > 0, market_as_buyer, market_as_seller)
    health = np.minimum(cycles_per_day, 1.0)
    np.subtract(1.0, health, out=health)
    all_batteries = has_battery is True or bool(np.all(has_battery))
    if not all_batteries:
        health = np.where(has_battery, health, 1.0)
    health *= w[2]
    score += health
    capacity = soc_fraction_usable if all_batteries else np.where(has_battery, soc_fraction_usable, 0.0)
    score += w[3] * capacity
    score *= 100.0
    return score


def power_need_signal(load_kwh: np.ndarray, pv_kwh: np.ndarray, available_discharge_kwh: np.ndarray) -> np.ndarray:
    """1.0 (GREEN) where PV plus available battery energy covers the load, else 0.0 (RED)."""
    return (load_kwh - pv_kwh <= available_discharge_kwh).astype(np.float64)

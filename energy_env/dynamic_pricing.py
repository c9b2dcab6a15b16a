"""A wholesale-indexed import price: the dynamic-pricing option beside the E-TOU-C default.

With ``tariff.import_pricing: caiso_indexed`` the price every home pays for grid imports follows a
CAISO node's wholesale price (by default the PG&E DLAP, day-ahead market):

```
import(t) = clip(multiplier * wholesale(t) + adder, floor, cap)          $/kWh, per 30-minute interval
```

* ``adder`` stands for everything a retail rate adds to energy (delivery, transmission, public
  purpose programmes, ...). Left unset it is **calibrated**: the one value that makes the mean
  import price over the data set's intervals equal the E-TOU-C mean over the same intervals. The
  switch then changes *when* energy is dear, not the average price level, so savings against the
  two pricings compare control strategies rather than price levels. (It is the time average, not
  a bill: a home whose load sits in cheap hours pays less under either.)
* ``floor`` (default 0) keeps negative wholesale prices from paying homes to import; ``cap``
  (default 1 $/kWh) bounds scarcity spikes (CAISO's RTM reached 1.15 $/kWh in 2024). ``floor <
  cap`` is required, and a calibration target outside ``[floor, cap]`` is refused.
* Exports keep the configured credit (NBT, flat), except NEM 2, whose credit is by definition the
  retail rate of the interval less non-bypassable charges, so it follows the indexed rate.
* The P2P market needs no change: the coordinator's internal price (SDR, mid-market) is computed
  from the grid prices, so it lies in ``[Ps / 0.95, Pb]`` and now moves with wholesale prices too.
* Kept from E-TOU-C: the ``is_peak`` flag of the observations (the tariff's 16:00-21:00 window),
  the baseline credit (if enabled) and the default terminal price (the off-peak E-TOU-C rate of the
  last day), so that episodes under both pricings settle the battery alike.
* Price forecasts in observations are the actual future prices: right for the day-ahead market
  (published the day before), optimistic for the real-time market.

The functions here are pure (arrays in, arrays out); :func:`wholesale_indexed_price_table` is the
one-call glue that ``precompute.build_data`` uses, reading the series named by the config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from energy_env.tariff import PriceTable

__all__ = [
    "IndexedPricing",
    "calibrate_adder_usd_per_kwh",
    "indexed_import_usd_per_kwh",
    "indexed_price_table",
    "wholesale_indexed_price_table",
]


@dataclass(frozen=True)
class IndexedPricing:
    """Parameters of the indexed import price (see the module docstring)."""

    multiplier: float = 1.0
    adder_usd_per_kwh: float | None = None  # None: calibrated to the E-TOU-C mean
    floor_usd_per_kwh: float = 0.0
    cap_usd_per_kwh: float = 1.0

    def __post_init__(self) -> None:
        for name in ("multiplier", "floor_usd_per_kwh", "cap_usd_per_kwh"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if self.multiplier <= 0:
            raise ValueError(f"multiplier must be > 0, got {self.multiplier}")
        if not self.floor_usd_per_kwh < self.cap_usd_per_kwh:
            raise ValueError(f"floor ({self.floor_usd_per_kwh}) must be below cap ({self.cap_usd_per_kwh}) $/kWh")
        if self.adder_usd_per_kwh is not None and not np.isfinite(self.adder_usd_per_kwh):
            raise ValueError(f"adder_usd_per_kwh must be finite or None, got {self.adder_usd_per_kwh}")


def _checked(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} is not finite at position {int(np.flatnonzero(~np.isfinite(arr))[0])}")
    return arr


def calibrate_adder_usd_per_kwh(
    wholesale_usd_per_kwh: np.ndarray, target_mean_usd_per_kwh: float, params: IndexedPricing
) -> float:
    """The adder whose clipped import price has mean ``target_mean_usd_per_kwh`` (bisection; monotone).

    Raises:
        ValueError: if the target lies outside ``[floor, cap]`` (no adder reaches it).
    """
    w = params.multiplier * _checked("wholesale_usd_per_kwh", wholesale_usd_per_kwh)
    lo_p, hi_p = params.floor_usd_per_kwh, params.cap_usd_per_kwh
    if not lo_p <= target_mean_usd_per_kwh <= hi_p:
        raise ValueError(
            f"cannot calibrate the adder: the target mean {target_mean_usd_per_kwh:.4f} $/kWh lies outside "
            f"[floor, cap] = [{lo_p}, {hi_p}]"
        )
    lo, hi = lo_p - w.max(), hi_p - w.min()  # all prices at the floor / at the cap
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(w + mid, lo_p, hi_p).mean() < target_mean_usd_per_kwh:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def indexed_import_usd_per_kwh(
    wholesale_usd_per_kwh: np.ndarray, params: IndexedPricing, reference_import_usd_per_kwh: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Per-interval import price indexed to ``wholesale_usd_per_kwh``.

    Args:
        wholesale_usd_per_kwh: ``(T,)`` wholesale price of each interval.
        params: multiplier, adder (None: calibrated), floor and cap.
        reference_import_usd_per_kwh: ``(T,)`` the E-TOU-C price of the same intervals; needed only
            to calibrate the adder.

    Returns:
        ``(import_usd_per_kwh, adder_usd_per_kwh)``: the prices and the adder used.
    """
    w = _checked("wholesale_usd_per_kwh", wholesale_usd_per_kwh)
    adder = params.adder_usd_per_kwh
    if adder is None:
        if reference_import_usd_per_kwh is None:
            raise ValueError("adder_usd_per_kwh is None (calibrate), but no reference import price was given")
        ref = _checked("reference_import_usd_per_kwh", reference_import_usd_per_kwh)
        if ref.shape != w.shape:
            raise ValueError(f"reference has shape {ref.shape}, wholesale {w.shape}")
        adder = calibrate_adder_usd_per_kwh(w, float(ref.mean()), params)
    prices = np.clip(params.multiplier * w + adder, params.floor_usd_per_kwh, params.cap_usd_per_kwh)
    return prices, float(adder)


def indexed_price_table(
    prices: PriceTable,
    wholesale_usd_per_kwh: np.ndarray,
    params: IndexedPricing,
    wholesale_description: str,
    nem2_non_bypassable_usd_per_kwh: float | None = None,
) -> PriceTable:
    """A copy of an E-TOU-C :class:`PriceTable` whose import price is indexed to wholesale.

    Args:
        prices: the tariff's table for the same timestamps (its import price is the calibration
            reference; its export price, flags and off-peak rates are kept).
        wholesale_usd_per_kwh: ``(T,)`` aligned with ``prices.timestamps``.
        wholesale_description: names the series in the table's description (benchmark results
            state which pricing was used).
        nem2_non_bypassable_usd_per_kwh: set when the export is NEM 2: its credit then follows the
            indexed import price less this charge (floored at 0).
    """
    w = _checked("wholesale_usd_per_kwh", wholesale_usd_per_kwh)
    if w.shape != (len(prices),):
        raise ValueError(f"wholesale_usd_per_kwh has shape {w.shape}, expected ({len(prices)},) like the price table")
    imp, adder = indexed_import_usd_per_kwh(w, params, prices.import_usd_per_kwh)
    exp = prices.export_usd_per_kwh
    if nem2_non_bypassable_usd_per_kwh is not None:
        exp = np.maximum(imp - nem2_non_bypassable_usd_per_kwh, 0.0)
    for a in (imp, exp):
        a.setflags(write=False)
    how = "calibrated to the E-TOU-C mean" if params.adder_usd_per_kwh is None else "fixed"
    mult = f"{params.multiplier:g} x " if params.multiplier != 1.0 else ""
    description = (
        f"import indexed to {wholesale_description}: {mult}wholesale + {adder:.4f} $/kWh adder ({how}), "
        f"clipped to [{params.floor_usd_per_kwh:g}, {params.cap_usd_per_kwh:g}] $/kWh, mean {imp.mean():.4f} $/kWh; "
        f"tariff otherwise {prices.description}"
    )
    return replace(prices, import_usd_per_kwh=imp, export_usd_per_kwh=exp, description=description)


def wholesale_indexed_price_table(prices: PriceTable, cfg: Any) -> PriceTable:
    """:func:`indexed_price_table` with the series and parameters of an ``EnvConfig`` (``cfg.tariff.wholesale``).

    Reads the series once per process (cached) and aligns it to ``prices.timestamps``.
    """
    from energy_env.data.caiso import PriceSourceOptions, cached_price_series

    wcfg = cfg.tariff.wholesale
    series = cached_price_series(PriceSourceOptions.from_config(wcfg, cfg.database))
    align = wcfg.align
    wholesale = series.on(prices.timestamps, align)
    params = IndexedPricing(
        multiplier=wcfg.multiplier,
        adder_usd_per_kwh=wcfg.adder_usd_per_kwh,
        floor_usd_per_kwh=wcfg.floor_usd_per_kwh,
        cap_usd_per_kwh=wcfg.cap_usd_per_kwh,
    )
    label = series.name + (" replayed on the data set's calendar" if align == "calendar" else "")
    nbc = cfg.tariff.nem2_non_bypassable_usd_per_kwh if cfg.tariff.export == "nem2" else None
    return indexed_price_table(prices, wholesale, params, label, nbc)

"""Home batteries as arrays over households: limits, feasible power and the state transition.

Sign convention: ``battery_ac_kwh`` (``b``) is energy on the AC side of the inverter in one
interval, positive when charging. Stored energy (``soc_kwh``) changes by ``b * eta_charge`` when
charging and by ``b / eta_discharge`` when discharging, so the round-trip efficiency is
``eta_charge * eta_discharge``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from energy_env.config import INTERVAL_HOURS, BatteryConfig


@dataclass(frozen=True)
class BatteryParams:
    """Per-household battery parameters, each an ``(N,)`` float64 array (0 capacity = no battery)."""

    capacity_kwh: np.ndarray
    soc_min_kwh: np.ndarray
    soc_max_kwh: np.ndarray
    initial_soc_kwh: np.ndarray
    eta_charge: float
    eta_discharge: float
    max_ac_kwh: np.ndarray  # max AC energy per interval (power x dt); 0 for homes without a battery
    degradation_cost_usd_per_kwh: float
    charge_from_grid: bool


def battery_params(cfg: BatteryConfig, num_households: int) -> BatteryParams:
    """Expand a :class:`BatteryConfig` into per-household arrays."""
    cap = np.broadcast_to(np.asarray(cfg.capacity_kwh, dtype=np.float64), (num_households,)).copy()
    has_battery = cap > 0
    eta = float(np.sqrt(cfg.round_trip_efficiency))  # split evenly between charge and discharge
    return BatteryParams(
        capacity_kwh=cap,
        soc_min_kwh=cap * cfg.soc_min_fraction,
        soc_max_kwh=cap * cfg.soc_max_fraction,
        initial_soc_kwh=cap * cfg.initial_soc_fraction,
        eta_charge=eta,
        eta_discharge=eta,
        max_ac_kwh=np.where(has_battery, cfg.max_power_kw * INTERVAL_HOURS, 0.0),
        degradation_cost_usd_per_kwh=cfg.degradation_cost_usd_per_kwh,
        charge_from_grid=cfg.charge_from_grid,
    )


def ac_bounds(
    soc_kwh: np.ndarray,
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    params: BatteryParams,
    import_limit_kwh: float,
    export_limit_kwh: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Feasible AC battery energy ``[lo, hi]`` (``lo <= 0 <= hi``) for this interval.

    Charging is bounded by power, room to the upper state bound, and the charging source: the
    home's own PV surplus by default, else the import limit. Discharging is bounded by power,
    energy above the lower state bound, and what the home can use or export within the export
    limit (discharging into curtailment would only waste energy).
    """
    room_kwh = np.maximum(params.soc_max_kwh - soc_kwh, 0.0) / params.eta_charge
    avail_kwh = np.maximum(soc_kwh - params.soc_min_kwh, 0.0) * params.eta_discharge
    if params.charge_from_grid:
        source_kwh = np.maximum(import_limit_kwh - load_kwh + pv_kwh, 0.0)
    else:
        source_kwh = np.maximum(pv_kwh - load_kwh, 0.0)
    hi = np.minimum(np.minimum(params.max_ac_kwh, room_kwh), source_kwh)
    sink_kwh = np.maximum(export_limit_kwh + load_kwh - pv_kwh, 0.0)
    lo = -np.minimum(np.minimum(params.max_ac_kwh, avail_kwh), sink_kwh)
    return lo, hi


def next_soc(soc_kwh: np.ndarray, battery_ac_kwh: np.ndarray, params: BatteryParams) -> np.ndarray:
    """Stored energy after applying a feasible AC energy ``battery_ac_kwh``."""
    delta = np.where(
        battery_ac_kwh >= 0.0,
        battery_ac_kwh * params.eta_charge,
        battery_ac_kwh / params.eta_discharge,
    )
    # Clamp only float dust: a feasible b lands on a bound up to rounding, never beyond it.
    return np.clip(soc_kwh + delta, params.soc_min_kwh, params.soc_max_kwh)


def degradation_cost_usd(battery_ac_kwh: np.ndarray, params: BatteryParams) -> np.ndarray:
    """Wear cost of this interval's AC throughput."""
    return np.abs(battery_ac_kwh) * params.degradation_cost_usd_per_kwh

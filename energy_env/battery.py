"""Home batteries as arrays over households: limits, feasible power and the state transition.

Sign convention: ``battery_ac_kwh`` (``b``) is energy on the AC side of the inverter in one
interval, positive when charging. Stored energy (``soc_kwh``) changes by ``b * eta_charge`` when
charging and by ``b / eta_discharge`` when discharging, so the round-trip efficiency is
``eta_charge * eta_discharge``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # Derived once here rather than on every step (not constructor arguments):
    has_battery: np.ndarray = field(init=False)  # (N,) bool
    all_batteries: bool = field(init=False)
    usable_kwh: np.ndarray = field(init=False)  # (N,) soc_max - soc_min, 1.0 without a battery (a safe divisor)
    reference_kwh: float = field(init=False)  # the largest max_ac_kwh (1e-9 if none): the signals' scale

    def __post_init__(self) -> None:
        has_battery = self.capacity_kwh > 0
        object.__setattr__(self, "has_battery", has_battery)
        object.__setattr__(self, "all_batteries", bool(has_battery.all()))
        object.__setattr__(self, "usable_kwh", np.where(has_battery, self.soc_max_kwh - self.soc_min_kwh, 1.0))
        object.__setattr__(self, "reference_kwh", max(float(np.max(self.max_ac_kwh, initial=0.0)), 1e-9))


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
    import_limit_kwh: float | np.ndarray,
    export_limit_kwh: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Feasible AC battery energy ``[lo, hi]`` (``lo <= 0 <= hi``) for this interval.

    Charging is bounded by power, room to the upper state bound, and the charging source: the
    home's own PV surplus by default, else the import limit. Discharging is bounded by power,
    energy above the lower state bound, and what the home can use or export within the export
    limit (discharging into curtailment would only waste energy).
    """
    # Steps with a scalar or a per-household parameter write into their fresh operand (same
    # arithmetic, one array less each); only the two mixed minima allocate.
    room_kwh = np.subtract(params.soc_max_kwh, soc_kwh)
    np.maximum(room_kwh, 0.0, out=room_kwh)
    room_kwh /= params.eta_charge
    avail_kwh = np.subtract(soc_kwh, params.soc_min_kwh)
    np.maximum(avail_kwh, 0.0, out=avail_kwh)
    avail_kwh *= params.eta_discharge
    if params.charge_from_grid:
        source_kwh = np.asarray(np.subtract(import_limit_kwh, load_kwh) + pv_kwh)
    else:
        source_kwh = np.asarray(np.subtract(pv_kwh, load_kwh))
    np.maximum(source_kwh, 0.0, out=source_kwh)
    hi = np.minimum(room_kwh, source_kwh)
    np.minimum(hi, params.max_ac_kwh, out=hi)
    sink_kwh = np.asarray(np.add(export_limit_kwh, load_kwh) - pv_kwh)
    np.maximum(sink_kwh, 0.0, out=sink_kwh)
    lo = np.minimum(avail_kwh, sink_kwh)
    np.minimum(lo, params.max_ac_kwh, out=lo)
    return np.negative(lo, out=lo), hi


def next_soc(soc_kwh: np.ndarray, battery_ac_kwh: np.ndarray, params: BatteryParams) -> np.ndarray:
    """Stored energy after applying a feasible AC energy ``battery_ac_kwh``."""
    delta = np.where(
        battery_ac_kwh >= 0.0,
        battery_ac_kwh * params.eta_charge,
        battery_ac_kwh / params.eta_discharge,
    )
    # Clamp only float dust: a feasible b lands on a bound up to rounding, never beyond it.
    soc = np.maximum(soc_kwh + delta, params.soc_min_kwh)  # has the per-household shape too
    return np.minimum(soc, params.soc_max_kwh, out=soc)


def degradation_cost_usd(battery_ac_kwh: np.ndarray, params: BatteryParams) -> np.ndarray:
    """Wear cost of this interval's AC throughput."""
    return np.abs(battery_ac_kwh) * params.degradation_cost_usd_per_kwh

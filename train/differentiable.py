"""A differentiable twin of the core's step, in torch: what analytic policy gradients need.

:func:`energy_env.core.transition` defines the model in numpy, and the envs step through its
compiled twin. This module writes the same battery, grid, market and tariff rules as torch
operations, so that an episode's cost can be differentiated with respect to the setpoints and,
through the policy, the state of charge (:mod:`train.apg`). It covers the pool mechanisms
(``sdr``, ``mid_market``, ``bill_sharing``, ``none``); the double auction clears by sorting limit
orders, which has no useful derivative, and is refused with :class:`TwinError`.

Everything is ``float64``, like the core, and tested to return the core's cost and state of charge
to rounding (``tests/test_apg.py``). At the kinks of the rules (a battery at a bound, a home
switching from importing to exporting) torch's ``minimum``/``maximum``/``clamp`` take the
derivative of one side: a subgradient.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from energy_env.community import Community
from energy_env.config import INTERVALS_PER_DAY

POOL_MECHANISMS = ("sdr", "mid_market", "bill_sharing", "none")
DTYPE = torch.float64


class TwinError(ValueError):
    """The community uses a rule the differentiable twin does not model (the double auction)."""


@dataclass(frozen=True)
class Twin:
    """A community's static parameters and exogenous series as tensors (``(N,)`` per home, ``(T, ...)`` per interval)."""

    load_kwh: torch.Tensor  # (T, N) served load
    pv_kwh: torch.Tensor  # (T, N)
    import_usd_per_kwh: torch.Tensor  # (T,)
    export_usd_per_kwh: torch.Tensor  # (T,)
    offpeak_usd_per_kwh: torch.Tensor  # (days,)
    allowance_kwh: torch.Tensor  # (days,) E-TOU-C baseline allowance
    soc_min_kwh: torch.Tensor  # (N,)
    soc_max_kwh: torch.Tensor
    max_ac_kwh: torch.Tensor
    import_limit_kwh: torch.Tensor
    export_limit_kwh: torch.Tensor
    eta_charge: float
    eta_discharge: float
    charge_from_grid: bool
    degradation_usd_per_kwh: float
    mechanism: str
    loss: float
    terminal_price_usd_per_kwh: float | None
    baseline_credit_usd_per_kwh: float


def twin_of(community: Community) -> Twin:
    """The twin of ``community``; :class:`TwinError` for the double auction."""
    p, d = community.params, community.data
    mechanism = str(getattr(p.mechanism, "value", p.mechanism))
    if mechanism not in POOL_MECHANISMS:
        raise TwinError(f"market.mechanism {mechanism!r} has no differentiable twin (a sort of limit orders); "
                        f"analytic policy gradients need one of {POOL_MECHANISMS}")
    def t(a: np.ndarray) -> torch.Tensor:
        # Shares memory with the core's read-only arrays (no copy of a year of every home); the
        # twin never writes to them, so torch's warning about non-writable arrays does not apply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.as_tensor(np.asarray(a, dtype=np.float64))

    bp = p.battery
    return Twin(
        load_kwh=t(d.load_kwh), pv_kwh=t(d.pv_kwh), import_usd_per_kwh=t(d.import_usd_per_kwh), export_usd_per_kwh=t(d.export_usd_per_kwh),
        offpeak_usd_per_kwh=t(d.offpeak_usd_per_kwh), allowance_kwh=t(d.baseline_allowance_kwh),
        soc_min_kwh=t(bp.soc_min_kwh), soc_max_kwh=t(bp.soc_max_kwh), max_ac_kwh=t(bp.max_ac_kwh),
        import_limit_kwh=t(p.import_limit_kwh), export_limit_kwh=t(p.export_limit_kwh),
        eta_charge=float(bp.eta_charge), eta_discharge=float(bp.eta_discharge), charge_from_grid=bool(bp.charge_from_grid),
        degradation_usd_per_kwh=float(bp.degradation_cost_usd_per_kwh), mechanism=mechanism, loss=float(p.loss),
        terminal_price_usd_per_kwh=p.terminal_price_usd_per_kwh, baseline_credit_usd_per_kwh=float(p.baseline_credit_usd_per_kwh),
    )


@dataclass(frozen=True)
class TwinStep:
    """What one step of the twin returns, ``(B, N)`` per home and ``(B,)`` per scenario."""

    soc_kwh: torch.Tensor  # state of energy after the step
    cost_usd: torch.Tensor  # the home's cost of the interval, as core.transition's cost_usd (settlement included)
    battery_ac_kwh: torch.Tensor
    grid_import_kwh: torch.Tensor
    price_usd_per_kwh: torch.Tensor  # the P2P price (the import price when the market did not clear)


def battery_ac_kwh(twin: Twin, soc_kwh: torch.Tensor, setpoint: torch.Tensor, load_kwh: torch.Tensor, pv_kwh: torch.Tensor) -> torch.Tensor:
    """The applied AC energy: the clipped setpoint projected onto :func:`energy_env.battery.ac_bounds`."""
    room = torch.clamp(twin.soc_max_kwh - soc_kwh, min=0.0) / twin.eta_charge
    avail = torch.clamp(soc_kwh - twin.soc_min_kwh, min=0.0) * twin.eta_discharge
    source = (twin.import_limit_kwh - load_kwh + pv_kwh) if twin.charge_from_grid else (pv_kwh - load_kwh)
    hi = torch.minimum(torch.minimum(room, torch.clamp(source, min=0.0)), twin.max_ac_kwh)
    sink = torch.clamp(twin.export_limit_kwh + load_kwh - pv_kwh, min=0.0)
    lo = -torch.minimum(torch.minimum(avail, sink), twin.max_ac_kwh)
    return torch.minimum(torch.maximum(torch.clamp(setpoint, -1.0, 1.0) * twin.max_ac_kwh, lo), hi)


def next_soc_kwh(twin: Twin, soc_kwh: torch.Tensor, battery_kwh: torch.Tensor) -> torch.Tensor:
    """:func:`energy_env.battery.next_soc`."""
    delta = torch.where(battery_kwh >= 0.0, battery_kwh * twin.eta_charge, battery_kwh / twin.eta_discharge)
    return torch.minimum(torch.maximum(soc_kwh + delta, twin.soc_min_kwh), twin.soc_max_kwh)


def pool_price_usd_per_kwh(mechanism: str, sdr: torch.Tensor, buy_usd: torch.Tensor, sell_usd: torch.Tensor) -> torch.Tensor:
    """The pool's internal price per kWh received (:data:`energy_env.market.PRICE_RULES`)."""
    if mechanism == "sdr":
        r = torch.clamp(sdr, max=1.0)
        return sell_usd * buy_usd / ((buy_usd - sell_usd) * r + sell_usd)
    if mechanism == "mid_market":
        return 0.5 * (buy_usd + sell_usd)
    return torch.zeros_like(sdr)  # bill_sharing: energy shared inside is free


def step(twin: Twin, soc_kwh: torch.Tensor, setpoint: torch.Tensor, t: torch.Tensor, used_kwh: torch.Tensor,
         soc_start_kwh: torch.Tensor, done: torch.Tensor) -> tuple[TwinStep, torch.Tensor]:
    """One interval of B scenarios: :func:`energy_env.core.transition`'s cost and state, differentiably.

    ``t`` ``(B,)`` global intervals; ``used_kwh`` ``(B, N)`` grid imports so far today before this
    step's midnight reset (the baseline credit's state); ``done`` ``(B,)`` True where this is the
    episode's last step (its battery change is settled at the terminal price). Returns the step
    and the next ``used_kwh``.
    """
    load, pv = twin.load_kwh[t], twin.pv_kwh[t]
    imp, exp = twin.import_usd_per_kwh[t], twin.export_usd_per_kwh[t]
    b = battery_ac_kwh(twin, soc_kwh, setpoint, load, pv)
    curtailed = torch.minimum(torch.clamp(-twin.export_limit_kwh - (load - pv + b), min=0.0), pv)
    net = load - (pv - curtailed) + b
    net = torch.where(net.abs() < 1e-10, torch.zeros_like(net), net)  # the meter's resolution (energy_env.grid)

    # The pool (energy_env.market.clear): pro-rata matching, sellers bear the loss.
    keep = 1.0 - twin.loss
    asked, offered = torch.clamp(net, min=0.0), torch.clamp(-net, min=0.0)
    supply, demand = offered.sum(-1), asked.sum(-1)
    buy, sell = imp, exp / keep
    cleared = (supply > 0) & (demand > 0) & (sell < buy) & (twin.mechanism != "none")
    one = torch.ones_like(supply)
    demand_safe, supply_safe = torch.where(demand > 0, demand, one), torch.where(supply > 0, supply, one)
    received = torch.where(cleared, torch.minimum(supply * keep, demand), torch.zeros_like(supply))
    bought_share = torch.where(cleared & (received >= demand), one, received / demand_safe)
    sold_share = torch.where(cleared & (received / keep >= supply), one, received / keep / supply_safe)
    bought, sold = asked * bought_share[:, None], offered * sold_share[:, None]
    sdr = supply * keep / demand_safe
    price = torch.where(cleared, pool_price_usd_per_kwh(twin.mechanism, sdr, buy, sell), buy)
    grid_import, grid_export = asked - bought, offered - sold
    cost = grid_import * imp[:, None] - grid_export * exp[:, None] + bought * price[:, None] - sold * (price * keep)[:, None]
    if twin.degradation_usd_per_kwh > 0.0:
        cost = cost + b.abs() * twin.degradation_usd_per_kwh

    midnight = (t % INTERVALS_PER_DAY == 0)[:, None]
    used = torch.where(midnight, torch.zeros_like(used_kwh), used_kwh)
    if twin.baseline_credit_usd_per_kwh > 0.0:
        allowance = twin.allowance_kwh[t // INTERVALS_PER_DAY][:, None]
        cost = cost - twin.baseline_credit_usd_per_kwh * torch.minimum(grid_import, torch.clamp(allowance - used, min=0.0))
    soc = next_soc_kwh(twin, soc_kwh, b)
    if bool(done.any()):
        price_end = (torch.full_like(imp, twin.terminal_price_usd_per_kwh) if twin.terminal_price_usd_per_kwh is not None
                     else twin.offpeak_usd_per_kwh[t // INTERVALS_PER_DAY])
        cost = cost - torch.where(done[:, None], (soc - soc_start_kwh) * price_end[:, None], torch.zeros_like(cost))
    return TwinStep(soc, cost, b, grid_import, price), used + grid_import

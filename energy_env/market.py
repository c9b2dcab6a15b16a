"""The central coordinator's P2P market: instant pro-rata matching and internal prices.

Every interval, households with a positive net position (buyers) and a negative one (sellers)
are matched at once, with no order book. A buyer receives ``1 - loss`` kWh for every kWh a seller
sends (5% transmission loss by default). Allocation is pro rata; what is not matched is imported
from or exported to the grid. All mechanisms share that clearing and differ only in the internal
price per kWh received; buyers pay it, and sellers share the money pro rata to the energy sent.

Arrays: households on the last axis (``(..., N)``), anything in front is a batch of scenarios;
prices have the batch shape (``(...,)``). Cost is O(N) per scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np


class Mechanism(str, Enum):
    """The market's pricing rule (``market.mechanism``); a ``str``, so ``Mechanism.SDR == "sdr"``."""

    SDR = "sdr"  # supply-demand ratio price (Liu et al. 2017)
    MID_MARKET = "mid_market"  # halfway between the sellers' break-even and the import price
    BILL_SHARING = "bill_sharing"  # P2P energy free; the community splits the grid bill
    NONE = "none"  # no P2P market: every home meets the grid alone
    DOUBLE_AUCTION = "double_auction"  # limit orders, one clearing price (energy_env.auction)

    @property
    def code(self) -> int:
        """The integer the compiled kernel branches on (fixed per mechanism, not by declaration order)."""
        return _CODES[self]


_CODES = {Mechanism.SDR: 0, Mechanism.MID_MARKET: 1, Mechanism.BILL_SHARING: 2, Mechanism.NONE: 3, Mechanism.DOUBLE_AUCTION: 4}
MECHANISMS: tuple[str, ...] = tuple(m.value for m in Mechanism)


@dataclass(frozen=True)
class Clearing:
    """Result of one market interval. Per-household arrays ``(..., N)``, per-scenario ``(...)``."""

    p2p_bought_kwh: np.ndarray  # energy received by each buyer
    p2p_sold_kwh: np.ndarray  # energy sent by each seller (the loss is on the sellers' side)
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    p2p_paid_usd: np.ndarray  # buyers' payments into the pool
    p2p_revenue_usd: np.ndarray  # sellers' share of the pool
    price_usd_per_kwh: np.ndarray  # internal price per kWh received; the grid price when not cleared
    sdr: np.ndarray  # deliverable supply / demand (inf with supply and no demand, 0 without supply)
    supply_kwh: np.ndarray  # total offered by sellers
    demand_kwh: np.ndarray  # total asked by buyers
    cleared: np.ndarray  # bool: the market traded in this interval


def supply_demand(net_kwh: np.ndarray, loss: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total supply, total demand and the supply-demand ratio (deliverable supply / demand)."""
    supply = np.maximum(-net_kwh, 0.0).sum(axis=-1)
    demand = np.maximum(net_kwh, 0.0).sum(axis=-1)
    return supply, demand, supply_demand_ratio(supply, demand, loss)


def supply_demand_ratio(supply_kwh: np.ndarray, demand_kwh: np.ndarray, loss: float) -> np.ndarray:
    """Deliverable supply over demand: ``inf`` with supply and no demand, 0 without supply."""
    deliverable = supply_kwh * (1.0 - loss)
    # Divide only where there is demand (no 0/0 to silence); elsewhere inf with supply, else 0.
    ratio = np.where(supply_kwh > 0.0, np.inf, 0.0)
    return np.divide(deliverable, demand_kwh, out=ratio, where=demand_kwh > 0.0)


def sdr_price(sdr: np.ndarray, buy_usd: np.ndarray, sell_usd: np.ndarray) -> np.ndarray:
    """Liu et al. (2017) internal price for supply-demand ratio ``sdr``.

    ``P = sell * buy / ((buy - sell) * SDR + sell)`` for ``0 <= SDR <= 1`` and ``sell`` above 1;
    it falls from ``buy`` at SDR 0 to ``sell`` at SDR 1. Here ``sell`` is the sellers' break-even
    export price grossed up for the loss (``Ps / (1 - loss)``), see :func:`clear`.
    """
    r = np.minimum(sdr, 1.0)
    return sell_usd * buy_usd / ((buy_usd - sell_usd) * r + sell_usd)


def mid_market_price(sdr: np.ndarray, buy_usd: np.ndarray, sell_usd: np.ndarray) -> np.ndarray:
    """Zhou, Wu & Long (2018) mid-market rate: the traded energy is priced half-way."""
    return np.broadcast_to(0.5 * (buy_usd + sell_usd), np.shape(sdr)).astype(np.float64)


def bill_sharing_price(sdr: np.ndarray, buy_usd: np.ndarray, sell_usd: np.ndarray) -> np.ndarray:
    """Zhou, Wu & Long (2018) bill sharing, per interval: energy shared inside is free.

    The community's import cost is split over buyers pro rata to demand and its export revenue
    over sellers pro rata to supply, so buyers pay ``Pb * max(D - S', 0) / D`` per kWh asked and
    sellers get ``Ps * max(S - D / (1 - loss), 0) / S`` per kWh offered. With pro-rata matching
    that is exactly a P2P price of 0 per kWh received. Unlike SDR and the mid-market rate it
    does not guarantee that every seller earns at least the export price.
    """
    return np.zeros(np.shape(sdr))


def _batch(price: np.ndarray | float, batch_shape: tuple[int, ...]) -> np.ndarray:
    """A price as a float64 array of the batch shape (no copy when it already is one)."""
    price = np.asarray(price, dtype=np.float64)
    return price if price.shape == batch_shape else np.broadcast_to(price, batch_shape)


PRICE_RULES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "sdr": sdr_price,
    "mid_market": mid_market_price,
    "bill_sharing": bill_sharing_price,
}


def clear(
    net_kwh: np.ndarray,
    import_price_usd_per_kwh: np.ndarray | float,
    export_price_usd_per_kwh: np.ndarray | float,
    mechanism: str = "sdr",
    loss: float = 0.05,
    limit_usd_per_kwh: np.ndarray | None = None,
    auction_k: float = 0.5,
) -> Clearing:
    """Match buyers and sellers pro rata and price the trades.

    ``double_auction`` clears limit orders instead (:mod:`energy_env.auction`):
    ``limit_usd_per_kwh`` ``(..., N)`` per kWh received, truthful when None; ``auction_k`` sets
    the price inside the crossing interval.

    Because sellers bear the loss, the break-even sell price is ``Ps / (1 - loss)``; mechanisms
    price between that and the grid import price ``Pb``, so no seller earns less than exporting
    and no buyer pays more than importing. When ``Ps / (1 - loss) >= Pb`` (e.g. NEM 3 summer
    evenings) no trade benefits both sides and the market does not clear.
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown market mechanism {mechanism!r}; expected one of {MECHANISMS}")
    keep = 1.0 - loss
    batch_shape = net_kwh.shape[:-1]
    buy_usd = _batch(import_price_usd_per_kwh, batch_shape)
    sell_usd = _batch(export_price_usd_per_kwh, batch_shape) / keep
    if mechanism == "double_auction":
        return _clear_auction(net_kwh, buy_usd, sell_usd * keep, loss, limit_usd_per_kwh, auction_k)

    # Per household only what scales with N: asked/offered, two sums and six products below.
    asked = np.maximum(net_kwh, 0.0)
    offered = asked - net_kwh  # = max(-net, 0) exactly: 0 for buyers, -net for sellers
    supply = offered.sum(axis=-1)
    demand = asked.sum(axis=-1)
    sdr = supply_demand_ratio(supply, demand, loss)
    cleared = (supply > 0.0) & (demand > 0.0) & (sell_usd < buy_usd) & (mechanism != "none")

    received = np.where(cleared, np.minimum(supply * keep, demand), 0.0)
    sent = received / keep
    # Each side's matched share, per scenario. Full matching on one side is exactly 1, not left to
    # rounding (x * 1.0 == x): it keeps the grid flows >= 0.
    bought_share = np.where(cleared & (received >= demand), 1.0, received / np.where(cleared, demand, 1.0))
    sold_share = np.where(cleared & (sent >= supply), 1.0, sent / np.where(cleared, supply, 1.0))
    bought = asked * bought_share[..., None]
    sold = offered * sold_share[..., None]

    if mechanism == "none":
        price = buy_usd.astype(np.float64).copy()
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # uncleared intervals may divide by 0
            price = np.where(cleared, PRICE_RULES[mechanism](sdr, buy_usd, sell_usd), buy_usd)
    paid = bought * price[..., None]
    # Sellers share the pool pro rata to energy sent: revenue per kWh sent is price * keep.
    revenue = sold * (price * keep)[..., None]
    return Clearing(
        p2p_bought_kwh=bought,
        p2p_sold_kwh=sold,
        grid_import_kwh=np.subtract(asked, bought, out=asked),  # asked/offered are not needed after
        grid_export_kwh=np.subtract(offered, sold, out=offered),
        p2p_paid_usd=paid,
        p2p_revenue_usd=revenue,
        price_usd_per_kwh=price,
        sdr=sdr,
        supply_kwh=supply,
        demand_kwh=demand,
        cleared=cleared,
    )


def _clear_auction(net_kwh: np.ndarray, buy_usd: np.ndarray, export_usd: np.ndarray, loss: float, limit: np.ndarray | None, k: float) -> Clearing:
    """:func:`clear` for ``double_auction``: the orders cleared by :func:`energy_env.auction.double_auction`."""
    from energy_env.auction import double_auction, truthful_limits

    shape = net_kwh.shape
    net = net_kwh.reshape(-1, shape[-1])
    flat_buy, flat_export = buy_usd.reshape(-1), export_usd.reshape(-1)
    limits = truthful_limits(net, flat_buy, flat_export, loss) if limit is None else np.asarray(limit, dtype=np.float64).reshape(net.shape)
    result = double_auction(net, limits, loss, k)
    asked = np.maximum(net, 0.0)
    offered = asked - net
    supply, demand = offered.sum(axis=-1), asked.sum(axis=-1)
    price = np.where(result.cleared, result.price_usd_per_kwh, flat_buy)  # the grid price when not cleared, as the pool
    keep = 1.0 - loss
    unbatch = lambda a: a.reshape(shape[:-1] + a.shape[1:])  # noqa: E731
    return Clearing(
        p2p_bought_kwh=unbatch(result.bought_kwh),
        p2p_sold_kwh=unbatch(result.sold_kwh),
        grid_import_kwh=unbatch(asked - result.bought_kwh),
        grid_export_kwh=unbatch(offered - result.sold_kwh),
        p2p_paid_usd=unbatch(result.bought_kwh * price[:, None]),
        p2p_revenue_usd=unbatch(result.sold_kwh * (price * keep)[:, None]),
        price_usd_per_kwh=unbatch(price),
        sdr=unbatch(supply_demand_ratio(supply, demand, loss)),
        supply_kwh=unbatch(supply),
        demand_kwh=unbatch(demand),
        cleared=unbatch(result.cleared),
    )

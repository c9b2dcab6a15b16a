"""The double-auction market (``market.mechanism: double_auction``): limit orders cleared at one price.

Every interval, each household with a positive net position bids for it and each with a negative
one offers it, at a limit price of its own; there is no order book across intervals. Prices are
per kWh **received** (as in the pool): a seller's offer of ``x`` kWh sent delivers
``(1 - loss) x``, and its grid alternative, the export credit ``Ps`` per kWh sent, is worth
``Ps / (1 - loss)`` per kWh received.

Clearing (a uniform-price k-double auction, Satterthwaite & Williams 1989):

1. the traded volume ``Q`` is the largest at which demand and supply cross: ``max_p min(D(p), S(p))``
   with ``D(p)`` the energy bid at ``p`` or more and ``S(p)`` the energy (delivered) offered at
   ``p`` or less;
2. buyers are served in order of bid, highest first, sellers in order of ask, lowest first, until
   ``Q``; the orders at the marginal price of the long side share what is left pro rata;
3. the price is ``p = k b + (1 - k) a`` with ``b`` the lowest bid served and ``a`` the highest
   ask served (``k = market.auction_k``, 0.5 by default), so ``a <= p <= b``: nobody trades at a
   price worse than its limit;
4. what does not clear meets the grid at grid prices; buyers pay ``p`` per kWh received, sellers
   get ``p (1 - loss)`` per kWh sent (they bear the loss, as in the pool).

With truthful limits (bid = import price, ask = export credit over ``1 - loss``) every bid and
every ask tie, so the volume and the pro-rata split are the pool's and the price is the pool's
mid-market price (``k = 0.5``): see :func:`truthful_limits` and docs/model.md.

Arrays: households on the last axis (``(B, N)``), per-scenario values ``(B,)``. Cost: one sort
per scenario along the household axis (``O(N log N)``), no Python loop over households.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# relative tolerance when comparing cumulative volumes built by different summation orders
_VOLUME_RTOL = 1e-12


@dataclass(frozen=True)
class AuctionResult:
    """One interval of the auction. Per-household ``(B, N)``, per-scenario ``(B,)``."""

    bought_kwh: np.ndarray  # energy each buyer receives
    sold_kwh: np.ndarray  # energy each seller sends (delivering (1 - loss) of it)
    price_usd_per_kwh: np.ndarray  # the clearing price per kWh received; NaN where nothing traded
    volume_kwh: np.ndarray  # energy received by buyers in all
    cleared: np.ndarray  # bool: something traded


def order_limits(action: np.ndarray, net_kwh: np.ndarray, import_usd_per_kwh: np.ndarray, export_usd_per_kwh: np.ndarray, loss: float) -> np.ndarray:
    """Each household's limit price ``(B, N)`` from its price action in [-1, 1].

    The action is how much of its surplus a household claims: ``+1`` is truthful (a buyer bids
    its import price ``Pb``, a seller asks its break-even ``s = Ps / (1 - loss)``), ``-1`` shades
    by the whole spread ``|Pb - s|`` (a buyer bids ``Pb - |Pb - s|``, a seller asks
    ``s + |Pb - s|``). Limits therefore never cross a household's own grid alternative: no
    order can lose against the grid. Households with no position get the buyer's formula (unused).
    """
    pb = import_usd_per_kwh[:, None]
    s = (export_usd_per_kwh / (1.0 - loss))[:, None]
    shading = 0.5 * (1.0 - action) * np.abs(pb - s)
    return np.where(net_kwh < 0.0, s + shading, pb - shading)


def truthful_limits(net_kwh: np.ndarray, import_usd_per_kwh: np.ndarray, export_usd_per_kwh: np.ndarray, loss: float) -> np.ndarray:
    """Limits of truthful orders ``(B, N)``: the import price for buyers, the export break-even for sellers."""
    return order_limits(np.ones(net_kwh.shape), net_kwh, import_usd_per_kwh, export_usd_per_kwh, loss)


def double_auction(net_kwh: np.ndarray, limit_usd_per_kwh: np.ndarray, loss: float = 0.05, k: float = 0.5) -> AuctionResult:
    """Clear one interval's orders (see the module docstring).

    ``net_kwh``: ``(B, N)``, positive to buy, negative to sell (kWh sent); ``limit_usd_per_kwh``:
    each order's limit per kWh received. Raises ``ValueError`` for non-finite limits or ``k``
    outside [0, 1].
    """
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"auction k must lie in [0, 1], got {k}")
    net = np.asarray(net_kwh, dtype=np.float64)
    limit = np.asarray(limit_usd_per_kwh, dtype=np.float64)
    if limit.shape != net.shape:
        raise ValueError(f"limit prices of shape {limit.shape} for net positions of shape {net.shape}")
    if not np.isfinite(limit).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(limit))[0])
        raise ValueError(f"limit price at (scenario, household) {idx} is {limit[idx]}: limits must be finite")
    keep = 1.0 - loss
    demand = np.maximum(net, 0.0)
    supply = np.maximum(-net, 0.0) * keep  # delivered kWh

    # 1. Volume: walk all orders by price (asks before bids at a tie, so S counts the asks at p
    # when a bid of p is read): S_k = supply asked at or below p_k, D_k = demand bid at or above p_k.

    prices = np.concatenate([limit, limit], axis=-1)
    qty = np.concatenate([supply, demand], axis=-1)
    is_bid = np.concatenate([np.zeros(net.shape, bool), np.ones(net.shape, bool)], axis=-1)
    order = np.argsort(prices, axis=-1, kind="stable")  # stable: the asks (first half) lead at ties
    q_sorted = np.take_along_axis(qty, order, axis=-1)
    bid_sorted = np.take_along_axis(is_bid, order, axis=-1)
    supply_at = np.cumsum(np.where(bid_sorted, 0.0, q_sorted), axis=-1)
    # demand at or above p_k: the bids from position k on (a suffix sum: exactly 0 past the last bid)
    demand_at = np.flip(np.cumsum(np.flip(np.where(bid_sorted, q_sorted, 0.0), axis=-1), axis=-1), axis=-1)
    volume = np.max(np.minimum(supply_at, demand_at), axis=-1)
    volume = np.minimum(volume, np.minimum(demand.sum(axis=-1), supply.sum(axis=-1)))
    cleared = volume > 0.0

    # 2.-3. Serve each side in price order up to the volume; the marginal group shares pro rata.
    bought, bid_marginal = _serve(demand, -limit, volume)
    sent, ask_marginal = _serve(np.maximum(-net, 0.0), limit, volume / keep)  # in kWh sent: full orders exactly
    bid_marginal = np.where(cleared, -bid_marginal, 0.0)  # +-inf where nothing traded
    ask_marginal = np.where(cleared, ask_marginal, 0.0)
    price = np.where(cleared, k * bid_marginal + (1.0 - k) * ask_marginal, np.nan)
    return AuctionResult(bought_kwh=bought, sold_kwh=sent, price_usd_per_kwh=price, volume_kwh=volume, cleared=cleared)


def _serve(qty: np.ndarray, priority: np.ndarray, volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``volume`` from ``qty`` in ascending ``priority``; ties at the margin share pro rata.

    Returns each order's served quantity ``(B, N)`` and the marginal priority ``(B,)`` (that of
    the last order served; +inf where nothing is served).
    """
    order = np.argsort(priority, axis=-1, kind="stable")
    q_sorted = np.take_along_axis(qty, order, axis=-1)
    p_sorted = np.take_along_axis(priority, order, axis=-1)
    cum = np.cumsum(q_sorted, axis=-1)
    # the first order whose cumulative quantity reaches the volume is the marginal one
    reached = (cum >= volume[..., None] * (1.0 - _VOLUME_RTOL)) & (q_sorted > 0.0)
    first = np.argmax(reached, axis=-1)
    served_any = volume > 0.0
    marginal = np.where(served_any, np.take_along_axis(p_sorted, first[..., None], axis=-1)[..., 0], np.inf)
    m = marginal[..., None]
    full = (priority < m) & (qty > 0.0)
    at_margin = (priority == m) & (qty > 0.0)
    full_kwh = np.where(full, qty, 0.0).sum(axis=-1)
    margin_kwh = np.where(at_margin, qty, 0.0).sum(axis=-1)
    share = np.clip((volume - full_kwh) / np.where(margin_kwh > 0.0, margin_kwh, 1.0), 0.0, 1.0)
    served = np.where(full, qty, np.where(at_margin, qty * share[..., None], 0.0))
    served = np.where(served_any[..., None], served, 0.0)
    return served, marginal


ORDER_INFO = ("limit_usd_per_kwh", "cleared_share", "surplus_usd")  # the infos' keys of each order


def order_infos(
    price_action: np.ndarray, bought_kwh: np.ndarray, sold_kwh: np.ndarray, grid_import_kwh: np.ndarray, grid_export_kwh: np.ndarray,
    price_usd_per_kwh: np.ndarray, import_usd_per_kwh: np.ndarray, export_usd_per_kwh: np.ndarray, loss: float,
) -> dict[str, np.ndarray]:
    """Each household's order after a step, ``(B, N)`` per key of :data:`ORDER_INFO`.

    ``limit_usd_per_kwh``: the limit the price action (clipped to [-1, 1]) set; ``cleared_share``:
    the share of the position traded in the market; ``surplus_usd``: what the trade gained
    against the limit (a buyer ``(limit - price) x received``, a seller ``(price - limit) x
    delivered``; with truthful limits, the saving against the grid). A household with no position
    placed no order: 0 for all three.
    """
    asked = grid_import_kwh + bought_kwh
    offered = grid_export_kwh + sold_kwh
    net = asked - offered
    action = np.minimum(np.maximum(price_action, -1.0), 1.0)
    limit = order_limits(action, net, import_usd_per_kwh, export_usd_per_kwh, loss)
    position = asked + offered
    has_order = position > 0.0
    share = np.divide(bought_kwh + sold_kwh, position, out=np.zeros(position.shape), where=has_order)
    p = price_usd_per_kwh[:, None]
    surplus = np.where(net < 0.0, (p - limit) * sold_kwh * (1.0 - loss), (limit - p) * bought_kwh)
    return {"limit_usd_per_kwh": np.where(has_order, limit, 0.0), "cleared_share": share, "surplus_usd": np.where(has_order, surplus, 0.0)}

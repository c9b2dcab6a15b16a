"""A compiled twin of one core step: :func:`core.transition` then :func:`core.observe`, fused.

The numpy core is the definition of the model; this module computes exactly the same numbers
(bit for bit, tested) in one numba-compiled pass over the ``(B, N)`` households. For the
PettingZoo env (B = 1, N = 17) a step of the numpy core is ~60 small array operations, each
costing a microsecond or two of call overhead on a few dozen numbers; fused, the physics costs a
few microseconds and the step is bounded by building PettingZoo's dicts.

Equality with numpy holds because every line below repeats the core's operations in its order
(IEEE arithmetic, no fast-math), with one subtlety: numpy sums a row pairwise (8 partial sums),
so :func:`_numpy_sum` does the same.

:class:`Stepper` is what the envs use; ``WATTSHARE_KERNEL=numpy`` (or a missing numba) makes it
fall back to the numpy core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import numpy as np

from energy_env import core
from energy_env.config import INTERVALS_PER_DAY
from energy_env.grid import METER_RESOLUTION_KWH
from energy_env.layout import FIELD_INDEX, INFO_KEYS, SCENARIO_INFO, observation_layout
from energy_env.market import Mechanism
from energy_env.signals import WEIGHTS

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; the numpy core still works
    HAVE_NUMBA = False

# Rows of the per-household output block ``(len(ROWS), B, N)`` float64: first the PettingZoo
# env's info keys in their order (layout.INFO_KEYS: per-scenario values repeated for each
# household, flags as 0.0/1.0, the two signals rounded like the observation), so its infos are
# one ``tolist``; then what the next state needs.
ROWS = (*INFO_KEYS, "reward", "throughput_kwh", "baseline_used_kwh")
NUM_INFO_ROWS = len(INFO_KEYS)
NUM_ROWS = len(ROWS)
_R = {name: k for k, name in enumerate(ROWS)}
# Row numbers as literals of this file: numba compiles them in and caches the machine code keyed on
# this file alone, so positions derived from layout.py would go stale in the cache when it
# changes. A layout change that moves a row fails here instead (then update this list).
(_LOAD, _PV, _CURT, _AC, _SOC, _GI, _GE, _BOUGHT, _SOLD, _PAID, _REVENUE, _DEG_USD, _CREDIT_USD, _SETTLE, _COST, _BASE,
 _CLIPPED, _OOB, _VIOL, _UNSERVED, _IMP_PRICE, _EXP_PRICE, _PRICE, _SDR, _CLEARED, _SCORE, _NEED, _REWARD, _THR, _USED) = range(30)
_KERNEL_ROWS = (
    "load_kwh", "pv_kwh", "pv_curtailed_kwh", "battery_ac_kwh", "soc_kwh", "grid_import_kwh", "grid_export_kwh",
    "p2p_bought_kwh", "p2p_sold_kwh", "p2p_paid_usd", "p2p_revenue_usd", "degradation_usd", "baseline_credit_usd",
    "terminal_settlement_usd", "cost_usd", "baseline_cost_usd", "action_clipped_kwh", "action_out_of_box",
    "constraint_violation_kwh", "unserved_kwh", "import_price_usd_per_kwh", "export_price_usd_per_kwh",
    "market_price_usd_per_kwh", "sdr", "market_cleared", "profitability_score", "power_need_signal",
    "reward", "throughput_kwh", "baseline_used_kwh",
)
if ROWS != _KERNEL_ROWS:
    raise ImportError("energy_env.layout's info keys changed: update kernel._KERNEL_ROWS and the row numbers beside it")
# Where each StepResult field comes from, in field order: (0, row) a household row of the block,
# (1, row) a per-scenario value (each home's row holds it), (2, k) the k-th of the kernel's flags.
_FLAGS = ("action_out_of_box", "market_cleared", "done")
_RESULT_ROWS = tuple(
    (2, _FLAGS.index(f.name)) if f.name in _FLAGS else (1, _R[f.name]) if f.name in SCENARIO_INFO else (0, _R[f.name])
    for f in fields(core.StepResult)
)
_SDR_RULE, _MID_MARKET, _NONE = Mechanism.SDR.code, Mechanism.MID_MARKET.code, Mechanism.NONE.code  # else bill sharing
_AUCTION = Mechanism.DOUBLE_AUCTION.code
_VOLUME_RTOL = 1e-12  # energy_env.auction's
# The observation fields the kernel writes itself, each found through ``offsets`` (built from the
# layout per community), at fixed positions of this file: the layout may add or move fields
# without the cached machine code going stale. "scenario" is where the precomputed row starts,
# "household_table" where the precomputed household fields do.
_KERNEL_FIELDS = (
    "soc_fraction", "battery_capacity_kwh", "load_kwh", "pv_kwh", "load_forecast_kwh", "pv_forecast_kwh", "scenario",
    "last_sdr", "last_market_price_usd_per_kwh", "expected_sdr", "episode_progress", "profitability_score", "power_need_signal",
    "household_table",
)
(_F_SOC, _F_CAP, _F_LOAD, _F_PV, _F_LOAD_FC, _F_PV_FC, _F_SCENARIO, _F_LAST_SDR, _F_LAST_PRICE, _F_EXP_SDR, _F_PROGRESS,
 _F_SCORE, _F_NEED, _F_HH_TABLE) = range(14)


def kernel_offsets(horizon: int) -> np.ndarray:
    """Offsets of :data:`_KERNEL_FIELDS` in an observation of forecast ``horizon`` (int64)."""
    lay = observation_layout(horizon)
    blocks = {"scenario": lay.scenario_slice().start, "household_table": lay.household_table_slice().start}
    return np.array([blocks[name] if name in blocks else lay.offsets[FIELD_INDEX[name]] for name in _KERNEL_FIELDS], dtype=np.int64)

# Positions in the packed scalar parameters.
_LOSS, _ETA_C, _ETA_D, _DEG, _CREDIT, _TERMINAL, _SDR_CAP, _REF, _AUCTION_K = range(9)
# Rows of the packed per-household parameters (N,): battery, then the grid limits.
_CAP, _SMIN, _SMAX, _MAXAC, _BAND, _HAS, _IMP_LIM, _EXP_LIM = range(8)
# Columns of the packed per-interval prices (T,).
_PIMP, _PEXP, _MB, _MS = range(4)


def compiled_available() -> bool:
    """True when numba is importable and ``WATTSHARE_KERNEL`` does not ask for the numpy core."""
    return HAVE_NUMBA and os.environ.get("WATTSHARE_KERNEL", "compiled") != "numpy"


# ---------------------------------------------------------------------------------------------
# The compiled functions (plain Python when numba is missing, never called then)


def _jit(fn):
    if not HAVE_NUMBA:
        return fn
    try:  # cache the machine code beside the module, or in numba's user-wide cache directory
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # neither is writable (numba: "no locator available"): compile per process
        return numba.njit(cache=False, nogil=True)(fn)


@_jit
def _numpy_sum(x):  # pragma: no cover - compiled
    """``np.add.reduce`` of a contiguous 1-D float64 row, in numpy's pairwise order."""
    n = x.shape[0]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += x[i]
        return res
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
        i = 8
        while i < n - (n % 8):
            r0 += x[i]
            r1 += x[i + 1]
            r2 += x[i + 2]
            r3 += x[i + 3]
            r4 += x[i + 4]
            r5 += x[i + 5]
            r6 += x[i + 6]
            r7 += x[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += x[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _numpy_sum(x[:n2]) + _numpy_sum(x[n2:])


@_jit
def _min(a, b):  # pragma: no cover - compiled
    return a if a <= b else b  # np.minimum's choice (the first operand on ties)


@_jit
def _max(a, b):  # pragma: no cover - compiled
    return a if a >= b else b


@_jit
def _fill(order, qty, volume, served, sign, limit):  # pragma: no cover - compiled
    """:func:`energy_env.auction._serve` for the orders ``order`` (priority order, all ``qty > 0``):
    fills ``served`` (all N) and returns the marginal limit. ``sign`` -1: priority is -limit (bids)."""
    n = qty.shape[0]
    cum = 0.0
    first = order[order.shape[0] - 1]
    for j in range(order.shape[0]):
        cum += qty[order[j]]
        if cum >= volume * (1.0 - _VOLUME_RTOL):
            first = order[j]
            break
    m = sign * limit[first]
    full = np.zeros(n)
    margin = np.zeros(n)
    for j in range(order.shape[0]):
        i = order[j]
        p = sign * limit[i]
        if p < m:
            full[i] = qty[i]
        elif p == m:
            margin[i] = qty[i]
    full_kwh, margin_kwh = _numpy_sum(full), _numpy_sum(margin)
    share = _min(_max((volume - full_kwh) / (margin_kwh if margin_kwh > 0.0 else 1.0), 0.0), 1.0)
    for i in range(n):
        served[i] = 0.0
    for j in range(order.shape[0]):
        i = order[j]
        p = sign * limit[i]
        served[i] = qty[i] if p < m else (qty[i] * share if p == m else 0.0)
    return limit[first]


@_jit
def _double_auction(net, limit, keep, k, bought, sent):  # pragma: no cover - compiled
    """:func:`energy_env.auction.double_auction` of one scenario: fills ``bought``/``sent``; returns (price, cleared).

    The same numbers as the numpy definition from two sorts of the orders placed (bids, asks)
    instead of sorts of every household: the positions numpy adds as zeros change no sum.
    """
    n = net.shape[0]
    demand = np.empty(n)
    offered = np.empty(n)
    supply = np.empty(n)
    nb, ns = 0, 0
    for i in range(n):
        demand[i] = _max(net[i], 0.0)
        offered[i] = _max(-net[i], 0.0)
        supply[i] = offered[i] * keep
        nb += demand[i] > 0.0
        ns += supply[i] > 0.0
    for i in range(n):
        bought[i] = 0.0
        sent[i] = 0.0
    if nb == 0 or ns == 0:
        return np.nan, False
    bidx = np.empty(nb, dtype=np.int64)
    sidx = np.empty(ns, dtype=np.int64)
    jb, js = 0, 0
    for i in range(n):
        if demand[i] > 0.0:
            bidx[jb] = i
            jb += 1
        if supply[i] > 0.0:
            sidx[js] = i
            js += 1
    bo = bidx[np.argsort(limit[bidx], kind="mergesort")]  # ascending, ties by index
    so = sidx[np.argsort(limit[sidx], kind="mergesort")]
    # 1. the volume: all orders by price, asks first at a tie; demand from position k on
    m = nb + ns
    seq = np.empty(m, dtype=np.int64)
    is_bid = np.empty(m, dtype=np.bool_)
    a, b = 0, 0
    for t in range(m):
        if b >= nb or (a < ns and limit[so[a]] <= limit[bo[b]]):
            seq[t], is_bid[t] = so[a], False
            a += 1
        else:
            seq[t], is_bid[t] = bo[b], True
            b += 1
    demand_at = np.empty(m)
    acc = 0.0
    for t in range(m - 1, -1, -1):
        if is_bid[t]:
            acc += demand[seq[t]]
        demand_at[t] = acc
    supply_at, volume = 0.0, 0.0
    for t in range(m):
        if not is_bid[t]:
            supply_at += supply[seq[t]]
        volume = _max(volume, _min(supply_at, demand_at[t]))
    volume = _min(volume, _min(_numpy_sum(demand), _numpy_sum(supply)))
    if not volume > 0.0:
        return np.nan, False
    # 2. serve: bids by price high to low (ties by index), asks low to high
    desc = np.empty(nb, dtype=np.int64)
    t, hi = 0, nb - 1
    while hi >= 0:  # reverse the ascending order, keeping each tie group in index order
        lo = hi
        while lo > 0 and limit[bo[lo - 1]] == limit[bo[hi]]:
            lo -= 1
        for j in range(lo, hi + 1):
            desc[t] = bo[j]
            t += 1
        hi = lo - 1
    bid_m = _fill(desc, demand, volume, bought, -1.0, limit)
    ask_m = _fill(so, offered, volume / keep, sent, 1.0, limit)
    return k * bid_m + (1.0 - k) * ask_m, True


@_jit
def _observe(obs, t_next, start, end, soc, thr, last_price, last_sdr, scal, hp, prices, load, pv, load_fc, pv_fc, scen_obs, hh_obs, off, hh):  # pragma: no cover
    """:func:`core.observe` into ``obs`` (``off``: each field's offset, layout order); with ``hh``
    (not None), also the two signals' info rows."""
    nb, n = soc.shape
    t_last = load.shape[0] - 1
    h = load_fc.shape[2]
    width = scen_obs.shape[1]
    hh_width = hh_obs.shape[2]
    jh = off[_F_HH_TABLE]
    j = off[_F_SCENARIO]  # the scenario block starts here; its row is scen_obs[t]
    exp_sdr = off[_F_EXP_SDR] - j
    sdr_cap = scal[_SDR_CAP]
    sdr_cap32 = np.float32(sdr_cap)
    ref, eta_d = scal[_REF], scal[_ETA_D]
    w0, w2, w3 = WEIGHTS[0], WEIGHTS[2], WEIGHTS[3]
    for b in range(nb):
        t = min(t_next[b], t_last)
        steps_done = max(t_next[b] - start[b], 1)
        days_done = steps_done / INTERVALS_PER_DAY
        progress = np.float32((t_next[b] - start[b]) / (end[b] - start[b]))
        mb, ms = prices[t, _MB], prices[t, _MS]
        for i in range(n):
            cap, has = hp[_CAP, i], hp[_HAS, i] > 0.0
            o = obs[b, i]
            o[off[_F_SOC]] = soc[b, i] / cap if has else 0.0
            o[off[_F_CAP]] = cap
            o[off[_F_LOAD]] = load[t, i]
            o[off[_F_PV]] = pv[t, i]
            for k in range(h):
                o[off[_F_LOAD_FC] + k] = load_fc[t, i, k]
                o[off[_F_PV_FC] + k] = pv_fc[t, i, k]
            for k in range(hh_width):
                o[jh + k] = hh_obs[t, i, k]
            for k in range(width):
                o[j + k] = scen_obs[t, k]
            o[off[_F_LAST_SDR]] = _min(last_sdr[b], sdr_cap)
            o[off[_F_LAST_PRICE]] = last_price[b]
            o[off[_F_EXP_SDR]] = _min(scen_obs[t, exp_sdr], sdr_cap32)
            o[off[_F_PROGRESS]] = progress
            # profitability score and power-need signal (core._household_signals)
            above_min = soc[b, i] - hp[_SMIN, i]
            usable = above_min / hp[_BAND, i] if has else 0.0
            cycles = thr[b, i] / (2.0 * hp[_BAND, i]) / days_done
            net = load[t, i] - pv[t, i]
            score = _min(abs(net) / ref, 1.0) * w0
            score += mb if net > 0 else ms
            health = (1.0 - _min(cycles, 1.0)) if has else 1.0
            score += health * w2
            score += w3 * usable
            score *= 100.0
            available = _min(_max(above_min, 0.0) * eta_d, hp[_MAXAC, i])
            o[off[_F_SCORE]] = score
            o[off[_F_NEED]] = 1.0 if net <= available else 0.0
            if hh is not None:
                hh[_SCORE, b, i] = o[off[_F_SCORE]]
                hh[_NEED, b, i] = o[off[_F_NEED]]


@_jit
def _transition(action, price_action, t, end, soc, soc_start, thr, used_in, iparams, scal, hp, prices, days, load, pv, baseline, unserved):  # pragma: no cover
    """:func:`core.transition` into a fresh ``(len(ROWS), B, N)`` block; returns it with flags and a status.

    Status 1: a grid limit was violated (impossible by construction); the caller re-runs the
    numpy core, which raises with the household named.
    """
    nb, n = soc.shape
    hh = np.empty((NUM_ROWS, nb, n))
    out_of_box = np.empty((nb, n), dtype=np.bool_)
    cleared_out = np.empty(nb, dtype=np.bool_)
    done_out = np.empty(nb, dtype=np.bool_)
    mechanism, reward_is_cost, from_grid, any_unserved = iparams[0], iparams[1] == 1, iparams[2] == 1, iparams[3] == 1
    loss, eta_c, eta_d = scal[_LOSS], scal[_ETA_C], scal[_ETA_D]
    keep = 1.0 - loss
    credit_rate = scal[_CREDIT]
    net = np.empty(n)
    asked = np.empty(n)
    offered = np.empty(n)
    limit = np.empty(n)
    bought_auction = np.empty(n)
    sent_auction = np.empty(n)
    auction = mechanism == _AUCTION
    status = 0
    for b in range(nb):
        tb = t[b]
        buy, exp_price = prices[tb, _PIMP], prices[tb, _PEXP]
        # battery bounds, setpoint, curtailment, net position (battery.ac_bounds, grid.*)
        for i in range(n):
            ld, p = load[tb, i], pv[tb, i]
            imp_lim, exp_lim = hp[_IMP_LIM, i], hp[_EXP_LIM, i]
            s = soc[b, i]
            room = _max(hp[_SMAX, i] - s, 0.0) / eta_c
            avail = _max(s - hp[_SMIN, i], 0.0) * eta_d
            source = _max((imp_lim - ld) + p, 0.0) if from_grid else _max(p - ld, 0.0)
            hi = _min(_min(room, source), hp[_MAXAC, i])
            sink = _max((exp_lim + ld) - p, 0.0)
            lo = -_min(_min(avail, sink), hp[_MAXAC, i])
            a = action[b, i]
            in_box = _min(_max(a, -1.0), 1.0)
            ac = _min(_max(in_box * hp[_MAXAC, i], lo), hi)
            curt = _min(_max(-exp_lim - ((ld - p) + ac), 0.0), p)
            x = (ld - (p - curt)) + ac
            if abs(x) < METER_RESOLUTION_KWH:
                x = 0.0
            net[i] = x
            asked[i] = _max(x, 0.0)
            offered[i] = asked[i] - x
            hh[_LOAD, b, i] = ld
            hh[_PV, b, i] = p
            hh[_CURT, b, i] = curt
            hh[_AC, b, i] = ac
            hh[_CLIPPED, b, i] = abs(a * hp[_MAXAC, i] - ac)
            oob = a != in_box
            if auction:  # energy_env.auction.order_limits of the price action in the box
                pa = price_action[b, i]
                pa_in = _min(_max(pa, -1.0), 1.0)
                oob = oob or pa != pa_in
                s_break = exp_price / keep
                shading = 0.5 * (1.0 - pa_in) * abs(buy - s_break)
                limit[i] = s_break + shading if x < 0.0 else buy - shading
            out_of_box[b, i] = oob
            hh[_OOB, b, i] = 1.0 if oob else 0.0
            hh[_VIOL, b, i] = 0.0
            hh[_UNSERVED, b, i] = unserved[tb, i] if any_unserved else 0.0
            if x - imp_lim > 1e-9 or -exp_lim - x > 1e-9:
                status = 1
        # market clearing (market.clear)
        supply, demand = _numpy_sum(offered), _numpy_sum(asked)
        sell = exp_price / keep
        if demand > 0.0:
            sdr = supply * keep / demand
        else:
            sdr = np.inf if supply > 0.0 else 0.0
        if auction:
            price, cleared = _double_auction(net, limit, keep, scal[_AUCTION_K], bought_auction, sent_auction)
            bought_share, sold_share = 0.0, 0.0
        else:
            cleared = supply > 0.0 and demand > 0.0 and sell < buy and mechanism != _NONE
            received = _min(supply * keep, demand) if cleared else 0.0
            sent = received / keep
            bought_share = 1.0 if (cleared and received >= demand) else received / (demand if cleared else 1.0)
            sold_share = 1.0 if (cleared and sent >= supply) else sent / (supply if cleared else 1.0)
        if not cleared:
            price = buy
        elif auction:
            pass  # the auction's own price
        elif mechanism == _SDR_RULE:
            price = sell * buy / ((buy - sell) * _min(sdr, 1.0) + sell)
        elif mechanism == _MID_MARKET:
            price = 0.5 * (buy + sell)
        else:  # bill_sharing
            price = 0.0
        done = t[b] + 1 >= end[b]
        day = tb // INTERVALS_PER_DAY
        midnight = tb % INTERVALS_PER_DAY == 0
        terminal = scal[_TERMINAL] if not np.isnan(scal[_TERMINAL]) else days[day, 0]
        for i in range(n):
            bought = bought_auction[i] if auction else asked[i] * bought_share
            sold = sent_auction[i] if auction else offered[i] * sold_share
            paid = bought * price
            revenue = sold * (price * keep)
            gi, ge = asked[i] - bought, offered[i] - sold
            ac = hh[_AC, b, i]
            delta = ac * eta_c if ac >= 0.0 else ac / eta_d
            new_soc = _min(_max(soc[b, i] + delta, hp[_SMIN, i]), hp[_SMAX, i])
            degradation = abs(ac) * scal[_DEG]
            used = 0.0 if midnight else used_in[b, i]
            cost = gi * buy
            cost -= ge * exp_price
            cost += paid
            cost -= revenue
            cost += degradation
            credit = 0.0
            if credit_rate > 0.0:
                credit = credit_rate * _min(gi, _max(days[day, 1] - used, 0.0))
                cost -= credit
            settle = 0.0
            if done:
                settle = -(new_soc - soc_start[b, i]) * terminal
                cost += settle
            base = baseline[tb, i]
            hh[_SOC, b, i] = new_soc
            hh[_GI, b, i] = gi
            hh[_GE, b, i] = ge
            hh[_BOUGHT, b, i] = bought
            hh[_SOLD, b, i] = sold
            hh[_PAID, b, i] = paid
            hh[_REVENUE, b, i] = revenue
            hh[_DEG_USD, b, i] = degradation
            hh[_CREDIT_USD, b, i] = credit
            hh[_SETTLE, b, i] = settle
            hh[_COST, b, i] = cost
            hh[_BASE, b, i] = base
            hh[_IMP_PRICE, b, i] = buy
            hh[_EXP_PRICE, b, i] = exp_price
            hh[_PRICE, b, i] = price
            hh[_SDR, b, i] = sdr
            hh[_CLEARED, b, i] = 1.0 if cleared else 0.0
            hh[_REWARD, b, i] = -cost if reward_is_cost else base - cost
            hh[_THR, b, i] = thr[b, i] + abs(ac)
            hh[_USED, b, i] = used + gi
        cleared_out[b] = cleared
        done_out[b] = done
    return hh, out_of_box, cleared_out, done_out, status


# ---------------------------------------------------------------------------------------------
# The Python side


@dataclass(frozen=True)
class _Packed:
    """The community's parameters and arrays in the kernel's layout, packed once."""

    iparams: np.ndarray  # (4,) int64: mechanism, reward is cost, charge from grid, any unserved load
    scal: np.ndarray  # (9,) float64 scalars
    hp: np.ndarray  # (8, N) per-household battery parameters and grid limits
    prices: np.ndarray  # (T, 4) import, export, market score as buyer / as seller
    days: np.ndarray  # (days, 2) off-peak rate, baseline allowance
    load: np.ndarray
    pv: np.ndarray
    baseline: np.ndarray
    load_fc: np.ndarray
    pv_fc: np.ndarray
    scen_obs: np.ndarray
    hh_obs: np.ndarray  # (T, N, K) float32: the precomputed household fields
    unserved: np.ndarray  # (T, N), or (1, 1) when there is no unserved load
    offsets: np.ndarray  # (14,) int64: the offsets of _KERNEL_FIELDS (kernel_offsets)


def _pack(params: core.CommunityParams, data: core.CommunityData) -> _Packed:
    bp = params.battery
    c = np.ascontiguousarray
    any_unserved = bool(data.unserved_kwh.strides != (0, 0) and data.unserved_kwh.any())
    return _Packed(
        iparams=np.array(
            [Mechanism(params.mechanism).code, params.reward_kind == "cost", bp.charge_from_grid, any_unserved], dtype=np.int64
        ),
        scal=np.array([
            params.loss, bp.eta_charge, bp.eta_discharge,
            bp.degradation_cost_usd_per_kwh, params.baseline_credit_usd_per_kwh,
            np.nan if params.terminal_price_usd_per_kwh is None else params.terminal_price_usd_per_kwh,
            params.sdr_observation_cap, bp.reference_kwh, params.auction_k,
        ], dtype=np.float64),
        hp=np.stack([
            bp.capacity_kwh, bp.soc_min_kwh, bp.soc_max_kwh, bp.max_ac_kwh, bp.usable_kwh, bp.has_battery.astype(np.float64),
            params.import_limit_kwh, params.export_limit_kwh,
        ]),
        prices=np.stack([data.import_usd_per_kwh, data.export_usd_per_kwh, data.market_score_buyer, data.market_score_seller], axis=1),
        days=np.stack([data.offpeak_usd_per_kwh, data.baseline_allowance_kwh], axis=1).astype(np.float64),
        load=c(data.load_kwh, dtype=np.float64),
        pv=c(data.pv_kwh, dtype=np.float64),
        baseline=c(data.baseline_cost_usd, dtype=np.float64),
        # forecasts as the provider made them (float32, often a zero-copy view): a float64 copy
        # of a year of 1,000 homes would be 0.8 GB each; the values are the same
        load_fc=data.load_fc_kwh,
        pv_fc=data.pv_fc_kwh,
        scen_obs=c(data.scenario_obs, dtype=np.float32),
        hh_obs=c(data.household_obs, dtype=np.float32),
        unserved=c(data.unserved_kwh, dtype=np.float64) if any_unserved else np.zeros((1, 1)),
        offsets=kernel_offsets(params.horizon),
    )


class Stepper:
    """Steps B scenarios of one community: the compiled kernel, or the numpy core as fallback.

    ``step`` returns what :func:`core.transition` returns plus the next observation
    (:func:`core.observe` of the new state), and the per-household block of :data:`ROWS`
    (``None`` from the numpy core) that the PettingZoo env turns into infos.
    """

    def __init__(self, params: core.CommunityParams, data: core.CommunityData, compiled: bool | None = None) -> None:
        self.params, self.data = params, data
        self.compiled = compiled_available() if compiled is None else bool(compiled)
        if self.compiled and not HAVE_NUMBA:
            raise RuntimeError("the compiled kernel needs numba (pip install numba), or pass compiled=False")
        self._packed = _pack(params, data) if self.compiled else None
        self._obs_width = core.layout_of(params).size
        self._volume_at = core.layout_of(params).at("last_p2p_volume_kwh") if params.auction else None

    def observe(self, state: core.State) -> np.ndarray:
        """:func:`core.observe`."""
        if not self.compiled:
            return core.observe(state, self.params, self.data)
        k = self._packed
        obs = np.empty((*state.soc_kwh.shape, self._obs_width), dtype=np.float32)
        _observe(obs, state.t, state.start, state.end, state.soc_kwh, state.throughput_kwh, state.last_price_usd_per_kwh,
                 state.last_sdr, k.scal, k.hp, k.prices, k.load, k.pv, k.load_fc, k.pv_fc, k.scen_obs, k.hh_obs, k.offsets, None)
        if self._volume_at is not None:
            obs[:, :, self._volume_at] = state.last_volume_kwh[:, None]
        if self.params.day_ahead_blocks:
            core.write_day_ahead(obs, np.minimum(state.t, self.data.load_kwh.shape[0] - 1), self.params, self.data)
        return obs

    def step(self, state: core.State, action: np.ndarray) -> tuple[core.State, core.StepResult, np.ndarray, np.ndarray | None]:
        """One interval of every scenario: ``(new_state, result, observation, rows)``."""
        if not self.compiled:
            new_state, result = core.transition(state, action, self.params, self.data)
            return new_state, result, core.observe(new_state, self.params, self.data), None
        setpoints, price_action = core.split_actions(core.check_actions(action), self.params, state.soc_kwh.shape)
        setpoints = np.ascontiguousarray(setpoints)
        price_action = np.ascontiguousarray(price_action) if price_action is not None else np.zeros((1, 1))
        k = self._packed
        hh, out_of_box, cleared, done, status = _transition(
            setpoints, price_action, state.t, state.end, state.soc_kwh, state.soc_start_kwh, state.throughput_kwh, state.baseline_used_kwh,
            k.iparams, k.scal, k.hp, k.prices, k.days, k.load, k.pv, k.baseline, k.unserved,
        )
        if status:  # the numpy core raises with the household named
            core.transition(state, action, self.params, self.data)
            raise RuntimeError("compiled kernel and numpy core disagree on a grid limit violation")
        soc, price, sdr = hh[_SOC], hh[_PRICE, :, 0], hh[_SDR, :, 0]
        new_state = core.State(
            t=state.t + 1, start=state.start, end=state.end, soc_kwh=soc, soc_start_kwh=state.soc_start_kwh,
            throughput_kwh=hh[_THR], last_price_usd_per_kwh=price, last_sdr=sdr, baseline_used_kwh=hh[_USED],
            last_volume_kwh=hh[_BOUGHT].sum(axis=-1),
        )
        obs = np.empty((*soc.shape, self._obs_width), dtype=np.float32)
        _observe(obs, new_state.t, state.start, state.end, soc, hh[_THR], price, sdr,
                 k.scal, k.hp, k.prices, k.load, k.pv, k.load_fc, k.pv_fc, k.scen_obs, k.hh_obs, k.offsets, hh)
        if self._volume_at is not None:
            obs[:, :, self._volume_at] = new_state.last_volume_kwh[:, None]
        if self.params.day_ahead_blocks:
            core.write_day_ahead(obs, np.minimum(new_state.t, self.data.load_kwh.shape[0] - 1), self.params, self.data)
        flags = (out_of_box, cleared, done)
        result = core.StepResult(*[hh[row] if kind == 0 else hh[row, :, 0] if kind == 1 else flags[row] for kind, row in _RESULT_ROWS])
        return new_state, result, obs, hh

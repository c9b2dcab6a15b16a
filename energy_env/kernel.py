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
from dataclasses import dataclass

import numpy as np

from energy_env import core
from energy_env.config import INTERVALS_PER_DAY
from energy_env.grid import METER_RESOLUTION_KWH
from energy_env.market import MECHANISMS
from energy_env.signals import WEIGHTS

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; the numpy core still works
    HAVE_NUMBA = False

# Rows of the per-household output block ``(len(ROWS), B, N)`` float64. The first 26 are the
# PettingZoo env's info keys in order (per-scenario values repeated for each household, flags
# as 0.0/1.0, the two signals rounded like the observation), so its infos are one ``tolist``.
ROWS = (
    "load_kwh", "pv_kwh", "pv_curtailed_kwh", "battery_ac_kwh", "soc_kwh", "grid_import_kwh",
    "grid_export_kwh", "p2p_bought_kwh", "p2p_sold_kwh", "p2p_paid_usd", "p2p_revenue_usd",
    "degradation_usd", "baseline_credit_usd", "terminal_settlement_usd", "cost_usd",
    "baseline_cost_usd", "action_clipped_kwh", "action_out_of_box", "constraint_violation_kwh",
    "import_price_usd_per_kwh", "export_price_usd_per_kwh", "market_price_usd_per_kwh", "sdr",
    "market_cleared", "profitability_score", "power_need_signal", "unserved_kwh",
    "reward", "throughput_kwh", "baseline_used_kwh",
)
NUM_INFO_ROWS = 27
NUM_ROWS = len(ROWS)
_R = {name: k for k, name in enumerate(ROWS)}
# Row numbers as module constants: numba compiles them in, and no row is written by a literal.
(_LOAD, _PV, _CURT, _AC, _SOC, _GI, _GE, _BOUGHT, _SOLD, _PAID, _REVENUE, _DEG_USD, _CREDIT_USD, _SETTLE, _COST, _BASE,
 _CLIPPED, _OOB, _VIOL, _IMP_PRICE, _EXP_PRICE, _PRICE, _SDR, _CLEARED, _SCORE, _NEED, _UNSERVED, _REWARD, _THR,
 _USED) = range(NUM_ROWS)
assert NUM_ROWS == 30
_SCENARIO_ROWS = ("import_price_usd_per_kwh", "export_price_usd_per_kwh", "market_price_usd_per_kwh", "sdr")

# Positions in the packed scalar parameters.
_LOSS, _ETA_C, _ETA_D, _DEG, _CREDIT, _TERMINAL, _SDR_CAP, _REF = range(8)
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
def _observe(obs, t_next, start, end, soc, thr, last_price, last_sdr, scal, hp, prices, load, pv, load_fc, pv_fc, scen_obs, hh):  # pragma: no cover
    """:func:`core.observe` into ``obs``; with ``hh`` (not None), also the two signals' info rows."""
    nb, n = soc.shape
    t_last = load.shape[0] - 1
    h = load_fc.shape[2]
    width = scen_obs.shape[1]
    last = 2 + 2 * h  # last_sdr in the per-scenario row
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
            o[0] = soc[b, i] / cap if has else 0.0
            o[1] = cap
            o[2] = load[t, i]
            o[3] = pv[t, i]
            for k in range(h):
                o[4 + k] = load_fc[t, i, k]
                o[4 + h + k] = pv_fc[t, i, k]
            j = 4 + 2 * h
            for k in range(width):
                o[j + k] = scen_obs[t, k]
            o[j + last] = _min(last_sdr[b], sdr_cap)
            o[j + last + 1] = last_price[b]
            o[j + last + 2] = _min(scen_obs[t, last + 2], sdr_cap32)
            o[j + width - 1] = progress
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
            o[j + width] = score
            o[j + width + 1] = 1.0 if net <= available else 0.0
            if hh is not None:
                hh[_SCORE, b, i] = o[j + width]
                hh[_NEED, b, i] = o[j + width + 1]


@_jit
def _transition(action, t, end, soc, soc_start, thr, used_in, iparams, scal, hp, prices, days, load, pv, baseline, unserved):  # pragma: no cover
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
            out_of_box[b, i] = a != in_box
            hh[_OOB, b, i] = 1.0 if a != in_box else 0.0
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
        cleared = supply > 0.0 and demand > 0.0 and sell < buy and mechanism != 3
        received = _min(supply * keep, demand) if cleared else 0.0
        sent = received / keep
        bought_share = 1.0 if (cleared and received >= demand) else received / (demand if cleared else 1.0)
        sold_share = 1.0 if (cleared and sent >= supply) else sent / (supply if cleared else 1.0)
        if not cleared:
            price = buy
        elif mechanism == 0:  # sdr
            price = sell * buy / ((buy - sell) * _min(sdr, 1.0) + sell)
        elif mechanism == 1:  # mid_market
            price = 0.5 * (buy + sell)
        else:  # bill_sharing
            price = 0.0
        done = t[b] + 1 >= end[b]
        day = tb // INTERVALS_PER_DAY
        midnight = tb % INTERVALS_PER_DAY == 0
        terminal = scal[_TERMINAL] if not np.isnan(scal[_TERMINAL]) else days[day, 0]
        for i in range(n):
            bought = asked[i] * bought_share
            sold = offered[i] * sold_share
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
    scal: np.ndarray  # (8,) float64 scalars
    hp: np.ndarray  # (8, N) per-household battery parameters and grid limits
    prices: np.ndarray  # (T, 4) import, export, market score as buyer / as seller
    days: np.ndarray  # (days, 2) off-peak rate, baseline allowance
    load: np.ndarray
    pv: np.ndarray
    baseline: np.ndarray
    load_fc: np.ndarray
    pv_fc: np.ndarray
    scen_obs: np.ndarray
    unserved: np.ndarray  # (T, N), or (1, 1) when there is no unserved load


def _pack(params: core.CommunityParams, data: core.CommunityData) -> _Packed:
    bp = params.battery
    c = np.ascontiguousarray
    any_unserved = bool(data.unserved_kwh.strides != (0, 0) and data.unserved_kwh.any())
    return _Packed(
        iparams=np.array(
            [MECHANISMS.index(params.mechanism), params.reward_kind == "cost", bp.charge_from_grid, any_unserved], dtype=np.int64
        ),
        scal=np.array([
            params.loss, bp.eta_charge, bp.eta_discharge,
            bp.degradation_cost_usd_per_kwh, params.baseline_credit_usd_per_kwh,
            np.nan if params.terminal_price_usd_per_kwh is None else params.terminal_price_usd_per_kwh,
            params.sdr_observation_cap, bp.reference_kwh,
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
        load_fc=c(data.load_fc_kwh, dtype=np.float64),
        pv_fc=c(data.pv_fc_kwh, dtype=np.float64),
        scen_obs=c(data.scenario_obs, dtype=np.float32),
        unserved=c(data.unserved_kwh, dtype=np.float64) if any_unserved else np.zeros((1, 1)),
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
        self._obs_width = core.observation_size(params.horizon)

    def observe(self, state: core.State) -> np.ndarray:
        """:func:`core.observe`."""
        if not self.compiled:
            return core.observe(state, self.params, self.data)
        k = self._packed
        obs = np.empty((*state.soc_kwh.shape, self._obs_width), dtype=np.float32)
        _observe(obs, state.t, state.start, state.end, state.soc_kwh, state.throughput_kwh, state.last_price_usd_per_kwh,
                 state.last_sdr, k.scal, k.hp, k.prices, k.load, k.pv, k.load_fc, k.pv_fc, k.scen_obs, None)
        return obs

    def step(self, state: core.State, action: np.ndarray) -> tuple[core.State, core.StepResult, np.ndarray, np.ndarray | None]:
        """One interval of every scenario: ``(new_state, result, observation, rows)``."""
        if not self.compiled:
            new_state, result = core.transition(state, action, self.params, self.data)
            return new_state, result, core.observe(new_state, self.params, self.data), None
        action = np.ascontiguousarray(core.check_actions(action))
        if action.shape != state.soc_kwh.shape:
            raise ValueError(f"actions have shape {action.shape}, expected {state.soc_kwh.shape} (scenarios, households)")
        k = self._packed
        hh, out_of_box, cleared, done, status = _transition(
            action, state.t, state.end, state.soc_kwh, state.soc_start_kwh, state.throughput_kwh, state.baseline_used_kwh,
            k.iparams, k.scal, k.hp, k.prices, k.days, k.load, k.pv, k.baseline, k.unserved,
        )
        if status:  # the numpy core raises with the household named
            core.transition(state, action, self.params, self.data)
            raise RuntimeError("compiled kernel and numpy core disagree on a grid limit violation")
        (load, pv, curtailed, ac, soc, gi, ge, bought, sold, paid, revenue, degradation, credit, settle, cost,
         baseline, clipped, _, violation, imp, exp, price, sdr, _, _, _, unserved, reward, throughput, used) = hh
        new_state = core.State(
            t=state.t + 1, start=state.start, end=state.end, soc_kwh=soc, soc_start_kwh=state.soc_start_kwh,
            throughput_kwh=throughput, last_price_usd_per_kwh=price[:, 0], last_sdr=sdr[:, 0], baseline_used_kwh=used,
        )
        obs = np.empty((*soc.shape, self._obs_width), dtype=np.float32)
        _observe(obs, new_state.t, state.start, state.end, soc, throughput, new_state.last_price_usd_per_kwh, new_state.last_sdr,
                 k.scal, k.hp, k.prices, k.load, k.pv, k.load_fc, k.pv_fc, k.scen_obs, hh)
        result = core.StepResult(
            load, pv, curtailed, ac, soc, gi, ge, bought, sold, paid, revenue, degradation, credit, settle, cost, baseline,
            reward, clipped, out_of_box, violation, imp[:, 0], exp[:, 0], new_state.last_price_usd_per_kwh, new_state.last_sdr,
            cleared, done, unserved,
        )
        return new_state, result, obs, hh

"""The simulation core: pure functions over B scenarios x N households.

Three pieces, in the style of Gymnasium's functional environments:

* :class:`CommunityParams`: everything static (battery arrays, limits, market rule);
* :class:`CommunityData`: everything that does not depend on actions, precomputed once per data
  set (prices, forecasts, time features, the baseline's cost, the coordinator's price estimate)
  by :mod:`energy_env.precompute`;
* :class:`State` plus :func:`reset_state`, :func:`transition` and :func:`observe`.

Arrays are ``(B, N)`` per household and ``(B,)`` per scenario. One step is a fixed number of numpy
operations whatever B and N are: there is no Python loop over households or scenarios.

These functions define the model. The envs step through :mod:`energy_env.kernel`, a compiled twin
of :func:`transition` + :func:`observe` tested to return the same numbers bit for bit; a change
here needs the same change there (``tests/test_kernel.py`` fails until both agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from energy_env import battery as bat
from energy_env import auction, grid, market, signals
from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset
from energy_env.layout import TIME_FEATURES, observation_layout
from energy_env.tariff import baseline_credit_kwh


@dataclass(frozen=True)
class CommunityParams:
    """Static parameters of a community."""

    battery: bat.BatteryParams
    import_limit_kwh: np.ndarray  # (N,) per household
    export_limit_kwh: np.ndarray  # (N,)
    mechanism: str
    loss: float
    reward_kind: str
    sdr_observation_cap: float
    horizon: int
    terminal_price_usd_per_kwh: float | None  # None: the off-peak import price of the last day
    baseline_credit_usd_per_kwh: float  # E-TOU-C credit on imports within the daily allowance; 0 = off
    auction_k: float = 0.5  # double_auction: the price's place in the crossing interval (energy_env.auction)
    day_ahead_blocks: int = 0  # forecast.day_ahead_blocks: K blocks of the day-ahead fields (0: not observed)

    @property
    def auction(self) -> bool:
        """True in ``market.mechanism: double_auction``: actions carry a limit price."""
        return self.mechanism == "double_auction"


@dataclass(frozen=True)
class CommunityData:
    """Per-data-set arrays, computed once and shared (read-only) by every env and scenario."""

    dataset: Dataset  # with load_kwh as served (see unserved_kwh)
    load_kwh: np.ndarray  # (T, N) served load: the data set's load less unserved_kwh
    pv_kwh: np.ndarray  # (T, N)
    import_usd_per_kwh: np.ndarray  # (T,)
    export_usd_per_kwh: np.ndarray  # (T,)
    import_fc_usd_per_kwh: np.ndarray  # (T, H): prices are known ahead (tariff)
    export_fc_usd_per_kwh: np.ndarray  # (T, H)
    load_fc_kwh: np.ndarray  # (T, N, H)
    pv_fc_kwh: np.ndarray  # (T, N, H)
    time_features: np.ndarray  # (T, 6) float32, see layout.TIME_FEATURES
    baseline_cost_usd: np.ndarray  # (T, N): battery idle, no P2P, plain PG&E
    expected_price_usd_per_kwh: np.ndarray  # (T,): coordinator's estimate for t, published at t-1
    expected_sdr: np.ndarray  # (T,)
    passive_price_usd_per_kwh: np.ndarray  # (T,): the market with idle batteries (used at reset)
    passive_sdr: np.ndarray  # (T,)
    offpeak_usd_per_kwh: np.ndarray  # (days,): the off-peak import rate of each day
    baseline_allowance_kwh: np.ndarray  # (days,): E-TOU-C baseline allowance of each day
    forecast_name: str
    pricing_description: str
    market_score_buyer: np.ndarray  # (T,): the profitability score's market term w1 m for a buyer
    market_score_seller: np.ndarray  # (T,): and for a seller (signals.market_terms of the expected price)
    # (T, 17 + 2 H) float32: the observation's scenario block of each interval, derived from the
    # arrays above once (scenario_observation_table); the fields read from the state are 0
    scenario_obs: np.ndarray
    # (T, N, K) float32: the observation's precomputed household fields (layout.HOUSEHOLD_TABLE_FIELDS)
    household_obs: np.ndarray
    # (T, N): load above PV + import limit, shed before the battery acts (grid.over_limit:
    # unserved); a zero-strided view of 0.0 when there is none
    unserved_kwh: np.ndarray
    # (T + 49, N, 2) float64 running sums of each home's 7-day mean load and PV of the same clock
    # time (precompute.day_ahead_mean_cumsum_kwh): the day-ahead fields are differences of two
    # rows; None when forecast.day_ahead_blocks is 0
    day_ahead_cumsum_kwh: np.ndarray | None = None


@dataclass(frozen=True)
class State:
    """Dynamic state of B scenarios."""

    t: np.ndarray  # (B,) global interval index of the next step
    start: np.ndarray  # (B,) index of the episode's first interval
    end: np.ndarray  # (B,) index one past the episode's last interval
    soc_kwh: np.ndarray  # (B, N)
    soc_start_kwh: np.ndarray  # (B, N)
    throughput_kwh: np.ndarray  # (B, N) AC throughput so far this episode
    last_price_usd_per_kwh: np.ndarray  # (B,)
    last_sdr: np.ndarray  # (B,)
    baseline_used_kwh: np.ndarray  # (B, N) grid imports so far today (for the baseline credit)
    last_volume_kwh: np.ndarray  # (B,) energy buyers received in the P2P market last interval


@dataclass(frozen=True)
class StepResult:
    """Flows of one step, ``(B, N)`` per household, ``(B,)`` per scenario. Energies in kWh."""

    load_kwh: np.ndarray
    pv_kwh: np.ndarray
    pv_curtailed_kwh: np.ndarray
    battery_ac_kwh: np.ndarray
    soc_kwh: np.ndarray
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    p2p_bought_kwh: np.ndarray
    p2p_sold_kwh: np.ndarray
    p2p_paid_usd: np.ndarray
    p2p_revenue_usd: np.ndarray
    degradation_usd: np.ndarray
    baseline_credit_usd: np.ndarray
    terminal_settlement_usd: np.ndarray
    cost_usd: np.ndarray
    baseline_cost_usd: np.ndarray
    reward: np.ndarray
    action_clipped_kwh: np.ndarray
    action_out_of_box: np.ndarray
    constraint_violation_kwh: np.ndarray
    import_price_usd_per_kwh: np.ndarray
    export_price_usd_per_kwh: np.ndarray
    market_price_usd_per_kwh: np.ndarray
    sdr: np.ndarray
    market_cleared: np.ndarray
    done: np.ndarray
    unserved_kwh: np.ndarray  # load shed because it exceeds PV + the import limit (0 unless opted in)


# ---------------------------------------------------------------------------------------------
# Dynamics


def reset_state(params: CommunityParams, data: CommunityData, start: np.ndarray, length: int) -> State:
    """Initial state of B scenarios starting at global intervals ``start`` for ``length`` steps."""
    start = np.asarray(start, dtype=np.int64).reshape(-1)
    if np.any(start < 0) or np.any(start + length > data.load_kwh.shape[0]):
        raise ValueError(f"episode [{start.min()}, {start.max() + length}) runs outside the data set (0..{data.load_kwh.shape[0]})")
    b, n = start.shape[0], params.battery.capacity_kwh.shape[0]
    soc = np.broadcast_to(params.battery.initial_soc_kwh, (b, n)).copy()
    prev = np.maximum(start - 1, 0)
    return State(
        t=start.copy(),
        start=start.copy(),
        end=start + length,
        soc_kwh=soc,
        soc_start_kwh=soc.copy(),
        throughput_kwh=np.zeros((b, n)),
        last_price_usd_per_kwh=data.passive_price_usd_per_kwh[prev].copy(),
        last_sdr=data.passive_sdr[prev].copy(),
        baseline_used_kwh=np.zeros((b, n)),
        last_volume_kwh=np.zeros(b),
    )


def check_actions(action: np.ndarray) -> np.ndarray:
    """Reject NaN or infinite actions with an error naming the (scenario, household)."""
    action = np.asarray(action, dtype=np.float64)
    # One reduction clears the common case: a sum is finite only if every term is (NaN and inf
    # propagate); a non-finite sum (or a finite overflow) falls through to the element check.
    if math.isfinite(np.add.reduce(action, axis=None)):
        return action
    bad = ~np.isfinite(action)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"action at (scenario, household) {idx[:2]} is {action[idx]}: actions must be finite numbers in [-1, 1]")
    return action


def action_width(params: CommunityParams) -> int:
    """Values in one household's action: the setpoint, and in the double auction its price action."""
    return 2 if params.auction else 1


def split_actions(action: np.ndarray, params: CommunityParams, batch_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Setpoints ``(B, N)`` and, in the double auction, price actions ``(B, N)``.

    An auction action is ``(B, N, 2)`` (setpoint, price action); a plain ``(B, N)`` setpoint there
    bids truthfully (price action +1, :func:`energy_env.auction.order_limits`). Raises
    ``ValueError`` for any other shape, or for price actions in a pool mode.
    """
    if action.shape == batch_shape:
        return action, (np.ones(batch_shape) if params.auction else None)
    if params.auction and action.shape == (*batch_shape, 2):
        return action[..., 0], action[..., 1]
    expected = f"{batch_shape} or {(*batch_shape, 2)} (setpoint, price action)" if params.auction else f"{batch_shape} (scenarios, households)"
    raise ValueError(f"actions have shape {action.shape}, expected {expected}" + ("" if params.auction else "; price actions need market.mechanism double_auction"))


def terminal_price(params: CommunityParams, data: CommunityData, last_t: np.ndarray) -> np.ndarray:
    """Price that settles the battery's end-of-episode energy change, per scenario."""
    if params.terminal_price_usd_per_kwh is not None:
        return np.full(np.shape(last_t), params.terminal_price_usd_per_kwh)
    return data.offpeak_usd_per_kwh[last_t // INTERVALS_PER_DAY]


def transition(state: State, action: np.ndarray, params: CommunityParams, data: CommunityData) -> tuple[State, StepResult]:
    """Apply setpoints ``action`` (``(B, N)`` in [-1, 1], fraction of max power, + charges).

    Out-of-box setpoints are clipped and counted; the setpoint is then projected onto the
    feasible set (state bounds, power, charging source, grid limits) and the difference reported.

    Speed: every ``(B, N)`` array here is a fresh temporary, so sums of terms accumulate in place
    (same operations in the same order, fewer allocations), and terms that are 0 in a step (the
    baseline credit when off, the terminal settlement before the last step) are skipped, which
    leaves the sum unchanged (``x - 0 == x``).
    """
    action, price_action = split_actions(check_actions(action), params, state.soc_kwh.shape)
    t = state.t
    bp = params.battery
    load, pv = data.load_kwh[t], data.pv_kwh[t]
    imp, exp = data.import_usd_per_kwh[t], data.export_usd_per_kwh[t]

    # np.minimum(np.maximum()) is np.clip without its Python-level overhead (finite inputs).
    in_box = np.minimum(np.maximum(action, -1.0), 1.0)
    lo, hi = bat.ac_bounds(state.soc_kwh, load, pv, bp, params.import_limit_kwh, params.export_limit_kwh)
    b = in_box * bp.max_ac_kwh
    np.minimum(np.maximum(b, lo, out=b), hi, out=b)
    curtailed = grid.curtailment_kwh(load, pv, b, params.export_limit_kwh)
    net = grid.net_position_kwh(load, pv, curtailed, b)
    if grid.within_limits(net, params.import_limit_kwh, params.export_limit_kwh):
        violation = np.zeros(net.shape)
    else:  # impossible by construction: a bug, never silently passed on
        violation = grid.limit_violation_kwh(net, params.import_limit_kwh, params.export_limit_kwh)
        idx = tuple(int(i) for i in np.argwhere(violation > 0)[0])
        raise RuntimeError(f"grid limit violated by {violation[idx]:.3g} kWh at (scenario, household) {idx}")

    if price_action is None:
        clearing = market.clear(net, imp, exp, params.mechanism, params.loss)
        out_of_box = action != in_box
    else:
        price_in_box = np.minimum(np.maximum(price_action, -1.0), 1.0)
        limits = auction.order_limits(price_in_box, net, imp, exp, params.loss)
        clearing = market.clear(net, imp, exp, params.mechanism, params.loss, limits, params.auction_k)
        out_of_box = (action != in_box) | (price_action != price_in_box)
    soc = bat.next_soc(state.soc_kwh, b, bp)
    degradation = bat.degradation_cost_usd(b, bp)
    # E-TOU-C baseline credit (off by default): imports within today's allowance are cheaper.
    midnight = t % INTERVALS_PER_DAY == 0
    used = np.where(midnight[:, None], 0.0, state.baseline_used_kwh) if midnight.any() else state.baseline_used_kwh
    cost = clearing.grid_import_kwh * imp[:, None]
    cost -= clearing.grid_export_kwh * exp[:, None]
    cost += clearing.p2p_paid_usd
    cost -= clearing.p2p_revenue_usd
    cost += degradation
    if params.baseline_credit_usd_per_kwh > 0.0:
        allowance = data.baseline_allowance_kwh[t // INTERVALS_PER_DAY][:, None]
        credit = params.baseline_credit_usd_per_kwh * baseline_credit_kwh(clearing.grid_import_kwh, used, allowance)
        cost -= credit
    else:
        credit = np.zeros(cost.shape)
    t_next = t + 1
    done = t_next >= state.end
    # Energy left in (or taken from) the battery is settled at the terminal price, so draining
    # the battery in the last interval gains nothing.
    if done.any():
        settle = np.where(done[:, None], -(soc - state.soc_start_kwh) * terminal_price(params, data, t)[:, None], 0.0)
        cost += settle
    else:
        settle = np.zeros(cost.shape)
    baseline = data.baseline_cost_usd[t]
    reward = -cost if params.reward_kind == "cost" else baseline - cost
    clipped = np.subtract(action * bp.max_ac_kwh, b)  # requested minus applied
    np.abs(clipped, out=clipped)

    new_state = State(
        t=t_next,
        start=state.start,
        end=state.end,
        soc_kwh=soc,
        soc_start_kwh=state.soc_start_kwh,
        throughput_kwh=state.throughput_kwh + np.abs(b),
        last_price_usd_per_kwh=clearing.price_usd_per_kwh,
        last_sdr=clearing.sdr,
        baseline_used_kwh=used + clearing.grid_import_kwh,
        last_volume_kwh=clearing.p2p_bought_kwh.sum(axis=-1),
    )
    result = StepResult(
        load_kwh=load,
        pv_kwh=pv,
        pv_curtailed_kwh=curtailed,
        battery_ac_kwh=b,
        soc_kwh=soc,
        grid_import_kwh=clearing.grid_import_kwh,
        grid_export_kwh=clearing.grid_export_kwh,
        p2p_bought_kwh=clearing.p2p_bought_kwh,
        p2p_sold_kwh=clearing.p2p_sold_kwh,
        p2p_paid_usd=clearing.p2p_paid_usd,
        p2p_revenue_usd=clearing.p2p_revenue_usd,
        degradation_usd=degradation,
        baseline_credit_usd=credit,
        terminal_settlement_usd=settle,
        cost_usd=cost,
        baseline_cost_usd=baseline,
        reward=reward,
        action_clipped_kwh=clipped,
        action_out_of_box=out_of_box,
        constraint_violation_kwh=violation,
        import_price_usd_per_kwh=imp,
        export_price_usd_per_kwh=exp,
        market_price_usd_per_kwh=clearing.price_usd_per_kwh,
        sdr=clearing.sdr,
        market_cleared=clearing.cleared,
        done=done,
        unserved_kwh=data.unserved_kwh[t],
    )
    return new_state, result


# ---------------------------------------------------------------------------------------------
# Observations


def observation_fields(horizon: int, auction: bool = False, day_ahead_blocks: int = 0) -> list[tuple[str, int]]:
    """Names and widths of the observation vector's fields, in order (:mod:`energy_env.layout`)."""
    return observation_layout(horizon, auction, day_ahead_blocks).fields()


def observation_size(horizon: int, auction: bool = False, day_ahead_blocks: int = 0) -> int:
    """Length of one household's observation vector (``auction``: in the double auction; ``day_ahead_blocks``: K)."""
    return observation_layout(horizon, auction, day_ahead_blocks).size


def layout_of(params: CommunityParams):
    """The observation layout of a community with ``params`` (:func:`energy_env.layout.observation_layout`)."""
    return observation_layout(params.horizon, params.auction, params.day_ahead_blocks)


def household_signals(state: State, params: CommunityParams, data: CommunityData) -> tuple[np.ndarray, np.ndarray]:
    """Profitability score (0-100) and power-need signal (1 GREEN, 0 RED), ``(B, N)`` each."""
    t = np.minimum(state.t, data.load_kwh.shape[0] - 1)
    return _household_signals(state, params, data, t, data.load_kwh[t], data.pv_kwh[t])


def _household_signals(
    state: State, params: CommunityParams, data: CommunityData, t: np.ndarray, load: np.ndarray, pv: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    bp = params.battery
    band = bp.usable_kwh
    above_min = state.soc_kwh - bp.soc_min_kwh
    soc_usable = above_min / band
    if not bp.all_batteries:
        soc_usable = np.where(bp.has_battery, soc_usable, 0.0)
    steps_done = np.maximum(state.t - state.start, 1)[:, None]
    cycles_per_day = state.throughput_kwh / (2.0 * band) / (steps_done / INTERVALS_PER_DAY)
    score = signals.score_from_market_terms(
        load, pv, soc_usable, cycles_per_day, True if bp.all_batteries else bp.has_battery,
        data.market_score_buyer[t][:, None], data.market_score_seller[t][:, None],
        ref_kwh=bp.reference_kwh,
    )
    available = np.maximum(above_min, 0.0, out=above_min)
    available *= bp.eta_discharge
    need = signals.power_need_signal(load, pv, np.minimum(available, bp.max_ac_kwh, out=available))
    return score, need


def observe(state: State, params: CommunityParams, data: CommunityData) -> np.ndarray:
    """Observation of every household, ``(B, N, observation_size)`` float32 (layout in docs/model.md).

    After the last step of the data set the final interval's exogenous values are repeated.
    """
    bp = params.battery
    lay = layout_of(params)
    t = np.minimum(state.t, data.load_kwh.shape[0] - 1)
    b, n = state.soc_kwh.shape
    obs = np.empty((b, n, lay.size), dtype=np.float32)
    load, pv = data.load_kwh[t], data.pv_kwh[t]
    cap = bp.capacity_kwh
    if bp.all_batteries:
        obs[:, :, lay.at("soc_fraction")] = state.soc_kwh / cap
    else:
        obs[:, :, lay.at("soc_fraction")] = np.where(cap > 0, state.soc_kwh / np.where(cap > 0, cap, 1.0), 0.0)
    obs[:, :, lay.at("battery_capacity_kwh")] = cap
    obs[:, :, lay.at("load_kwh")] = load
    obs[:, :, lay.at("pv_kwh")] = pv
    obs[:, :, lay.slice("load_forecast_kwh")] = data.load_fc_kwh[t]
    obs[:, :, lay.slice("pv_forecast_kwh")] = data.pv_fc_kwh[t]
    obs[:, :, lay.household_table_slice()] = data.household_obs[t]
    # The scenario block: the precomputed row of each scenario's interval, completed from the state.
    rows = data.scenario_obs[t]
    col = lambda name: lay.in_scenario_row(name).start  # noqa: E731
    cap_sdr = params.sdr_observation_cap
    rows[:, col("last_sdr")] = np.minimum(state.last_sdr, cap_sdr)
    rows[:, col("last_market_price_usd_per_kwh")] = state.last_price_usd_per_kwh
    np.minimum(rows[:, col("expected_sdr")], cap_sdr, out=rows[:, col("expected_sdr")])
    rows[:, col("episode_progress")] = (state.t - state.start) / (state.end - state.start)
    obs[:, :, lay.scenario_slice()] = rows[:, None, :]
    score, need = _household_signals(state, params, data, t, load, pv)
    obs[:, :, lay.at("profitability_score")] = score
    obs[:, :, lay.at("power_need_signal")] = need
    if params.auction:
        obs[:, :, lay.at("last_p2p_volume_kwh")] = state.last_volume_kwh[:, None]
    if params.day_ahead_blocks:
        write_day_ahead(obs, t, params, data)
    return obs


def write_day_ahead(obs: np.ndarray, t: np.ndarray, params: CommunityParams, data: CommunityData) -> None:
    """Fill the day-ahead fields of ``obs`` ``(B, N, D)`` at intervals ``t`` ``(B,)`` (both cores call it)."""
    lay = layout_of(params)
    sums = day_ahead_block_sums(data.day_ahead_cumsum_kwh, t, params.day_ahead_blocks)  # (B, N, 2, K)
    obs[:, :, lay.slice("load_next_day_mean_kwh")] = sums[:, :, 0]
    obs[:, :, lay.slice("pv_next_day_mean_kwh")] = sums[:, :, 1]


def day_ahead_block_sums(cumsum_kwh: np.ndarray, t: np.ndarray, blocks: int) -> np.ndarray:
    """``(B, N, 2, K)``: the 7-day-mean load and PV summed over each of K blocks of intervals ``t+1 .. t+48``.

    ``cumsum_kwh`` is :attr:`CommunityData.day_ahead_cumsum_kwh`; block ``j`` holds intervals
    ``t + 1 + j w .. t + (j + 1) w`` with ``w = 48 / K``.
    """
    edges = np.asarray(t)[:, None] + 1 + np.arange(blocks + 1) * (INTERVALS_PER_DAY // blocks)  # (B, K + 1)
    rows = cumsum_kwh[edges]  # (B, K + 1, N, 2); row r sums intervals 0 .. r - 1
    return np.moveaxis(rows[:, 1:] - rows[:, :-1], 1, -1)


def observation_bounds(params: CommunityParams, data: CommunityData) -> tuple[np.ndarray, np.ndarray]:
    """Tight float32 ``(low, high)`` of the observation vector, derived from the data set once."""
    keep = 1.0 - params.loss
    price_lo = min(0.0, float(data.import_usd_per_kwh.min()), float(data.export_usd_per_kwh.min()) / keep)
    price_hi = max(float(data.import_usd_per_kwh.max()), float(data.export_usd_per_kwh.max()) / keep)
    cap = params.sdr_observation_cap
    ranges = {
        "soc_fraction": (0.0, 1.0),
        "battery_capacity_kwh": (0.0, float(params.battery.capacity_kwh.max())),
        "load_kwh": (0.0, float(data.load_kwh.max())),
        "pv_kwh": (0.0, float(data.pv_kwh.max())),
        "load_forecast_kwh": (min(0.0, float(data.load_fc_kwh.min())), float(data.load_fc_kwh.max())),
        "pv_forecast_kwh": (min(0.0, float(data.pv_fc_kwh.min())), float(data.pv_fc_kwh.max())),
        "load_next_12h_yesterday_kwh": (0.0, float(data.household_obs[..., 0].max())),
        "pv_next_12h_yesterday_kwh": (0.0, float(data.household_obs[..., 1].max())),
        "import_price_usd_per_kwh": (float(data.import_usd_per_kwh.min()), float(data.import_usd_per_kwh.max())),
        "export_price_usd_per_kwh": (float(data.export_usd_per_kwh.min()), float(data.export_usd_per_kwh.max())),
        "last_sdr": (0.0, cap),
        "expected_sdr": (0.0, cap),
        "last_market_price_usd_per_kwh": (price_lo, price_hi),
        "expected_market_price_usd_per_kwh": (price_lo, price_hi),
        "is_weekend": (0.0, 1.0),
        "is_peak": (0.0, 1.0),
        "episode_progress": (0.0, 1.0),
        "profitability_score": (0.0, 100.0),
        "power_need_signal": (0.0, 1.0),
    }
    ranges["import_price_forecast_usd_per_kwh"] = ranges["import_price_usd_per_kwh"]
    ranges["export_price_forecast_usd_per_kwh"] = ranges["export_price_usd_per_kwh"]
    ranges["import_price_max_next_day_usd_per_kwh"] = ranges["import_price_usd_per_kwh"]
    ranges["export_price_max_next_day_usd_per_kwh"] = ranges["export_price_usd_per_kwh"]
    ranges["hours_to_import_price_max"] = ranges["hours_to_export_price_max"] = (0.5, 24.0)
    if params.day_ahead_blocks:  # a block's 7-day mean: at most w intervals of the largest value
        w = INTERVALS_PER_DAY // params.day_ahead_blocks
        ranges["load_next_day_mean_kwh"] = (0.0, float(data.load_kwh.max()) * w)
        ranges["pv_next_day_mean_kwh"] = (0.0, float(data.pv_kwh.max()) * w)
    ranges.update({name: (-1.0, 1.0) for name in TIME_FEATURES if name.endswith(("_sin", "_cos"))})
    # delivered energy: at most what every home may export, less the loss
    ranges["last_p2p_volume_kwh"] = (0.0, float(params.export_limit_kwh.sum()) * keep)
    lay = layout_of(params)
    missing = [f.name for f in lay.all_fields if f.name not in ranges]
    if missing:  # a field added to the layout needs its range here
        raise AssertionError(f"observation_bounds has no range for {missing}")
    low, high = np.empty(lay.size, dtype=np.float32), np.empty(lay.size, dtype=np.float32)
    for f in lay.all_fields:
        low[lay.slice(f.name)], high[lay.slice(f.name)] = ranges[f.name]
    return low, high

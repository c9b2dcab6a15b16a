"""Precomputation: everything a community needs that does not depend on actions, once per data set.

:func:`build_params` expands a config into per-household arrays; :func:`build_data` computes a
data set's prices, forecasts, time features, the PG&E baseline's cost, the coordinator's price
estimate and the observation's scenario block (:class:`~energy_env.core.CommunityData`), and
:func:`serve_load` applies the grid's import limit to the load. Nothing here runs per step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from energy_env import battery as bat
from energy_env import grid, market, signals
from energy_env.config import INTERVALS_PER_DAY, EnvConfig
from energy_env.core import CommunityData, CommunityParams
from energy_env.data.dataset import DataError, Dataset
from energy_env.forecast import ForecastProvider, make_provider
from energy_env.layout import HOUSEHOLD_TABLE_FIELDS, SCENARIO_FIELDS, TIME_FEATURES
from energy_env.tariff import baseline_allowance_kwh_per_day, baseline_credit_kwh, baseline_credit_usd_per_kwh, build_price_table


def build_params(cfg: EnvConfig, num_households: int) -> CommunityParams:
    """Static parameters from a config."""
    return CommunityParams(
        battery=bat.battery_params(cfg.battery, num_households),
        import_limit_kwh=grid.per_household_kwh(cfg.grid.import_limit_kwh, num_households),
        export_limit_kwh=grid.per_household_kwh(cfg.grid.export_limit_kwh, num_households),
        mechanism=cfg.market.mechanism,
        loss=cfg.market.transmission_loss,
        reward_kind=cfg.reward.kind,
        sdr_observation_cap=cfg.market.sdr_observation_cap,
        horizon=cfg.forecast.horizon,
        terminal_price_usd_per_kwh=cfg.tariff.terminal_price_usd_per_kwh,
        baseline_credit_usd_per_kwh=baseline_credit_usd_per_kwh(cfg.tariff) if cfg.tariff.baseline_credit else 0.0,
        auction_k=cfg.market.auction_k,
        day_ahead_blocks=cfg.forecast.day_ahead_blocks,
    )


def _time_features(dataset: Dataset, is_peak: np.ndarray) -> np.ndarray:
    ts = dataset.timestamps
    tod = (ts.hour * 60 + ts.minute).to_numpy() / (24 * 60)
    doy = (ts.day_of_year.to_numpy() - 1) / 365.25
    weekend = (ts.day_of_week.to_numpy() >= 5).astype(np.float64)
    two_pi = 2 * np.pi
    feats = np.stack(
        [np.sin(two_pi * tod), np.cos(two_pi * tod), np.sin(two_pi * doy), np.cos(two_pi * doy), weekend, is_peak.astype(np.float64)],
        axis=1,
    )
    return feats.astype(np.float32)


def _price_windows(price: np.ndarray, horizon: int) -> np.ndarray:
    padded = np.concatenate([price[1:], np.repeat(price[-1:], horizon)])
    return np.lib.stride_tricks.sliding_window_view(padded, horizon)[: len(price)]


def day_ahead_max(price: np.ndarray, steps: int = INTERVALS_PER_DAY) -> tuple[np.ndarray, np.ndarray]:
    """``(max, hours_to_max)`` of ``price`` over the ``steps`` intervals after each interval.

    Past the data set's end its last price repeats; ``hours_to_max`` is the first interval with
    the maximum, in hours (0.5 for the next interval).
    """
    padded = np.concatenate([price[1:], np.repeat(price[-1:], steps)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, steps)[: len(price)]
    first = windows.argmax(axis=1)
    hours = (first + 1) * (24.0 / INTERVALS_PER_DAY)
    return windows[np.arange(len(price)), first], hours


def yesterday_next_hours_kwh(energy_kwh: np.ndarray, hours: float = 12.0) -> np.ndarray:
    """``(T, N)`` float32: each home's energy over the ``hours`` after the same time yesterday.

    At interval ``t``: the sum of ``energy_kwh[t - 47 .. t - 48 + steps]``, a persistence forecast of
    the next ``hours`` from the home's own past. The data set's first day has no yesterday: its
    own values stand in (the only place where the field shows the day itself).
    """
    steps = int(round(hours * INTERVALS_PER_DAY / 24))
    day = INTERVALS_PER_DAY
    padded = np.concatenate([energy_kwh[:day], energy_kwh], axis=0)  # row t + day of padded is interval t
    csum = np.concatenate([np.zeros((1, energy_kwh.shape[1])), np.cumsum(padded, axis=0, dtype=np.float64)], axis=0)
    t = np.arange(energy_kwh.shape[0])
    # interval t - day + 1 .. t - day + steps is padded rows t + 1 .. t + steps
    return (csum[t + steps + 1] - csum[t + 1]).astype(np.float32)


def seven_day_mean_kwh(energy_kwh: np.ndarray, days: int = 7) -> np.ndarray:
    """``(T, N)``: at each interval, the mean of the same clock time over the ``days`` days before it.

    Known a day ahead: interval ``t + k`` (``k <= 48``) needs only intervals up to ``t``. Intervals
    with fewer earlier days in the data set average those there are; the data set's first day has
    none, and its own values stand in (as in :func:`yesterday_next_hours_kwh`).
    """
    total = np.zeros(energy_kwh.shape)
    count = np.zeros((energy_kwh.shape[0], 1))
    for d in range(1, days + 1):
        shift = d * INTERVALS_PER_DAY
        total[shift:] += energy_kwh[:-shift]
        count[shift:] += 1
    return np.where(count > 0, total / np.maximum(count, 1), energy_kwh)


def day_ahead_mean_cumsum_kwh(load_kwh: np.ndarray, pv_kwh: np.ndarray) -> np.ndarray:
    """``(T + 49, N, 2)`` float64: running sums of :func:`seven_day_mean_kwh` of load and PV.

    Row ``r`` sums intervals ``0 .. r - 1``; past the data set's end its last interval repeats, so
    a block reaching beyond it sums that interval's mean (like the other fields' padding).
    """
    means = np.stack([seven_day_mean_kwh(load_kwh), seven_day_mean_kwh(pv_kwh)], axis=-1)  # (T, N, 2)
    padded = np.concatenate([means, np.repeat(means[-1:], INTERVALS_PER_DAY, axis=0)])
    return np.concatenate([np.zeros((1, *means.shape[1:])), np.cumsum(padded, axis=0)])


def household_observation_table(load_kwh: np.ndarray, pv_kwh: np.ndarray) -> np.ndarray:
    """The observation's precomputed household fields, float32 ``(T, N, K)`` in the layout's order."""
    columns = {"load_next_12h_yesterday_kwh": yesterday_next_hours_kwh(load_kwh), "pv_next_12h_yesterday_kwh": yesterday_next_hours_kwh(pv_kwh)}
    return np.stack([columns[f.name] for f in HOUSEHOLD_TABLE_FIELDS], axis=-1)


def scenario_observation_table(
    import_usd: np.ndarray,
    export_usd: np.ndarray,
    import_fc_usd: np.ndarray,
    export_fc_usd: np.ndarray,
    expected_sdr: np.ndarray,
    expected_price_usd: np.ndarray,
    time_features: np.ndarray,
) -> np.ndarray:
    """The observation's scenario block for every interval, float32 ``(T, 17 + 2 H)``.

    Columns in the layout's order (:data:`energy_env.layout.SCENARIO_FIELDS`): prices now and
    ahead, each price's maximum over the next day and when it comes, the coordinator's expected SDR (uncapped here: capping commutes with rounding to
    float32) and price, time features; the fields :func:`observe` takes from the state are 0 here.
    One row gather per step replaces a dozen small array operations.
    """
    t = import_usd.shape[0]
    imp_max, imp_hours = day_ahead_max(import_usd)
    exp_max, exp_hours = day_ahead_max(export_usd)
    columns = {
        "import_price_max_next_day_usd_per_kwh": imp_max[:, None],
        "hours_to_import_price_max": imp_hours[:, None],
        "export_price_max_next_day_usd_per_kwh": exp_max[:, None],
        "hours_to_export_price_max": exp_hours[:, None],
        "import_price_usd_per_kwh": import_usd[:, None],
        "export_price_usd_per_kwh": export_usd[:, None],
        "import_price_forecast_usd_per_kwh": import_fc_usd,
        "export_price_forecast_usd_per_kwh": export_fc_usd,
        "expected_sdr": expected_sdr[:, None],
        "expected_market_price_usd_per_kwh": expected_price_usd[:, None],
        **{name: time_features[:, [k]] for k, name in enumerate(TIME_FEATURES)},
    }
    zero = np.zeros((t, 1))
    return np.concatenate([zero if f.from_state else columns[f.name] for f in SCENARIO_FIELDS], axis=1).astype(np.float32)


def baseline_cost_usd(
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    import_usd: np.ndarray,
    export_usd: np.ndarray,
    export_limit_kwh: float | np.ndarray,
    credit_usd_per_kwh: float = 0.0,
    allowance_kwh_per_day: np.ndarray | None = None,
) -> np.ndarray:
    """Cost ``(T, N)`` of each home alone on plain PG&E pricing: battery idle, no P2P market."""
    net = load_kwh - pv_kwh
    imported = np.maximum(net, 0.0)
    exported = np.minimum(np.maximum(-net, 0.0), export_limit_kwh)  # the rest is curtailed
    cost = imported * import_usd[..., None] - exported * export_usd[..., None]
    if credit_usd_per_kwh > 0.0:
        t, n = imported.shape
        per_day = imported.reshape(-1, INTERVALS_PER_DAY, n)
        used_before = (np.cumsum(per_day, axis=1) - per_day).reshape(t, n)
        allowance = np.repeat(allowance_kwh_per_day, INTERVALS_PER_DAY)[:, None]
        cost = cost - credit_usd_per_kwh * baseline_credit_kwh(imported, used_before, allowance)
    return cost


def build_data(cfg: EnvConfig, dataset: Dataset, provider: ForecastProvider | None = None) -> CommunityData:
    """Precompute every action-independent array of a data set (prices, forecasts, baseline).

    Load above PV + the import limit raises :class:`DataError` naming the home, unless
    ``grid.over_limit`` is ``unserved``: then it is shed and kept in ``unserved_kwh``, and the
    data set every policy sees carries the served load.
    """
    dataset, unserved = serve_load(dataset, cfg)
    provider = provider or make_provider(cfg.forecast.provider, cfg.forecast.checkpoint)
    horizon = cfg.forecast.horizon
    prices = build_price_table(dataset.timestamps, cfg.tariff)
    if cfg.tariff.import_pricing == "caiso_indexed":
        # import price indexed to a CAISO node; its description names the series and the adder
        from energy_env.dynamic_pricing import wholesale_indexed_price_table

        prices = wholesale_indexed_price_table(prices, cfg)
    imp, exp = prices.import_usd_per_kwh, prices.export_usd_per_kwh
    load_fc, pv_fc = provider.forecast(dataset, horizon)
    expected_shape = (*dataset.load_kwh.shape, horizon)
    if load_fc.shape != expected_shape or pv_fc.shape != expected_shape:
        raise ValueError(f"forecast provider {provider.name!r} returned {load_fc.shape}/{pv_fc.shape}, expected {expected_shape}")

    mech, loss = cfg.market.mechanism, cfg.market.transmission_loss
    passive = market.clear(dataset.load_kwh - dataset.pv_kwh, imp, exp, mech, loss)
    # The coordinator's estimate for t uses the nodes' one-step forecasts made at t-1.
    fc_net = np.concatenate([(dataset.load_kwh[:1] - dataset.pv_kwh[:1]), (load_fc[:-1, :, 0] - pv_fc[:-1, :, 0])], axis=0)
    expected = market.clear(fc_net.astype(np.float64), imp, exp, mech, loss)

    credit = baseline_credit_usd_per_kwh(cfg.tariff) if cfg.tariff.baseline_credit else 0.0
    allowance = baseline_allowance_kwh_per_day(dataset.dates, cfg.tariff)
    arrays = dict(
        import_fc_usd_per_kwh=_price_windows(imp, horizon),
        export_fc_usd_per_kwh=_price_windows(exp, horizon),
        time_features=_time_features(dataset, prices.is_peak),
        baseline_cost_usd=baseline_cost_usd(
            dataset.load_kwh, dataset.pv_kwh, imp, exp, grid.per_household_kwh(cfg.grid.export_limit_kwh, dataset.num_households),
            credit, allowance,
        ),
        expected_price_usd_per_kwh=expected.price_usd_per_kwh,
        expected_sdr=expected.sdr,
        passive_price_usd_per_kwh=passive.price_usd_per_kwh,
        passive_sdr=passive.sdr,
        offpeak_usd_per_kwh=prices.off_peak_import_usd_per_kwh[::INTERVALS_PER_DAY],
        baseline_allowance_kwh=allowance,
    )
    arrays["market_score_buyer"], arrays["market_score_seller"] = signals.market_terms(expected.price_usd_per_kwh, imp, exp, loss)
    arrays["scenario_obs"] = scenario_observation_table(
        imp, exp, arrays["import_fc_usd_per_kwh"], arrays["export_fc_usd_per_kwh"],
        arrays["expected_sdr"], arrays["expected_price_usd_per_kwh"], arrays["time_features"],
    )
    arrays["household_obs"] = household_observation_table(dataset.load_kwh, dataset.pv_kwh)
    if cfg.forecast.day_ahead_blocks:
        arrays["day_ahead_cumsum_kwh"] = day_ahead_mean_cumsum_kwh(dataset.load_kwh, dataset.pv_kwh)
    for a in arrays.values():
        a.setflags(write=False)
    return CommunityData(
        dataset=dataset,
        load_kwh=dataset.load_kwh,
        pv_kwh=dataset.pv_kwh,
        import_usd_per_kwh=imp,
        export_usd_per_kwh=exp,
        load_fc_kwh=load_fc,
        pv_fc_kwh=pv_fc,
        forecast_name=provider.name,
        pricing_description=prices.description,
        unserved_kwh=unserved,
        **arrays,
    )


def serve_load(dataset: Dataset, cfg: EnvConfig) -> tuple[Dataset, np.ndarray]:
    """``(dataset with served load, unserved_kwh (T, N))`` under ``cfg.grid``.

    No battery action can serve load above PV + the import limit. ``grid.over_limit: error``
    (default) refuses such data naming the home, interval and key; ``unserved`` sheds the excess.
    """
    limit = grid.per_household_kwh(cfg.grid.import_limit_kwh, dataset.num_households)
    unserved = grid.unserved_kwh(dataset.load_kwh, dataset.pv_kwh, limit)
    if not unserved.any():
        return dataset, np.broadcast_to(0.0, dataset.load_kwh.shape)
    if cfg.grid.over_limit == "error":
        over = unserved > 0
        r, h = np.argwhere(over)[0]
        homes = int(over.any(axis=0).sum())
        raise DataError(
            f"{dataset.locate(int(h), int(r))}: household {dataset.household_ids[h]} needs "
            f"{dataset.load_kwh[r, h] - dataset.pv_kwh[r, h]:.3f} kWh from the grid at {dataset.timestamps[r]} (interval {r}), "
            f"above its grid.import_limit_kwh of {limit[h]:g} kWh "
            f"per interval ({int(over.sum())} intervals of {homes} home(s) exceed their limit). Raise that home's limit "
            "(grid.import_limit_kwh takes a list, one value per home), or set grid.over_limit: unserved to run it with "
            "the excess shed and counted as unserved_kwh"
        )
    unserved.setflags(write=False)
    served = dataclasses.replace(dataset, load_kwh=np.ascontiguousarray(dataset.load_kwh - unserved))
    return served, unserved

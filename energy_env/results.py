"""Turn a rollout into the seed's output JSON (``data/output/simulation_results.json``).

Shape, per the proof of concept: ``households[]`` with ``id``, ``costs`` (``baseline_pge_total``,
``optimized_total``, ``savings``, ``savings_percent``) and a per-interval ``timeline``, plus
``aggregate_metrics`` (``avg_household_savings_percent``, ``total_energy_traded_kwh`` and more).
``savings_percent`` is null for a home whose baseline bill is not positive (it earns money on
plain PG&E pricing, so a percentage means nothing); the average counts only the others and
``households_without_positive_baseline`` says how many were left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from energy_env.community import Community

TIMELINE_FIELDS = (
    "load_kwh",
    "pv_kwh",
    "pv_curtailed_kwh",
    "battery_ac_kwh",
    "soc_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "p2p_bought_kwh",
    "p2p_sold_kwh",
    "cost_usd",
    "baseline_cost_usd",
)


def _r(x: float, nd: int = 6) -> float:
    return round(float(x), nd)


def household_costs(traj: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Totals per household over time and scenarios: baseline, optimized, savings, percent."""
    baseline = traj["baseline_cost_usd"].sum(axis=(0, 1))
    optimized = traj["cost_usd"].sum(axis=(0, 1))
    savings = baseline - optimized
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(baseline > 0, 100.0 * savings / baseline, np.nan)
    return {"baseline": baseline, "optimized": optimized, "savings": savings, "percent": pct}


def trading_efficiency(traj: dict[str, np.ndarray], loss: float) -> float | None:
    """P2P energy matched / energy that could have been matched, over the intervals where trade pays.

    Per interval the matchable energy is ``min((1 - loss) * supply, demand)`` of the net
    positions. The instant pro-rata market matches all of it, so this is 1 with any mechanism
    and 0 without a market; it guards against regressions and frames mechanisms that leave
    trades unmatched (a double auction with bids).
    """
    supply = (traj["p2p_sold_kwh"] + traj["grid_export_kwh"]).sum(axis=2)
    demand = (traj["p2p_bought_kwh"] + traj["grid_import_kwh"]).sum(axis=2)
    pays = traj["export_price_usd_per_kwh"] / (1 - loss) < traj["import_price_usd_per_kwh"]
    matchable = np.where(pays, np.minimum((1 - loss) * supply, demand), 0.0).sum()
    return float(traj["p2p_bought_kwh"].sum() / matchable) if matchable > 0 else None


def battery_cycles_per_day(traj: dict[str, np.ndarray], usable_kwh: np.ndarray) -> float | None:
    """Mean equivalent full cycles per day of the homes that have a battery."""
    has = usable_kwh > 0
    if not has.any():
        return None
    days = traj["battery_ac_kwh"].shape[0] * traj["battery_ac_kwh"].shape[1] / 48
    throughput = np.abs(traj["battery_ac_kwh"]).sum(axis=(0, 1))[has]
    return float(np.mean(throughput / (2 * usable_kwh[has]) / days))


def aggregate_metrics(traj: dict[str, np.ndarray], community: Community | None = None) -> dict[str, Any]:
    """Community-level figures of a rollout (battery and market figures need ``community``)."""
    c = household_costs(traj)
    valid = ~np.isnan(c["percent"])
    community_import = traj["grid_import_kwh"].sum(axis=2)  # (L, B)
    baseline_import = np.maximum(traj["load_kwh"] - traj["pv_kwh"], 0.0).sum(axis=2)
    base_peak, peak = baseline_import.max(), community_import.max()
    total_baseline = c["baseline"].sum()
    out = {
        "avg_household_savings_percent": _r(np.mean(c["percent"][valid])) if valid.any() else None,
        "households_without_positive_baseline": int((~valid).sum()),
        "total_energy_traded_kwh": _r(traj["p2p_sold_kwh"].sum()),
        "total_energy_received_kwh": _r(traj["p2p_bought_kwh"].sum()),
        "community_baseline_usd": _r(total_baseline),
        "community_cost_usd": _r(c["optimized"].sum()),
        "community_savings_usd": _r(c["savings"].sum()),
        "community_savings_percent": _r(100 * c["savings"].sum() / total_baseline) if total_baseline > 0 else None,
        "peak_community_import_kwh": _r(peak),
        "baseline_peak_community_import_kwh": _r(base_peak),
        "peak_import_reduction_percent": _r(100 * (base_peak - peak) / base_peak) if base_peak > 0 else None,
        "pv_curtailed_kwh": _r(traj["pv_curtailed_kwh"].sum()),
        "unserved_kwh": _r(traj["unserved_kwh"].sum()),  # load shed above PV + import limit (grid.over_limit)
        "action_clipped_kwh": _r(traj["action_clipped_kwh"].sum()),
        "actions_out_of_box": int(traj["action_out_of_box"].sum()),
        "constraint_violations": int((traj["constraint_violation_kwh"] > 0).sum()),
        "market_cleared_intervals": int(traj["market_cleared"].sum()),
        "self_sufficiency_percent": _r(100 * (1 - traj["grid_import_kwh"].sum() / traj["load_kwh"].sum())),
    }
    if community is not None:
        bp = community.params.battery
        eff = trading_efficiency(traj, community.params.loss)
        cycles = battery_cycles_per_day(traj, bp.soc_max_kwh - bp.soc_min_kwh)
        out["trading_efficiency"] = None if eff is None else _r(eff)
        out["battery_cycles_per_day"] = None if cycles is None else _r(cycles)
    return out


def results_json(community: Community, traj: dict[str, np.ndarray], policy_name: str, timeline: bool = True) -> dict[str, Any]:
    """The seed-shaped results document for one policy's rollout."""
    data = community.data
    ts = data.dataset.timestamps
    c = household_costs(traj)
    intervals = traj["interval"]  # (L, B)
    households = []
    for i, hid in enumerate(data.dataset.household_ids):  # output formatting only, not the hot path
        entry: dict[str, Any] = {
            "id": hid,
            "costs": {
                "baseline_pge_total": _r(c["baseline"][i], 4),
                "optimized_total": _r(c["optimized"][i], 4),
                "savings": _r(c["savings"][i], 4),
                "savings_percent": None if np.isnan(c["percent"][i]) else _r(c["percent"][i], 2),
            },
        }
        if timeline:
            rows = []
            for s in range(intervals.shape[1]):
                for k in range(intervals.shape[0]):
                    t = int(intervals[k, s])
                    row = {"timestamp": str(ts[t])}
                    row.update({f: _r(traj[f][k, s, i]) for f in TIMELINE_FIELDS})
                    row["load_forecast_kwh"] = [_r(v, 4) for v in data.load_fc_kwh[t, i]]
                    row["pv_forecast_kwh"] = [_r(v, 4) for v in data.pv_fc_kwh[t, i]]
                    row["import_price_usd_per_kwh"] = _r(traj["import_price_usd_per_kwh"][k, s])
                    row["export_price_usd_per_kwh"] = _r(traj["export_price_usd_per_kwh"][k, s])
                    row["market_price_usd_per_kwh"] = _r(traj["market_price_usd_per_kwh"][k, s])
                    rows.append(row)
            entry["timeline"] = rows
        households.append(entry)
    first, last = int(intervals[0].min()), int(intervals[-1].max())
    return {
        "policy": policy_name,
        "dataset": data.dataset.name,
        "data": data.dataset.provenance(),  # which homes, which source, the data's fingerprint
        "pricing": data.pricing_description,
        "forecast_provider": data.forecast_name,
        "market_mechanism": community.params.mechanism,
        "period": {"start": str(ts[first]), "end": str(ts[last]), "episodes": int(intervals.shape[1]), "intervals_per_episode": int(intervals.shape[0])},
        "households": households,
        "aggregate_metrics": aggregate_metrics(traj, community),
    }

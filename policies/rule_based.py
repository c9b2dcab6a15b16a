"""A hand-written controller of the kind a utility engineer would deploy.

Priorities, per home and interval (all vectorised over scenarios and homes):

1. When the export credit is at least the import price (NEM 3 summer evenings), discharge at
   full power: every kWh exported earns more than it could save at home.
2. Otherwise charge from any PV surplus (the env limits charging to the surplus).
3. Cover the home's own deficit from the battery, but keep a reserve:
   * before the 16:00-21:00 peak, for the peak: yesterday's peak-hour deficit (a same-interval
     persistence estimate), capped at the usable energy;
   * at any time, for export-credit spikes in the next intervals (tariff prices are known
     ahead): one interval of full power for each coming interval whose export credit exceeds the
     current import price.
   After the peak the battery covers the night's load down to its lower bound; tomorrow's PV
   refills it, and the end-of-episode settlement values what is left at the off-peak price.
4. What the home still lacks or has spare goes to the P2P market automatically (the coordinator
   clears every net position), so the rule needs no explicit trading step.

It uses only what a home controller knows at the time: this interval's load and PV, past data,
the env's forecasts and the published tariff.
"""

from __future__ import annotations

import numpy as np

from energy_env.community import Community
from energy_env.config import INTERVALS_PER_DAY
from energy_env.core import State

PEAK_START, PEAK_END = 32, 42  # intervals of the day: 16:00 and 21:00


class RuleBasedPolicy:
    """Charge from surplus PV, cover the peak with a reserve, exploit export-credit spikes."""

    name = "rule_based"

    def __init__(self) -> None:
        self._peak_deficit: dict[int, np.ndarray] = {}

    def _yesterday_peak_deficit_kwh(self, community: Community) -> np.ndarray:
        """``(days, N)``: each day's deficit during the previous day's peak (0 on the first day)."""
        key = id(community.data)
        if key not in self._peak_deficit:
            data = community.data
            n = data.load_kwh.shape[1]
            deficit = np.maximum(data.load_kwh - data.pv_kwh, 0.0).reshape(-1, INTERVALS_PER_DAY, n)
            per_day = deficit[:, PEAK_START:PEAK_END].sum(axis=1)
            self._peak_deficit[key] = np.concatenate([np.zeros((1, n)), per_day[:-1]])
        return self._peak_deficit[key]

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """Setpoints ``(B, N)`` from the priorities in the module docstring."""
        data, bp = community.data, community.params.battery
        t = state.t
        load, pv = data.load_kwh[t], data.pv_kwh[t]
        net = load - pv
        imp, exp = data.import_usd_per_kwh[t], data.export_usd_per_kwh[t]
        max_ac = np.where(bp.max_ac_kwh > 0, bp.max_ac_kwh, 1.0)
        available = np.maximum(state.soc_kwh - bp.soc_min_kwh, 0.0) * bp.eta_discharge
        usable_ac = (bp.soc_max_kwh - bp.soc_min_kwh) * bp.eta_discharge

        interval = t % INTERVALS_PER_DAY
        before_peak = (interval < PEAK_START)[:, None]
        peak_reserve = np.minimum(self._yesterday_peak_deficit_kwh(community)[t // INTERVALS_PER_DAY], usable_ac)
        spikes = (data.export_fc_usd_per_kwh[t] > imp[:, None]).sum(axis=1)[:, None]
        reserve = np.where(before_peak, peak_reserve, 0.0) + spikes * bp.max_ac_kwh
        cover = np.minimum(np.maximum(net, 0.0), np.maximum(available - reserve, 0.0))

        # charge exactly the surplus, cover at most full power: setpoints stay in the action box
        action = np.where(net < 0.0, np.minimum(-net / max_ac, 1.0), -np.minimum(cover / max_ac, 1.0))
        return np.where((exp >= imp)[:, None], -1.0, action)

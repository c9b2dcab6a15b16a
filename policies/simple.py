"""Two elementary controllers: an idle battery and the seed's simple rule."""

from __future__ import annotations

import numpy as np

from energy_env.community import Community
from energy_env.core import State


class IdlePolicy:
    """Never charges or discharges (the battery half of the PG&E baseline)."""

    name = "idle"

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """All-zero setpoints."""
        return np.zeros(state.soc_kwh.shape)


class SimpleRulePolicy:
    """Charge from surplus PV; in the 16:00-21:00 peak, discharge to cover the home's own load.

    The env's projection limits charging to the actual PV surplus and discharging to the stored
    energy, so the rule only states intent.
    """

    name = "simple_rule"

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """Setpoints from the current load, PV and peak flag."""
        data, bp = community.data, community.params.battery
        t = state.t
        deficit_kwh = data.load_kwh[t] - data.pv_kwh[t]
        peak = data.time_features[t, -1][:, None] > 0.5
        max_ac = np.where(bp.max_ac_kwh > 0, bp.max_ac_kwh, 1.0)
        cover = -np.clip(deficit_kwh / max_ac, 0.0, 1.0)
        charge = np.minimum(-deficit_kwh / max_ac, 1.0)
        return np.where(deficit_kwh < 0, charge, np.where(peak, cover, 0.0))

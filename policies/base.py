"""The one interface every controller implements, rule-based, optimising or learned.

A policy maps a batch of observations ``(B, N, obs_dim)`` (and, for controllers that plan over
the data, the core's state and community) to a batch of battery setpoints ``(B, N)`` in [-1, 1].
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from energy_env.community import Community
from energy_env.core import State


@runtime_checkable
class Policy(Protocol):
    """A controller of every household's battery."""

    name: str

    def act(self, obs: np.ndarray, state: State, community: Community) -> np.ndarray:
        """Setpoints ``(B, N)`` in [-1, 1] (fraction of max power, + charges)."""
        ...

"""Settings of the controllers that need any: the oracle's solver budget (the ``oracle`` section).

Two modes, recorded in every oracle result:

* ``time`` (default): HiGHS searches each week's MILP for at most ``time_limit_s`` of wall-clock
  time, then a week it did not close gets a Lagrangian round. Fast, but where the clock stops the
  search depends on the machine and its load, so two runs can differ by cents.
* ``deterministic``: the search stops after ``node_limit`` branch-and-bound nodes instead, never
  by the clock; the same inputs give the same schedule on any machine (with the same HiGHS
  version), whatever else it is doing. Slower on hard weeks: HiGHS's root node alone is not cut.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from energy_env.config import Int, StrictModel
from policies.schedule_lp import SearchBudget


class OracleSettings(StrictModel):
    """How the perfect-foresight oracle solves each episode (the ``oracle`` config section)."""

    mode: Literal["time", "deterministic"] = Field("time", description="time: wall-clock cap; deterministic: node cap.")
    time_limit_s: float = Field(10.0, gt=0.0, description="mode time: seconds of HiGHS search per episode.")
    node_limit: Int = Field(200, ge=1, description="mode deterministic: branch-and-bound nodes per MILP.")
    mip_rel_gap: float = Field(1e-6, gt=0.0, lt=1.0, description="HiGHS stops once this close to its bound.")
    workers: Int | None = Field(None, ge=1, description="Episodes solved at once in worker processes; None = min(2, cores).")

    def budget(self) -> SearchBudget:
        """The solver budget of one MILP."""
        if self.mode == "deterministic":
            return SearchBudget(time_limit_s=None, node_limit=self.node_limit)
        return SearchBudget(time_limit_s=self.time_limit_s)

    def worker_count(self) -> int:
        """``workers``, or min(2, cores) (the weeks are independent MILPs)."""
        return self.workers if self.workers is not None else min(2, os.cpu_count() or 1)

    def record(self) -> dict[str, Any]:
        """What a results file records of the budget actually used."""
        used = {"mode": self.mode, "mip_rel_gap": self.mip_rel_gap}
        used.update({"node_limit": self.node_limit} if self.mode == "deterministic" else {"time_limit_s": self.time_limit_s})
        return used

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
    method: Literal["auto", "exact", "decomposition"] = Field(
        "auto", description="exact: the community's MILP; decomposition: one MILP per home (large N); auto: exact up to exact_max_households."
    )
    exact_max_households: Int = Field(150, ge=1, description="auto: the largest community solved exactly.")
    sample_households: Int = Field(150, ge=1, description="decomposition: homes whose LP sets the P2P prices.")
    passes: Int = Field(2, ge=0, description="decomposition: rounds of one home's best response at a time.")
    group_households: Int = Field(100, ge=0, description="decomposition: then groups of this many homes re-plan together (0: no).")
    engine: Literal["processes", "ray"] = Field("processes", description="Where episodes run: worker processes, or Ray tasks (the [ray] extra).")

    def budget(self) -> SearchBudget:
        """The solver budget of one MILP."""
        if self.mode == "deterministic":
            return SearchBudget(time_limit_s=None, node_limit=self.node_limit)
        return SearchBudget(time_limit_s=self.time_limit_s)

    def worker_count(self) -> int:
        """``workers``, or min(2, cores) (the weeks are independent MILPs)."""
        return self.workers if self.workers is not None else min(2, os.cpu_count() or 1)

    def record(self, num_households: int | None = None) -> dict[str, Any]:
        """What a results file records of the budget and method actually used (for ``num_households`` homes)."""
        used = {"mode": self.mode, "mip_rel_gap": self.mip_rel_gap}
        used.update({"node_limit": self.node_limit} if self.mode == "deterministic" else {"time_limit_s": self.time_limit_s})
        method = self.method
        if method == "auto" and num_households is not None:
            method = "exact" if num_households <= self.exact_max_households else "decomposition"
        used["method"] = method
        if method != "exact":
            used.update(sample_households=self.sample_households, passes=self.passes, group_households=self.group_households)
        return used

"""Policies by name, for the benchmark and the command line."""

from __future__ import annotations

import os
from typing import Callable

from policies.base import Policy
from policies.rule_based import RuleBasedPolicy
from policies.settings import OracleSettings
from policies.simple import IdlePolicy, SimpleRulePolicy

# Per episode, for HiGHS's search (OracleSettings' default; docs/training.md has the choice).
ORACLE_TIME_LIMIT_S = OracleSettings().time_limit_s


def make_oracle(settings: OracleSettings | None = None) -> Policy:
    """The oracle under ``settings`` (default: 10 s of HiGHS search per week, two weeks at once)."""
    from policies.optimum import OraclePolicy  # HiGHS is imported only when asked for

    settings = settings or OracleSettings()
    budget = settings.budget()
    oracle = OraclePolicy(mip_rel_gap=settings.mip_rel_gap, time_limit_s=budget.time_limit_s, node_limit=budget.node_limit,
                          workers=settings.worker_count(), method=settings.method, exact_max_households=settings.exact_max_households,
                          sample_households=settings.sample_households, passes=settings.passes,
                          group_households=settings.group_households, engine=settings.engine)
    oracle.settings = settings
    return oracle


def _mpc() -> Policy:
    from policies.mpc import MPCPolicy

    return MPCPolicy(workers=min(2, os.cpu_count() or 1))  # episodes run in parallel: same setpoints


def _mpc_day_ahead() -> Policy:
    """MPC over 24 hours of each home's mean of the last 7 days (about 4x the solve time of ``mpc``)."""
    from policies.mpc import MPCPolicy

    return MPCPolicy(horizon_intervals=48, name="mpc_day_ahead", source="seasonal_mean", history_days=7,
                     workers=min(2, os.cpu_count() or 1))


class PgeBaselinePolicy(IdlePolicy):
    """Battery idle; the benchmark also switches the P2P market off for it (plain PG&E pricing)."""

    name = "pge_baseline"
    market_mechanism = "none"


POLICIES: dict[str, Callable[[], Policy]] = {
    "pge_baseline": PgeBaselinePolicy,
    "idle": IdlePolicy,
    "simple_rule": SimpleRulePolicy,
    "rule_based": RuleBasedPolicy,
    "mpc": _mpc,
    "mpc_day_ahead": _mpc_day_ahead,
    "oracle": make_oracle,
}


def make_policy(name: str, oracle: OracleSettings | None = None) -> Policy:
    """A fresh policy by name (``oracle``: the oracle's settings); raises ValueError naming the known ones."""
    if name == "oracle":
        return make_oracle(oracle)
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None

"""Policies by name, for the benchmark and the command line."""

from __future__ import annotations

import os
from typing import Callable

from policies.base import Policy
from policies.rule_based import RuleBasedPolicy
from policies.simple import IdlePolicy, SimpleRulePolicy


# Per episode, for HiGHS's search. A week it does not close gets a Lagrangian round after it
# (policies/lagrangian.py: a few seconds), whose schedule and bound were as good after 10 s of
# search as after 30 s on the CityLearn weeks.
ORACLE_TIME_LIMIT_S = 10.0


def _oracle() -> Policy:
    from policies.optimum import OraclePolicy  # HiGHS is imported only when asked for

    # Most weeks solve to optimality in under a second; weeks with many NEM 3 evenings (binaries)
    # stop here with a feasible schedule and a reported gap to a proven bound (README, "The oracle").
    # The weeks are independent MILPs: solve two at once on this project's 2-core machines.
    return OraclePolicy(time_limit_s=ORACLE_TIME_LIMIT_S, workers=min(2, os.cpu_count() or 1))


def _mpc() -> Policy:
    from policies.mpc import MPCPolicy

    return MPCPolicy()


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
    "oracle": _oracle,
}


def make_policy(name: str) -> Policy:
    """A fresh policy by name; raises ValueError naming the known ones."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None

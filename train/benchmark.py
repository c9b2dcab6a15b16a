"""The savings benchmark: every policy on the test weeks of a data set, against plain PG&E pricing.

Each test week (the last 7 days of a month) is one episode of 336 intervals; all weeks run at
once as a batch of scenarios. The battery's state carries from day to day and is settled at the
end of the week, as the env does. For each policy it writes ``results_<policy>.json`` in the
seed's shape, and for the run ``benchmark.md`` (the table) and PNG plots.

    wattshare benchmark --policies pge_baseline rule_based mpc oracle
    wattshare benchmark --citylearn ../shared/data/citylearn_2022
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from energy_env.community import Community, build_community
from energy_env.config import EnvConfig
from energy_env.episodes import WEEK, test_week_starts
from energy_env.results import results_json
from energy_env.rollout import rollout
from policies.base import Policy
from policies.registry import make_policy

@dataclass
class PolicyRun:
    """One policy's rollout and results document."""

    name: str
    trajectory: dict[str, np.ndarray]
    document: dict[str, Any]
    seconds: float


def run_policy(
    policy: Policy | str, community: Community, starts: np.ndarray, length: int, progress: bool = True, name: str | None = None,
) -> PolicyRun:
    """Roll out one policy (an object or a registered name) on the given episodes (``name``: its row, default ``policy.name``).

    A policy with a ``market_mechanism`` attribute runs with that mechanism (the PG&E baseline
    switches the P2P market off); one with ``plan`` plans the episodes first (the oracle).
    """
    if isinstance(policy, str):
        policy = make_policy(policy)
    name = name or policy.name
    mechanism = getattr(policy, "market_mechanism", None)
    if mechanism is not None and mechanism != community.params.mechanism:
        cfg = community.config.model_copy(update={"market": community.config.market.model_copy(update={"mechanism": mechanism})})
        community = build_community(cfg, dataset=community.dataset, provider=_provider_of(community))
    t0 = time.perf_counter()
    if hasattr(policy, "plan"):
        policy.plan(community, starts, length)
    bar = tqdm(total=length, desc=f"{name:>12}", unit="step", disable=not progress, leave=False)
    traj = rollout(community, policy.act, starts, length, progress=bar)
    bar.close()
    seconds = time.perf_counter() - t0
    doc = results_json(community, traj, name, timeline=False)
    doc["wall_seconds"] = round(seconds, 2)
    if getattr(policy, "settings_record", None):  # the oracle's solver budget, so a result says how it was solved
        doc["oracle_settings"] = policy.settings_record
    if hasattr(policy, "schedules"):  # the oracle: how close each week's MILP came to its bound
        doc["oracle_mip_gaps"] = [float(getattr(sc, "mip_gap", 0.0) or 0.0) for sc in policy.schedules]
        doc["oracle_bounds"] = [
            {"start_interval": int(sc.start), "status": sc.status, "mip_gap": float(sc.mip_gap),
             "community_cost_usd": float(sc.community_cost_usd), "lower_bound_usd": float(sc.lower_bound_usd),
             "bound_method": sc.bound_method, "schedule_method": sc.schedule_method}
            for sc in policy.schedules
        ]
    return PolicyRun(name, traj, doc, seconds)


def distinct_names(policies: list[Policy]) -> list[str]:
    """One row name per policy: a checkpoint whose name another policy has too becomes ``name@folder``.

    Checkpoints carry their folder as ``source`` (:meth:`policies.learned.LearnedPolicy.load`);
    two from folders of the same name get ``-2``, ``-3``... Other duplicates, and names that
    cannot name a file, raise ValueError: a results file is never silently overwritten.
    """
    names = [p.name for p in policies]
    counts = {n: names.count(n) for n in names}
    out, seen = [], {}
    for policy, name in zip(policies, names):
        source = getattr(policy, "source", None)
        if counts[name] > 1 and source is not None:
            folder = re.sub(r"[^A-Za-z0-9_.+-]+", "_", Path(source).resolve().name).strip("_") or "checkpoint"
            name = f"{name}@{folder}"
            seen[name] = seen.get(name, 0) + 1  # the same folder name under two parents: number the later ones
            name = name if seen[name] == 1 else f"{name}-{seen[name]}"
        out.append(name)
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ValueError(f"two policies are named {dupes[0]!r} (each writes results_<name>.json); give them distinct names")
    bad = [n for n in out if not n or n.startswith(".") or any(c in n for c in "/\\")]
    if bad:
        raise ValueError(f"policy name {bad[0]!r} cannot name a results file")
    return out


class _FixedProvider:
    """Hands an already computed forecast back (re-building a community must not re-run a model)."""

    def __init__(self, data) -> None:
        self.name, self._data = data.forecast_name, data

    def forecast(self, dataset, horizon):
        return self._data.load_fc_kwh, self._data.pv_fc_kwh


def _provider_of(community: Community) -> _FixedProvider:
    return _FixedProvider(community.data)


def add_oracle_share(runs: dict[str, PolicyRun]) -> None:
    """Share of the oracle's savings each policy captures: (baseline - policy) / (baseline - oracle)."""
    if "oracle" not in runs:
        return
    base = runs[next(iter(runs))].trajectory["baseline_cost_usd"].sum()
    oracle_cost = runs["oracle"].trajectory["cost_usd"].sum()
    for run in runs.values():
        cost = run.trajectory["cost_usd"].sum()
        share = (base - cost) / (base - oracle_cost) if base - oracle_cost > 1e-9 else None
        run.document["aggregate_metrics"]["share_of_oracle_savings"] = None if share is None else round(float(share), 4)


TABLE_COLUMNS = [
    ("community cost $", "community_cost_usd", "{:.2f}"),
    ("saved vs PG&E %", "community_savings_percent", "{:.2f}"),
    ("avg home saved %", "avg_household_savings_percent", "{:.2f}"),
    ("share of oracle", "share_of_oracle_savings", "{:.3f}"),
    ("peak import cut %", "peak_import_reduction_percent", "{:.1f}"),
    ("P2P traded kWh", "total_energy_traded_kwh", "{:.1f}"),
    ("trading eff.", "trading_efficiency", "{:.3f}"),
    ("cycles/day", "battery_cycles_per_day", "{:.2f}"),
    ("self-suff. %", "self_sufficiency_percent", "{:.1f}"),
    ("curtailed kWh", "pv_curtailed_kwh", "{:.1f}"),
    ("clipped kWh", "action_clipped_kwh", "{:.1f}"),
    ("violations", "constraint_violations", "{}"),
    ("wall s", None, "{:.1f}"),
]


def markdown_table(runs: dict[str, PolicyRun]) -> str:
    """The benchmark's figures, policy by policy."""
    head = "| policy | " + " | ".join(c for c, _, _ in TABLE_COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    for run in runs.values():
        agg = run.document["aggregate_metrics"]
        cells = []
        for _, key, fmt in TABLE_COLUMNS:
            value = run.seconds if key is None else agg.get(key)
            cells.append("n/a" if value is None else fmt.format(value))
        rows.append(f"| {run.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def run_benchmark(
    config: EnvConfig | None,
    policies: list[Policy | str],
    out_dir: str | Path,
    max_weeks: int | None = None,
    plots: bool = True,
    progress: bool = True,
    community: Community | None = None,
) -> dict[str, PolicyRun]:
    """Run ``policies`` on the test weeks and write JSON, table and plots into ``out_dir``.

    The community comes from ``config``, or is given (e.g. with LSTM forecasts); either way its
    episodes become the test weeks.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if community is None:
        community = build_community(config.model_copy(update={"episode_length": WEEK}))
    elif community.config.episode_length != WEEK:
        cfg = community.config.model_copy(update={"episode_length": WEEK})
        community = build_community(cfg, dataset=community.dataset, provider=_provider_of(community))
    starts = test_week_starts(community.dataset)
    if max_weeks is not None:
        starts = starts[:max_weeks]
    if len(starts) == 0:
        raise ValueError(f"{community.dataset.name}: no complete test week to benchmark")
    policies = [make_policy(p) if isinstance(p, str) else p for p in policies]
    runs: dict[str, PolicyRun] = {}
    for policy, name in zip(policies, distinct_names(policies)):  # names checked before minutes of rollouts
        runs[name] = run_policy(policy, community, starts, WEEK, progress, name=name)
    add_oracle_share(runs)
    meta = {
        "dataset": community.dataset.name,
        "households": community.num_households,
        "test_weeks": int(len(starts)),
        "pricing": community.data.pricing_description,
        "market_mechanism": community.params.mechanism,
        "forecast_provider": community.data.forecast_name,
    }
    for run in runs.values():
        (out / f"results_{run.name}.json").write_text(json.dumps(run.document, indent=2))
    table = markdown_table(runs)
    header = (
        f"Benchmark on {meta['dataset']}: {meta['households']} households, {meta['test_weeks']} test weeks; "
        f"{meta['pricing']}; market {meta['market_mechanism']}; forecasts {meta['forecast_provider']}.\n\n"
    )
    (out / "benchmark.md").write_text(header + table + "\n")
    (out / "benchmark.json").write_text(json.dumps({"meta": meta, "policies": {k: r.document["aggregate_metrics"] for k, r in runs.items()}}, indent=2))
    if plots:
        from train.plots import write_plots

        write_plots(runs, community, out)
    return runs

"""The savings benchmark: every policy on the test weeks of a data set, against plain PG&E pricing.

Each test week (the last 7 days of a month) is one episode of 336 intervals; all weeks run at
once as a batch of scenarios. The battery's state carries from day to day and is settled at the
end of the week, as the env does. Nothing finished is lost: each policy's
``results_<policy>.json`` (the seed's shape) is written as soon as it finishes, and
``benchmark.md`` (the table) and ``benchmark.json`` are rewritten after every policy with the
rows so far; a policy that raises gets a results file and a row that say it failed and why, and
the others still run. ``resume=True`` reuses the results files made with the same inputs (their
``run_key``, :mod:`train.run_key`). The PNG plots come last, from the policies run in this call.

    wattshare benchmark --policies pge_baseline rule_based mpc oracle
    wattshare benchmark --policies pge_baseline rule_based mpc oracle --resume
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from energy_env.community import Community, build_community
from energy_env.config import EnvConfig
from energy_env.data.redact import redact
from energy_env.episodes import WEEK, test_week_starts
from energy_env.results import results_json
from energy_env.rollout import rollout
from policies.base import Policy
from policies.registry import make_policy
from train.run_key import changed_inputs, common_inputs, policy_inputs, run_key


@dataclass
class PolicyRun:
    """One policy's row: its results document, and its rollout where it ran in this call.

    ``status`` is ``"ok"`` or ``"failed"`` (then ``error`` is ``"<ExceptionType>: <message>"``,
    redacted, and ``exception`` the exception itself). ``reused``: read back from an earlier
    ``results_<name>.json`` (``resume=True``), so ``trajectory`` is None. ``trajectory`` is the
    rollout of the first episode only (every figure of all episodes is in ``document``).
    """

    name: str
    trajectory: dict[str, np.ndarray] | None
    document: dict[str, Any]
    seconds: float
    status: str = "ok"
    error: str | None = None
    reused: bool = False
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the policy finished (in this call or, reused, in an earlier one)."""
        return self.status == "ok"


class BenchmarkRuns(dict):
    """What :func:`run_benchmark` returns: the :class:`PolicyRun` of each row name, in policy order."""

    @property
    def failed(self) -> dict[str, str]:
        """The failed policies' errors (``"<ExceptionType>: <message>"``) by row name."""
        return {name: run.error or "" for name, run in self.items() if not run.ok}

    @property
    def reused(self) -> list[str]:
        """The rows read back from earlier results files (``resume=True``)."""
        return [name for name, run in self.items() if run.reused]


class PolicyFailed(RuntimeError):
    """A policy the caller cannot do without failed (the main job's featured PPO policy)."""


def run_policy(
    policy: Policy | str, community: Community, starts: np.ndarray, length: int, progress: bool = True, name: str | None = None,
) -> PolicyRun:
    """Roll out one policy (an object or a registered name) on the given episodes (``name``: its row, default ``policy.name``).

    A policy with a ``market_mechanism`` attribute runs with that mechanism (the PG&E baseline
    switches the P2P market off); one with ``plan`` plans the episodes first (the oracle).
    Exceptions propagate (:func:`run_benchmark` turns them into a failed row).
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
        if hasattr(policy, "progress"):
            policy.progress = progress
        policy.plan(community, starts, length)
    bar = tqdm(total=length, desc=f"{name:>12}", unit="step", disable=not progress, leave=False)
    try:
        traj = rollout(community, policy.act, starts, length, progress=bar, observations=False)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    doc = {"status": "ok", **results_json(community, traj, name, timeline=False)}
    doc["wall_seconds"] = round(seconds, 2)
    doc["peak_rss_mb"] = peak_rss_mb()  # of this process or a finished worker, so far
    if hasattr(policy, "settings_record") and policy.settings_record(community.num_households):  # how the oracle was solved
        doc["oracle_settings"] = policy.settings_record(community.num_households)
    if hasattr(policy, "schedules"):  # the oracle: how close each week's MILP came to its bound
        doc["oracle_mip_gaps"] = [float(getattr(sc, "mip_gap", 0.0) or 0.0) for sc in policy.schedules]
        doc["oracle_bounds"] = [
            {"start_interval": int(sc.start), "status": sc.status, "mip_gap": float(sc.mip_gap),
             "community_cost_usd": float(sc.community_cost_usd), "lower_bound_usd": float(sc.lower_bound_usd),
             "bound_method": sc.bound_method, "schedule_method": sc.schedule_method}
            for sc in policy.schedules
        ]
        doc["oracle_gap_usd"] = round(float(sum(sc.community_cost_usd - sc.lower_bound_usd for sc in policy.schedules)), 6)
    # The document holds every figure; keep the first episode's rollout only (the plots and the main
    # job's timeline read it): twelve weeks of 1,000 homes are a gigabyte.
    first = {k: np.ascontiguousarray(v[:, :1]) for k, v in traj.items()}
    del traj
    return PolicyRun(name, first, doc, seconds)


def failed_run(policy: Policy, community: Community, name: str, err: Exception, seconds: float) -> PolicyRun:
    """The row of a policy that raised ``err`` after ``seconds``: its results document says failed and why (redacted)."""
    error = redact(f"{type(err).__name__}: {err}")
    doc: dict[str, Any] = {
        "status": "failed",
        "policy": name,
        "error": error,
        "wall_seconds": round(seconds, 2),
        "dataset": community.dataset.name,
        "data": community.dataset.provenance(),
        "pricing": community.data.pricing_description,
        "forecast_provider": community.data.forecast_name,
        "market_mechanism": getattr(policy, "market_mechanism", None) or community.params.mechanism,
        "traceback": redact("".join(traceback.format_exception(err))),  # a worker process's own traceback included
    }
    record = getattr(policy, "settings_record", None)
    record = record(community.num_households) if callable(record) else record
    if record:
        doc["oracle_settings"] = record  # how it was asked to solve
    return PolicyRun(name, None, doc, seconds, status="failed", error=error, exception=err)


def peak_rss_mb() -> float:
    """The largest resident memory of this process or any of its finished children so far, MB (Linux)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # Linux reports KB


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


SHARE = "share_of_oracle_savings"


def add_oracle_share(runs: dict[str, PolicyRun]) -> list[str]:
    """Share of the oracle's savings each finished policy captures: (baseline - cost) / (baseline - oracle's cost).

    From the documents' aggregate ``community_baseline_usd`` and ``community_cost_usd``, so rows
    read back from files count too. Without a finished ``oracle`` row the share is removed (an
    earlier file's share may be of another oracle). Returns the rows whose document changed.
    """
    oracle = runs.get("oracle")
    changed = []
    for name, run in runs.items():
        if not run.ok:
            continue
        agg = run.document["aggregate_metrics"]
        before = agg.get(SHARE, "absent")
        if oracle is None or not oracle.ok:
            agg.pop(SHARE, None)
        else:
            base = oracle.document["aggregate_metrics"]["community_baseline_usd"]
            best = base - oracle.document["aggregate_metrics"]["community_cost_usd"]
            saved = agg["community_baseline_usd"] - agg["community_cost_usd"]
            agg[SHARE] = round(float(saved / best), 4) if best > 1e-9 else None
        if agg.get(SHARE, "absent") != before:
            changed.append(name)
    return changed


TABLE_COLUMNS = [
    ("community cost $", "community_cost_usd", "{:.2f}"),
    ("saved vs PG&E %", "community_savings_percent", "{:.2f}"),
    ("avg home saved %", "avg_household_savings_percent", "{:.2f}"),
    ("share of oracle", SHARE, "{:.3f}"),
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
    """The benchmark's figures, policy by policy; a failed policy's figures read ``failed``, and why follows the table."""
    head = "| policy | " + " | ".join(c for c, _, _ in TABLE_COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    for run in runs.values():
        agg = run.document.get("aggregate_metrics", {}) if run.ok else {}
        cells = []
        for _, key, fmt in TABLE_COLUMNS:
            value = run.seconds if key is None else agg.get(key)
            cells.append("failed" if key is not None and not run.ok else "n/a" if value is None else fmt.format(value))
        rows.append(f"| {run.name} | " + " | ".join(cells) + " |")
    failures = [f"* **{run.name}** failed after {run.seconds:.1f} s: {run.error}" for run in runs.values() if not run.ok]
    return "\n".join(rows + ([""] + failures if failures else []))


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` as indented JSON through a temporary file, so an interrupted write never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


def write_summary(out: Path, meta: dict[str, Any], runs: BenchmarkRuns, pending: list[str]) -> None:
    """``benchmark.md`` and ``benchmark.json`` with the rows so far (``pending``: the policies still to run)."""
    notes = []
    if runs.reused:
        notes.append(f"Rows read from earlier results with the same inputs (--resume): {', '.join(runs.reused)}.")
    if pending:
        notes.append(f"Incomplete: {len(runs)} of {len(runs) + len(pending)} policies so far; still to run: {', '.join(pending)}.")
    header = (
        f"Benchmark on {meta['dataset']}: {meta['households']} households, {meta['test_weeks']} test weeks; "
        f"{meta['pricing']}; market {meta['market_mechanism']}; forecasts {meta['forecast_provider']}.\n\n"
    )
    md = header + "".join(n + "\n\n" for n in notes) + markdown_table(runs) + "\n"
    tmp = out / ".benchmark.md.tmp"
    tmp.write_text(md)
    os.replace(tmp, out / "benchmark.md")
    write_json(out / "benchmark.json", {
        "meta": {**meta, "complete": not pending, "pending": pending, "reused": runs.reused},
        "policies": {k: r.document["aggregate_metrics"] for k, r in runs.items() if r.ok},
        "failed": {k: {"error": r.error, "wall_seconds": round(r.seconds, 2)} for k, r in runs.items() if not r.ok},
    })


def reusable_run(out: Path, name: str, key: str, inputs: dict[str, Any]) -> PolicyRun | None:
    """The row of ``results_<name>.json`` when it finished with run key ``key``; else None, saying why on stderr."""
    path = out / f"results_{name}.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        if doc.get("status") == "ok":  # the share of the oracle's savings is computed from these
            float(doc["aggregate_metrics"]["community_cost_usd"]), float(doc["aggregate_metrics"]["community_baseline_usd"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        print(f"benchmark: resume: {path} is unreadable ({type(err).__name__}: {err}); running {name} again", file=sys.stderr)
        return None
    if doc.get("status") != "ok":
        print(f"benchmark: resume: {name} did not finish last time ({doc.get('error')}); running it again", file=sys.stderr)
        return None
    if doc.get("run_key") != key:
        why = ", ".join(changed_inputs(doc.get("run_inputs"), inputs)) or "no run key"
        print(f"benchmark: resume: {path} is stale (made with other inputs: {why}); running {name} again", file=sys.stderr)
        return None
    print(f"benchmark: resume: {name} from {path} (same inputs)", file=sys.stderr)
    return PolicyRun(name, None, doc, float(doc.get("wall_seconds", 0.0)), reused=True)


def run_benchmark(
    config: EnvConfig | None,
    policies: list[Policy | str],
    out_dir: str | Path,
    max_weeks: int | None = None,
    plots: bool = True,
    progress: bool = True,
    community: Community | None = None,
    resume: bool = False,
) -> BenchmarkRuns:
    """Run ``policies`` on the test weeks and write JSON, table and plots into ``out_dir``.

    The community comes from ``config``, or is given (e.g. with LSTM forecasts); either way its
    episodes become the test weeks. A policy that raises an ``Exception`` becomes a failed row
    (the error on stderr) and the others still run: see :attr:`BenchmarkRuns.failed`. Results
    files, table and JSON are rewritten after every policy. ``resume``: a policy whose results
    file finished with the same run key is read back instead of run (failed or stale ones run
    again). Plots show the policies run in this call; one that needs a missing rollout is skipped.
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
    names = distinct_names(policies)  # checked before minutes of rollouts
    meta = {
        "dataset": community.dataset.name,
        "households": community.num_households,
        "test_weeks": int(len(starts)),
        "pricing": community.data.pricing_description,
        "market_mechanism": str(getattr(community.params.mechanism, "value", community.params.mechanism)),
        "forecast_provider": community.data.forecast_name,
    }
    shared = common_inputs(community, starts, WEEK)
    runs = BenchmarkRuns()
    for k, (policy, name) in enumerate(zip(policies, names)):
        inputs = {**shared, "policy": policy_inputs(policy, community.num_households)}
        key = run_key(inputs)
        run = reusable_run(out, name, key, inputs) if resume else None
        if run is None:
            t0 = time.perf_counter()
            try:
                run = run_policy(policy, community, starts, WEEK, progress, name=name)
            except Exception as err:  # noqa: BLE001 - any failure of one policy is its row; Ctrl-C still stops the run
                run = failed_run(policy, community, name, err, time.perf_counter() - t0)
                print(f"benchmark: {name} failed after {run.seconds:.1f} s: {run.error}", file=sys.stderr)
            run.document.update(run_key=key, run_inputs=inputs)
        runs[name] = run
        for changed in dict.fromkeys([name, *add_oracle_share(runs)]):
            write_json(out / f"results_{changed}.json", runs[changed].document)
        write_summary(out, meta, runs, pending=names[k + 1:])
    if plots:
        from train.plots import write_plots

        write_plots(runs, community, out)
    return runs

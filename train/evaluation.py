"""Scoring policies while they train: the test weeks against the PG&E baseline and the oracle.

:class:`TestWeekEvaluator` scores a policy on the test weeks (energy_env.episodes), which
training never sees; :class:`CurveLogger` appends each evaluation to ``curve.csv`` (the learning
curve). Both the shared and the per-home training loops use them.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from energy_env.community import Community, build_community
from energy_env.episodes import WEEK, test_week_starts
from policies.learned import LearnedPolicy


class TestWeekEvaluator:
    __test__ = False  # a helper, not a pytest test class
    """Scores a policy on the test weeks against the PG&E baseline and the oracle."""

    def __init__(self, community: Community, max_weeks: int | None = None) -> None:
        self.community = build_community(community.config.model_copy(update={"episode_length": WEEK}), dataset=community.dataset)
        starts = test_week_starts(self.community.dataset)
        self.starts = starts[:max_weeks] if max_weeks else starts
        self.length = WEEK
        self.baseline_usd: float | None = None
        self.oracle_usd: float | None = None

    def cost_usd(self, policy: Any) -> float:
        """Community cost of ``policy`` over the test weeks (terminal settlement included)."""
        from energy_env.rollout import rollout

        if hasattr(policy, "plan"):
            policy.plan(self.community, self.starts, self.length)
        traj = rollout(self.community, policy.act, self.starts, self.length, observations=False)
        if self.baseline_usd is None:
            self.baseline_usd = float(traj["baseline_cost_usd"].sum())
        return float(traj["cost_usd"].sum())

    def oracle_share(self, cost_usd: float) -> float | None:
        """(baseline - cost) / (baseline - oracle); the oracle is solved once and cached on disk."""
        if self.oracle_usd is None:
            self.oracle_usd = self._oracle_cost_usd()
        gap = self.baseline_usd - self.oracle_usd
        return (self.baseline_usd - cost_usd) / gap if gap > 1e-9 else None

    def _oracle_cost_usd(self) -> float:
        # Week-long MILPs with many NEM 3 evenings take minutes; the answer depends only on the
        # data, physics and episodes, so it is kept under data/cache keyed by all three.
        import hashlib

        from policies.optimum import OraclePolicy

        cfg = self.community.config.model_dump(mode="json")
        cfg.pop("reward", None)
        cfg.pop("forecast", None)  # what the homes observe: the oracle knows the future itself
        ds = self.community.dataset
        fingerprint = [ds.name, float(ds.load_kwh.sum()), float(ds.pv_kwh.sum())]  # changes with the data
        key = hashlib.sha256(json.dumps([cfg, fingerprint, self.starts.tolist(), self.length], sort_keys=True).encode()).hexdigest()[:16]
        path = Path("data/cache") / f"oracle_{key}.json"
        if path.exists():
            cached = json.loads(path.read_text())
            self.baseline_usd = cached["baseline_usd"]
            return cached["oracle_usd"]
        cost = self.cost_usd(OraclePolicy())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"oracle_usd": cost, "baseline_usd": self.baseline_usd}))
        return cost


CURVE_COLUMNS = ["household_steps", "wall_seconds", "test_cost_usd", "savings_percent", "oracle_share", "train_seconds"]


class CurveLogger:
    """Appends evaluation points to ``curve.csv``: steps, seconds, cost, savings %, oracle share.

    ``wall_seconds`` counts from the logger's start, evaluations included (the first one may
    solve the oracle for minutes); ``train_seconds`` leaves the evaluations out: the training's
    own time, the x-axis of a learning curve against time.
    """

    def __init__(self, path: Path, evaluator: TestWeekEvaluator | None, append: bool = False) -> None:
        self.path = path
        self.evaluator = evaluator
        self.t0 = time.perf_counter()
        self.eval_seconds = 0.0
        self.last_steps: int | None = None
        if append and path.exists():  # a resumed run continues its curve (one written before train_seconds: empty there)
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            if rows and rows[0] != CURVE_COLUMNS:
                with path.open("w", newline="") as f:
                    csv.writer(f).writerows([CURVE_COLUMNS] + [r + [""] * (len(CURVE_COLUMNS) - len(r)) for r in rows[1:]])
        else:
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(CURVE_COLUMNS)

    def log(self, steps: int, policy: LearnedPolicy) -> dict[str, float | None]:
        """Score ``policy`` and append its row; a second call at the same step count writes nothing."""
        if self.evaluator is None or steps == self.last_steps:
            return {}
        self.last_steps = steps
        t_eval = time.perf_counter()
        cost = self.evaluator.cost_usd(policy)
        base = self.evaluator.baseline_usd
        share = self.evaluator.oracle_share(cost)
        now = time.perf_counter()
        self.eval_seconds += now - t_eval
        row = [steps, round(now - self.t0, 1), round(cost, 2), round(100 * (base - cost) / base, 2), None if share is None else round(share, 4),
               round(now - self.t0 - self.eval_seconds, 1)]
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(row)
        return dict(zip(CURVE_COLUMNS, row))

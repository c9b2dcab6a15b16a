"""The benchmark: seed-shaped JSON, the table, plots, a smoke run of the CLI, failed policies and --resume."""

import json

import numpy as np
import pytest

from energy_env.community import build_community
from energy_env.config import make_config
from energy_env.episodes import first_days_of_test_weeks, test_week_starts
from policies.registry import POLICIES, make_policy
from policies.schedule_model import ScheduleError
from policies.settings import OracleSettings
from policies.simple import IdlePolicy
from train import benchmark
from train.benchmark import PolicyRun, add_oracle_share, markdown_table, run_benchmark
from train.cli import main


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    runs = run_benchmark(make_config(), ["pge_baseline", "simple_rule", "rule_based"], out, max_weeks=2, progress=False)
    return out, runs


def test_weeks_are_the_last_seven_days_of_months(community):
    starts = first_days_of_test_weeks(community.dataset)
    assert (test_week_starts(community.dataset) == starts).all()  # complete weeks: the benchmark's episodes
    dates = community.dataset.timestamps[starts]
    assert len(starts) == 12
    assert all(d.day == d.days_in_month - 6 for d in dates)


def test_results_json_shape(bench):
    out, _ = bench
    doc = json.loads((out / "results_rule_based.json").read_text())
    assert len(doc["households"]) == 10
    for h in doc["households"]:
        assert set(h["costs"]) == {"baseline_pge_total", "optimized_total", "savings", "savings_percent"}
    agg = doc["aggregate_metrics"]
    for key in ("avg_household_savings_percent", "total_energy_traded_kwh", "community_cost_usd", "peak_import_reduction_percent",
                "trading_efficiency", "battery_cycles_per_day", "self_sufficiency_percent", "pv_curtailed_kwh",
                "action_clipped_kwh", "constraint_violations"):
        assert key in agg
    assert agg["constraint_violations"] == 0


def test_pge_baseline_costs_exactly_the_precomputed_baseline(bench):
    _, runs = bench
    tr = runs["pge_baseline"].trajectory
    np.testing.assert_allclose(tr["cost_usd"].sum(), tr["baseline_cost_usd"].sum(), rtol=1e-12)
    assert tr["p2p_sold_kwh"].sum() == 0


def test_rule_beats_simple_rule_and_baseline(bench):
    _, runs = bench
    cost = {k: r.trajectory["cost_usd"].sum() for k, r in runs.items()}
    assert cost["rule_based"] < cost["simple_rule"] < cost["pge_baseline"]


def test_table_and_plots(bench):
    out, _ = bench
    table = (out / "benchmark.md").read_text()
    assert "| rule_based |" in table and "share of oracle" in table
    for name in ("home_day.png", "community_import.png", "savings_per_household.png", "trading_heatmap.png"):
        assert (out / name).stat().st_size > 10_000


def test_deterministic(tmp_path):
    a = run_benchmark(make_config(num_households=3), ["rule_based"], tmp_path / "a", max_weeks=1, plots=False, progress=False)
    b = run_benchmark(make_config(num_households=3), ["rule_based"], tmp_path / "b", max_weeks=1, plots=False, progress=False)
    assert (tmp_path / "a" / "results_rule_based.json").read_text() != ""
    ja = json.loads((tmp_path / "a" / "results_rule_based.json").read_text())
    jb = json.loads((tmp_path / "b" / "results_rule_based.json").read_text())
    for measured in ("wall_seconds", "peak_rss_mb"):  # measurements of the process, not results (the peak only grows)
        ja.pop(measured, None), jb.pop(measured, None)
    assert ja == jb


def test_cli_smoke(tmp_path, capsys):
    code = main(["benchmark", "--households", "4", "--weeks", "1", "--policies", "pge_baseline", "rule_based", "--no-plots", "--output", str(tmp_path)])
    assert code == 0
    assert "| rule_based |" in capsys.readouterr().out


def test_unknown_policy(tmp_path, capsys):
    assert main(["benchmark", "--policies", "genius", "--output", str(tmp_path)]) == 2
    assert "unknown policy 'genius'" in capsys.readouterr().err


# --- a benchmark that never loses work: failures, incremental writes, --resume -----------------

SMALL = {"num_households": 3}


def _read(out, name):
    return json.loads((out / f"results_{name}.json").read_text())


def _failing(monkeypatch, name="oracle", error=None):
    """A policy whose plan raises, by default like HiGHS out of time (a secret in the message, to be redacted)."""
    policy = IdlePolicy()
    policy.name = name

    def plan(community, starts, length):
        raise error or ScheduleError("HiGHS found no optimal schedule: model status 'Time limit reached' (password=hunter22)")

    monkeypatch.setattr(policy, "plan", plan, raising=False)
    return policy


def _count_runs(monkeypatch):
    """The names of the policies :func:`run_policy` rolls out, in order."""
    calls = []
    real = benchmark.run_policy

    def counted(policy, *args, **kwargs):
        calls.append(kwargs["name"])
        return real(policy, *args, **kwargs)

    monkeypatch.setattr(benchmark, "run_policy", counted)
    return calls


def test_a_failed_policy_keeps_the_others_and_says_why(tmp_path, monkeypatch, capsys):
    runs = run_benchmark(make_config(**SMALL), ["pge_baseline", _failing(monkeypatch), "idle", "rule_based"], tmp_path,
                         max_weeks=1, plots=False, progress=False)
    reason = "ScheduleError: HiGHS found no optimal schedule: model status 'Time limit reached' (password=***)"
    assert runs.failed == {"oracle": reason}
    for name in ("pge_baseline", "idle", "rule_based"):
        doc = _read(tmp_path, name)
        assert doc["status"] == "ok" and doc["aggregate_metrics"]["constraint_violations"] == 0 and len(doc["run_key"]) == 64
    failed = _read(tmp_path, "oracle")
    assert failed["status"] == "failed" and failed["error"] == reason and failed["wall_seconds"] >= 0
    assert "aggregate_metrics" not in failed and "hunter22" not in (tmp_path / "results_oracle.json").read_text()
    assert "Traceback" in failed["traceback"] and failed["data"]["fingerprint_sha256"]
    table = (tmp_path / "benchmark.md").read_text()
    assert "| oracle | failed | failed |" in table and "| rule_based | " in table and reason in table
    assert "still to run" not in table
    summary = json.loads((tmp_path / "benchmark.json").read_text())
    assert set(summary["policies"]) == {"pge_baseline", "idle", "rule_based"} and summary["failed"]["oracle"]["error"] == reason
    assert summary["meta"]["complete"] is True
    err = capsys.readouterr().err
    assert "oracle failed after" in err and reason in err and "hunter22" not in err


def test_cli_exits_1_naming_the_failed_policy(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(POLICIES, "idle", lambda: _failing(monkeypatch, "idle", RuntimeError("worker died")))
    code = main(["benchmark", "--households", "3", "--weeks", "1", "--policies", "pge_baseline", "idle", "rule_based", "--no-plots",
                 "--output", str(tmp_path)])
    assert code == 1
    out, err = capsys.readouterr()
    assert "FAILED: idle" in out.strip().splitlines()[-1] and "RuntimeError: worker died" in err
    assert _read(tmp_path, "rule_based")["status"] == "ok" and _read(tmp_path, "idle")["status"] == "failed"


def test_results_are_written_as_each_policy_finishes(tmp_path, monkeypatch):
    interrupted = IdlePolicy()

    def act(obs, state, community):
        raise KeyboardInterrupt  # Ctrl-C in the second policy: not a failed row, the run stops

    monkeypatch.setattr(interrupted, "act", act)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(make_config(**SMALL), ["pge_baseline", interrupted, "rule_based"], tmp_path, max_weeks=1, plots=False,
                      progress=False)
    assert _read(tmp_path, "pge_baseline")["status"] == "ok"
    assert not (tmp_path / "results_idle.json").exists() and not (tmp_path / "results_rule_based.json").exists()
    table = (tmp_path / "benchmark.md").read_text()
    assert "| pge_baseline | " in table and "1 of 3 policies so far; still to run: idle, rule_based" in table
    assert json.loads((tmp_path / "benchmark.json").read_text())["meta"]["pending"] == ["idle", "rule_based"]


def test_resume_skips_finished_and_reruns_failed_and_stale(tmp_path, monkeypatch, capsys):
    calls = _count_runs(monkeypatch)

    def bench(policies, config=SMALL, plots=False):
        calls.clear()
        return run_benchmark(make_config(**config), policies, tmp_path, max_weeks=1, plots=plots, progress=False, resume=True)

    bench(["pge_baseline", "idle", _failing(monkeypatch)])
    assert calls == ["pge_baseline", "idle", "oracle"]
    first = (tmp_path / "results_idle.json").read_text()
    runs = bench(["pge_baseline", "idle", "rule_based", _failing(monkeypatch)])
    assert calls == ["rule_based", "oracle"] and runs.reused == ["pge_baseline", "idle"]  # failed ones run again
    assert runs["idle"].trajectory is None and (tmp_path / "results_idle.json").read_text() == first
    assert "Rows read from earlier results" in (tmp_path / "benchmark.md").read_text()
    assert "oracle did not finish last time" in capsys.readouterr().err
    runs = bench(["pge_baseline", "idle", "rule_based"], config={**SMALL, "reward": {"kind": "savings"}}, plots=True)
    assert calls == [] and not runs.failed  # the reward is not scored: the same inputs
    assert (tmp_path / "savings_per_household.png").exists() and not (tmp_path / "home_day.png").exists()  # no rollout to plot
    runs = bench(["pge_baseline", "idle"], config={**SMALL, "battery": {"capacity_kwh": 10.0}})
    assert calls == ["pge_baseline", "idle"] and runs.reused == []
    assert "results_idle.json is stale (made with other inputs: config_sha256)" in capsys.readouterr().err
    (tmp_path / "results_idle.json").write_text("{not json")
    bench(["idle"], config={**SMALL, "battery": {"capacity_kwh": 10.0}})
    assert calls == ["idle"] and "unreadable" in capsys.readouterr().err


def test_resume_reruns_an_oracle_of_other_settings_and_shares_come_from_the_documents(tmp_path, monkeypatch, capsys):
    calls = _count_runs(monkeypatch)
    oracle = lambda nodes: make_policy("oracle", OracleSettings(mode="deterministic", node_limit=nodes, workers=1))  # noqa: E731
    fresh = run_benchmark(make_config(**SMALL), ["pge_baseline", "rule_based", oracle(50)], tmp_path, max_weeks=1, plots=False,
                          progress=False)
    base, best = fresh["pge_baseline"].trajectory["baseline_cost_usd"].sum(), fresh["oracle"].trajectory["cost_usd"].sum()
    share = (base - fresh["rule_based"].trajectory["cost_usd"].sum()) / (base - best)
    assert _read(tmp_path, "rule_based")["aggregate_metrics"]["share_of_oracle_savings"] == pytest.approx(share, abs=1e-4)
    calls.clear()
    runs = run_benchmark(make_config(**SMALL), ["pge_baseline", "rule_based", oracle(60)], tmp_path, max_weeks=1, plots=False,
                         progress=False, resume=True)
    assert calls == ["oracle"] and "results_oracle.json is stale (made with other inputs: policy)" in capsys.readouterr().err
    assert runs["rule_based"].document["aggregate_metrics"]["share_of_oracle_savings"] == pytest.approx(share, abs=1e-4)
    assert _read(tmp_path, "oracle")["run_inputs"]["policy"]["settings"]["node_limit"] == 60
    assert "| rule_based | " in (tmp_path / "benchmark.md").read_text()


def _row(name, cost, baseline=100.0, status="ok"):
    doc = {"aggregate_metrics": {"community_cost_usd": cost, "community_baseline_usd": baseline}} if status == "ok" else {}
    return PolicyRun(name, None, doc, 1.0, status=status, error=None if status == "ok" else "ScheduleError: no schedule")


def test_add_oracle_share_from_documents_alone():
    runs = {"pge_baseline": _row("pge_baseline", 100.0), "rule_based": _row("rule_based", 80.0), "oracle": _row("oracle", 60.0)}
    assert add_oracle_share(runs) == ["pge_baseline", "rule_based", "oracle"]
    assert [r.document["aggregate_metrics"]["share_of_oracle_savings"] for r in runs.values()] == [0.0, 0.5, 1.0]
    assert add_oracle_share(runs) == []  # nothing changed: no file to rewrite
    runs["oracle"] = _row("oracle", 0.0, status="failed")  # no finished oracle: no share (an older one may be of another oracle)
    assert add_oracle_share(runs) == ["pge_baseline", "rule_based"]
    assert "share_of_oracle_savings" not in runs["rule_based"].document["aggregate_metrics"]
    table = markdown_table(runs)
    assert "| rule_based | 80.00 | n/a |" in table and "| oracle | failed |" in table
    assert "* **oracle** failed after 1.0 s: ScheduleError: no schedule" in table

"""The benchmark: seed-shaped JSON, the table, plots, and a smoke run of the CLI."""

import json

import numpy as np
import pytest

from energy_env.community import build_community
from energy_env.config import make_config
from energy_env.episodes import first_days_of_test_weeks, test_week_starts
from train.benchmark import run_benchmark
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
    ja.pop("wall_seconds"), jb.pop("wall_seconds")
    assert ja == jb


def test_cli_smoke(tmp_path, capsys):
    code = main(["benchmark", "--households", "4", "--weeks", "1", "--policies", "pge_baseline", "rule_based", "--no-plots", "--output", str(tmp_path)])
    assert code == 0
    assert "| rule_based |" in capsys.readouterr().out


def test_unknown_policy(tmp_path, capsys):
    assert main(["benchmark", "--policies", "genius", "--output", str(tmp_path)]) == 2
    assert "unknown policy 'genius'" in capsys.readouterr().err

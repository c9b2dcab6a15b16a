"""The main job end to end: `wattshare run --quick` (tiny budgets) writes the seed-shaped JSON."""

import json

import pytest

from train.cli import main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--quick", "--output", str(out)]) == 0
    return out


def test_quick_pipeline_writes_seed_shaped_json(quick_run):
    doc = json.loads((quick_run / "simulation_results.json").read_text())
    assert doc["mode"] == "quick" and doc["policy"] == "ppo_shared"
    assert len(doc["households"]) == 10
    for h in doc["households"]:
        c = h["costs"]
        assert set(c) == {"baseline_pge_total", "optimized_total", "savings", "savings_percent"}
        assert c["savings"] == pytest.approx(c["baseline_pge_total"] - c["optimized_total"], abs=2e-4)
    week = doc["households_first_test_week"][0]["timeline"]
    assert len(week) == 336
    for key in ("load_kwh", "pv_kwh", "load_forecast_kwh", "soc_kwh", "p2p_bought_kwh", "p2p_sold_kwh", "market_price_usd_per_kwh"):
        assert key in week[0]
    agg = doc["aggregate_metrics"]
    assert {"avg_household_savings_percent", "total_energy_traded_kwh"} <= set(agg)
    assert agg["constraint_violations"] == 0
    assert {"pge_baseline", "rule_based", "oracle", "ppo_shared"} <= set(doc["policies"])
    assert doc["policies"]["oracle"]["share_of_oracle_savings"] == 1.0
    assert doc["forecasters"]["method"].startswith("FedAvg") and doc["forecasters"]["replies_left_out"] == 0


def test_quick_pipeline_writes_table_plots_and_checkpoints(quick_run):
    assert "| ppo_shared |" in (quick_run / "benchmark" / "benchmark.md").read_text()
    assert (quick_run / "benchmark" / "home_day.png").exists()
    assert (quick_run / "checkpoints" / "forecasters.pt").exists()
    assert (quick_run / "checkpoints" / "ppo_shared" / "meta.json").exists()


def test_run_bad_config_exits_with_a_named_key(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("battery:\n  round_trip_efficiency: 1.5\n")
    assert main(["run", "--config", str(cfg), "--output", str(tmp_path / "x")]) == 2
    assert "battery.round_trip_efficiency" in capsys.readouterr().err


def test_benchmark_oracle_budget_from_the_config_and_flags(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("num_households: 3\noracle:\n  mode: deterministic\n  node_limit: 50\n  workers: 1\n")
    out = tmp_path / "b"
    assert main(["benchmark", "--config", str(cfg), "--policies", "pge_baseline", "oracle", "--weeks", "1", "--no-plots",
                 "--output", str(out)]) == 0
    doc = json.loads((out / "results_oracle.json").read_text())
    assert doc["oracle_settings"] == {"mode": "deterministic", "mip_rel_gap": 1e-6, "node_limit": 50}
    assert main(["benchmark", "--config", str(cfg), "--policies", "oracle", "--weeks", "1", "--no-plots", "--output", str(out),
                 "--oracle-mode", "time", "--oracle-time-limit", "3"]) == 0
    assert json.loads((out / "results_oracle.json").read_text())["oracle_settings"]["time_limit_s"] == 3.0
    cfg.write_text("oracle:\n  time_limit: 5\n")
    assert main(["benchmark", "--config", str(cfg), "--policies", "oracle", "--output", str(out)]) == 2
    assert "oracle.time_limit: unknown key" in capsys.readouterr().err

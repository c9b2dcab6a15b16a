"""The main job end to end: `wattshare run --quick` (tiny budgets) writes the seed-shaped JSON."""

import json

import pytest

from policies.schedule_model import ScheduleError
from policies.simple import IdlePolicy
from train import pipeline
from train.benchmark import BenchmarkRuns, PolicyFailed, PolicyRun
from train.cli import main


class Unsolvable(IdlePolicy):
    """A baseline policy whose planning fails like HiGHS out of time."""

    name = "unsolvable"

    def plan(self, community, starts, length):
        raise ScheduleError("HiGHS found no optimal schedule: model status 'Time limit reached'")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The quick main job, with one more benchmark policy that fails: the job writes the rest and exits 1."""
    out = tmp_path_factory.mktemp("run")
    real = pipeline.run_benchmark
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "run_benchmark", lambda config, policies, *a, **k: real(config, [*policies, Unsolvable()], *a, **k))
        assert main(["run", "--quick", "--output", str(out)]) == 1
    return out


def test_quick_pipeline_writes_seed_shaped_json(quick_run):
    doc = json.loads((quick_run / "simulation_results.json").read_text())
    assert doc["mode"] == "quick" and doc["policy"] == "apg_shared"  # featured: analytic policy gradients
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
    assert {"pge_baseline", "rule_based", "oracle", "ppo_shared", "apg_shared"} <= set(doc["policies"])
    assert {"policy_training_s", "ppo_shared_training_s", "apg_shared_training_s"} <= set(doc["timings_seconds"])
    assert doc["policies"]["oracle"]["share_of_oracle_savings"] == 1.0
    assert doc["forecasters"]["method"].startswith("FedAvg") and doc["forecasters"]["replies_left_out"] == 0
    assert doc["failed_policies"] == {"unsolvable": "ScheduleError: HiGHS found no optimal schedule: model status 'Time limit reached'"}
    assert "unsolvable" not in doc["policies"]


def test_quick_pipeline_writes_table_plots_and_checkpoints(quick_run):
    table = (quick_run / "benchmark" / "benchmark.md").read_text()
    assert "| ppo_shared |" in table and "| apg_shared |" in table and "| unsolvable | failed |" in table
    assert json.loads((quick_run / "benchmark" / "results_unsolvable.json").read_text())["status"] == "failed"
    assert (quick_run / "benchmark" / "home_day.png").exists()
    assert (quick_run / "checkpoints" / "forecasters.pt").exists()
    assert (quick_run / "checkpoints" / "ppo_shared" / "meta.json").exists()
    assert json.loads((quick_run / "checkpoints" / "apg_shared" / "meta.json").read_text())["settings"]["algorithm"] == "apg"


def test_a_failed_featured_policy_raises(tmp_path):
    ok = PolicyRun("ppo_shared", None, {"status": "ok"}, 1.0)
    assert pipeline.featured_run(BenchmarkRuns(ppo_shared=ok), "ppo_shared", tmp_path) is ok
    err = ValueError("bad observation")
    failed = PolicyRun("ppo_shared", None, {"status": "failed"}, 1.0, status="failed", error="ValueError: bad observation", exception=err)
    with pytest.raises(PolicyFailed, match="featured policy ppo_shared failed: ValueError: bad observation") as caught:
        pipeline.featured_run(BenchmarkRuns(ppo_shared=failed), "ppo_shared", tmp_path)
    assert caught.value.__cause__ is err


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
    assert doc["oracle_settings"] == {"mode": "deterministic", "mip_rel_gap": 1e-6, "node_limit": 50, "method": "exact"}
    assert main(["benchmark", "--config", str(cfg), "--policies", "oracle", "--weeks", "1", "--no-plots", "--output", str(out),
                 "--oracle-mode", "time", "--oracle-time-limit", "3"]) == 0
    assert json.loads((out / "results_oracle.json").read_text())["oracle_settings"]["time_limit_s"] == 3.0
    cfg.write_text("oracle:\n  time_limit: 5\n")
    assert main(["benchmark", "--config", str(cfg), "--policies", "oracle", "--output", str(out)]) == 2
    assert "oracle.time_limit: unknown key" in capsys.readouterr().err


def test_the_at_scale_recipe():
    from train.pipeline import at_scale_recipe
    from train.run_config import RunConfig

    run, changed = at_scale_recipe(RunConfig(), 1000)
    assert run.federated.fraction_train == run.federated.fraction_evaluate == 0.05 and run.training.scenarios == 1
    assert "mpc" not in run.benchmark.policies and changed["forecasters"].startswith("the global FedAvg model")
    assert at_scale_recipe(RunConfig(), 10) == (RunConfig(), None)

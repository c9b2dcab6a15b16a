"""The main job: `wattshare run` writes the seed-shaped JSON."""

import json

import pytest

from train.cli import main


def test_run_writes_seed_shaped_json(tmp_path, capsys):
    out = tmp_path / "simulation_results.json"
    assert main(["run", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["households"]) == 10
    for h in doc["households"]:
        c = h["costs"]
        assert set(c) == {"baseline_pge_total", "optimized_total", "savings", "savings_percent"}
        assert c["savings"] == pytest.approx(c["baseline_pge_total"] - c["optimized_total"], abs=2e-4)
        assert len(h["timeline"]) == 48
        row = h["timeline"][0]
        for key in ("load_kwh", "pv_kwh", "load_forecast_kwh", "soc_kwh", "p2p_bought_kwh", "p2p_sold_kwh", "market_price_usd_per_kwh"):
            assert key in row
    agg = doc["aggregate_metrics"]
    assert {"avg_household_savings_percent", "total_energy_traded_kwh"} <= set(agg)
    assert agg["constraint_violations"] == 0
    assert "community bill" in capsys.readouterr().out


def test_run_bad_config_exits_with_a_named_key(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("battery:\n  round_trip_efficiency: 1.5\n")
    assert main(["run", "--config", str(cfg), "--output", str(tmp_path / "x.json")]) == 2
    assert "battery.round_trip_efficiency" in capsys.readouterr().err

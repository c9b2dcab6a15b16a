"""One run configuration: every section in one YAML, flags that mean the same everywhere."""

import argparse
import sys

import pytest
import yaml

from energy_env.config import ConfigError
from train.flags import add_config_flags, env_overrides, run_config_from_args
from train.run_config import QUICK, RunConfig, load_run_config, with_sections


def test_a_run_config_round_trips_through_its_yaml(tmp_path):
    run = load_run_config(None, {"num_households": 4, "battery.capacity_kwh": 10.0},
                          training={"total_timesteps": 5000, "net_arch": [32, 32]}, federated={"rounds": 3},
                          forecasting={"hidden_size": 16}, oracle={"mode": "deterministic"}, benchmark={"weeks": 2})
    path = tmp_path / "run.yaml"
    path.write_text(run.to_yaml())
    assert load_run_config(path) == run
    assert run.training.total_timesteps == 5000 and run.env.battery.capacity_kwh == 10.0


def test_every_section_names_its_bad_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  steps: 10\nfederated:\n  rounds: 0\nforecasting:\n  kind: big\nbenchmark:\n  weeks: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    text = str(err.value)
    assert "bad.yaml" in text and "training.steps: unknown key" in text and "forecasting.kind" in text and "benchmark.weeks" in text
    path.write_text("federated:\n  rounds: 0\n")
    with pytest.raises(ConfigError, match="rounds and local_epochs must be >= 1"):
        load_run_config(path)
    path.write_text("oracle: 5\n")
    with pytest.raises(ConfigError, match="oracle: must be a mapping"):
        load_run_config(path)


def test_reading_a_configuration_imports_neither_torch_nor_flower():
    import subprocess

    code = "import sys, train.run_config, train.flags; print(sorted(m for m in ('torch', 'flwr') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(list(argv))


def test_data_flags_mean_the_same_everywhere(tmp_path):
    folder, csv = tmp_path / "city", tmp_path / "homes.csv"
    folder.mkdir()
    csv.write_text("x\n")
    assert env_overrides(_args("--data-path", str(folder))) == {"data.source": "citylearn", "data.path": str(folder)}
    assert env_overrides(_args("--data-path", str(csv))) == {"data.source": "file", "data.path": str(csv)}
    assert env_overrides(_args("--citylearn", str(folder))) == {"num_households": None, "data.source": "citylearn", "data.path": str(folder)}
    assert env_overrides(_args("--citylearn", str(folder), "--households", "3"))["num_households"] == 3
    run = run_config_from_args(_args("--households", "7"))
    assert run.env.num_households == 7


def test_quick_is_the_main_job_with_small_budgets():
    quick = with_sections(RunConfig(), QUICK)
    assert quick.pipeline.learned == ["ppo", "apg"] and quick.federated.rounds == 1 and quick.benchmark.weeks == 1
    assert quick.env == RunConfig().env and quick.training.net_arch == RunConfig().training.net_arch


def test_flower_run_config_is_derived_from_the_sections():
    from federated.forecasters import run_config_from_sections, settings_from_run_config

    run = with_sections(RunConfig(), {"federated": {"rounds": 7, "norm_screen_factor": None}, "forecasting": {"hidden_size": 12}})
    flower = run_config_from_sections(run.forecasting, run.federated)
    assert flower["rounds"] == 7 and flower["hidden-size"] == 12 and flower["norm-screen-factor"] == 0.0
    forecaster, fed = settings_from_run_config(flower)
    assert fed == run.federated and forecaster.hidden_size == 12


def test_config_yaml_is_a_run_config():
    from pathlib import Path

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    assert {"training", "federated", "forecasting", "oracle", "benchmark", "pipeline"} <= set(doc)

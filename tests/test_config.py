"""Config: defaults, the YAML file, and errors that name the key."""

from pathlib import Path

import pytest
import yaml

from energy_env.config import ConfigError, EnvConfig, default_config_dict, load_config, make_config

CONFIG_YAML = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def test_config_yaml_holds_the_defaults():
    from train.run_config import RunConfig, load_run_config

    doc = yaml.safe_load(CONFIG_YAML.read_text())
    assert doc == yaml.safe_load(RunConfig().to_yaml())
    assert {k: v for k, v in doc.items() if k in default_config_dict()} == default_config_dict()
    assert load_config(CONFIG_YAML) == EnvConfig()  # the env's loader leaves the run sections alone
    assert load_run_config(CONFIG_YAML) == RunConfig()


def test_seed_numbers_are_the_defaults():
    c = EnvConfig()
    assert c.num_households is None and c.households_to_load == 10 and c.episode_length == 48  # 10 synthetic homes
    assert c.battery.capacity_kwh == 13.5 and c.battery.max_power_kw == 5.0
    assert (c.battery.soc_min_fraction, c.battery.soc_max_fraction) == (0.1, 0.9)
    assert c.battery.round_trip_efficiency == 0.9 and not c.battery.charge_from_grid
    assert (c.grid.import_limit_kwh, c.grid.export_limit_kwh) == (10.0, 4.0)
    assert c.market.transmission_loss == 0.05 and c.market.mechanism == "sdr"
    assert c.forecast.horizon == 6


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"batery": {}}, "batery: unknown key"),
        ({"battery": {"capacity": 5}}, "battery.capacity: unknown key"),
        ({"battery": {"capacity_kwh": -1}}, "battery.capacity_kwh"),
        ({"battery": {"capacity_kwh": [13.5, -2]}}, "battery.capacity_kwh"),
        ({"battery": {"round_trip_efficiency": 1.2}}, "battery.round_trip_efficiency"),
        ({"battery": {"soc_min_fraction": 0.9, "soc_max_fraction": 0.1}}, "soc_min_fraction (0.9) must be <= soc_max_fraction"),
        ({"battery": {"max_power_kw": "fast"}}, "battery.max_power_kw"),
        ({"num_households": 0}, "num_households"),
        ({"grid": {"export_limit_kwh": -4}}, "grid.export_limit_kwh"),
        ({"market": {"mechanism": "auction"}}, "market.mechanism"),
        ({"data": {"source": "citylearn"}}, "needs data.path"),
        ({"num_households": 3, "battery": {"capacity_kwh": [1.0, 2.0]}}, "has 2 values but the community has 3 households"),
    ],
)
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        make_config(**overrides)
    assert key in str(err.value)


def test_dotted_and_nested_overrides():
    a = make_config(**{"battery.capacity_kwh": 10.0})
    b = make_config(battery={"capacity_kwh": 10.0})
    assert a == b and a.battery.capacity_kwh == 10.0 and a.battery.max_power_kw == 5.0


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("grid:\n  import_limit_kwh: -1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*\n.*grid\.import_limit_kwh"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"battery": {"degradation_cost_usd_per_kwh": float("inf")}}, "battery.degradation_cost_usd_per_kwh"),
        ({"tariff": {"flat_export_usd_per_kwh": float("nan")}}, "tariff.flat_export_usd_per_kwh"),
        ({"tariff": {"terminal_price_usd_per_kwh": float("nan")}}, "tariff.terminal_price_usd_per_kwh"),
        ({"market": {"sdr_observation_cap": float("inf")}}, "market.sdr_observation_cap"),
        ({"battery": {"capacity_kwh": [13.5, float("inf")]}, "num_households": 2}, "battery.capacity_kwh"),
        ({"grid": {"import_limit_kwh": float("inf")}}, "grid.import_limit_kwh"),
        ({"num_households": "10"}, "num_households"),
        ({"num_households": 10.0}, "num_households"),
        ({"num_households": True}, "num_households"),
        ({"forecast": {"horizon": 6.5}}, "forecast.horizon"),
        ({"battery": {"charge_from_grid": 1}}, "battery.charge_from_grid"),
        ({"battery": {"charge_from_grid": "yes"}}, "battery.charge_from_grid"),
        ({"battery": {"max_power_kw": True}}, "battery.max_power_kw"),
        ({"seed": -1}, "seed"),
        ({"grid": {"import_limit_kwh": [10.0, 0.0]}, "num_households": 2}, "grid.import_limit_kwh"),
        ({"grid": {"export_limit_kwh": [4.0, 4.0]}, "num_households": 3}, "grid.export_limit_kwh has 2 values but the community has 3 households"),
        ({"grid": {"over_limit": "clip"}}, "grid.over_limit"),
    ],
)
def test_non_finite_and_loose_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        make_config(**overrides)
    assert key in str(err.value)


def test_python_and_numpy_numbers_that_mean_the_same_are_accepted():
    import numpy as np

    c = make_config(num_households=np.int64(3), battery={"capacity_kwh": (13.5, 0, np.float64(5.0)), "max_power_kw": 5},
                    data={"start_date": "2025-01-01"})
    assert c.num_households == 3 and c.battery.capacity_kwh == [13.5, 0.0, 5.0] and c.battery.max_power_kw == 5.0
    assert str(c.data.start_date) == "2025-01-01"


def test_a_community_too_large_for_memory_fails_before_allocating():
    from energy_env.community import build_community
    from energy_env.memory import check_memory, estimate_build_bytes

    with pytest.raises(ConfigError, match=r"num_households: 10,000,000 homes x 17,520 intervals need about [\d,.]+ GB"):
        build_community(make_config(num_households=10_000_000))
    assert estimate_build_bytes(17_520, 1_000) == 17_520 * 1_000 * 184
    with pytest.raises(ConfigError, match="only 1.0 GB is available"):
        check_memory(17_520, 1_000, available=10**9)
    assert check_memory(17_520, 1_000, available=10**12) == estimate_build_bytes(17_520, 1_000)

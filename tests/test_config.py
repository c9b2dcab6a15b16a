"""Config: defaults, the YAML file, and errors that name the key."""

from pathlib import Path

import pytest
import yaml

from energy_env.config import ConfigError, EnvConfig, default_config_dict, load_config, make_config

CONFIG_YAML = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def test_config_yaml_holds_the_defaults():
    assert yaml.safe_load(CONFIG_YAML.read_text()) == default_config_dict()
    assert load_config(CONFIG_YAML) == EnvConfig()


def test_seed_numbers_are_the_defaults():
    c = EnvConfig()
    assert c.num_households == 10 and c.episode_length == 48
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
        ({"num_households": 3, "battery": {"capacity_kwh": [1.0, 2.0]}}, "has 2 values but num_households is 3"),
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

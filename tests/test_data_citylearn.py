"""The CityLearn loader: the real 2022 folder (skipped where absent) and hand-made bad folders."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy_env.config import DataConfig
from energy_env.data import DataError, load_citylearn, load_dataset

CITYLEARN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "citylearn_2022"
FAULTY = {"Building_12", "Building_14", "Building_15"}


def _real() -> Path:
    if not (CITYLEARN / "schema.json").exists():
        pytest.skip(f"CityLearn 2022 data not found at {CITYLEARN} (../shared/data sits beside the checkout in CI only)")
    return CITYLEARN


@pytest.fixture(scope="module")
def real():
    return load_citylearn(_real())


# --- the real CityLearn 2022 folder --------------------------------------------------------------


def test_real_default_drops_the_faulty_homes(real):
    assert real.num_intervals == 17_520 and real.num_days == 365
    assert real.num_households == 14
    assert set(real.household_ids).isdisjoint(FAULTY)
    assert real.household_ids[:3] == ("Building_1", "Building_2", "Building_3")  # sorted by N, not as text
    assert real.household_ids[-1] == "Building_17"
    assert set(real.flags) == FAULTY
    assert "solar_generation" in real.flags["Building_14"]
    assert "non_shiftable_load" in real.flags["Building_12"]
    assert "solar_generation" in real.flags["Building_15"] and "non_shiftable_load" in real.flags["Building_15"]


def test_real_include_faulty_and_named_buildings():
    ds = load_citylearn(_real(), include_faulty=True)
    assert ds.num_households == 17 and set(ds.flags) == FAULTY
    named = load_citylearn(_real(), buildings=[12, 1])
    assert named.household_ids == ("Building_12", "Building_1")  # named homes are kept, in order
    assert set(named.flags) == {"Building_12"}


def test_real_time_axis(real):
    assert real.timestamps[0] == pd.Timestamp("2016-08-01 00:00")
    assert real.timestamps[-1] == pd.Timestamp("2017-07-31 23:30")
    assert (np.diff(real.timestamps) == pd.Timedelta(minutes=30)).all()
    with pytest.raises(DataError, match=r"Building_1\.csv.*data row 1.*start_year=2017"):
        load_citylearn(_real(), buildings=[1], start_year=2017)  # 2017-08-01 is a Tuesday


def test_real_hourly_to_half_hourly_conserves_energy_and_scales_pv(real):
    schema = json.loads((CITYLEARN / "schema.json").read_text())
    weather = pd.read_csv(CITYLEARN / "weather.csv")
    for i, name in enumerate(real.household_ids):
        raw = pd.read_csv(CITYLEARN / f"{name}.csv")
        cap_kw = schema["buildings"][name]["pv"]["attributes"]["nominal_power"]
        assert real.pv_capacity_kw[i] == cap_kw
        load_h = real.load_kwh[:, i].reshape(-1, 2)
        pv_h = real.pv_kwh[:, i].reshape(-1, 2)
        np.testing.assert_allclose(load_h.sum(axis=1), raw["non_shiftable_load"], rtol=1e-12)
        np.testing.assert_allclose(load_h[:, 0], load_h[:, 1])  # split in equal halves
        np.testing.assert_allclose(pv_h.sum(axis=1), raw["solar_generation"] * cap_kw / 1000, rtol=1e-12)
    assert real.pv_capacity_kw[real.household_ids.index("Building_1")] == 4.0
    assert real.pv_capacity_kw[real.household_ids.index("Building_4")] == 5.0
    assert abs(real.load_kwh.sum() - sum(pd.read_csv(CITYLEARN / f"{h}.csv")["non_shiftable_load"].sum() for h in real.household_ids)) < 1e-6
    np.testing.assert_array_equal(real.temperature_c[::2], weather["outdoor_dry_bulb_temperature"])
    np.testing.assert_array_equal(real.temperature_c[1::2], weather["outdoor_dry_bulb_temperature"])
    ghi = weather["diffuse_solar_irradiance"] + weather["direct_solar_irradiance"]
    np.testing.assert_array_equal(real.irradiance_w_per_m2[::2], ghi)


def test_load_dataset_citylearn_first_n_and_too_many():
    cfg = DataConfig(source="citylearn", path=str(_real()))
    five = load_dataset(cfg, 5, seed=0)
    assert five.household_ids == tuple(f"Building_{i}" for i in range(1, 6))
    assert load_dataset(cfg, 5, seed=1) is five  # cached; seed does not matter for measured data
    assert load_dataset(cfg, 14, seed=0).num_households == 14
    with pytest.raises(DataError, match="has 14 homes.*num_households is 15"):
        load_dataset(cfg, 15, seed=0)
    assert load_dataset(cfg.model_copy(update={"include_faulty": True}), 17, seed=0).num_households == 17


# --- tiny hand-made folders ------------------------------------------------------------------------

DAYS = 2


def _labels(rows: int, start: str = "2016-08-01") -> pd.DataFrame:
    """CityLearn labels: hour 1-24, hour 24 = next midnight carrying the previous day's month/day_type."""
    ts = pd.date_range(start, periods=rows, freq="h")
    hour = np.where(ts.hour == 0, 24, ts.hour)
    label_day = ts - pd.to_timedelta((ts.hour == 0).astype(int), unit="D")
    return pd.DataFrame({"month": label_day.month, "hour": hour, "day_type": label_day.day_of_week + 1})


def _irradiance(rows: int) -> np.ndarray:
    h = np.arange(rows) % 24
    return np.clip(900 * np.sin(np.pi * (h - 6) / 13), 0, None).round(1)


def make_folder(root: Path, buildings=(1, 2), days: int = DAYS, pv_kw=(4.0, 5.0)) -> Path:
    """A minimal valid CityLearn folder: schema.json, Building_N.csv, weather.csv."""
    root.mkdir(parents=True, exist_ok=True)
    rows = days * 24
    schema = {
        "seconds_per_time_step": 3600,
        "buildings": {
            f"Building_{b}": {
                "include": True,
                "energy_simulation": f"Building_{b}.csv",
                "weather": "weather.csv",
                "pv": {"type": "citylearn.energy_model.PV", "attributes": {"nominal_power": kw}},
            }
            for b, kw in zip(buildings, pv_kw)
        },
    }
    (root / "schema.json").write_text(json.dumps(schema))
    ghi = _irradiance(rows)
    for k, b in enumerate(buildings):
        df = _labels(rows)
        df["daylight_savings_status"] = 0
        df["non_shiftable_load"] = (0.6 + 0.1 * k + 0.4 * np.sin(np.arange(rows) / 3.0) ** 2).round(4)
        df["solar_generation"] = (ghi * 0.4).round(2)  # W per kW: a healthy 0.4 of irradiance
        df.to_csv(root / f"Building_{b}.csv", index=False)
    weather = pd.DataFrame({
        "outdoor_dry_bulb_temperature": (18 + 5 * np.sin(np.arange(rows) / 24 * 2 * np.pi)).round(1),
        "outdoor_relative_humidity": 50.0,
        "diffuse_solar_irradiance": (ghi * 0.2).round(1),
        "direct_solar_irradiance": (ghi * 0.8).round(1),
    })
    weather.to_csv(root / "weather.csv", index=False)
    return root


def _edit_cell(file: Path, column: str, data_row: int, value: str) -> None:
    """Set one cell: ``data_row`` counts data lines from 1 (file line data_row + 1)."""
    lines = file.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[data_row].split(",")
    cells[header.index(column)] = value
    lines[data_row] = ",".join(cells)
    file.write_text("\n".join(lines) + "\n")


def test_tiny_folder_loads(tmp_path):
    folder = make_folder(tmp_path / "ok")
    ds = load_citylearn(folder)
    assert ds.household_ids == ("Building_1", "Building_2")
    assert ds.num_intervals == DAYS * 48 and ds.flags == {}
    assert ds.timestamps[0] == pd.Timestamp("2016-08-01")
    raw = pd.read_csv(folder / "Building_2.csv")
    assert raw.loc[0, ["month", "hour", "day_type"]].tolist() == [7, 24, 7]  # the documented first row
    np.testing.assert_allclose(ds.pv_kwh[:, 1].reshape(-1, 2).sum(axis=1), raw["solar_generation"] * 5.0 / 1000)
    assert ds.name == str(folder)
    with pytest.raises(DataError, match="start_year=2015"):
        load_citylearn(folder, start_year=2015)


def test_missing_folder_schema_and_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_citylearn(tmp_path / "nowhere")
    folder = make_folder(tmp_path / "a")
    (folder / "Building_2.csv").unlink()
    with pytest.raises(DataError, match=r"Building_2\.csv: file not found"):
        load_citylearn(folder)
    (folder / "schema.json").unlink()
    with pytest.raises(DataError, match=r"schema\.json: file not found"):
        load_citylearn(folder)
    folder = make_folder(tmp_path / "b")
    (folder / "weather.csv").unlink()
    with pytest.raises(DataError, match=r"weather\.csv: file not found"):
        load_citylearn(folder)


def test_schema_without_the_building(tmp_path):
    folder = make_folder(tmp_path)
    with pytest.raises(DataError, match=r"schema\.json: no building 'Building_3'.*Building_1, Building_2"):
        load_citylearn(folder, buildings=[3])


def test_schema_bad_json_and_bad_pv_size(tmp_path):
    folder = make_folder(tmp_path / "a")
    (folder / "schema.json").write_text("{not json")
    with pytest.raises(DataError, match=r"schema\.json: not valid JSON"):
        load_citylearn(folder)
    folder = make_folder(tmp_path / "b", pv_kw=(4.0, -1.0))
    with pytest.raises(DataError, match=r"buildings\.Building_2\.pv\.attributes\.nominal_power.*-1"):
        load_citylearn(folder)


def test_missing_column(tmp_path):
    folder = make_folder(tmp_path)
    df = pd.read_csv(folder / "Building_1.csv").drop(columns="solar_generation")
    df.to_csv(folder / "Building_1.csv", index=False)
    with pytest.raises(DataError, match=r"Building_1\.csv: missing column\(s\) 'solar_generation'"):
        load_citylearn(folder)


def test_missing_weather_column(tmp_path):
    folder = make_folder(tmp_path)
    pd.read_csv(folder / "weather.csv").drop(columns="direct_solar_irradiance").to_csv(folder / "weather.csv", index=False)
    with pytest.raises(DataError, match=r"weather\.csv: missing column\(s\) 'direct_solar_irradiance'"):
        load_citylearn(folder)


def test_nan_names_file_column_and_row(tmp_path):
    folder = make_folder(tmp_path)
    _edit_cell(folder / "Building_2.csv", "non_shiftable_load", 6, "")
    with pytest.raises(DataError, match=r"Building_2\.csv: column 'non_shiftable_load', data row 6 \(file line 7\): missing value"):
        load_citylearn(folder)


def test_nan_in_weather(tmp_path):
    folder = make_folder(tmp_path)
    _edit_cell(folder / "weather.csv", "outdoor_dry_bulb_temperature", 40, "NaN")
    with pytest.raises(DataError, match=r"weather\.csv: column 'outdoor_dry_bulb_temperature', data row 40"):
        load_citylearn(folder)


def test_negative_load(tmp_path):
    folder = make_folder(tmp_path)
    _edit_cell(folder / "Building_1.csv", "non_shiftable_load", 11, "-0.3")
    with pytest.raises(DataError, match=r"Building_1\.csv: column 'non_shiftable_load', data row 11 .*negative value -0\.3"):
        load_citylearn(folder)


def test_non_numeric(tmp_path):
    folder = make_folder(tmp_path)
    _edit_cell(folder / "Building_1.csv", "solar_generation", 4, "abc")
    with pytest.raises(DataError, match=r"Building_1\.csv: column 'solar_generation', data row 4 .*non-numeric value 'abc'"):
        load_citylearn(folder)


def test_ragged_lengths(tmp_path):
    folder = make_folder(tmp_path / "a")
    df = pd.read_csv(folder / "Building_2.csv")
    df.iloc[:-1].to_csv(folder / "Building_2.csv", index=False)
    with pytest.raises(DataError, match=r"Building_2\.csv: 47 data rows, but Building_1\.csv has 48.*data row 47"):
        load_citylearn(folder)
    folder = make_folder(tmp_path / "b")
    pd.read_csv(folder / "weather.csv").iloc[:24].to_csv(folder / "weather.csv", index=False)
    with pytest.raises(DataError, match=r"weather\.csv: 24 data rows, but Building_1\.csv has 48"):
        load_citylearn(folder)


def test_empty_and_header_only_files(tmp_path):
    folder = make_folder(tmp_path / "a")
    (folder / "Building_1.csv").write_text("")
    with pytest.raises(DataError, match=r"Building_1\.csv: file is empty"):
        load_citylearn(folder)
    folder = make_folder(tmp_path / "b")
    header = (folder / "Building_1.csv").read_text().splitlines()[0]
    (folder / "Building_1.csv").write_text(header + "\n")
    with pytest.raises(DataError, match=r"Building_1\.csv: no data rows"):
        load_citylearn(folder)


def test_not_whole_days(tmp_path):
    folder = make_folder(tmp_path)
    for name in ("Building_1.csv", "Building_2.csv", "weather.csv"):
        pd.read_csv(folder / name).iloc[:40].to_csv(folder / name, index=False)
    with pytest.raises(DataError, match=r"Building_1\.csv: 40 data rows is not a whole number of days"):
        load_citylearn(folder)


def test_rows_must_be_consecutive_hours(tmp_path):
    folder = make_folder(tmp_path)
    _edit_cell(folder / "Building_2.csv", "hour", 30, "7")  # data row 30 is hour label 5
    with pytest.raises(DataError, match=r"Building_2\.csv: column 'hour', data row 30 .*got 7, expected 5"):
        load_citylearn(folder)


def test_flagged_homes_dropped_unless_asked(tmp_path):
    folder = make_folder(tmp_path, buildings=(1, 2, 3), pv_kw=(4.0, 4.0, 4.0))
    # Building_2: load ~0 every night (net of PV); Building_3: PV missing.
    df = pd.read_csv(folder / "Building_2.csv")
    night = np.isin(_labels(len(df))["hour"] % 24, range(0, 5))
    df.loc[night, "non_shiftable_load"] = 0.0
    df.to_csv(folder / "Building_2.csv", index=False)
    df = pd.read_csv(folder / "Building_3.csv")
    df["solar_generation"] = 0.0
    df.to_csv(folder / "Building_3.csv", index=False)

    ds = load_citylearn(folder)
    assert ds.household_ids == ("Building_1",)
    assert set(ds.flags) == {"Building_2", "Building_3"}
    assert "non_shiftable_load" in ds.flags["Building_2"] and "solar_generation" in ds.flags["Building_3"]
    assert load_citylearn(folder, include_faulty=True).num_households == 3
    assert load_citylearn(folder, buildings=[3]).household_ids == ("Building_3",)


def test_schema_include_false_is_skipped_unless_named(tmp_path):
    folder = make_folder(tmp_path)
    schema = json.loads((folder / "schema.json").read_text())
    schema["buildings"]["Building_1"]["include"] = False
    (folder / "schema.json").write_text(json.dumps(schema))
    assert load_citylearn(folder).household_ids == ("Building_2",)
    assert load_citylearn(folder, buildings=[1, 2]).household_ids == ("Building_1", "Building_2")

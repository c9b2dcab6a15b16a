"""CSV / Parquet consumption files: round trip, row checks with reasons, filters, env on the result."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from energy_env.config import make_config
from energy_env.data.dataset import DataError, Dataset
from energy_env.data.redact import redact
from energy_env.data.settings import parse_env_file, read_setting
from energy_env.data.sources import ExternalDataOptions, load_consumption
from energy_env.data.writing import dataset_to_rows
from energy_env.data.synthetic import generate_synthetic
from energy_env.env import WattshareParallelEnv
from train.import_data import first_days


@pytest.fixture(scope="module")
def small() -> Dataset:
    """3 synthetic homes, 4 days of October (no DST change)."""
    ds = generate_synthetic(3, 2025, seed=1)
    start = int(np.flatnonzero(ds.timestamps == pd.Timestamp("2025-10-06"))[0])
    t = slice(start, start + 4 * 48)
    return Dataset(
        name="small", timestamps=ds.timestamps[t], load_kwh=ds.load_kwh[t].copy(), pv_kwh=ds.pv_kwh[t].copy(),
        household_ids=ds.household_ids, pv_capacity_kw=ds.pv_capacity_kw, temperature_c=ds.temperature_c[t].copy(),
    )


def _write_csv(rows: pd.DataFrame, path) -> None:
    out = rows.copy()
    out["interval_start_utc"] = out["interval_start_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)


def test_csv_round_trip_is_exact(small, tmp_path):
    rows, skipped = dataset_to_rows(small)
    assert not skipped and len(rows) == 3 * 4 * 48
    _write_csv(rows, tmp_path / "c.csv")
    ds, report = load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "c.csv")))
    assert ds.household_ids == small.household_ids
    assert ds.timestamps.equals(small.timestamps)
    np.testing.assert_allclose(ds.load_kwh, small.load_kwh, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.pv_kwh, small.pv_kwh, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.temperature_c, small.temperature_c, atol=1e-12)
    assert (report.rows_read, report.rows_kept, report.rows_rejected) == (576, 576, 0)
    assert report.resolution_minutes == 30 and not report.gaps


def test_parquet_with_hourly_data_is_resampled(small, tmp_path):
    rows, _ = dataset_to_rows(small)
    # make it hourly: sum the two halves of each UTC hour
    rows["hour"] = rows["interval_start_utc"].dt.floor("h")
    hourly = rows.groupby(["household_id", "hour"], as_index=False).agg(load_kwh=("load_kwh", "sum"), pv_kwh=("pv_kwh", "sum"))
    hourly = hourly.rename(columns={"hour": "interval_start_utc"})
    hourly.to_parquet(tmp_path / "c.parquet")
    ds, report = load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "c.parquet")))
    assert report.resolution_minutes == 60 and "split in two halves" in report.resampling
    np.testing.assert_allclose(ds.load_kwh.sum(axis=0), small.load_kwh.sum(axis=0))  # energy conserved
    np.testing.assert_allclose(ds.load_kwh[0::2], ds.load_kwh[1::2])  # the two halves of an hour are equal
    assert ds.temperature_c is None


def test_bad_rows_are_rejected_with_reasons_and_nothing_is_lost(small, tmp_path):
    rows, _ = dataset_to_rows(first_days(small, 2))
    _write_csv(rows, tmp_path / "c.csv")
    lines = (tmp_path / "c.csv").read_text().splitlines()
    header, data = lines[0], lines[1:]
    data[5] = data[5].replace(data[5].split(",")[2], "abc", 1)  # non-numeric load
    f = data[6].split(",")
    f[3] = "-0.5"  # negative PV
    data[6] = ",".join(f)
    f = data[7].split(",")
    f[3] = "-0.004"  # PV meter standby: read as 0
    data[7] = ",".join(f)
    data[8] = data[8].replace(data[8].split(",")[1], "not a time", 1)
    data.append(data[9])  # duplicate (household, time)
    (tmp_path / "bad.csv").write_text("\n".join([header, *data]) + "\n")
    opts = ExternalDataOptions(source="file", path=str(tmp_path / "bad.csv"), gap_fill="interpolate")
    ds, report = load_consumption(opts)
    assert report.rows_read == len(data)
    assert report.rows_rejected == 4
    assert report.rows_kept == len(data) - 4
    report.check_balance()
    assert report.rejected == {
        "non-numeric load_kwh": 1,
        "negative pv_kwh": 1,
        "unparseable interval_start_utc": 1,
        "exact duplicate (household_id, interval_start_utc): same values as an earlier row": 1,
    }
    assert report.examples["non-numeric load_kwh"].startswith("file line 7: household_id='household_0', interval_start_utc=")
    assert "load_kwh='abc'" in report.examples["non-numeric load_kwh"]
    assert report.adjusted == {"pv_kwh in [-0.01, 0) read as 0": 1}
    # rows 5 and 6 are adjacent slots: one run of 2; row 8 another run of 1
    assert [g.intervals for g in report.gaps] == [2, 1] and all(g.filled_by == "interpolate" for g in report.gaps)
    assert ds.num_days == 2
    # with the default rule the same file is refused, naming the household and the range
    with pytest.raises(DataError, match=r"household household_0: 2 gap\(s\) not filled \(gap fill rule is 'none'\)"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "bad.csv")))


def test_filters_by_household_and_date(small, tmp_path):
    rows, _ = dataset_to_rows(small)
    _write_csv(rows, tmp_path / "c.csv")
    opts = ExternalDataOptions(
        source="file", path=str(tmp_path / "c.csv"), households=("household_2", "household_0"),
        start_date=dt.date(2025, 10, 7), end_date=dt.date(2025, 10, 8),
    )
    ds, report = load_consumption(opts)
    assert ds.household_ids == ("household_2", "household_0")
    assert ds.num_days == 2 and ds.timestamps[0] == pd.Timestamp("2025-10-07")
    assert report.rows_read == 2 * 2 * 48  # the filters act before reading, as on a server
    np.testing.assert_allclose(ds.load_kwh[:, 0], small.load_kwh[48:144, 2])
    # num_households takes the first homes in natural order
    ds2, _ = load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "c.csv")), num_households=2)
    assert ds2.household_ids == ("household_0", "household_1")
    with pytest.raises(DataError, match="the file has 3 households .* but num_households is 5"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "c.csv")), num_households=5)


def test_file_errors_name_the_file_and_cause(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_consumption(ExternalDataOptions(source="file", path=str(missing)))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: file is empty"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "empty.csv")))
    (tmp_path / "cols.csv").write_text("household_id,interval_start_utc,load_kwh\nh,2024-10-01T07:00Z,1\n")
    with pytest.raises(DataError, match=r"cols.csv: missing column\(s\) 'pv_kwh' of the consumption layout"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "cols.csv")))
    (tmp_path / "header.csv").write_text("household_id,interval_start_utc,load_kwh,pv_kwh\n")
    with pytest.raises(DataError, match="header.csv: the file has no rows"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "header.csv")))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unknown file type"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "x.json")))


def test_loaded_data_runs_in_the_env(small, tmp_path):
    rows, _ = dataset_to_rows(small)
    _write_csv(rows, tmp_path / "c.csv")
    ds, _ = load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "c.csv")))
    env = WattshareParallelEnv(make_config(num_households=ds.num_households), dataset=ds)
    obs, _ = env.reset(options={"day": 0, "split": "all"})
    assert set(obs) == set(env.agents)
    _, rewards, *_ = env.step({a: np.zeros(1, dtype=np.float32) for a in env.agents})
    assert all(np.isfinite(r) for r in rewards.values())


def test_settings_come_from_env_then_dotenv_and_are_redacted(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport SUPABASE_URL='https://x.supabase.co'\nSUPABASE_KEY=\"abc def\"\nOTHER=1 # note\n")
    assert parse_env_file(env_file) == {"SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "abc def", "OTHER": "1"}
    monkeypatch.delenv("SUPABASE_KEY", raising=False)
    assert read_setting("SUPABASE_KEY", env_file) == "abc def"
    monkeypatch.setenv("SUPABASE_KEY", "from-env")
    assert read_setting(["SUPABASE_KEY"], env_file) == "from-env"
    assert read_setting("NOT_SET_ANYWHERE", env_file) is None
    assert redact("key=s3cr3t%2Fx and s3cr3t/x", "s3cr3t/x") == "key=*** and ***"

"""Data that never silently changes, and secrets that never show (issue 14, parts 3 and 6).

Each test crafts one kind of bad input in the ``consumption`` layout next to good homes, and checks
(1) the clear error or the counted warning, naming the place, and (2) that the good homes come out
exactly as they do from the same file without the bad part.
"""

from __future__ import annotations

import csv
import logging

import numpy as np
import pandas as pd
import pytest

from energy_env.config import DataConfig, WholesaleConfig
from energy_env.data.caiso import PriceSourceOptions
from energy_env.data.checks import PV_MAX_KWH_PER_SLOT, isolated_in_time, plausibility
from energy_env.data.dataset import DataError, Dataset
from energy_env.data.redact import redact
from energy_env.data.resample import DEFAULT_MAX_GAP_INTERVALS, GapPolicy
from energy_env.data.report import LoadReport
from energy_env.data.rows import clean_id
from energy_env.data.sources import ExternalDataOptions, load_consumption
from energy_env.data.writing import dataset_to_rows
from energy_env.data.synthetic import generate_synthetic

CONFLICT = "conflicting duplicates (household_id, interval_start_utc): same time, different values (every copy rejected)"
EXACT = "exact duplicate (household_id, interval_start_utc): same values as an earlier row"


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """3 synthetic homes, 3 October days (no DST change), as consumption rows with ISO text times."""
    ds = generate_synthetic(3, 2025, seed=3)
    start = int(np.flatnonzero(ds.timestamps == pd.Timestamp("2025-10-06"))[0])
    t = slice(start, start + 3 * 48)
    small = Dataset(
        name="s", timestamps=ds.timestamps[t], load_kwh=ds.load_kwh[t].copy(), pv_kwh=ds.pv_kwh[t].copy(),
        household_ids=ds.household_ids, pv_capacity_kw=ds.pv_capacity_kw,
    )
    out, _ = dataset_to_rows(small)
    out = out.drop(columns="temperature_c")
    out["interval_start_utc"] = out["interval_start_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _load(frame: pd.DataFrame, path, **kw):
    frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return load_consumption(ExternalDataOptions(source="file", path=str(path), **kw))


def _home(ds: Dataset, h: str) -> tuple[np.ndarray, np.ndarray]:
    j = ds.household_ids.index(h)
    return ds.load_kwh[:, j], ds.pv_kwh[:, j]


def _assert_same_homes(ds: Dataset, clean: Dataset, homes) -> None:
    assert ds.timestamps.equals(clean.timestamps)
    for h in homes:
        for got, want in zip(_home(ds, h), _home(clean, h)):
            np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------ a: resolution


def _to_hourly(frame: pd.DataFrame) -> pd.DataFrame:
    t = pd.to_datetime(frame["interval_start_utc"], utc=True).dt.floor("h")
    out = frame.assign(interval_start_utc=t).groupby(["household_id", "interval_start_utc"], as_index=False)[["load_kwh", "pv_kwh"]].sum()
    out["interval_start_utc"] = out["interval_start_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def test_interval_length_is_detected_and_resampled_per_home(rows, tmp_path):
    hourly = _to_hourly(rows[rows.household_id == "household_2"])
    mixed = pd.concat([rows[rows.household_id != "household_2"], hourly], ignore_index=True)
    clean, _ = _load(rows[rows.household_id != "household_2"], tmp_path / "clean.csv")
    for fill in ("none", "interpolate"):  # a fill rule once doubled the hourly home
        ds, report = _load(mixed, tmp_path / "mixed.csv", gap_fill=fill)
        assert report.rows_rejected == 0 and not report.gaps
        assert report.resolution_minutes is None
        assert report.series_resolutions == {"household_0": 30, "household_1": 30, "household_2": 60}
        assert "interval lengths per series: 30 min: household_0, household_1; 60 min: household_2" in report.summary()
        assert "household household_2: detected 60-minute intervals" in report.resampling
        _assert_same_homes(ds, clean, ["household_0", "household_1"])
        load2, _ = _home(ds, "household_2")
        np.testing.assert_allclose(load2.sum(), hourly["load_kwh"].sum(), rtol=1e-12)  # energy kept, not doubled
        np.testing.assert_array_equal(load2[0::2], load2[1::2])
    # a stated interval length applies to all; the home that contradicts it is counted and logged
    _, report = _load(mixed, tmp_path / "mixed.csv", gap_fill="interpolate", resolution_minutes=30)
    (check, n), = report.warnings.items()
    assert "contradict the stated resolution_minutes=30" in check and n == 1
    assert report.warning_examples[check] == "household household_2: most of its steps are 60 minutes"
    # a home at an unsupported interval length is refused, by name
    odd = rows[rows.household_id == "household_1"].iloc[::2].copy()
    odd["interval_start_utc"] = pd.date_range("2025-10-06T07:00Z", periods=len(odd), freq="20min").strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(DataError, match=r"mixed.csv: .* for 1 household\(s\) \(household household_1: 20 minutes\); supported"):
        _load(pd.concat([rows[rows.household_id != "household_1"], odd]), tmp_path / "mixed.csv")


# ----------------------------------------------------------------------------- b: outliers and gaps


def test_a_stray_timestamp_is_rejected_and_gaps_are_bounded_by_default(rows, tmp_path):
    clean, _ = _load(rows, tmp_path / "clean.csv", gap_fill="interpolate")
    stray = pd.DataFrame({"household_id": ["household_1"], "interval_start_utc": ["1900-10-06T19:00:00Z"], "load_kwh": [0.4], "pv_kwh": [0.0]})
    bad = pd.concat([rows.iloc[:100], stray, rows.iloc[100:]], ignore_index=True)  # file line 102
    ds, report = _load(bad, tmp_path / "bad.csv", gap_fill="interpolate")
    (reason, n), = report.rejected.items()
    assert n == 1 and reason.startswith("isolated in time: more than 30 days from the bulk of the rows (2025-10-06 07:00")
    assert report.examples[reason] == "file line 102: household household_1 at 1900-10-06 19:00 UTC"
    assert report.rows_read == len(bad) == report.rows_kept + report.rows_rejected
    assert ds.num_days == clean.num_days == 3
    _assert_same_homes(ds, clean, clean.household_ids)
    # the default bound on what a fill rule bridges: one day, everywhere
    assert GapPolicy().max_gap_intervals == DEFAULT_MAX_GAP_INTERVALS == 48
    assert DataConfig().max_gap_intervals == WholesaleConfig().max_gap_intervals == 48
    assert ExternalDataOptions(source="file").max_gap_intervals == PriceSourceOptions().max_gap_intervals == 48
    t = pd.to_datetime(rows["interval_start_utc"], utc=True)
    hole = (rows.household_id == "household_0") & (t >= "2025-10-06T12:00Z") & (t < "2025-10-07T14:00Z")  # 52 slots
    with pytest.raises(DataError, match=r"household household_0: 1 gap\(s\) not filled \(longer than max_gap_intervals=48\): .*2025-10-06 05:00 to 2025-10-07 07:00"):
        _load(rows[~hole], tmp_path / "hole.csv", gap_fill="interpolate")
    # null lifts the bound, explicitly (and a config's null is kept, not replaced by the default)
    ds, report = _load(rows[~hole], tmp_path / "hole.csv", gap_fill="interpolate", max_gap_intervals=None)
    assert [g.intervals for g in report.gaps] == [52]
    _assert_same_homes(ds, clean, ["household_1", "household_2"])
    cfg = DataConfig(source="file", path="x.csv", max_gap_intervals=None)
    assert ExternalDataOptions.from_config(cfg).max_gap_intervals is None
    assert ExternalDataOptions.from_config(DataConfig(source="file", path="x.csv")).max_gap_intervals == 48


def test_isolated_in_time_keeps_equal_seasons():
    days = lambda start, n: pd.Series(pd.date_range(start, periods=n * 48, freq="30min", tz="UTC"))  # noqa: E731
    two_seasons = pd.concat([days("2025-01-01", 10), days("2025-07-01", 10)], ignore_index=True)
    assert not isolated_in_time(two_seasons)[0].any()
    with_typo = pd.concat([days("2025-07-01", 20), days("2205-07-01", 1)], ignore_index=True)
    mask, start, end = isolated_in_time(with_typo)
    assert mask.sum() == 48 and mask[-48:].all() and start == pd.Timestamp("2025-07-01", tz="UTC")


# ------------------------------------------------------------------------------------- c: duplicates


def test_conflicting_duplicates_are_all_rejected_and_named(rows, tmp_path):
    clean, _ = _load(rows, tmp_path / "clean.csv")
    i = int(np.flatnonzero((rows.household_id == "household_2").to_numpy())[26])  # 2025-10-06 20:00 UTC = 13:00 local
    twin = rows.iloc[[i]].assign(load_kwh=rows.load_kwh.iloc[i] + 1.0)
    exact = rows.iloc[[5]]
    bad = pd.concat([rows, twin, exact], ignore_index=True)
    n = len(rows)
    # the default rule refuses the gap the conflict leaves, and says why the slot is empty
    with pytest.raises(DataError, match=r"household household_2: 1 gap\(s\) not filled .*2025-10-06 13:00 to 2025-10-06 13:30.*2 conflicting duplicates"):
        _load(bad, tmp_path / "bad.csv")
    ds, report = _load(bad, tmp_path / "bad.csv", gap_fill="interpolate")
    assert report.rejected == {CONFLICT: 2, EXACT: 1}
    example = report.examples[CONFLICT]
    assert example.startswith(f"file line {i + 2} and file line {n + 2}: household_id='household_2', interval_start_utc='2025-10-06T20:00:00Z'")
    assert f"load_kwh '{rows.load_kwh.iloc[i]}' vs '{twin.load_kwh.iloc[0]}'" in example
    assert report.examples[EXACT].startswith(f"file line {n + 3}: ")
    report.check_balance()
    _assert_same_homes(ds, clean, ["household_0", "household_1"])
    load2, _ = _home(ds, "household_2")
    slot = 26  # 13:00 local: the one slot interpolated, everything else as measured
    keep = np.arange(len(load2)) != slot
    np.testing.assert_array_equal(load2[keep], _home(clean, "household_2")[0][keep])
    assert [(str(g.start), g.filled_by) for g in report.gaps] == [("2025-10-06 13:00:00", "interpolate")]


# ------------------------------------------------------------------------------------ d: plausibility


def test_pv_in_wh_is_warned_about_loudly_and_left_unchanged(rows, tmp_path, caplog):
    clean, report = _load(rows, tmp_path / "clean.csv")
    assert not report.warnings  # realistic homes trip nothing
    wh = rows.copy()
    wh.loc[wh.household_id == "household_1", "pv_kwh"] *= 1000.0
    with caplog.at_level(logging.WARNING, logger="energy_env.data.report"):
        ds, report = _load(wh, tmp_path / "wh.csv")
    above = next(c for c in report.warnings if c.startswith(f"pv_kwh above {PV_MAX_KWH_PER_SLOT:g} kWh"))
    looks = next(c for c in report.warnings if c.startswith("pv_kwh looks like Wh"))
    assert report.warnings[looks] == 1 and report.warnings[above] > 10
    assert report.warning_examples[looks].startswith("household household_1: median daytime pv_kwh ")
    assert report.warning_examples[above].startswith("household household_1 at 2025-10-06 ")
    assert any("warning" in r.getMessage() and "looks like Wh" in r.getMessage() for r in caplog.records)
    assert "WARNING 1: pv_kwh looks like Wh" in report.summary() and report.to_dict()["warnings"][looks] == 1
    assert report.rows_rejected == 0  # warned, not changed
    _assert_same_homes(ds, clean, ["household_0", "household_2"])
    np.testing.assert_allclose(_home(ds, "household_1")[1], _home(clean, "household_1")[1] * 1000.0, rtol=1e-12)


def test_plausibility_checks_load_night_pv_and_flat_pv():
    grid = pd.date_range("2025-06-01", periods=96, freq="30min")
    load = np.full((96, 2), 0.4)
    load[50, 1] = 80.0  # 160 kW for half an hour
    pv = np.zeros((96, 2))
    pv[:, 0] = 0.5  # a constant: no PV system yields that
    pv[2, 1] = 0.3  # 01:00 local
    found = {f.check.split(" (")[0]: f for f in plausibility(load, pv, grid, ["a", "b"])}
    assert found["load_kwh above 50 kWh in a half hour"].example == "household b at 2025-06-02 01:00: load_kwh 80"
    night = found["pv_kwh above 0.05 kWh at night"]
    assert night.count == 1 + 2 * 12  # home b at 01:00, and home a every night slot of both days
    assert found["PV yield above 4000 kWh per kW of peak a year"].example.startswith("household a: 8760 kWh/kW/year")
    assert len(found) == 3


# ------------------------------------------------------------------------------------------- e: ids


def test_ids_with_surrounding_whitespace_are_one_home(rows, tmp_path):
    clean, _ = _load(rows, tmp_path / "clean.csv")
    spaced = rows.copy()
    first_day = pd.to_datetime(spaced["interval_start_utc"], utc=True) < "2025-10-07T07:00Z"
    spaced.loc[first_day & (spaced.household_id == "household_0"), "household_id"] = " household_0"
    spaced.loc[~first_day & (spaced.household_id == "household_0"), "household_id"] = "household_0\t"
    spaced.loc[spaced.household_id == "household_1", "household_id"] = "household_1 "
    ds, report = _load(spaced, tmp_path / "spaced.csv")
    assert ds.household_ids == clean.household_ids and report.rows_rejected == 0
    _assert_same_homes(ds, clean, clean.household_ids)
    spaced.to_parquet(tmp_path / "spaced.parquet")
    opts = ExternalDataOptions(source="file", path=str(tmp_path / "spaced.parquet"), households=(" household_1", "household_0 "))
    ds, _ = load_consumption(opts)
    assert ds.household_ids == ("household_1", "household_0")
    _assert_same_homes(ds, clean, ds.household_ids)
    with pytest.raises(DataError, match=r"household\(s\) \['household_0'\] listed more than once"):
        load_consumption(ExternalDataOptions(source="file", path=str(tmp_path / "spaced.parquet"), households=("household_0", " household_0")))
    assert clean_id(" \th1 \n") == "h1" and clean_id(7) == "7"


# -------------------------------------------------------------------------------------- f: redaction


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("connecting to http://user:pa55word@db.example.com:5432/x failed", "pa55word"),
        ("postgresql://alice:p@ss@host/db", "p@ss"),
        ("host=db port=5432 password=hunter22 dbname=x", "hunter22"),
        ("GET /rest/v1/t?apikey=abcd1234&select=*", "abcd1234"),
        ("SUPABASE_KEY='k3y-value' in .env", "k3y-value"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("key eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZSJ9.c2lnbmF0dXJl refused", "eyJhbGciOiJIUzI1NiJ9"),
        ("sb_secret_Zx9_abcdef refused", "Zx9_abcdef"),
        ("token: tok3n, retry", "tok3n"),
    ],
)
def test_redact_hides_credentials(text, hidden):
    out = redact(text)
    assert hidden not in out and "***" in out


def test_redact_leaves_ordinary_messages_alone():
    for text in ('Key (household_id)=(h1) already exists', 'password authentication failed for user "u"',
                 "https://x.supabase.co/rest/v1/consumption?select=*", "postgres u@localhost:5432/db"):
        assert redact(text) == text
    assert redact("dsn s3cr3t/x, encoded s3cr3t%2Fx", "s3cr3t/x") == "dsn ***, encoded ***"


def test_errors_and_logs_never_show_a_secret(caplog):
    assert "pa55word" not in str(DataError("supabase: bad URL http://u:pa55word@h"))
    report = LoadReport(source="x")
    with caplog.at_level(logging.WARNING, logger="energy_env.data.report"):
        report.warn("check", 1, "seen in postgresql://u:pa55word@h/db")
    assert caplog.records and all("pa55word" not in r.getMessage() for r in caplog.records)


def test_a_dsn_password_never_reaches_the_error():
    pytest.importorskip("psycopg")
    from energy_env.data.postgres import PostgresSource

    src = PostgresSource("postgresql://wuser:Sup3rSecret@127.0.0.1:1/db", connect_timeout_s=2)
    with pytest.raises(DataError) as err:
        src.list_households("consumption", ExternalDataOptions(source="postgres").window)
    assert "Sup3rSecret" not in str(err.value) and "127.0.0.1:1/db" in str(err.value)
    assert "Sup3rSecret" not in repr(src)


def test_wattshare_import_prints_no_secret(monkeypatch, capsys):
    pytest.importorskip("psycopg")
    from train import import_data

    monkeypatch.setenv("WATTSHARE_PG_DSN", "host=127.0.0.1 port=1 user=wuser password=Sup3rSecret dbname=db connect_timeout=2")
    status = import_data.main(["--from", "synthetic", "--households", "1", "--days", "1", "--env-file", "/nonexistent"])
    out = capsys.readouterr()
    assert status == 2 and "wattshare import: error:" in out.err
    assert "Sup3rSecret" not in out.err + out.out


def test_a_home_switching_interval_length_is_warned_about(rows, tmp_path):
    h1 = rows[rows.household_id == "household_1"]
    t = pd.to_datetime(h1["interval_start_utc"], utc=True)
    switched = pd.concat([_to_hourly(h1[t < "2025-10-07T19:00Z"]), h1[t >= "2025-10-07T19:00Z"]], ignore_index=True)
    _, report = _load(pd.concat([rows[rows.household_id != "household_1"], switched]), tmp_path / "s.csv", gap_fill="interpolate")
    check = next(c for c in report.warnings if "fewer than 80% of its steps at its interval length" in c)
    assert report.warnings[check] == 1 and report.warning_examples[check].startswith("household household_1: ")


def test_series_resolutions_per_home_and_single_timestamps():
    from energy_env.data.resample import KEY, TS, series_resolutions

    ts = lambda start, n, f: list(pd.date_range(start, periods=n, freq=f, tz="UTC"))  # noqa: E731
    frame = pd.DataFrame({KEY: ["a"] * 6 + ["b"] * 4 + ["c"], TS: ts("2025-01-01", 6, "15min") + ts("2025-01-01", 4, "h") + ts("2025-01-01", 1, "h")})
    minutes, notes = series_resolutions(frame, "t")
    assert minutes.to_dict() == {"a": 15, "b": 60, "c": 15} and "1 household(s) with a single timestamp (c)" in notes[0]

"""Which homes a load takes (file order, None = all), and what a data set records about its origin:
source, fingerprint, load report, and the file line or table rows behind one (household, slot)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_env.config import DataConfig
from energy_env.data import DataError, LoadReport, clear_cache, load_citylearn, load_dataset
from energy_env.data.dataset import dataset_fingerprint
from energy_env.data.rows import TableLocator, slot_row_starts
from energy_env.data.sources import ExternalDataOptions, load_consumption
from energy_env.data.synthetic import generate_synthetic
from energy_env.data.writing import dataset_to_rows
from test_data_citylearn import _edit_cell, make_folder

# 12 ids whose file order is neither natural nor text order
FILE_ORDER = ["h10", "h2", "h7", "h1", "h11", "h3", "h12", "h5", "h9", "h4", "h8", "h6"]


@pytest.fixture(scope="module")
def twelve(tmp_path_factory) -> str:
    """A CSV of 12 homes x 2 October days, time-major (each time lists the homes in FILE_ORDER)."""
    ds = generate_synthetic(12, 2025, seed=3)
    start = int(np.flatnonzero(ds.timestamps == pd.Timestamp("2025-10-06"))[0])
    rows, _ = dataset_to_rows(ds.select(list(range(12))))
    rows = rows[(rows.interval_start_utc >= pd.Timestamp("2025-10-06 07:00", tz="UTC"))
                & (rows.interval_start_utc < pd.Timestamp("2025-10-08 07:00", tz="UTC"))]
    assert start and len(rows) == 12 * 96
    rows["household_id"] = rows["household_id"].map({f"household_{i}": h for i, h in enumerate(FILE_ORDER)})
    rows = rows.sort_values("interval_start_utc", kind="stable")  # homes keep FILE_ORDER within a time
    path = tmp_path_factory.mktemp("twelve") / "homes.csv"
    rows.to_csv(path, index=False)
    return str(path)


def _file(path: str, **kw) -> ExternalDataOptions:
    return ExternalDataOptions(source="file", path=path, **kw)


# ------------------------------------------------------------------------------------ which homes


def test_first_n_homes_are_taken_in_file_order(twelve):
    ds, _ = load_consumption(_file(twelve), num_households=10)
    assert ds.household_ids == tuple(FILE_ORDER[:10])


def test_none_takes_every_home_in_file_order(twelve):
    ds, _ = load_consumption(_file(twelve), num_households=None)
    assert ds.household_ids == tuple(FILE_ORDER)
    clear_cache()
    cfg = DataConfig(source="file", path=twelve)
    assert load_dataset(cfg, None, seed=0).household_ids == tuple(FILE_ORDER)
    assert load_dataset(cfg, 3, seed=0).household_ids == tuple(FILE_ORDER[:3])
    with pytest.raises(DataError, match="has 12 households.*num_households is 13"):
        load_dataset(cfg, 13, seed=0)


def test_explicit_households_keep_their_order_and_none_takes_them_all(twelve):
    ds, _ = load_consumption(_file(twelve, households=("h6", "h1", "h12")), num_households=None)
    assert ds.household_ids == ("h6", "h1", "h12")


def test_synthetic_needs_a_number_and_citylearn_none_is_every_kept_home(tmp_path):
    with pytest.raises(DataError, match="num_households is required for data.source synthetic"):
        load_dataset(DataConfig(), None, seed=0)
    folder = make_folder(tmp_path / "cl", buildings=(3, 1, 2), pv_kw=(4.0, 5.0, 6.0))
    cfg = DataConfig(source="citylearn", path=str(folder))
    assert load_dataset(cfg, None, seed=0).household_ids == ("Building_1", "Building_2", "Building_3")
    assert load_dataset(cfg, 2, seed=0).household_ids == ("Building_1", "Building_2")


# ------------------------------------------------------------------------------ source, report, hash


def test_the_data_set_records_its_source_and_load_report(twelve):
    clear_cache()
    ds = load_dataset(DataConfig(source="file", path=twelve), None, seed=0)
    assert ds.source == f"file {twelve}"
    assert isinstance(ds.load_report, LoadReport)
    assert ds.load_report.rows_read == ds.load_report.rows_kept == 12 * 96
    assert ds.load_report.summary().startswith(f"file {twelve}: 1152 rows read, 1152 kept, 0 rejected")
    picked = ds.select([2, 0])
    assert (picked.source, picked.load_report, picked.locator) == (ds.source, ds.load_report, ds.locator)
    info = ds.provenance()
    assert info["source"] == ds.source and info["household_ids"] == FILE_ORDER
    assert info["fingerprint_sha256"] == ds.fingerprint() and info["load_report"]["rows_kept"] == 1152
    synthetic = generate_synthetic(2, 2025, seed=0)
    assert synthetic.source == synthetic.name and synthetic.load_report is None


def test_fingerprint_is_stable_across_loads_and_changes_with_one_value(twelve, tmp_path):
    a, _ = load_consumption(_file(twelve))
    b, _ = load_consumption(_file(twelve))
    assert a is not b and a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64 and int(a.fingerprint(), 16) >= 0
    lines = open(twelve).read().splitlines()
    header = lines[0].split(",")
    cells = lines[500].split(",")
    cells[header.index("load_kwh")] = str(float(cells[header.index("load_kwh")]) + 0.001)
    lines[500] = ",".join(cells)
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join(lines) + "\n")
    c, _ = load_consumption(_file(str(changed)))
    assert c.fingerprint() != a.fingerprint()
    # the homes, their order and the clock count too
    assert a.select([1, 0]).fingerprint() != a.select([0, 1]).fingerprint()
    shifted = dataset_fingerprint(a.household_ids, a.timestamps + pd.Timedelta(days=1), a.load_kwh, a.pv_kwh)
    assert shifted != a.fingerprint()
    # the unit of the timestamps does not
    same = dataset_fingerprint(a.household_ids, a.timestamps.as_unit("s"), a.load_kwh, a.pv_kwh)
    assert same == a.fingerprint()


# ----------------------------------------------------------------------------------------- locating


def _mixed_file(tmp_path) -> tuple[str, pd.DataFrame]:
    """One local day (2025-10-06, PDT) of three homes: 'a' 30-minute, 'b' hourly, 'c' 15-minute rows, shuffled."""
    day0 = pd.Timestamp("2025-10-06 07:00", tz="UTC")
    parts = []
    for home, minutes in (("a", 30), ("b", 60), ("c", 15)):
        t = pd.date_range(day0, day0 + pd.Timedelta(days=1), freq=f"{minutes}min", inclusive="left")
        parts.append(pd.DataFrame({
            "household_id": home,
            "interval_start_utc": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_kwh": 0.2 * minutes / 30,
            "pv_kwh": 0.0,
        }))
    rows = pd.concat(parts).sample(frac=1.0, random_state=0).reset_index(drop=True)
    path = tmp_path / "mixed.csv"
    rows.to_csv(path, index=False)
    return str(path), rows


def _line_of(rows: pd.DataFrame, home: str, utc: str) -> int:
    return int(np.flatnonzero((rows.household_id == home) & (rows.interval_start_utc == utc))[0]) + 2


def test_locate_names_the_file_lines_behind_a_slot(tmp_path):
    path, rows = _mixed_file(tmp_path)
    ds, report = load_consumption(_file(path))
    assert report.series_resolutions == {"a": 30, "b": 60, "c": 15}
    j = ds.household_ids.index
    t = int(np.flatnonzero(ds.timestamps == pd.Timestamp("2025-10-06 18:30"))[0])  # 01:30Z
    line_a = _line_of(rows, "a", "2025-10-07T01:30:00Z")
    assert ds.locate(j("a"), t) == f"file {path} line {line_a} (household a, 2025-10-06 18:30 local)"
    # an hourly row covers both half hours of its hour
    line_b = _line_of(rows, "b", "2025-10-07T01:00:00Z")
    assert ds.locate(j("b"), t).startswith(f"file {path} line {line_b} ")
    assert ds.locate(j("b"), t - 1).startswith(f"file {path} line {line_b} ")
    # two 15-minute rows make one slot
    lines_c = sorted(_line_of(rows, "c", u) for u in ("2025-10-07T01:30:00Z", "2025-10-07T01:45:00Z"))
    expected = f"{lines_c[0]}-{lines_c[1]}" if lines_c[1] == lines_c[0] + 1 else f"{lines_c[0]}, {lines_c[1]}"
    assert ds.locate(j("c"), t) == f"file {path} lines {expected} (household c, 2025-10-06 18:30 local)"
    # Parquet has no lines: rows, counted from 1
    parquet = tmp_path / "mixed.parquet"
    rows.to_parquet(parquet)
    pq, _ = load_consumption(_file(str(parquet)))
    assert pq.locate(j("a"), t) == f"file {parquet} row {line_a - 1} (household a, 2025-10-06 18:30 local)"


def test_locate_says_when_the_slot_had_no_line_or_the_file_changed(tmp_path):
    path, rows = _mixed_file(tmp_path)
    hole = _line_of(rows, "a", "2025-10-07T01:30:00Z") - 2
    rows.drop(index=hole).to_csv(path, index=False)
    ds, _ = load_consumption(_file(path, gap_fill="interpolate"))
    t = int(np.flatnonzero(ds.timestamps == pd.Timestamp("2025-10-06 18:30"))[0])
    assert ds.locate(ds.household_ids.index("a"), t) == (
        f"file {path}: no line for this slot (a gap: the value was filled) (household a, 2025-10-06 18:30 local)"
    )
    with open(path, "a") as f:
        f.write("z,2025-10-07T01:30:00Z,0.1,0.0\n")
    assert "the file changed since it was loaded" in ds.locate(ds.household_ids.index("b"), t)


def test_fall_back_slot_names_both_lines(tmp_path):
    """2025-11-02 01:00-01:59 local happens twice; the data set's slot is the mean of both rows."""
    t = pd.date_range("2025-11-02 07:00", "2025-11-03 08:00", freq="30min", inclusive="left", tz="UTC")  # 25 h
    rows = pd.DataFrame({"household_id": "h", "interval_start_utc": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "load_kwh": 0.2, "pv_kwh": 0.0})
    path = tmp_path / "fall.csv"
    rows.to_csv(path, index=False)
    ds, report = load_consumption(_file(str(path)))
    assert report.dst_merged_slots == 2
    slot = int(np.flatnonzero(ds.timestamps == pd.Timestamp("2025-11-02 01:00"))[0])
    first = _line_of(rows, "h", "2025-11-02T08:00:00Z")  # 01:00 PDT
    second = _line_of(rows, "h", "2025-11-02T09:00:00Z")  # 01:00 PST
    assert ds.locate(0, slot) == f"file {path} lines {first}, {second} (household h, 2025-11-02 01:00 local)"


def test_table_locator_names_rows_by_household_and_utc_start():
    where = "postgres u@db:5432/x table public.consumption"
    loc = TableLocator(where, "household_id", "interval_start_utc", {"h7": 30, "h8": 60, "h9": 15})
    slot = pd.Timestamp("2025-07-01 18:00")  # PDT: 01:00Z on 2 July
    assert loc("h7", slot) == f"{where}: the row of household 'h7' with interval_start_utc = 2025-07-02T01:00Z"
    assert loc("h8", slot) == f"{where}: the rows of household 'h8' with interval_start_utc from 2025-07-02T00:30Z to 2025-07-02T01:00Z"
    assert loc("h9", slot).endswith("from 2025-07-02T01:00Z to 2025-07-02T01:15Z")
    assert "does not exist" in loc("h7", pd.Timestamp("2025-03-09 02:00"))
    assert len(slot_row_starts(pd.Timestamp("2025-11-02 01:30"), 30)) == 2


def test_citylearn_locate_names_the_building_file_row(tmp_path):
    folder = make_folder(tmp_path / "cl")
    _edit_cell(folder / "Building_2.csv", "non_shiftable_load", 30, "9.5")
    ds = load_citylearn(folder)
    assert ds.source == f"citylearn {folder}"
    h, t = 1, int(np.argmax(ds.load_kwh[:, 1]))
    assert ds.load_kwh[t, h] == pytest.approx(9.5 / 2)
    assert ds.locate(h, t).startswith(f"{folder / 'Building_2.csv'} data row 30 (file line 31) (household Building_2, ")


def test_synthetic_locate_is_a_plain_description():
    ds = generate_synthetic(2, 2025, seed=0)
    assert ds.locate(1, 37) == f"{ds.name} (household household_1, 2025-01-01 18:30 local)"

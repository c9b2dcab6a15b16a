"""CAISO price series (both layouts, gaps, alignment) and the wholesale-indexed import price."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, require_shared
from energy_env.config import make_config
from energy_env.data.caiso import PriceSourceOptions, load_price_series
from energy_env.data.dataset import DataError
from energy_env.dynamic_pricing import (
    IndexedPricing,
    calibrate_adder_usd_per_kwh,
    indexed_import_usd_per_kwh,
    indexed_price_table,
)
from energy_env.tariff import build_price_table
from train import import_data

CAISO_CSV = SHARED_DATA / "caiso" / "caiso_2024_dlap_hourly_lmp.csv"


@pytest.fixture(scope="module")
def october():
    path = require_shared(CAISO_CSV)
    opts = PriceSourceOptions(path=str(path), start_date=dt.date(2024, 10, 1), end_date=dt.date(2024, 10, 9))
    return load_price_series(opts)


def test_shared_caiso_night_gaps_are_reported_and_filled(october):
    s = october
    assert s.node == "DLAP_PGAE-APND" and s.market == "DAM"
    assert len(s.timestamps) == 9 * 48 and s.timestamps[0] == pd.Timestamp("2024-10-01")
    assert s.report.rows_read == s.report.rows_kept == 9 * 15  # HE10-HE24 only
    assert [(g.start.strftime("%H:%M"), g.end.strftime("%H:%M"), g.intervals) for g in s.report.gaps] == [("00:00", "09:00", 18)] * 9
    # 1-9 Oct 2024 DAM: 0.042-0.222 $/kWh (PROVENANCE.md); interpolation stays within the observed range
    observed = s.usd_per_kwh[s.timestamps.hour >= 9]
    assert observed.min() == pytest.approx(0.042, abs=0.001) and observed.max() == pytest.approx(0.222, abs=0.001)
    assert s.usd_per_kwh.min() >= observed.min() - 1e-12 and s.usd_per_kwh.max() <= observed.max() + 1e-12
    # the night of 2 Oct runs in a straight line from 23:00 (1 Oct) to 09:00
    night = s.usd_per_kwh[48 - 2 : 48 + 19]
    steps = np.diff(night[1:-1])
    np.testing.assert_allclose(steps, steps[0])
    assert "repeated" in s.report.resampling


def test_rule_none_refuses_the_shared_caiso_file():
    path = require_shared(CAISO_CSV)
    opts = PriceSourceOptions(path=str(path), start_date=dt.date(2024, 10, 1), end_date=dt.date(2024, 10, 2), gap_fill="none")
    with pytest.raises(DataError, match=r"node DLAP_PGAE-APND DAM: 2 gap\(s\) not filled.*2024-10-01 00:00 to 2024-10-01 09:00"):
        load_price_series(opts)


def test_unknown_node_market_and_layout_are_named(tmp_path):
    path = require_shared(CAISO_CSV)
    with pytest.raises(DataError, match="no rows for node 'DLAP_NOPE'.*DLAP_PGAE-APND"):
        load_price_series(PriceSourceOptions(path=str(path), node="DLAP_NOPE"))
    with pytest.raises(DataError, match="no rows for market 'HASP'; it has \\['DAM', 'RTM'\\]"):
        load_price_series(PriceSourceOptions(path=str(path), market="HASP"))
    (tmp_path / "x.csv").write_text("when,where,what\n1,2,3\n")
    with pytest.raises(DataError, match="not a known pricing layout"):
        load_price_series(PriceSourceOptions(path=str(tmp_path / "x.csv")))


def test_team_layout_with_quarter_hours_and_dst(tmp_path):
    # 15-minute prices in GMT across the 2024 fall-back day, two nodes
    q = pd.date_range("2024-11-02 07:00", "2024-11-04 08:00", freq="15min", inclusive="left", tz="UTC")
    df = pd.DataFrame({"INTERVALSTARTTIME_GMT": q.strftime("%Y-%m-%dT%H:%M:%SZ"), "NODE": "N1", "Price KWH": np.arange(len(q)) * 0.001})
    df = pd.concat([df, df.assign(NODE="N2")])
    df.to_csv(tmp_path / "q.csv", index=False)
    s = load_price_series(PriceSourceOptions(path=str(tmp_path / "q.csv"), node="N1"))
    assert s.report.resolution_minutes == 15 and "averaged over 2 readings" in s.report.resampling
    assert len(s.timestamps) == 2 * 48 and s.report.dst_merged_slots == 2  # 01:00 and 01:30 on 3 Nov
    assert s.report.rows_read == s.report.rows_kept == len(q)
    i = int(np.flatnonzero(s.timestamps == pd.Timestamp("2024-11-03 01:00"))[0])
    # 01:00 local = 08:00 UTC (PDT) and 09:00 UTC (PST): quarters 4 apart, averaged
    first = (np.flatnonzero(q == pd.Timestamp("2024-11-03 08:00", tz="UTC"))[0])
    expected = np.mean([first, first + 1, first + 4, first + 5]) * 0.001
    assert s.usd_per_kwh[i] == pytest.approx(expected)


def test_alignment_exact_and_calendar(october):
    ts = pd.date_range("2024-10-03", periods=48, freq="30min")
    np.testing.assert_array_equal(october.on(ts), october.usd_per_kwh[96:144])
    with pytest.raises(DataError, match="no price for 2025-10-03 00:00:00.*use wholesale alignment 'calendar'"):
        october.on(ts + pd.DateOffset(years=1))
    np.testing.assert_array_equal(october.on(ts + pd.DateOffset(years=1), "calendar"), october.usd_per_kwh[96:144])
    with pytest.raises(DataError, match="no price for 10-12 00:00 in any year"):
        october.on(pd.date_range("2025-10-12", periods=2, freq="30min"), "calendar")


# -------------------------------------------------------------------------------- dynamic pricing


def test_calibrated_adder_matches_the_tou_mean_and_respects_bounds():
    rng = np.random.default_rng(0)
    wholesale = rng.normal(0.05, 0.04, 500)
    wholesale[:5] = [-0.06, 0.9, 1.2, -0.2, 0.4]  # negative prices and spikes
    reference = np.full(500, 0.48)
    params = IndexedPricing(floor_usd_per_kwh=0.0, cap_usd_per_kwh=1.0)
    prices, adder = indexed_import_usd_per_kwh(wholesale, params, reference)
    assert prices.mean() == pytest.approx(0.48, abs=1e-9)
    assert prices.min() >= 0.0 and prices.max() <= 1.0
    assert prices[2] == 1.0  # the spike is capped
    np.testing.assert_allclose(prices[10:20], wholesale[10:20] + adder)  # unclipped: wholesale + adder
    fixed, used = indexed_import_usd_per_kwh(wholesale, IndexedPricing(adder_usd_per_kwh=0.3), None)
    assert used == 0.3 and fixed[10] == pytest.approx(wholesale[10] + 0.3)
    with pytest.raises(ValueError, match="outside \\[floor, cap\\]"):
        calibrate_adder_usd_per_kwh(wholesale, 1.5, params)
    with pytest.raises(ValueError, match="floor .* must be below cap"):
        IndexedPricing(floor_usd_per_kwh=0.5, cap_usd_per_kwh=0.5)
    with pytest.raises(ValueError, match="not finite"):
        indexed_import_usd_per_kwh(np.array([0.1, np.nan]), params, np.array([0.4, 0.4]))


def test_indexed_price_table_keeps_tou_flags_and_names_its_source(october):
    ts = pd.date_range("2024-10-01", periods=9 * 48, freq="30min")
    tou = build_price_table(ts, make_config().tariff)
    table = indexed_price_table(tou, october.on(ts), IndexedPricing(), october.name)
    assert table.import_usd_per_kwh.mean() == pytest.approx(tou.import_usd_per_kwh.mean(), abs=1e-9)
    np.testing.assert_array_equal(table.export_usd_per_kwh, tou.export_usd_per_kwh)
    np.testing.assert_array_equal(table.is_peak, tou.is_peak)
    assert not table.import_usd_per_kwh.flags.writeable
    assert table.description.startswith("import indexed to CAISO DAM DLAP_PGAE-APND")
    assert "calibrated to the E-TOU-C mean" in table.description and "E-TOU-C 2025-01-01" in table.description
    # the shape follows wholesale: dearest at the evening ramp, not flat like TOU-C within its periods
    assert np.corrcoef(table.import_usd_per_kwh, october.on(ts))[0, 1] > 0.999
    nem2 = indexed_price_table(tou, october.on(ts), IndexedPricing(), october.name, nem2_non_bypassable_usd_per_kwh=0.0315)
    np.testing.assert_allclose(nem2.export_usd_per_kwh, np.maximum(nem2.import_usd_per_kwh - 0.0315, 0))


def test_market_clears_inside_the_indexed_prices(october):
    """The coordinator's SDR price is computed from the (indexed) grid prices, so it stays within them."""
    from energy_env import market

    ts = pd.date_range("2024-10-01", periods=9 * 48, freq="30min")
    table = indexed_price_table(build_price_table(ts, make_config().tariff), october.on(ts), IndexedPricing(), october.name)
    rng = np.random.default_rng(1)
    net = rng.normal(0, 1, (len(ts), 6))
    res = market.clear(net, table.import_usd_per_kwh, table.export_usd_per_kwh, "sdr", 0.05)
    cleared = res.cleared
    assert cleared.any()
    p = res.price_usd_per_kwh[cleared]
    assert (p <= table.import_usd_per_kwh[cleared] + 1e-12).all()


# ------------------------------------------------------------------------------------- import CLI


def test_import_print_ddl_and_dry_run(tmp_path, capsys):
    assert import_data.main(["--print-ddl"]) == 0
    out = capsys.readouterr().out
    assert 'CREATE TABLE IF NOT EXISTS "public"."consumption"' in out
    assert '"interval_start_utc" timestamptz NOT NULL' in out and '"Price KWH" double precision NOT NULL' in out
    assert 'PRIMARY KEY ("NODE", "INTERVALSTARTTIME_GMT")' in out
    assert import_data.main(["--from", "synthetic", "--households", "2", "--days", "2", "--dry-run"]) == 0
    assert "dry run: 192 rows for table public.consumption" in capsys.readouterr().out
    # a year of local time written in UTC skips the two spring-forward slots of every home
    assert import_data.main(["--from", "synthetic", "--households", "2", "--dry-run"]) == 0
    assert "skipped 4: slot does not exist in local time (DST spring forward)" in capsys.readouterr().out
    assert import_data.main(["--print-ddl", "--table", "homes"]) == 0
    out = capsys.readouterr().out
    assert '"public"."homes"' in out and "pricing" not in out
    assert import_data.main(["--print-ddl", "--table", "bad name;"]) == 2
    assert "invalid table name 'bad name;'" in capsys.readouterr().err
    assert import_data.main(["--from", "file", "--path", str(tmp_path / "none.csv"), "--dry-run"]) == 2
    assert "file not found" in capsys.readouterr().err
